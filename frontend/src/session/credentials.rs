//! Which identity a connection uses, and what happens to one the server
//! refuses for good (it is forgotten and a new one is created) or that an
//! operator banned (it is kept, and the link stops). The browser
//! glue ([`net::credentials`](crate::net::credentials)) reads storage and
//! asks the server; the choices are made here.

use super::attempt::Reached;
use super::direct::Refusal;
use super::identity::{Answer, Identity, Renewals};
use super::link::{Link, Phase};
use super::removal::Ban;

/// Where the next connection's identity comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// Renew this one first, then use what the renewal brings
    /// ([`Answer::before_use`]).
    Renew(Identity),
    /// Use this one as it is.
    Use(Identity),
    /// None is known: ask the server for a new one.
    Create,
}

/// The identity for the next connection at `now_ms`: the `stored` one
/// (another tab may have renewed or replaced it), else the one `held` (the
/// one the last connection used), else a new one; renewed first when
/// [`Renewals::renew_before_use`] says so.
pub fn choose_identity(
    stored: Option<Identity>,
    held: Option<&Identity>,
    renewals: &mut Renewals,
    now_ms: f64,
) -> Choice {
    match stored.or_else(|| held.cloned()) {
        Some(known) if renewals.renew_before_use(&known, held, now_ms) => Choice::Renew(known),
        Some(known) => Choice::Use(known),
        None => Choice::Create,
    }
}

/// What the next connection does with a renewal made before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BeforeUse {
    /// Use the identity the renewal brought (renewed, or the one in hand
    /// when the server could not renew it).
    Use,
    /// The server refuses the identity for good: forget it and create one.
    Replace,
}

impl Answer {
    /// What a renewal before a connection's use means for it.
    pub fn before_use(self) -> BeforeUse {
        match self {
            Self::Refused => BeforeUse::Replace,
            Self::Renewed | Self::Off | Self::Later => BeforeUse::Use,
        }
    }
}

/// What the server says of an identity when asked (`GET
/// /api/identities/me`) after a connection that never opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// It knows the identity, or could not be asked: nothing to change.
    Known,
    /// It refuses the identity for good (401: its secret changed, or it
    /// was revoked): forget it and get a new one.
    Refused,
    /// An operator banned the identity, or its address, until a time (403
    /// with a ban): stop, and keep the identity.
    Banned(Ban),
}

impl Standing {
    /// What an answer with `status` and `body` says. Any other answer (or
    /// none) counts as [`Known`](Self::Known): retrying is what the link
    /// does anyway.
    pub fn of_answer(status: u16, body: &str) -> Self {
        match status {
            401 => Self::Refused,
            403 => Ban::of_body(body).map_or(Self::Known, Self::Banned),
            _ => Self::Known,
        }
    }
}

/// A connection ended without opening while the link waits to retry: the
/// server may refuse it for good (a refused handshake looks like any
/// failure to the browser), which is worth asking. First its identity: if
/// the server refuses that, it is forgotten and the link reconnects at
/// once, with a new one, rather than after its backoff; if an operator
/// banned it (or its address), the link stops until the user reconnects.
/// Then, for a direct message, the room itself ([`RoomCheck`]).
#[derive(Debug, PartialEq, Eq)]
pub struct RefusalCheck {
    direct: bool,
    /// Whether the connection replaces an identity refused for good (a
    /// room's does; the rooms stream takes whatever identity is stored).
    replaces: bool,
}

impl RefusalCheck {
    /// A check to make after a room's connection that got as far as
    /// `reached`, the link now in `phase`, to a direct message room or not;
    /// `None` when there is nothing to ask.
    pub fn after(reached: Reached, phase: &Phase, direct: bool) -> Option<Self> {
        Self::worth_asking(reached, phase).then_some(Self { direct, replaces: true })
    }

    /// The same check after the rooms stream's connection. Only a ban
    /// stops the stream: an identity refused for good is replaced by a
    /// room's connection, and the stream takes the new one from storage at
    /// its next attempt (reconnecting at once would ask again and again).
    pub fn after_rooms_stream(reached: Reached, phase: &Phase) -> Option<Self> {
        Self::worth_asking(reached, phase).then_some(Self { direct: false, replaces: false })
    }

