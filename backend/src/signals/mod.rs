//! Signals between the nodes of one deployment, beside the messages: a
//! control channel (a typed [`Control`] broadcast to every node, this one
//! too) and node liveness (each node on a list for a time to live, kept
//! there by refreshing it).
//!
//! Two implementations: [`memory`] (one process: a broadcast reaches the
//! handlers of this process) and [`redis_signals`] (a `PUBLISH` on
//! `rc:control` heard by a subscription of each node's own, and a sorted set
//! `rc:nodes` scored by expiry). What a node hears comes to its [`Handler`],
//! never as a Redis type. Features that need every node to act (revoke,
//! later disconnect, ban, presence) add a [`Control`] variant here rather
//! than state to the registry.

pub mod memory;
pub mod redis_signals;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use roomcast_shared::ClientId;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// What one node tells every node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Control {
    /// Tokens of `sub` issued before `issued_before` (Unix seconds) are
    /// refused from now on, and its sockets close (4403).
    Revoke { sub: ClientId, issued_before: u64 },
}

/// What a node's handler hears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// The node listens to the control channel, first or again after the
    /// channel was lost: whatever was broadcast before may not have reached
    /// it, so state that matters is read again from where it is stored.
    Listening,
    Control(Control),
}

/// A handler could not act on a signal now. After [`Signal::Listening`],
/// the node listens again a moment later (and hears `Listening` again).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NotHandled(pub Box<dyn std::error::Error + Send + Sync>);

/// Where a node's signals go; called from a thread of the signals (Redis)
/// or the broadcaster's (memory), so it must not wait long.
pub type Handler = Arc<dyn Fn(Signal) -> Result<(), NotHandled> + Send + Sync>;

/// Why a signal could not be sent or a list read.
#[derive(Debug, thiserror::Error)]
pub enum SignalError {
    #[error("the control channel is unavailable: {0}")]
    Unavailable(Box<dyn std::error::Error + Send + Sync>),
}

/// One node of a deployment, new at each start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(Uuid);

impl NodeId {
    pub fn random() -> Self {
        Self(Uuid::new_v4())
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for NodeId {
    type Err = uuid::Error;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        text.parse().map(Self)
    }
}

/// The signals of one node. Every method may wait on the network (Redis):
/// call it off the async threads.
pub trait Signals: Send + Sync + fmt::Debug {
    /// Sends `control` to every node listening now, this one too, once
    /// each.
    fn broadcast(&self, control: &Control) -> Result<(), SignalError>;
    /// Puts `node` on the list of live nodes for `ttl` from now.
    fn refresh(&self, node: NodeId, ttl: Duration) -> Result<(), SignalError>;
    /// Takes `node` off the list at once (a clean stop).
    fn leave(&self, node: NodeId) -> Result<(), SignalError>;
    /// The nodes whose time to live has not run out.
    fn live_nodes(&self) -> Result<Vec<NodeId>, SignalError>;
}

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

/// Opens this node's signals: over the Redis at `redis_url`, else within
/// this process alone. Redis is not reached here: the subscription is made
/// (and made again) by a thread of its own, which says so with
/// [`Signal::Listening`].
pub fn open(redis_url: Option<&str>, handler: Handler) -> Result<Arc<dyn Signals>, SignalError> {
    Ok(match redis_url {
        Some(url) => Arc::new(redis_signals::RedisSignals::open(url, handler)?),
        None => Arc::new(memory::MemoryHub::default().join(handler)),
    })
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
