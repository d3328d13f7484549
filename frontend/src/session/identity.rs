//! This browser's identity (a client id and the server's token for it) and
//! when its token is renewed.
//!
//! Self-service tokens expire (after 30 days unless the server says
//! otherwise). `POST /api/identities/renew` gives a new token for the same
//! client id and name, a full lifetime from then. The app renews:
//! - before it uses the stored identity (on each visit and each reconnect),
//!   once half the token's lifetime has gone by, or when it does not know the
//!   lifetime: stored by an earlier version, whose tokens may not expire at
//!   all; the server still takes those and renews them to expiring ones
//!   ([`Identity::renew_before_use`], [`Renewals::renew_before_use`]);
//! - while a connection is open, ahead of that connection's expiry
//!   ([`ConnectionToken`], [`refresh_at_ms`]), then hands the new token to
//!   the connection (`refresh`) so that it is not closed at the old expiry;
//! - after a close with 4001 (the connection's token expired).
//!
//! A renewed identity is stored at once: the other tabs take it at their
//! next (re)connect, or at their own renewal ([`Identity::replaces`]).
//! What the server's answer means is [`Answer`].

use std::fmt;

use roomcast_shared::{close, ClientId};
use serde::{Deserialize, Serialize};

use super::removal::Ban;

const SECOND_MS: f64 = 1_000.0;
const HOUR_MS: f64 = 3_600.0 * SECOND_MS;

/// The first wait after a renewal that got no usable answer; it doubles
/// with each one in a row, up to [`RETRY_CAP_MS`].
pub const RETRY_BASE_MS: f64 = 60.0 * SECOND_MS;
pub const RETRY_CAP_MS: f64 = HOUR_MS;

/// A client id and its token, as stored (one per browser, shared by its
/// tabs) and as `POST /api/identities` and `/renew` answer.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub client_id: ClientId,
    pub token: String,
    /// When the token expires (Unix seconds), as the server said; `None`: it
    /// does not, or this browser was not told (see `obtained_at`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    /// When this browser got the token (Unix seconds, its own clock). `None`:
    /// stored by a version that kept neither this nor `expires_at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub obtained_at: Option<u64>,
}

// Not derived: a token must never reach a log, nor a panic message.
impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("client_id", &self.client_id)
            .field("token", &"…")
            .field("expires_at", &self.expires_at)
            .field("obtained_at", &self.obtained_at)
            .finish()
    }
}

impl Identity {
    /// The `Authorization` header value for the API.
    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.token)
    }

    /// This identity as the server gave it at `now_ms`.
    pub fn received(self, now_ms: f64) -> Self {
        Self { obtained_at: Some(seconds(now_ms)), ..self }
    }

    /// Whether the token is renewed before it is used at `now_ms`: half its
    /// lifetime has gone by (an expired one included), or nothing is known
    /// of its lifetime. A token the server said never expires is not.
    ///
    /// Half the lifetime, rather than a fixed time before expiry, suits
    /// whatever lifetime the server gives: a browser visiting weekly renews
    /// a 30-day token every other week, and a server with one-day tokens
    /// does not see a renewal on every visit. The lifetime is measured from
    /// when this browser got the token, on its own clock, as is the time
    /// left: a wrong clock shifts both alike.
    pub fn renew_before_use(&self, now_ms: f64) -> bool {
        let Some(obtained_at) = self.obtained_at else { return true };
        let Some(expires_at) = self.expires_at else { return false };
        let (obtained_ms, expires_ms) = (millis(obtained_at), millis(expires_at));
        now_ms >= obtained_ms + (expires_ms - obtained_ms) / 2.0
    }

    /// Whether `self`, found in storage by a tab about to renew `current`,
    /// is to be used instead: another tab renewed (or replaced) the identity
    /// meanwhile, and what it stored is not due itself.
    pub fn replaces(&self, current: &Identity, now_ms: f64) -> bool {
        self.token != current.token && !self.renew_before_use(now_ms)
    }
}

/// When an open connection whose token expires at `expires_at` (Unix
/// seconds) renews it, judged at `now_ms`: when a quarter of what is left
/// now remains, or an hour if that comes first; with less than two hours
/// left, halfway there, so that a short lifetime does not make the app
/// renew over and over. Never before `now_ms`.
///
/// A quarter of 30 days is a week: a tab asleep for days still wakes up
/// before the expiry, and the margin also covers a browser clock that is
/// somewhat behind the server's.
pub fn refresh_at_ms(expires_at: u64, now_ms: f64) -> f64 {
    let expires_ms = millis(expires_at);
    let left = expires_ms - now_ms;
    let ahead = (left / 4.0).max(HOUR_MS.min(left / 2.0));
    (expires_ms - ahead).max(now_ms)
}