    fn worth_asking(reached: Reached, phase: &Phase) -> bool {
        reached == Reached::NeverOpened && matches!(phase, Phase::Waiting { .. })
    }

    /// The server answered `standing`: refused for good (the caller forgot
    /// the identity) reconnects `link` at once; banned stops it. An
    /// identity it knows may still be refused a direct message: then the
    /// room is worth asking.
    pub fn answered(self, standing: Standing, link: &mut Link) -> Option<RoomCheck> {
        match standing {
            Standing::Refused if self.replaces => link.reconnect_by_user(),
            Standing::Refused => {}
            Standing::Banned(ban) => link.banned(ban),
            Standing::Known => return self.direct.then_some(RoomCheck(())),
        }
        None
    }
}

/// The server knows the identity, yet the direct message did not open:
/// whether it refuses the room for good (a history request for it answers
/// 403), which stops the link with why, instead of retrying forever.
#[derive(Debug, PartialEq, Eq)]
pub struct RoomCheck(());

impl RoomCheck {
    /// The server answered: `refusal` if it refuses the room (unreachable
    /// or any other answer: `None`, and the link retries as it was).
    pub fn answered(self, refusal: Option<Refusal>, link: &mut Link) {
        if let Some(refusal) = refusal {
            link.refused(refusal);
        }
    }
}

#[cfg(test)]
mod tests {
    use roomcast_shared::ClientId;
    use uuid::Uuid;

    use super::*;
    use crate::session::{Backoff, Stop};

    const T0_MS: f64 = 1_800_000_000_000.0;

    /// An identity got at T0 with a 30-day token: not due before use.
    fn identity(client: u128, token: &str) -> Identity {
        let t0 = (T0_MS / 1_000.0) as u64;
        Identity {
            client_id: ClientId(Uuid::from_u128(client)),
            token: token.into(),
            obtained_at: Some(t0),
            expires_at: Some(t0 + 30 * 86_400),
        }
    }

    #[test]
    fn the_stored_identity_comes_first_then_the_one_in_hand_then_a_new_one() {
        let (stored, held) = (identity(2, "stored"), identity(1, "held"));
        let mut renewals = Renewals::default();
        let choice = choose_identity(Some(stored.clone()), Some(&held), &mut renewals, T0_MS);
        assert_eq!(choice, Choice::Use(stored), "another tab may have replaced it");
        let choice = choose_identity(None, Some(&held), &mut renewals, T0_MS);
        assert_eq!(choice, Choice::Use(held));
        assert_eq!(choose_identity(None, None, &mut renewals, T0_MS), Choice::Create);
    }

    #[test]
    fn an_identity_due_is_renewed_before_use_unless_the_server_renews_none() {
        let due = Identity { obtained_at: None, ..identity(1, "old") };
        let mut renewals = Renewals::default();
        let choice = choose_identity(Some(due.clone()), None, &mut renewals, T0_MS);
        assert_eq!(choice, Choice::Renew(due.clone()));
        let choice = choose_identity(None, Some(&due), &mut renewals, T0_MS);
        assert_eq!(choice, Choice::Renew(due.clone()), "the one in hand too");
        renewals.answered(Answer::Off, T0_MS);
        assert_eq!(choose_identity(Some(due.clone()), None, &mut renewals, T0_MS), Choice::Use(due));
    }

    #[test]
    fn a_refused_renewal_replaces_the_identity_and_any_other_answer_keeps_one() {
        assert_eq!(Answer::Refused.before_use(), BeforeUse::Replace);
        for answer in [Answer::Renewed, Answer::Off, Answer::Later] {
            assert_eq!(answer.before_use(), BeforeUse::Use, "{answer:?}");
        }
    }

    fn waiting_link() -> Link {
        let mut link = Link::new(Backoff::default());
        link.closed(1006, "", 0.0, 0.5);
        assert!(matches!(link.phase(), Phase::Waiting { attempt: 1, .. }));
        link
    }

    fn ban() -> Ban {
        Ban { until_ms: 1_700_000_000_000, reason: "spam".into() }
    }

