//! This view's identity across its connections: which one the next
//! connection uses, the renewals of an open connection's token, and
//! forgetting one the server refuses. Which identity, when to renew and
//! what an answer means are decided in
//! [`session::credentials`](crate::session::credentials) and
//! [`session::identity`](crate::session::identity).

use crate::net::events::{now_ms, Renewing};
use crate::net::identity::{self, IdentityError};
use crate::net::view::View;
use crate::session::{
    choose_identity, Answer, BeforeUse, Choice, Direct, Identity, OnConnection, Refusal, Renewals, Standing,
};
use crate::state::Action;
use crate::storage;
use crate::timeline::LineKind;

pub struct Credentials {
    /// This browser's identity, once obtained: the one the last connection
    /// used (or was handed with `refresh`, once the server took it).
    identity: Option<Identity>,
    renewals: Renewals,
    view: View,
}

impl Credentials {
    pub fn new(view: View) -> Self {
        Self { identity: None, renewals: Renewals::default(), view }
    }

    /// This browser's identity for the next connection: the stored one
    /// (another tab may have renewed or replaced it), else the one in hand,
    /// else a new one from the server; renewed first when that is due.
    pub async fn for_connection(&mut self) -> Result<Identity, IdentityError> {
        let choice = choose_identity(storage::identity(), self.identity.as_ref(), &mut self.renewals, now_ms());
        let identity = match choice {
            Choice::Renew(known) => {
                let (answer, identity) = identity::renew(known).await;
                self.renewals.answered(answer, now_ms());
                match answer.before_use() {
                    BeforeUse::Replace => {
                        self.forget_refused(&identity);
                        identity::create().await?
                    }
                    BeforeUse::Use => identity,
                }
            }
            Choice::Use(known) => known,
            Choice::Create => identity::create().await?,
        };
        if self.identity.as_ref().map(|held| held.client_id) != Some(identity.client_id) {
            self.view.act(Action::Me(identity.client_id));
        }
        self.identity = Some(identity.clone());
        Ok(identity)
    }

    /// After a connection that never opened: what the server says of this
    /// identity. One it refuses for good is forgotten (the next connection
    /// gets a new one); one an operator banned is kept.
    pub async fn standing(&mut self) -> Standing {
        let Some(identity) = self.identity.clone() else { return Standing::Known };
        let standing = identity::standing(&identity).await;
        if standing == Standing::Refused {
            self.forget_refused(&identity);
        }
        standing
    }

    /// After a direct message that never opened, with an identity the
    /// server knows: why the server refuses it this room for good, if it
    /// does.
    pub async fn refused_room(&self, direct: &Direct) -> Option<Refusal> {
        let identity = self.identity.as_ref()?;
        identity::is_refused_room(identity, direct).await.then(|| direct.refusal(identity.client_id))
    }

    /// The server refuses `identity` for good: the next connection gets a new
    /// one (and the outbox goes out under it).
    pub fn forget_refused(&mut self, identity: &Identity) {
        storage::forget_identity(identity);
        self.identity = None;
        self.view.note(LineKind::Event, "the server no longer knows this browser's identity: getting a new one".into());
    }

    /// A connection closed with `code`.
    pub fn closed(&mut self, code: u16) {
        self.renewals.closed(code);
    }

    /// A renewal of the connection's token, in the background; `None` when
    /// none may be tried.
    pub fn renewal(&self) -> Renewing {
        match self.identity.clone() {
            Some(identity) if self.renewals.may_renew() => Some(Box::pin(identity::renew(identity))),
            _ => None,
        }
    }

    /// Notes the answer to a connection's renewal, which brought
    /// `identity`; what the connection does with it.
    pub fn answered(&mut self, answer: Answer, identity: &Identity, now_ms: f64) -> OnConnection {
        self.renewals.answered(answer, now_ms);
        answer.on_connection(self.identity.as_ref().is_some_and(|held| held.client_id == identity.client_id))
    }

    /// When a renewal may be tried again after the last one failed.
    pub fn retry_at_ms(&self) -> f64 {
        self.renewals.retry_at_ms()
    }

    /// The connection took `identity`, handed with `refresh`.
    pub fn took(&mut self, identity: Identity) {
        self.identity = Some(identity);
    }
}
