//! The admin page's state, changed only by [`AdminAction`]s: the key, what
//! the last polls brought, the identity looked up, and what the operator's
//! last action did.

use std::fmt;
use std::rc::Rc;

use uuid::Uuid;
use yew::Reducible;

use super::wire::{BanRecord, Disconnected, IdentityReport, Overview};

/// The admin key as typed; never shown, not even in debug output.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminKey(Rc<str>);

impl AdminKey {
    /// The key typed, without spaces around it; `None` for nothing.
    pub fn new(text: &str) -> Option<Self> {
        let text = text.trim();
        (!text.is_empty()).then(|| Self(text.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The `Authorization` header's value.
    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.0)
    }
}

impl fmt::Debug for AdminKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminKey(…)")
    }
}

/// What the operator's last action did.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Disconnected(Disconnected),
    Banned(BanRecord),
    Lifted,
    /// The server's reason, or why it could not be asked.
    Failed(String),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct AdminState {
    /// The key requests carry; `None`: the page asks for it.
    pub key: Option<AdminKey>,
    /// The server refused the last key.
    pub wrong_key: bool,
    pub overview: Option<Rc<Overview>>,
    /// The active bans.
    pub bans: Option<Rc<[BanRecord]>>,
    /// The identity looked up.
    pub report: Option<Rc<IdentityReport>>,
    /// Why the last poll failed, until one succeeds.
    pub poll_problem: Option<String>,
    pub outcome: Option<Outcome>,
}