/// What the server's answer to a renewal means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// 200: here is the new token.
    Renewed,
    /// 401: the token is not taken any more (expired past the server's
    /// leeway, revoked, or signed with a secret the server no longer has):
    /// the identity is gone, as when a handshake is refused; get a new one.
    Refused,
    /// 403: this server gives no self-service identities: keep the token in
    /// hand, and do not ask again while the room is open.
    Off,
    /// Anything else (429, a server error, no answer at all, or a 403 that
    /// says an operator banned the identity for a time): keep the token in
    /// hand and try again later.
    Later,
}

impl Answer {
    /// The meaning of an answer with `status` and `body` (read for a 403
    /// only: a ban ends, a server without self-service identities stays).
    pub fn of_answer(status: u16, body: &str) -> Self {
        match status {
            200 => Self::Renewed,
            401 => Self::Refused,
            403 if Ban::of_body(body).is_some() => Self::Later,
            403 => Self::Off,
            _ => Self::Later,
        }
    }
}

/// What an open connection does with the answer to its token's renewal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnConnection {
    /// Hand the new token to the connection (`refresh`).
    Hand,
    /// No more renewals on this connection: the next one takes the stored
    /// identity.
    GiveUp,
    /// Try again later ([`ConnectionToken::failed`]).
    Retry,
    /// The identity is refused: forget it and reconnect with a new one.
    Replace,
}

impl Answer {
    /// What an open connection does with this answer; `same_client`: the
    /// identity it brought has the connection's client id.
    pub fn on_connection(self, same_client: bool) -> OnConnection {
        match self {
            Self::Renewed if same_client => OnConnection::Hand,
            // Another tab replaced the identity (a new client id, which this
            // connection cannot take): the next connection uses it.
            Self::Renewed | Self::Off => OnConnection::GiveUp,
            Self::Later => OnConnection::Retry,
            Self::Refused => OnConnection::Replace,
        }
    }
}

/// One room view's renewals: the wait after failed ones, a server without
/// self-service identities, a token a close said expired.
#[derive(Debug, Clone, Default)]
pub struct Renewals {
    /// Renewals without a usable answer in a row.
    failures: u32,
    /// No renewal before this (after failures), unless forced by 4001.
    retry_at_ms: f64,
    /// The server answered 403.
    off: bool,
    /// The last connection closed with 4001 (its token expired).
    expired: bool,
}

impl Renewals {
    /// A connection closed with `code`.
    pub fn closed(&mut self, code: u16) {
        if code == close::TOKEN_EXPIRED {
            self.expired = true;
        }
    }

    /// Whether `stored` is renewed before the next connection uses it at
    /// `now_ms`; `last_used` is the identity the last connection used.
    ///
    /// After a 4001 close, a token the server says expired is renewed at
    /// once, whatever this browser's clock says and however recent the last
    /// failure; unless another tab stored a newer one meanwhile. Otherwise
    /// [`Identity::renew_before_use`] decides, but not during the wait
    /// after a failure.
    pub fn renew_before_use(&mut self, stored: &Identity, last_used: Option<&Identity>, now_ms: f64) -> bool {
        let expired = std::mem::take(&mut self.expired) && last_used.is_none_or(|used| used.token == stored.token);
        !self.off && (expired || (stored.renew_before_use(now_ms) && now_ms >= self.retry_at_ms))
    }

    /// Whether a renewal for an open connection may be tried at all.
    pub fn may_renew(&self) -> bool {
        !self.off
    }

    /// When a renewal may be tried again after the last one failed.
    pub fn retry_at_ms(&self) -> f64 {
        self.retry_at_ms
    }

    /// Notes the answer to a renewal made at `now_ms`.
    pub fn answered(&mut self, answer: Answer, now_ms: f64) {
        match answer {
            // A refused identity is replaced by a new one: nothing to wait
            // for.
            Answer::Renewed | Answer::Refused => {
                self.failures = 0;
                self.retry_at_ms = 0.0;
            }
            Answer::Off => self.off = true,
            Answer::Later => {
                self.failures += 1;
                let doubling = 2f64.powi(self.failures.saturating_sub(1).min(30) as i32);
                self.retry_at_ms = now_ms + (RETRY_BASE_MS * doubling).min(RETRY_CAP_MS);
            }
        }
    }
}

