//! Signals between the nodes of one deployment, beside the messages: a
//! control channel (a typed [`Control`] broadcast to every node, this one
//! too) and node liveness (each node on a list for a time to live, kept
//! there by refreshing it).
//!
//! Two implementations: [`memory`] (one process: a broadcast reaches the
//! handlers of this process) and [`redis_signals`] (a `PUBLISH` on
//! `rc:control` heard by a subscription of each node's own, and a sorted set
//! `rc:nodes` scored by expiry). Which one a node has is chosen where its
//! backend is opened (`Backend::open`, in `backend.rs`),
//! with the store. What a node hears comes to its [`Handler`],
//! never as a Redis type. Features that need every node to act (revoke,
//! typing; later disconnect, ban, presence) add a [`Control`] variant here rather
//! than state to the registry.

mod contract;
pub mod memory;
pub mod redis_signals;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

pub use contract::{Control, Handler, NodeId, NodePart, NotHandled, Sanction, Signal, SignalError, Signals};

/// A handler attached after the signals are open: the backend opens them
/// with the store, and the parts that act on what the nodes say (auth's
/// revocations) are put together later, from the store. Until one is
/// attached, what is heard is dropped; whoever attaches reads the stored
/// state after (as on [`Signal::Listening`]), so nothing stored is missed.
#[derive(Default, Clone)]
pub struct Relay(Arc<std::sync::OnceLock<Handler>>);

impl Relay {
    /// The handler to open the signals with.
    pub fn handler(&self) -> Handler {
        let relay = self.clone();
        Arc::new(move |signal| relay.0.get().map_or(Ok(()), |handler| handler(signal)))
    }

    /// Sends what is heard from now on to `handler`; only the first one
    /// attached counts.
    pub fn attach(&self, handler: Handler) {
        let _ = self.0.set(handler);
    }
}

impl fmt::Debug for Relay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Relay").field("attached", &self.0.get().is_some()).finish()
    }
}

/// How long a node stays on the list after its last refresh: a node that
/// crashed is gone from it within this.
pub const NODE_TTL: Duration = Duration::from_secs(10);
/// How often a node refreshes its place: three times per time to live, so
/// that one lost refresh (a Redis blip) does not take a live node off.
pub const REFRESH_EVERY: Duration = Duration::from_millis(3_333);

/// Keeps `node` on the list of live nodes until `shutdown`, then takes it
/// off.
pub async fn keep_alive(signals: Arc<dyn Signals>, node: NodeId, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(REFRESH_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = ticks.tick() => {}
        }
        let signals = signals.clone();
        if let Ok(Err(err)) = tokio::task::spawn_blocking(move || signals.refresh(node, NODE_TTL)).await {
            // The next refresh may get through; readiness reports Redis.
            tracing::debug!(%err, "cannot refresh this node's place on the list of live nodes");
        }
    }
    let _ = tokio::task::spawn_blocking(move || signals.leave(node)).await;
}
