//! Application-level heartbeat. Browsers cannot send or see WebSocket Ping
//! frames, so the client sends `ping` after a quiet interval and expects the
//! server's `pong` (or any other traffic) within a timeout; if nothing comes,
//! the link is dead even though the browser has not noticed yet.

use roomcast_shared::HeartbeatSettings;

/// What the heartbeat wants done now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Beat {
    /// Nothing to do before `next_check_ms`.
    Wait { next_check_ms: f64 },
    /// Send a `ping` now.
    Ping,
    /// No answer in time: treat the link as dead.
    Dead,
}

#[derive(Debug, Clone)]
pub struct Heartbeat {
    interval_ms: f64,
    timeout_ms: f64,
    last_heard_ms: f64,
    ping_sent_ms: Option<f64>,
}

/// Upper bound on how long to wait for a `pong`: a dead link should show as
/// such quickly, whatever the server's (longer) idle timeout.
const MAX_PONG_WAIT_MS: f64 = 10_000.0;

impl Heartbeat {
    /// A heartbeat for a link that just opened at `now_ms`.
    pub fn new(settings: HeartbeatSettings, now_ms: f64) -> Self {
        let interval_ms = settings.ping_interval_ms.max(1_000) as f64;
        let timeout_ms = (settings.idle_timeout_ms as f64).clamp(1_000.0, MAX_PONG_WAIT_MS);
        Self { interval_ms, timeout_ms, last_heard_ms: now_ms, ping_sent_ms: None }
    }

    /// Anything arrived from the server.
    pub fn heard(&mut self, now_ms: f64) {
        self.last_heard_ms = now_ms;
        self.ping_sent_ms = None;
    }

    /// Decides what to do at `now_ms`; after [`Beat::Ping`] the ping counts as
    /// sent.
    pub fn check(&mut self, now_ms: f64) -> Beat {
        match self.ping_sent_ms {
            Some(sent) if now_ms - sent >= self.timeout_ms => Beat::Dead,
            Some(sent) => Beat::Wait { next_check_ms: sent + self.timeout_ms },
            None if now_ms - self.last_heard_ms >= self.interval_ms => {
                self.ping_sent_ms = Some(now_ms);
                Beat::Ping
            }
            None => Beat::Wait { next_check_ms: self.last_heard_ms + self.interval_ms },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heartbeat() -> Heartbeat {
        Heartbeat::new(HeartbeatSettings { ping_interval_ms: 15_000, idle_timeout_ms: 45_000 }, 0.0)
    }

    #[test]
    fn a_quiet_link_is_pinged_after_the_interval() {
        let mut beat = heartbeat();
        assert_eq!(beat.check(14_999.0), Beat::Wait { next_check_ms: 15_000.0 });
        assert_eq!(beat.check(15_000.0), Beat::Ping);
        assert_eq!(beat.check(15_001.0), Beat::Wait { next_check_ms: 25_000.0 });
    }

    #[test]
    fn traffic_postpones_the_ping() {
        let mut beat = heartbeat();
        beat.heard(10_000.0);
        assert_eq!(beat.check(15_000.0), Beat::Wait { next_check_ms: 25_000.0 });
    }

    #[test]
    fn no_pong_in_time_means_dead() {
        let mut beat = heartbeat();
        assert_eq!(beat.check(15_000.0), Beat::Ping);
        assert_eq!(beat.check(25_000.0), Beat::Dead);
    }

    #[test]
    fn a_pong_keeps_the_link_alive() {
        let mut beat = heartbeat();
        assert_eq!(beat.check(15_000.0), Beat::Ping);
        beat.heard(15_200.0);
        assert_eq!(beat.check(25_000.0), Beat::Wait { next_check_ms: 30_200.0 });
        assert_eq!(beat.check(30_200.0), Beat::Ping);
    }

    #[test]
    fn short_server_timeouts_are_respected() {
        let mut beat = Heartbeat::new(HeartbeatSettings { ping_interval_ms: 2_000, idle_timeout_ms: 3_000 }, 0.0);
        assert_eq!(beat.check(2_000.0), Beat::Ping);
        assert_eq!(beat.check(5_000.0), Beat::Dead);
    }
}
