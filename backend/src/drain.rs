//! Draining a node for a rolling restart: once begun, the node takes no new
//! sockets (`/readyz` answers 503, an upgrade 503), and each connection
//! closes at a moment of its own, uniform over the drain period, with 1012
//! and (JSON) a last `draining {retry_after_ms}` event: the clients come
//! back to the other nodes as a ramp, not all at once.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

/// How long a drained client waits at most (a uniform share of it) before
/// it reconnects, on top of the moment its own close came.
pub const RETRY_AFTER: Duration = Duration::from_secs(2);

/// The period of a drain the admin surface asks for (`POST /drain`):
/// `--drain-period` (`configured`), or 10 s where that is 0.
pub fn asked_period(configured: Duration) -> Duration {
    if configured.is_zero() {
        Duration::from_secs(10)
    } else {
        configured
    }
}

/// A node's drain, shared by its connections and its routes.
#[derive(Debug, Clone)]
pub struct Drain {
    begun: Arc<watch::Sender<Option<Begun>>>,
}

#[derive(Debug, Clone, Copy)]
struct Begun {
    at: Instant,
    period: Duration,
}

impl Default for Drain {
    fn default() -> Self {
        Self { begun: Arc::new(watch::Sender::new(None)) }
    }
}

impl Drain {
    /// Begins draining over `period`; false if it had begun already.
    pub fn begin(&self, period: Duration) -> bool {
        self.begun.send_if_modified(|begun| {
            if begun.is_some() {
                return false;
            }
            *begun = Some(Begun { at: Instant::now(), period });
            true
        })
    }

    pub fn is_draining(&self) -> bool {
        self.begun.borrow().is_some()
    }

    /// Resolves at this connection's moment to close: never before the
    /// drain begins, then at a uniform random point of its period.
    pub async fn my_turn(&self) {
        let mut begun = self.begun.subscribe();
        let Ok(begun) = begun.wait_for(Option::is_some).await.map(|begun| begun.expect("waited for some")) else {
            return std::future::pending().await;
        };
        // Boxed: the timer is only this big while a drain is under way.
        Box::pin(tokio::time::sleep_until(begun.at + share(begun.period))).await;
    }
}

/// A uniform random part of `period`.
fn share(period: Duration) -> Duration {
    let mut bytes = [0u8; 8];
    // The OS random source; without it, everyone at once is still correct.
    if getrandom::getrandom(&mut bytes).is_err() {
        return Duration::ZERO;
    }
    let fraction = (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64;
    period.mul_f64(fraction)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn each_turn_comes_within_the_period_once_it_begins() {
        let drain = Drain::default();
        let period = Duration::from_secs(10);
        let turns: Vec<_> = (0..50)
            .map(|_| {
                let drain = drain.clone();
                tokio::spawn(async move {
                    drain.my_turn().await;
                    Instant::now()
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(turns.iter().all(|turn| !turn.is_finished()), "nobody before the drain");
        let began = Instant::now();
        assert!(drain.begin(period) && drain.is_draining());
        assert!(!drain.begin(period), "once");
        let mut at = Vec::new();
        for turn in turns {
            at.push(turn.await.unwrap() - began);
        }
        assert!(at.iter().all(|at| *at <= period), "{at:?}");
        let (first, last) = (at.iter().min().unwrap(), at.iter().max().unwrap());
        assert!(*last - *first >= period / 2, "spread over the period: {first:?}..{last:?}");
    }
}
