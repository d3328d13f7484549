//! Whether the peer is still there: when the heartbeat checks, when it
//! pings, when a silent peer has been idle past `--idle-timeout` (4000),
//! and the stall clock that runs while written bytes wait for the peer.
//!
//! Plain arithmetic on instants handed in: the loop owns the timer and the
//! socket, this owns the clocks.

use std::time::Duration;

use tokio::time::{interval_at, Instant, Interval, MissedTickBehavior};

use super::close::CloseReason;

/// What a heartbeat tick asks of the connection, if it goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Beat {
    Quiet,
    Ping,
}

/// What the connection holds at a tick: a publish that waits for the
/// sequencer (the socket is not read meanwhile, so the peer cannot be
/// heard), or nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Holding {
    Publish,
    Nothing,
}

/// The heartbeat's clocks of one connection.
#[derive(Debug)]
pub(super) struct Liveness {
    idle_timeout: Duration,
    /// Time between two checks.
    tick: Duration,
    /// A ping goes out every this many checks.
    ticks_per_ping: u32,
    ticks: u32,
    last_heard: Instant,
    /// Since when written bytes have been waiting for the peer to read
    /// them (ours, or tungstenite's own pongs and closes). Meanwhile the
    /// socket is not read: a peer that does not read cannot make the server
    /// write more for it.
    unflushed: Option<Instant>,
}

impl Liveness {
    pub(super) fn new(ping_interval: Duration, idle_timeout: Duration, now: Instant) -> Self {
        // The idle and write-stall checks run at least four times per idle
        // timeout, so that a connection goes within a quarter of the
        // timeout after it; a ping goes out every `ticks_per_ping` checks,
        // i.e. every ping interval.
        let ticks_per_ping = ping_interval.as_nanos().div_ceil((idle_timeout / 4).as_nanos().max(1));
        let ticks_per_ping = u32::try_from(ticks_per_ping).unwrap_or(u32::MAX).max(1);
        let tick = ping_interval / ticks_per_ping;
        Self { idle_timeout, tick, ticks_per_ping, ticks: 0, last_heard: now, unflushed: None }
    }

    /// The timer of the checks, first one a tick after `now`.
    pub(super) fn heartbeat(&self, now: Instant) -> Interval {
        let mut heartbeat = interval_at(now + self.tick, self.tick);
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        heartbeat
    }

    /// The peer was heard from (a frame), or reading resumed after a held
    /// publish: the time reading was paused is not the peer's silence.
    pub(super) fn heard(&mut self, now: Instant) {
        self.last_heard = now;
    }

    /// Written bytes wait for the peer from `now` on.
    pub(super) fn writes_wait_since(&mut self, now: Instant) {
        self.unflushed.get_or_insert(now);
    }

    /// Whether written bytes wait for the peer (the socket is not read).
    pub(super) fn writes_wait(&self) -> bool {
        self.unflushed.is_some()
    }

    /// What waited is written: reading resumes, and the time it was paused
    /// is not the peer's silence.
    pub(super) fn flushed(&mut self, now: Instant) {
        if let Some(since) = self.unflushed.take() {
            self.last_heard = (self.last_heard + now.saturating_duration_since(since)).min(now);
        }
    }