    #[test]
    fn the_servers_answer_tells_known_refused_and_banned_apart() {
        assert_eq!(Standing::of_answer(200, r#"{"client_id":"x"}"#), Standing::Known);
        assert_eq!(Standing::of_answer(401, ""), Standing::Refused);
        let banned = r#"{"error":"banned","until_ms":1700000000000,"reason":"spam"}"#;
        assert_eq!(Standing::of_answer(403, banned), Standing::Banned(ban()));
        assert_eq!(Standing::of_answer(403, "forbidden"), Standing::Known, "a 403 that is not a ban");
        assert_eq!(Standing::of_answer(401, banned), Standing::Refused, "the status decides first");
        for status in [429, 500, 502, 503] {
            assert_eq!(Standing::of_answer(status, banned), Standing::Known, "{status}");
        }
    }

    #[test]
    fn an_identity_refused_for_good_reconnects_at_once() {
        let mut link = waiting_link();
        let check = RefusalCheck::after(Reached::NeverOpened, link.phase(), true).expect("worth asking");
        assert_eq!(check.answered(Standing::Refused, &mut link), None, "a new identity may open the room");
        assert_eq!(link.phase(), &Phase::Connecting { attempt: 0 });
    }

    #[test]
    fn an_identity_not_refused_waits_out_the_backoff() {
        let mut link = waiting_link();
        let before = link.phase().clone();
        let check = RefusalCheck::after(Reached::NeverOpened, link.phase(), false).expect("worth asking");
        assert_eq!(check.answered(Standing::Known, &mut link), None, "not a direct message: nothing more to ask");
        assert_eq!(link.phase(), &before);
    }

    #[test]
    fn a_banned_identity_stops_the_link_and_asks_nothing_more() {
        let mut link = waiting_link();
        let check = RefusalCheck::after(Reached::NeverOpened, link.phase(), true).expect("worth asking");
        assert_eq!(check.answered(Standing::Banned(ban()), &mut link), None, "the room does not matter");
        assert_eq!(link.phase(), &Phase::Stopped(Stop::Removed(ban())));
    }

    #[test]
    fn the_rooms_stream_stops_for_a_ban_and_waits_out_a_refused_identity() {
        let mut link = waiting_link();
        let before = link.phase().clone();
        let check = RefusalCheck::after_rooms_stream(Reached::NeverOpened, link.phase()).expect("worth asking");
        assert_eq!(check.answered(Standing::Refused, &mut link), None);
        assert_eq!(link.phase(), &before, "a room's connection replaces the identity; no asking in a loop");
        let check = RefusalCheck::after_rooms_stream(Reached::NeverOpened, link.phase()).expect("worth asking");
        assert_eq!(check.answered(Standing::Banned(ban()), &mut link), None);
        assert_eq!(link.phase(), &Phase::Stopped(Stop::Removed(ban())));
        assert_eq!(RefusalCheck::after_rooms_stream(Reached::Opened, &before), None, "it opened");
    }

    #[test]
    fn a_direct_message_refused_for_good_stops_the_link_with_why() {
        let mut link = waiting_link();
        let before = link.phase().clone();
        let check = RefusalCheck::after(Reached::NeverOpened, link.phase(), true).expect("worth asking");
        let room = check.answered(Standing::Known, &mut link).expect("the identity is fine: ask about the room");
        room.answered(None, &mut link);
        assert_eq!(link.phase(), &before, "not refused (or unreachable): retry as before");
        let check = RefusalCheck::after(Reached::NeverOpened, link.phase(), true).expect("worth asking");
        check.answered(Standing::Known, &mut link).expect("the room").answered(Some(Refusal::OtherPeople), &mut link);
        assert_eq!(link.phase(), &Phase::Stopped(Stop::Refused(Refusal::OtherPeople)));
    }

    #[test]
    fn only_an_attempt_that_never_opened_while_the_link_waits_is_checked() {
        let waiting = waiting_link();
        assert_eq!(RefusalCheck::after(Reached::Opened, waiting.phase(), true), None, "it opened: the token was taken");
        for phase in [
            Phase::Connecting { attempt: 0 },
            Phase::Open { since_ms: 0.0 },
            Phase::Offline,
            Phase::Stopped(Stop::ByUser),
            Phase::Stopped(Stop::Revoked),
        ] {
            assert_eq!(RefusalCheck::after(Reached::NeverOpened, &phase, true), None, "{phase:?}");
        }
    }
}
