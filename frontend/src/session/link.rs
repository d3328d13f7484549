//! When to (re)connect.
//!
//! After an unexpected close the link waits a random delay drawn uniformly
//! from `[0, min(cap, base · 2^(failures−1))]` ("full jitter", so that the
//! clients of a restarted server do not all return at the same instant), then
//! tries again. A connection that stayed open for `stable_after_ms` resets the
//! count. The user's own close, and close codes that say retrying is useless,
//! stop the link until the user asks to reconnect; so does 4403, which says
//! this browser's identity was revoked, or after a `removed` event with an
//! end, that an operator banned it until then ([`removal`](super::removal)).
//! While the browser says it is offline nothing is tried; coming back
//! online tries at once.

use roomcast_shared::close;

use super::direct::Refusal;
use super::removal::{Ban, Removal};

/// Backoff parameters, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    pub base_ms: f64,
    pub cap_ms: f64,
    /// Open this long and the next failure counts as the first again.
    pub stable_after_ms: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { base_ms: 500.0, cap_ms: 30_000.0, stable_after_ms: 10_000.0 }
    }
}

impl Backoff {
    /// The ceiling of the delay before retry number `failures` (1-based).
    pub fn ceiling_ms(&self, failures: u32) -> f64 {
        let doubling = 2f64.powi(failures.saturating_sub(1).min(30) as i32);
        (self.base_ms * doubling).min(self.cap_ms)
    }
}

/// Why the link stopped for good (until the user reconnects).
#[derive(Debug, Clone, PartialEq)]
pub enum Stop {
    /// The user closed the connection.
    ByUser,
    /// The server closed with a code that says reconnecting will not help.
    Terminal { code: u16, reason: String },
    /// The server revoked this browser's identity (4403): its token is
    /// refused from now on.
    Revoked,
    /// The server refuses this identity the room for good (a direct
    /// message of other people): trying again cannot help.
    Refused(Refusal),
    /// An operator banned this identity, or its address, until a time:
    /// trying again before then cannot help, and the identity is kept.
    Removed(Ban),
}

/// Where the link is.
#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    /// A connection attempt is under way; `attempt` counts retries since the
    /// last good connection (0 for the first try).
    Connecting {
        attempt: u32,
    },
    Open {
        since_ms: f64,
    },
    /// Retry number `attempt` starts at `at_ms`.
    Waiting {
        attempt: u32,
        at_ms: f64,
    },
    /// The browser is offline: wait for it to come back.
    Offline,
    Stopped(Stop),
}

/// The reconnect state machine.
#[derive(Debug, Clone)]
pub struct Link {
    backoff: Backoff,
    phase: Phase,
    failures: u32,
}

impl Link {
    /// A link about to make its first connection attempt.
    pub fn new(backoff: Backoff) -> Self {
        Self { backoff, phase: Phase::Connecting { attempt: 0 }, failures: 0 }
    }

    pub fn phase(&self) -> &Phase {
        &self.phase
    }

    pub fn is_open(&self) -> bool {
        matches!(self.phase, Phase::Open { .. })
    }

    /// The socket opened.
    pub fn opened(&mut self, now_ms: f64) {
        self.phase = Phase::Open { since_ms: now_ms };
    }

    /// The socket closed (or failed to open) with `code`. `random` is uniform
    /// in `[0, 1)` and picks the jittered delay.
    pub fn closed(&mut self, code: u16, reason: &str, now_ms: f64, random: f64) {
        if let Phase::Open { since_ms } = self.phase {
            if now_ms - since_ms >= self.backoff.stable_after_ms {
                self.failures = 0;
            }
        }
        if matches!(self.phase, Phase::Stopped(_) | Phase::Offline) {
            return;
        }
        if code == close::IDENTITY_REVOKED {
            self.phase = Phase::Stopped(Stop::Revoked);
            return;
        }
        if !close::should_reconnect(code) {
            self.phase = Phase::Stopped(Stop::Terminal { code, reason: reason.to_owned() });
            return;
        }
        self.failures += 1;
        let delay = self.backoff.ceiling_ms(self.failures) * random.clamp(0.0, 1.0);
        self.phase = Phase::Waiting { attempt: self.failures, at_ms: now_ms + delay };
    }