    /// One check at `now`, `holding` what the connection holds.
    pub(super) fn tick(&mut self, now: Instant, holding: Holding) -> Result<Beat, CloseReason> {
        // A peer that has not taken a byte for the idle timeout is not
        // reading: it goes, and its memory with it, whether or not it still
        // sends.
        if self.unflushed.is_some_and(|since| now.saturating_duration_since(since) >= self.idle_timeout) {
            return Err(CloseReason::Stalled);
        }
        // While a publish is held or writes wait, the socket is not read,
        // so the peer cannot be heard; it is not silent.
        if holding == Holding::Nothing
            && self.unflushed.is_none()
            && now.saturating_duration_since(self.last_heard) >= self.idle_timeout
        {
            return Err(CloseReason::HeartbeatTimeout);
        }
        self.ticks = (self.ticks + 1) % self.ticks_per_ping;
        Ok(if self.ticks == 0 { Beat::Ping } else { Beat::Quiet })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PING: Duration = Duration::from_secs(25);
    const IDLE: Duration = Duration::from_secs(60);

    fn beats(liveness: &mut Liveness, start: Instant, count: u32) -> Vec<Beat> {
        (1..=count).map(|n| liveness.tick(start + liveness.tick * n, Holding::Nothing).expect("alive")).collect()
    }

    #[test]
    fn checks_run_four_times_per_idle_timeout_and_ping_every_ping_interval() {
        let start = Instant::now();
        let mut liveness = Liveness::new(PING, IDLE, start);
        // 25 s between pings, 15 s at most between checks: two per ping.
        assert_eq!(liveness.tick, Duration::from_millis(12_500));
        liveness.heard(start + IDLE);
        assert_eq!(beats(&mut liveness, start, 4), [Beat::Quiet, Beat::Ping, Beat::Quiet, Beat::Ping]);
        // A ping interval shorter than a quarter of the idle timeout is the
        // tick itself: a ping at every check.
        let mut often = Liveness::new(Duration::from_secs(1), IDLE, start);
        assert_eq!(often.tick, Duration::from_secs(1));
        assert_eq!(beats(&mut often, start, 2), [Beat::Ping, Beat::Ping]);
    }

    #[test]
    fn a_silent_peer_goes_at_the_idle_timeout_and_a_heard_one_stays() {
        let start = Instant::now();
        let mut liveness = Liveness::new(PING, IDLE, start);
        assert!(liveness.tick(start + IDLE - Duration::from_millis(1), Holding::Nothing).is_ok());
        assert!(matches!(liveness.tick(start + IDLE, Holding::Nothing), Err(CloseReason::HeartbeatTimeout)));
        liveness.heard(start + IDLE);
        assert!(
            liveness.tick(start + IDLE * 2 - Duration::from_millis(1), Holding::Nothing).is_ok(),
            "heard: the clock starts over"
        );
    }

    #[test]
    fn a_peer_that_cannot_be_read_is_not_silent() {
        let start = Instant::now();
        let mut liveness = Liveness::new(PING, IDLE, start);
        assert!(liveness.tick(start + IDLE * 3, Holding::Publish).is_ok(), "a held publish stops reading");
        liveness.writes_wait_since(start + IDLE);
        assert!(liveness.writes_wait());
        assert!(liveness.tick(start + IDLE * 2 - Duration::from_millis(1), Holding::Nothing).is_ok(), "writes wait");
    }

    #[test]
    fn the_stall_clock_runs_while_writes_wait_and_the_pause_is_not_silence() {
        let start = Instant::now();
        let mut liveness = Liveness::new(PING, IDLE, start);
        let waited_from = start + Duration::from_secs(10);
        liveness.writes_wait_since(waited_from);
        liveness.writes_wait_since(waited_from + Duration::from_secs(5));
        assert!(
            matches!(liveness.tick(waited_from + IDLE, Holding::Nothing), Err(CloseReason::Stalled)),
            "from the first wait on"
        );
        // Flushed after 50 s of waiting: the peer was last heard at the
        // start, 10 s of silence before the wait, so 50 s are left.
        liveness.flushed(waited_from + Duration::from_secs(50));
        assert!(!liveness.writes_wait());
        let flushed_at = waited_from + Duration::from_secs(50);
        assert!(liveness.tick(flushed_at + Duration::from_secs(49), Holding::Nothing).is_ok());
        assert!(matches!(
            liveness.tick(flushed_at + Duration::from_secs(50), Holding::Nothing),
            Err(CloseReason::HeartbeatTimeout)
        ));
    }

    #[test]
    fn a_flush_never_moves_the_last_word_past_now() {
        let start = Instant::now();
        let mut liveness = Liveness::new(PING, IDLE, start);
        liveness.heard(start + Duration::from_secs(30));
        liveness.writes_wait_since(start + Duration::from_secs(10));
        liveness.flushed(start + Duration::from_secs(40));
        assert_eq!(liveness.last_heard, start + Duration::from_secs(40));
    }

    #[tokio::test(start_paused = true)]
    async fn the_heartbeat_timer_fires_every_tick() {
        let liveness = Liveness::new(PING, IDLE, Instant::now());
        let start = Instant::now();
        let mut heartbeat = liveness.heartbeat(start);
        assert_eq!(heartbeat.tick().await, start + liveness.tick);
        assert_eq!(heartbeat.tick().await, start + liveness.tick * 2);
    }
}