impl AdminState {
    /// The page, with the key kept for this tab, if any.
    pub fn new(key: Option<AdminKey>) -> Self {
        Self { key, ..Self::default() }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum AdminAction {
    /// The operator gave a key.
    Open(AdminKey),
    /// The operator asked to forget the key.
    Forget,
    /// The server refused this key (401). A refusal of a key no longer in
    /// use (a request made before the operator typed another) is ignored.
    Refused(AdminKey),
    /// A poll's overview.
    Overview(Overview),
    /// A poll's active bans.
    Bans(Vec<BanRecord>),
    /// A poll failed, for this reason.
    PollFailed(String),
    /// The identity looked up.
    Report(IdentityReport),
    Disconnected(Disconnected),
    Banned(BanRecord),
    Lifted(Uuid),
    /// An action of the operator failed, for this reason.
    Failed(String),
}

impl Reducible for AdminState {
    type Action = AdminAction;

    fn reduce(self: Rc<Self>, action: AdminAction) -> Rc<Self> {
        // What polls bring after the key is gone is not shown to the next.
        if self.key.is_none() && !matches!(action, AdminAction::Open(_)) {
            return self;
        }
        let mut next = (*self).clone();
        match action {
            AdminAction::Open(key) => next = Self::new(Some(key)),
            AdminAction::Forget => next = Self::default(),
            AdminAction::Refused(key) if self.key.as_ref() == Some(&key) => {
                next = Self { wrong_key: true, ..Self::default() };
            }
            AdminAction::Refused(_) => return self,
            AdminAction::Overview(overview) => {
                next.overview = Some(Rc::new(overview));
                next.poll_problem = None;
            }
            AdminAction::Bans(bans) => next.bans = Some(bans.into()),
            AdminAction::PollFailed(problem) => next.poll_problem = Some(problem),
            AdminAction::Report(report) => next.report = Some(Rc::new(report)),
            AdminAction::Disconnected(done) => next.outcome = Some(Outcome::Disconnected(done)),
            AdminAction::Banned(ban) => next.banned(ban),
            AdminAction::Lifted(id) => next.lifted(id),
            AdminAction::Failed(problem) => next.outcome = Some(Outcome::Failed(problem)),
        }
        Rc::new(next)
    }
}

impl AdminState {
    /// A new ban shows at once, in the list and on its identity (once: a
    /// poll may have brought it already).
    fn banned(&mut self, ban: BanRecord) {
        let new = |bans: &[BanRecord]| !bans.iter().any(|known| known.id == ban.id);
        if let Some(bans) = self.bans.as_ref().filter(|bans| new(bans)) {
            self.bans = Some(bans.iter().cloned().chain([ban.clone()]).collect());
        }
        if let Some(report) = self.report.as_mut().filter(|report| Some(report.sub) == ban.sub && new(&report.bans)) {
            Rc::make_mut(report).bans.push(ban.clone());
        }
        self.outcome = Some(Outcome::Banned(ban));
    }

    /// A lifted ban goes at once, from the list and from its identity.
    fn lifted(&mut self, id: Uuid) {
        if let Some(bans) = &self.bans {
            self.bans = Some(bans.iter().filter(|ban| ban.id != id).cloned().collect());
        }
        if let Some(report) = self.report.as_mut() {
            Rc::make_mut(report).bans.retain(|ban| ban.id != id);
        }
        self.outcome = Some(Outcome::Lifted);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::wire::Node;

    fn key(text: &str) -> AdminKey {
        AdminKey::new(text).unwrap()
    }

    fn opened() -> Rc<AdminState> {
        Rc::new(AdminState::default()).reduce(AdminAction::Open(key("k1")))
    }

    fn ban(id: u128, sub: Option<u128>) -> BanRecord {
        BanRecord {
            id: Uuid::from_u128(id),
            sub: sub.map(Uuid::from_u128),
            network: None,
            until_ms: 5,
            reason: String::new(),
            created_ms: 1,
        }
    }

    #[test]
    fn a_key_is_trimmed_and_never_shown() {
        assert_eq!(AdminKey::new("  "), None);
        let key = key(" secret ");
        assert_eq!((key.as_str(), key.bearer().as_str()), ("secret", "Bearer secret"));
        assert!(!format!("{key:?}").contains("secret"));
        let state = AdminState::new(Some(key));
        assert!(!format!("{state:?}").contains("secret"));
    }

    #[test]
    fn a_refused_key_is_dropped_and_said_to_be_wrong() {
        let state = opened().reduce(AdminAction::Overview(Overview::default()));
        let state = state.reduce(AdminAction::Refused(key("k1")));
        assert_eq!(*state, AdminState { wrong_key: true, ..AdminState::default() }, "nothing of it stays");
        let state = state.reduce(AdminAction::Open(key("k2")));
        assert!(!state.wrong_key && state.key == Some(key("k2")));
    }

    #[test]
    fn a_late_refusal_of_an_old_key_leaves_the_new_one() {
        let state = opened().reduce(AdminAction::Open(key("k2")));
        let state = state.reduce(AdminAction::Refused(key("k1")));
        assert_eq!(state.key, Some(key("k2")));
        assert!(!state.wrong_key);
    }

    #[test]
    fn forgetting_the_key_clears_the_page_and_late_answers_stay_out() {
        let state = opened().reduce(AdminAction::Forget);
        assert_eq!(*state, AdminState::default());
        let state = state.reduce(AdminAction::Overview(Overview::default()));
        assert_eq!(state.overview, None);
        assert!(!state.reduce(AdminAction::Refused(key("k1"))).wrong_key, "no key: nothing to refuse");
    }

    #[test]
    fn a_poll_that_succeeds_clears_the_last_ones_problem() {
        let state = opened().reduce(AdminAction::PollFailed("node unreachable".into()));
        assert_eq!(state.poll_problem.as_deref(), Some("node unreachable"));
        let overview = Overview { nodes: vec![Node::default()], ..Overview::default() };
        let state = state.reduce(AdminAction::Overview(overview.clone()));
        assert_eq!((state.poll_problem.clone(), state.overview.as_deref()), (None, Some(&overview)));
    }

    #[test]
    fn a_new_ban_shows_in_the_list_and_on_its_identity_at_once() {
        let sub = Uuid::from_u128(1);
        let report = IdentityReport { sub, connections: vec![], missing_nodes: 0, bans: vec![] };
        let state = opened().reduce(AdminAction::Bans(vec![ban(10, None)])).reduce(AdminAction::Report(report));
        let state = state.reduce(AdminAction::Banned(ban(11, Some(1))));
        let ids = |bans: &[BanRecord]| bans.iter().map(|b| b.id.as_u128()).collect::<Vec<_>>();
        assert_eq!(ids(state.bans.as_deref().unwrap()), [10, 11]);
        assert_eq!(ids(&state.report.as_ref().unwrap().bans), [11]);
        assert_eq!(state.outcome, Some(Outcome::Banned(ban(11, Some(1)))));
        let state = state.reduce(AdminAction::Banned(ban(11, Some(1))));
        assert_eq!(ids(state.bans.as_deref().unwrap()), [10, 11], "once");
        let state = state.reduce(AdminAction::Banned(ban(12, Some(2))));
        assert_eq!(ids(&state.report.as_ref().unwrap().bans), [11], "another identity's");
    }

    #[test]
    fn a_lifted_ban_goes_from_the_list_and_its_identity() {
        let sub = Uuid::from_u128(1);
        let report = IdentityReport { sub, connections: vec![], missing_nodes: 0, bans: vec![ban(11, Some(1))] };
        let state = opened().reduce(AdminAction::Bans(vec![ban(10, None), ban(11, Some(1))]));
        let state = state.reduce(AdminAction::Report(report)).reduce(AdminAction::Lifted(Uuid::from_u128(11)));
        assert_eq!(state.bans.as_deref().unwrap(), [ban(10, None)]);
        assert!(state.report.as_ref().unwrap().bans.is_empty());
        assert_eq!(state.outcome, Some(Outcome::Lifted));
    }

    #[test]
    fn an_actions_failure_is_its_outcome() {
        let state = opened().reduce(AdminAction::Failed("no such identity".into()));
        assert_eq!(state.outcome, Some(Outcome::Failed("no such identity".into())));
    }
}