    /// The server closed with `code` after it said an operator removed this
    /// connection (`removal`): a ban stops the link; anything else is as
    /// [`closed`](Self::closed) (a disconnect reconnects with the backoff).
    pub fn closed_after(&mut self, removal: &Removal, code: u16, reason: &str, now_ms: f64, random: f64) {
        match removal.ban(code) {
            Some(ban) if !matches!(self.phase, Phase::Stopped(_) | Phase::Offline) => {
                self.phase = Phase::Stopped(Stop::Removed(ban));
            }
            _ => self.closed(code, reason, now_ms, random),
        }
    }

    /// The server closed this connection to drain for a restart, asking for
    /// a wait of at most `within_ms`: the next attempt comes after a uniform
    /// random part of it (`random` in `[0, 1)`), so that the nodes left see
    /// a ramp; it is not a failure (the wait is attempt 0: no retry).
    pub fn drained(&mut self, within_ms: f64, now_ms: f64, random: f64) {
        if matches!(self.phase, Phase::Stopped(_) | Phase::Offline) {
            return;
        }
        self.failures = 0;
        self.phase = Phase::Waiting { attempt: 0, at_ms: now_ms + within_ms * random.clamp(0.0, 1.0) };
    }

    /// Time has passed; starts the next attempt when its moment has come.
    /// Returns whether a connection should be opened now.
    pub fn tick(&mut self, now_ms: f64) -> bool {
        match self.phase {
            Phase::Waiting { attempt, at_ms } if now_ms >= at_ms => {
                self.phase = Phase::Connecting { attempt };
                true
            }
            _ => false,
        }
    }

    /// The browser reports the network is back: retry at once.
    pub fn online(&mut self) -> bool {
        match self.phase {
            Phase::Waiting { .. } | Phase::Offline => {
                self.phase = Phase::Connecting { attempt: self.failures };
                true
            }
            _ => false,
        }
    }

    /// The browser reports it is offline: whatever socket there is will not
    /// work, and nothing is tried until [`online`](Self::online). Returns
    /// whether a socket was open or opening (the caller drops it).
    pub fn offline(&mut self) -> bool {
        let had_socket = matches!(self.phase, Phase::Open { .. } | Phase::Connecting { .. });
        if !matches!(self.phase, Phase::Stopped(_)) {
            self.phase = Phase::Offline;
        }
        had_socket
    }

    /// The user closed the connection: no more retries. A link already
    /// stopped keeps its reason (the server's word stays on the status).
    pub fn close_by_user(&mut self) {
        if !matches!(self.phase, Phase::Stopped(_)) {
            self.phase = Phase::Stopped(Stop::ByUser);
        }
    }

    /// The server refuses this room for good (it said so when asked after
    /// a connection that never opened): no more retries.
    pub fn refused(&mut self, refusal: Refusal) {
        if matches!(self.phase, Phase::Waiting { .. }) {
            self.phase = Phase::Stopped(Stop::Refused(refusal));
        }
    }

    /// The server bans this identity, or this address, until a time (it said
    /// so when asked after a connection that never opened, or when asked for
    /// a new identity): no more retries. A user's close stays as it is.
    pub fn banned(&mut self, ban: Ban) {
        if !matches!(self.phase, Phase::Stopped(_)) {
            self.phase = Phase::Stopped(Stop::Removed(ban));
        }
    }

