//! How many control frames (pings, pongs, closes) a peer may send. Each one
//! makes tungstenite write an answer (a pong, a close), so a flood of them
//! is a flood of writes the peer never asked for as messages: past the rate
//! the connection is closed (1008), whatever it does with the answers.

use std::time::Duration;

use tokio::time::Instant;

/// Control frames a connection may send per [`WINDOW`].
pub const CONTROL_FRAMES_PER_SECOND: u32 = 100;
const WINDOW: Duration = Duration::from_secs(1);

/// Control frames counted in fixed one-second windows: two words per
/// connection, no timer.
#[derive(Debug)]
pub(super) struct ControlRate {
    window_start: Instant,
    spent: u32,
}

impl ControlRate {
    pub(super) fn new(now: Instant) -> Self {
        Self { window_start: now, spent: 0 }
    }

    /// Counts one control frame at `now`; false once the window's are spent.
    pub(super) fn take(&mut self, now: Instant) -> bool {
        if now.duration_since(self.window_start) >= WINDOW {
            self.window_start = now;
            self.spent = 0;
        }
        self.spent = self.spent.saturating_add(1);
        self.spent <= CONTROL_FRAMES_PER_SECOND
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_hundred_a_second_pass_and_the_next_one_does_not() {
        let mut rate = ControlRate::new(Instant::now());
        for _ in 0..CONTROL_FRAMES_PER_SECOND {
            assert!(rate.take(Instant::now()));
        }
        assert!(!rate.take(Instant::now()), "the 101st within a second");
        tokio::time::advance(WINDOW).await;
        assert!(rate.take(Instant::now()), "a new second, a new allowance");
    }

    #[tokio::test(start_paused = true)]
    async fn a_steady_rate_under_the_limit_always_passes() {
        let mut rate = ControlRate::new(Instant::now());
        for _ in 0..1_000 {
            assert!(rate.take(Instant::now()));
            tokio::time::advance(Duration::from_millis(11)).await;
        }
    }
}