/// An open connection's token: when to renew it and hand the new one to the
/// connection. The default is a connection not told yet (before `welcome`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConnectionToken {
    /// When the connection's token expires (Unix seconds); `None`: never.
    expires_at: Option<u64>,
    /// When to renew; `None`: not on this connection (no expiry, a renewal
    /// or `refresh` under way, or given up).
    due_ms: Option<f64>,
}

impl ConnectionToken {
    /// A connection whose token expires at `expires_at` (`welcome`), told
    /// at `now_ms`.
    pub fn new(expires_at: Option<u64>, now_ms: f64) -> Self {
        Self { expires_at, due_ms: expires_at.map(|at| refresh_at_ms(at, now_ms)) }
    }

    /// When the next renewal is due, if any.
    pub fn due_ms(&self) -> Option<f64> {
        self.due_ms
    }

    /// Whether to renew now. After `true`, nothing more is due until
    /// [`failed`](Self::failed) or [`refreshed`](Self::refreshed).
    pub fn take_due(&mut self, now_ms: f64) -> bool {
        let due = self.due_ms.is_some_and(|due| now_ms >= due);
        if due {
            self.due_ms = None;
        }
        due
    }

    /// The renewal got no usable answer at `now_ms`: tried again at
    /// `retry_at_ms`, or sooner if the expiry is near (the rule of
    /// [`refresh_at_ms`] applied to what is left now).
    pub fn failed(&mut self, retry_at_ms: f64, now_ms: f64) {
        self.due_ms = self.expires_at.map(|at| refresh_at_ms(at, now_ms).min(retry_at_ms));
    }

    /// The server took the new token (`refreshed`) at `now_ms`: it expires
    /// at `expires_at`.
    pub fn refreshed(&mut self, expires_at: Option<u64>, now_ms: f64) {
        *self = Self::new(expires_at, now_ms);
    }

    /// No more renewals on this connection (the server refused the new token,
    /// or gives none): it is closed with 4001 at its expiry, and the next
    /// connection takes the stored identity.
    pub fn give_up(&mut self) {
        self.due_ms = None;
    }
}

fn seconds(ms: f64) -> u64 {
    (ms / SECOND_MS).max(0.0) as u64
}

