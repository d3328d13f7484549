//! Signals within one process: a [`MemoryHub`] is the deployment, and each
//! [`MemorySignals`] joined to it a node. A server without Redis is a hub
//! with one node; the contract tests join several.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::contract::{Control, Handler, NodeId, Signal, SignalError, Signals};
use crate::locks::lock;

/// The nodes of one process and their handlers.
#[derive(Debug, Clone, Default)]
pub struct MemoryHub {
    inner: Arc<Hub>,
}

#[derive(Default)]
struct Hub {
    next: AtomicU64,
    handlers: Mutex<Vec<(u64, Handler)>>,
    /// Each live node's expiry.
    nodes: Mutex<HashMap<NodeId, Instant>>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hub")
    }
}

/// One node's signals on a hub; it stops listening on drop.
#[derive(Debug)]
pub struct MemorySignals {
    hub: Arc<Hub>,
    id: u64,
}

impl MemoryHub {
    /// A node on this hub: it hears [`Signal::Listening`] at once, then
    /// every broadcast.
    pub fn join(&self, handler: Handler) -> MemorySignals {
        let id = self.inner.next.fetch_add(1, Ordering::Relaxed);
        // Listening first, then told so: a broadcast in between is heard,
        // not lost between the two.
        lock(&self.inner.handlers).push((id, handler.clone()));
        // Within one process there is nothing to listen to again: a failure
        // is only logged.
        if let Err(err) = handler(Signal::Listening) {
            tracing::warn!(%err, "a signal handler could not catch up");
        }
        MemorySignals { hub: self.inner.clone(), id }
    }
}

impl Drop for MemorySignals {
    fn drop(&mut self) {
        lock(&self.hub.handlers).retain(|(id, _)| *id != self.id);
    }
}

impl Signals for MemorySignals {
    fn broadcast(&self, control: &Control) -> Result<(), SignalError> {
        // Called outside the lock: a handler may broadcast in turn.
        let handlers: Vec<Handler> = lock(&self.hub.handlers).iter().map(|(_, handler)| handler.clone()).collect();
        for handler in handlers {
            if let Err(err) = handler(Signal::Control(control.clone())) {
                tracing::warn!(%err, "a signal handler failed");
            }
        }
        Ok(())
    }

    fn refresh(&self, node: NodeId, ttl: Duration) -> Result<(), SignalError> {
        let now = Instant::now();
        let mut nodes = lock(&self.hub.nodes);
        nodes.retain(|_, expiry| *expiry > now);
        nodes.insert(node, now + ttl);
        Ok(())
    }

    fn leave(&self, node: NodeId) -> Result<(), SignalError> {
        lock(&self.hub.nodes).remove(&node);
        Ok(())
    }

    fn live_nodes(&self) -> Result<Vec<NodeId>, SignalError> {
        let now = Instant::now();
        let mut live: Vec<NodeId> =
            lock(&self.hub.nodes).iter().filter(|(_, expiry)| **expiry > now).map(|(node, _)| *node).collect();
        live.sort();
        Ok(live)
    }
}