    /// The user asked to reconnect: a new connection now, whatever the
    /// current one is doing (the caller drops it without waiting for its
    /// close, which a half-dead socket may never deliver).
    pub fn reconnect_by_user(&mut self) {
        self.failures = 0;
        self.phase = Phase::Connecting { attempt: 0 };
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_drained_connection_comes_back_within_the_wait_asked_and_counts_no_failure() {
        let mut link = Link::new(Backoff::default());
        link.opened(0.0);
        link.closed(1006, "lost", 100.0, 0.5);
        link.tick(10_000.0);
        link.opened(10_000.0);
        link.drained(2_000.0, 20_000.0, 0.25);
        assert_eq!(link.phase(), &Phase::Waiting { attempt: 0, at_ms: 20_500.0 }, "not a retry");
        assert!(!link.tick(20_499.0) && link.tick(20_500.0));
        link.closed(1006, "lost", 21_000.0, 1.0);
        assert_eq!(link.phase(), &Phase::Waiting { attempt: 1, at_ms: 21_500.0 }, "the next failure is the first");
    }
    use super::*;

    const LOST: u16 = 1006;

    fn link() -> Link {
        Link::new(Backoff::default())
    }

    fn waiting_delay(link: &Link, now: f64) -> (u32, f64) {
        match link.phase() {
            Phase::Waiting { attempt, at_ms } => (*attempt, at_ms - now),
            other => panic!("expected waiting, got {other:?}"),
        }
    }

    #[test]
    fn delays_double_from_half_a_second_to_a_thirty_second_cap() {
        let backoff = Backoff::default();
        let ceilings: Vec<f64> = (1..=9).map(|n| backoff.ceiling_ms(n)).collect();
        assert_eq!(ceilings, [500.0, 1000.0, 2000.0, 4000.0, 8000.0, 16000.0, 30000.0, 30000.0, 30000.0]);
        assert_eq!(backoff.ceiling_ms(u32::MAX), 30_000.0);
    }

    #[test]
    fn failed_attempts_back_off_with_full_jitter() {
        let mut link = link();
        let mut now = 0.0;
        for (failure, random) in [(1, 0.999), (2, 0.5), (3, 0.0), (4, 0.25)] {
            link.closed(LOST, "", now, random);
            let (attempt, delay) = waiting_delay(&link, now);
            assert_eq!(attempt, failure);
            assert_eq!(delay, Backoff::default().ceiling_ms(failure) * random);
            assert!(!link.tick(now + delay - 1.0) || delay == 0.0);
            now += delay;
            assert!(link.tick(now));
            assert_eq!(link.phase(), &Phase::Connecting { attempt: failure });
        }
    }

    #[test]
    fn a_stable_connection_resets_the_backoff() {
        let mut link = link();
        for _ in 0..5 {
            link.closed(LOST, "", 0.0, 1.0);
            link.tick(f64::MAX);
        }
        link.opened(100_000.0);
        link.closed(LOST, "", 100_000.0 + 10_000.0, 1.0);
        assert_eq!(waiting_delay(&link, 110_000.0), (1, 500.0));
    }

    #[test]
    fn a_short_lived_connection_keeps_backing_off() {
        let mut link = link();
        link.closed(LOST, "", 0.0, 1.0);
        link.tick(f64::MAX);
        link.opened(1_000.0);
        link.closed(LOST, "", 1_500.0, 1.0);
        assert_eq!(waiting_delay(&link, 1_500.0), (2, 1000.0));
    }

    #[test]
    fn terminal_codes_stop_the_link() {
        let mut link = link();
        link.opened(0.0);
        link.closed(close::POLICY_VIOLATION, "forbidden", 5.0, 0.5);
        assert_eq!(
            link.phase(),
            &Phase::Stopped(Stop::Terminal { code: close::POLICY_VIOLATION, reason: "forbidden".into() })
        );
        assert!(!link.tick(f64::MAX));
        assert!(!link.online());
    }

    #[test]
    fn a_revoked_identity_stops_the_link() {
        let mut link = link();
        link.opened(0.0);
        link.closed(close::IDENTITY_REVOKED, "identity revoked", 5.0, 0.5);
        assert_eq!(link.phase(), &Phase::Stopped(Stop::Revoked));
        assert!(!link.tick(f64::MAX));
        assert!(!link.online());
    }

    #[test]
    fn an_expired_token_reconnects_with_backoff() {
        let mut link = link();
        link.opened(0.0);
        link.closed(close::TOKEN_EXPIRED, "token expired", 20_000.0, 1.0);
        assert_eq!(waiting_delay(&link, 20_000.0), (1, 500.0));
    }

    #[test]
    fn the_users_close_is_final_until_the_user_reconnects() {
        let mut link = link();
        link.opened(0.0);
        link.close_by_user();
        link.closed(close::NORMAL, "", 10.0, 0.5);
        assert_eq!(link.phase(), &Phase::Stopped(Stop::ByUser));
        assert!(!link.tick(f64::MAX));
        link.reconnect_by_user();
        assert_eq!(link.phase(), &Phase::Connecting { attempt: 0 });
    }

    #[test]
    fn coming_online_skips_the_wait() {
        let mut link = link();
        link.closed(LOST, "", 0.0, 1.0);
        assert!(link.online());
        assert_eq!(link.phase(), &Phase::Connecting { attempt: 1 });
        assert!(!link.online(), "only a waiting link reacts");
    }

    #[test]
    fn reconnect_while_open_starts_a_new_connection_at_once() {
        let mut link = link();
        link.closed(LOST, "", 0.0, 1.0);
        link.tick(f64::MAX);
        link.opened(1.0);
        link.reconnect_by_user();
        assert_eq!(link.phase(), &Phase::Connecting { attempt: 0 });
        link.closed(LOST, "", 2.0, 1.0);
        assert_eq!(waiting_delay(&link, 2.0), (1, 500.0), "the backoff starts over");
    }

    #[test]
    fn reconnect_while_waiting_starts_now() {
        let mut link = link();
        link.closed(LOST, "", 0.0, 1.0);
        link.reconnect_by_user();
        assert_eq!(link.phase(), &Phase::Connecting { attempt: 0 });
    }

    #[test]
    fn offline_waits_for_online_and_then_tries_at_once() {
        let mut link = link();
        link.opened(0.0);
        assert!(link.offline(), "the open socket is dropped");
        assert_eq!(link.phase(), &Phase::Offline);
        link.closed(LOST, "", 1.0, 0.5);
        assert_eq!(link.phase(), &Phase::Offline, "a late close changes nothing");
        assert!(!link.tick(f64::MAX));
        assert!(!link.offline(), "no socket any more");
        assert!(link.online());
        assert_eq!(link.phase(), &Phase::Connecting { attempt: 0 });
    }

    #[test]
    fn a_room_refused_for_good_stops_retrying_until_the_user_reconnects() {
        let mut link = link();
        link.refused(Refusal::OtherPeople);
        assert_eq!(link.phase(), &Phase::Connecting { attempt: 0 }, "only a link that waits to retry");
        link.closed(LOST, "", 0.0, 0.5);
        link.refused(Refusal::OtherPeople);
        assert_eq!(link.phase(), &Phase::Stopped(Stop::Refused(Refusal::OtherPeople)));
        assert!(!link.tick(f64::MAX) && !link.online());
        link.reconnect_by_user();
        assert_eq!(link.phase(), &Phase::Connecting { attempt: 0 });
    }

    fn ban() -> Ban {
        Ban { until_ms: 1_700_000_000_000, reason: "spam".into() }
    }

    #[test]
    fn a_ban_stops_the_link_until_the_user_reconnects() {
        let mut link = link();
        link.opened(0.0);
        let removal = Removal { reason: "spam".into(), until_ms: Some(1_700_000_000_000) };
        link.closed_after(&removal, close::IDENTITY_REVOKED, "banned", 5.0, 0.5);
        assert_eq!(link.phase(), &Phase::Stopped(Stop::Removed(ban())));
        assert!(!link.tick(f64::MAX) && !link.online());
        link.reconnect_by_user();
        assert_eq!(link.phase(), &Phase::Connecting { attempt: 0 });
    }

    #[test]
    fn an_operators_disconnect_reconnects_with_the_backoff() {
        let mut link = link();
        link.opened(0.0);
        let removal = Removal { reason: "please reload".into(), until_ms: None };
        link.closed_after(&removal, close::DISCONNECTED, "", 20_000.0, 1.0);
        assert_eq!(waiting_delay(&link, 20_000.0), (1, 500.0));
    }

    #[test]
    fn a_4403_after_a_disconnect_notice_is_a_revocation() {
        let mut link = link();
        link.opened(0.0);
        let removal = Removal { reason: String::new(), until_ms: None };
        link.closed_after(&removal, close::IDENTITY_REVOKED, "", 5.0, 0.5);
        assert_eq!(link.phase(), &Phase::Stopped(Stop::Revoked));
    }

    #[test]
    fn a_ban_told_when_asked_stops_a_waiting_or_connecting_link_but_not_a_closed_one() {
        let mut link = link();
        link.banned(ban());
        assert_eq!(link.phase(), &Phase::Stopped(Stop::Removed(ban())), "no identity could be had");
        let mut link = self::link();
        link.closed(LOST, "", 0.0, 0.5);
        link.banned(ban());
        assert_eq!(link.phase(), &Phase::Stopped(Stop::Removed(ban())));
        let mut link = self::link();
        link.close_by_user();
        link.banned(ban());
        assert_eq!(link.phase(), &Phase::Stopped(Stop::ByUser));
    }

    #[test]
    fn close_while_stopped_keeps_the_reason_it_stopped() {
        let refused = Stop::Refused(Refusal::OtherPeople);
        let terminal = Stop::Terminal { code: 4400, reason: "bad name".into() };
        for stop in [Stop::Revoked, terminal, Stop::ByUser, refused, Stop::Removed(ban())] {
            let mut link = link();
            link.opened(0.0);
            match &stop {
                Stop::Revoked => link.closed(close::IDENTITY_REVOKED, "revoked", 10.0, 0.5),
                Stop::Terminal { code, reason } => link.closed(*code, reason, 10.0, 0.5),
                Stop::ByUser => link.close_by_user(),
                Stop::Refused(refusal) => {
                    link.closed(LOST, "", 10.0, 0.5);
                    link.refused(*refusal);
                }
                Stop::Removed(ban) => {
                    let removal = Removal { reason: ban.reason.clone(), until_ms: Some(ban.until_ms) };
                    link.closed_after(&removal, close::IDENTITY_REVOKED, "", 10.0, 0.5);
                }
            }
            assert_eq!(link.phase(), &Phase::Stopped(stop.clone()));
            link.close_by_user();
            assert_eq!(link.phase(), &Phase::Stopped(stop), "a second close changes nothing");
        }
    }

    #[test]
    fn close_stops_a_link_that_waits_or_is_offline() {
        let mut link = link();
        link.closed(1006, "", 0.0, 0.5);
        assert!(matches!(link.phase(), Phase::Waiting { .. }));
        link.close_by_user();
        assert_eq!(link.phase(), &Phase::Stopped(Stop::ByUser));
        let mut link = self::link();
        link.offline();
        link.close_by_user();
        assert_eq!(link.phase(), &Phase::Stopped(Stop::ByUser));
    }

    #[test]
    fn offline_does_not_undo_the_users_close() {
        let mut link = link();
        link.close_by_user();
        assert!(!link.offline());
        assert_eq!(link.phase(), &Phase::Stopped(Stop::ByUser));
        assert!(!link.online());
    }

    #[test]
    fn server_restart_and_slow_consumer_codes_retry() {
        for code in [close::SERVICE_RESTART, close::GOING_AWAY, close::TRY_AGAIN_LATER, close::HEARTBEAT_TIMEOUT] {
            let mut link = link();
            link.opened(0.0);
            link.closed(code, "", 1.0, 0.0);
            assert!(matches!(link.phase(), Phase::Waiting { attempt: 1, .. }), "{code}");
        }
    }
}