fn millis(seconds: u64) -> f64 {
    seconds as f64 * SECOND_MS
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    const DAY: u64 = 86_400;
    const T0: u64 = 1_800_000_000;

    fn ms(seconds: u64) -> f64 {
        millis(seconds)
    }

    fn identity(token: &str, obtained_at: Option<u64>, expires_at: Option<u64>) -> Identity {
        Identity { client_id: ClientId(Uuid::from_u128(1)), token: token.into(), expires_at, obtained_at }
    }

    /// A 30-day token got at T0.
    fn fresh(token: &str) -> Identity {
        identity(token, Some(T0), Some(T0 + 30 * DAY))
    }

    #[test]
    fn an_open_connection_takes_only_a_renewal_of_its_own_client_id() {
        assert_eq!(Answer::Renewed.on_connection(true), OnConnection::Hand);
        assert_eq!(Answer::Renewed.on_connection(false), OnConnection::GiveUp);
        assert_eq!(Answer::Off.on_connection(true), OnConnection::GiveUp);
        assert_eq!(Answer::Later.on_connection(true), OnConnection::Retry);
        assert_eq!(Answer::Refused.on_connection(true), OnConnection::Replace);
    }

    #[test]
    fn identities_stored_by_earlier_versions_are_renewed_on_the_next_visit() {
        let stored: Identity =
            serde_json::from_str(r#"{"client_id":"00000000-0000-0000-0000-000000000001","token":"t"}"#)
                .expect("an identity as earlier versions stored it");
        assert_eq!((stored.expires_at, stored.obtained_at), (None, None));
        assert!(stored.renew_before_use(ms(T0)));
    }

    #[test]
    fn a_token_is_renewed_once_half_its_lifetime_has_gone_by() {
        let stored = fresh("t");
        assert!(!stored.renew_before_use(ms(T0)));
        assert!(!stored.renew_before_use(ms(T0 + 15 * DAY) - 1.0));
        assert!(stored.renew_before_use(ms(T0 + 15 * DAY)));
        assert!(stored.renew_before_use(ms(T0 + 31 * DAY)), "an expired one too");
    }

    #[test]
    fn half_follows_the_lifetime_the_server_gave() {
        let one_day = identity("t", Some(T0), Some(T0 + DAY));
        assert!(!one_day.renew_before_use(ms(T0 + DAY / 2) - 1.0));
        assert!(one_day.renew_before_use(ms(T0 + DAY / 2)));
    }

    #[test]
    fn a_token_the_server_said_never_expires_is_not_renewed() {
        let stored = identity("t", Some(T0), None);
        assert!(!stored.renew_before_use(ms(T0 + 1_000 * DAY)));
    }

    #[test]
    fn what_the_server_answers_is_stored_with_the_time_it_came() {
        let answer: Identity = serde_json::from_str(
            r#"{"client_id":"00000000-0000-0000-0000-000000000001","token":"t","expires_at":1802592000}"#,
        )
        .unwrap();
        let stored = answer.received(ms(T0) + 999.0);
        assert_eq!(stored.obtained_at, Some(T0));
        let json = serde_json::to_value(&stored).unwrap();
        assert_eq!(json["expires_at"], 1_802_592_000u64);
        assert_eq!(json["obtained_at"], T0);
    }

    #[test]
    fn the_token_never_shows_in_debug_output() {
        let shown = format!("{:?}", fresh("secret-token"));
        assert!(!shown.contains("secret-token"), "{shown}");
    }

    #[test]
    fn another_tabs_renewal_is_used_instead_of_renewing_again() {
        let current = identity("old", Some(T0), Some(T0 + 30 * DAY));
        let now = ms(T0 + 20 * DAY);
        let renewed = identity("new", Some(T0 + 20 * DAY), Some(T0 + 50 * DAY));
        assert!(renewed.replaces(&current, now));
        assert!(!current.clone().replaces(&current, now), "the same token: renew it");
        let stale = identity("other", Some(T0), Some(T0 + 30 * DAY));
        assert!(!stale.replaces(&current, now), "what is stored is due itself");
    }

    #[test]
    fn a_connection_renews_when_a_quarter_of_a_long_lifetime_is_left() {
        let now = ms(T0);
        assert_eq!(refresh_at_ms(T0 + 30 * DAY, now), ms(T0 + 30 * DAY) - ms(30 * DAY) / 4.0);
        assert_eq!(refresh_at_ms(T0 + 8 * 3_600, now), ms(T0 + 6 * 3_600));
    }

    #[test]
    fn a_connection_renews_an_hour_ahead_when_a_quarter_would_be_later() {
        assert_eq!(refresh_at_ms(T0 + 3 * 3_600, ms(T0)), ms(T0 + 2 * 3_600));
        assert_eq!(refresh_at_ms(T0 + 2 * 3_600, ms(T0)), ms(T0 + 3_600));
    }

    #[test]
    fn a_short_lived_token_is_renewed_halfway_not_at_once() {
        assert_eq!(refresh_at_ms(T0 + 1_800, ms(T0)), ms(T0 + 900));
        assert_eq!(refresh_at_ms(T0 + 60, ms(T0)), ms(T0 + 30));
    }

    #[test]
    fn an_expired_connection_token_is_renewed_at_once() {
        assert_eq!(refresh_at_ms(T0, ms(T0 + 10)), ms(T0 + 10));
    }

    #[test]
    fn statuses_sort_into_what_to_do() {
        assert_eq!(Answer::of_answer(200, ""), Answer::Renewed);
        assert_eq!(Answer::of_answer(401, ""), Answer::Refused);
        assert_eq!(Answer::of_answer(403, "self-service identities are off"), Answer::Off);
        for status in [429, 500, 502, 503, 400, 404] {
            assert_eq!(Answer::of_answer(status, ""), Answer::Later, "{status}");
        }
    }

    #[test]
    fn a_banned_identitys_renewal_is_tried_again_later_not_given_up() {
        let banned = r#"{"error":"banned","until_ms":1700000000000,"reason":"spam"}"#;
        assert_eq!(Answer::of_answer(403, banned), Answer::Later, "the ban ends; renewals stay on");
    }

    #[test]
    fn a_failed_renewal_waits_longer_each_time_before_use() {
        let mut renewals = Renewals::default();
        let stored = identity("t", None, None);
        let mut now = ms(T0);
        for wait in [RETRY_BASE_MS, 2.0 * RETRY_BASE_MS, 4.0 * RETRY_BASE_MS] {
            assert!(renewals.renew_before_use(&stored, Some(&stored), now));
            renewals.answered(Answer::Later, now);
            assert!(!renewals.renew_before_use(&stored, Some(&stored), now + wait - 1.0));
            now += wait;
        }
        for _ in 0..10 {
            renewals.answered(Answer::Later, now);
        }
        assert_eq!(renewals.retry_at_ms(), now + RETRY_CAP_MS);
        renewals.answered(Answer::Renewed, now);
        assert!(renewals.renew_before_use(&stored, Some(&stored), now), "a success ends the wait");
    }

    #[test]
    fn a_server_without_self_service_identities_is_not_asked_again() {
        let mut renewals = Renewals::default();
        let stored = identity("t", None, None);
        renewals.answered(Answer::Off, ms(T0));
        assert!(!renewals.renew_before_use(&stored, Some(&stored), ms(T0 + 30 * DAY)));
        assert!(!renewals.may_renew());
        renewals.closed(close::TOKEN_EXPIRED);
        assert!(!renewals.renew_before_use(&stored, Some(&stored), ms(T0 + 30 * DAY)));
    }

    #[test]
    fn a_4001_close_renews_before_the_next_connection() {
        let mut renewals = Renewals::default();
        let used = fresh("t");
        // A clock behind the server's: by its own reckoning the token is new.
        assert!(!renewals.renew_before_use(&used, Some(&used), ms(T0)));
        renewals.closed(close::TOKEN_EXPIRED);
        assert!(renewals.renew_before_use(&used, Some(&used), ms(T0)));
        assert!(!renewals.renew_before_use(&used, Some(&used), ms(T0)), "once");
    }

    #[test]
    fn a_4001_close_renews_even_during_the_wait_after_a_failure() {
        let mut renewals = Renewals::default();
        let used = fresh("t");
        renewals.answered(Answer::Later, ms(T0));
        renewals.closed(close::TOKEN_EXPIRED);
        assert!(renewals.renew_before_use(&used, Some(&used), ms(T0)));
    }

    #[test]
    fn after_a_4001_close_a_token_another_tab_renewed_is_used_as_is() {
        let mut renewals = Renewals::default();
        let used = fresh("old");
        let stored = identity("new", Some(T0 + 29 * DAY), Some(T0 + 59 * DAY));
        renewals.closed(close::TOKEN_EXPIRED);
        assert!(!renewals.renew_before_use(&stored, Some(&used), ms(T0 + 30 * DAY)));
    }

    #[test]
    fn other_closes_do_not_renew() {
        for code in [1000, 1006, 1012, close::HEARTBEAT_TIMEOUT, close::IDENTITY_REVOKED] {
            let mut renewals = Renewals::default();
            let used = fresh("t");
            renewals.closed(code);
            assert!(!renewals.renew_before_use(&used, Some(&used), ms(T0)), "{code}");
        }
    }

    #[test]
    fn a_connection_without_expiry_never_renews() {
        let mut token = ConnectionToken::new(None, ms(T0));
        assert_eq!(token.due_ms(), None);
        assert!(!token.take_due(f64::MAX));
    }

    #[test]
    fn a_connection_renews_once_due_then_waits_for_the_answer() {
        let mut token = ConnectionToken::new(Some(T0 + 8 * 3_600), ms(T0));
        assert!(!token.take_due(ms(T0 + 6 * 3_600) - 1.0));
        assert!(token.take_due(ms(T0 + 6 * 3_600)));
        assert_eq!(token.due_ms(), None, "a renewal is under way");
        assert!(!token.take_due(f64::MAX));
    }

    #[test]
    fn refreshed_takes_the_new_expiry() {
        let mut token = ConnectionToken::new(Some(T0 + 8 * 3_600), ms(T0));
        assert!(token.take_due(ms(T0 + 6 * 3_600)));
        let now = ms(T0 + 6 * 3_600);
        token.refreshed(Some(T0 + 6 * 3_600 + 30 * DAY), now);
        assert_eq!(token.due_ms(), Some(refresh_at_ms(T0 + 6 * 3_600 + 30 * DAY, now)));
        token.refreshed(None, now);
        assert_eq!(token.due_ms(), None, "a token that never expires");
    }

    #[test]
    fn a_failed_renewal_is_tried_again_before_the_expiry() {
        let expires = T0 + 30 * DAY;
        let mut token = ConnectionToken::new(Some(expires), ms(T0));
        let now = token.due_ms().unwrap();
        assert!(token.take_due(now));
        token.failed(now + RETRY_BASE_MS, now);
        assert_eq!(token.due_ms(), Some(now + RETRY_BASE_MS));
        // Ten minutes before the expiry, an hour's wait would be too long.
        let now = ms(expires) - 600.0 * SECOND_MS;
        token.failed(now + RETRY_CAP_MS, now);
        assert_eq!(token.due_ms(), Some(now + 300.0 * SECOND_MS));
    }

    #[test]
    fn a_refused_token_is_not_renewed_again_on_that_connection() {
        let mut token = ConnectionToken::new(Some(T0 + 8 * 3_600), ms(T0));
        token.give_up();
        assert!(!token.take_due(f64::MAX));
    }
}
