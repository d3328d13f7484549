//! Who is in each group, per identity, across tabs, devices and nodes;
//! the seams are centrifuge's (`PresenceManager` and a hub per node).
//!
//! - [`seats`]: this node's connections per group and identity, and the
//!   grace before an identity with none here leaves;
//! - [`contract`]: a node's part of a group's presence ([`NodePart`]) and
//!   the [`PresenceStore`] that keeps every node's; [`memory`] (one
//!   process) and [`redis_presence`] (a hash per group that readers trust
//!   only for live nodes);
//! - [`views`]: what this node knows of each group it has connections in,
//!   and what its members are told;
//! - [`ticker`]: the thread that publishes, loads and tells, once per
//!   [`TICK`].
//!
//! Changes travel as [`Control::Presence`](crate::signals::Control) on the
//! signal half: every node, this one too, puts them into its views
//! ([`Heard`]). A node's change is stored before it is broadcast, so a node
//! that starts following a group loads it and then applies what it heard
//! meanwhile, in either order the same state.
//!
//! # Invariants
//! - Connections never wait on presence: taking and giving back a seat is
//!   one short lock; every store and signal call is on the thread.
//! - Members get presence as best-effort frames, never evicted for it; a
//!   member whose queue dropped one gets a new snapshot.
//! - Presence is kept per identity and group, never per connection.

pub mod contract;
pub mod memory;
pub mod redis_presence;
mod seats;
mod ticker;
mod views;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use roomcast_shared::{GroupName, PresenceCount, PresentMember};

pub use crate::signals::NodePart;
pub use contract::{PresenceError, PresenceStore};
pub use seats::{Seat, Who};
pub use ticker::TICK;

use crate::registry::Registry;
use crate::signals::{NodeId, SignalError, Signals};
use seats::Seats;
use ticker::Ticker;
use views::Views;

/// How presence behaves.
#[derive(Debug, Clone, Copy)]
pub struct PresenceSettings {
    /// How long an identity stays after its last connection closed.
    pub grace: Duration,
    /// Groups with more present than this get counts only.
    pub listed_max: usize,
}

/// Why presence could not start or be read.
#[derive(Debug, thiserror::Error)]
pub enum PresenceStartError {
    #[error("cannot start the presence thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// Why a group's presence could not be read for the API.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error(transparent)]
    Store(#[from] PresenceError),
    #[error(transparent)]
    Signals(#[from] SignalError),
}

/// This node's presence: seats for its connections, and its thread
/// (which stops when this is dropped).
#[derive(Debug)]
pub struct Presence {
    node: NodeId,
    seats: Arc<Seats>,
    views: Arc<Views>,
    store: Arc<dyn PresenceStore>,
    signals: Arc<dyn Signals>,
    stop: Arc<AtomicBool>,
}

impl Presence {
    /// Presence of `node`, kept in `store`, told through `signals` to the
    /// members of `registry`.
    pub fn start(
        node: NodeId,
        settings: PresenceSettings,
        store: Arc<dyn PresenceStore>,
        signals: Arc<dyn Signals>,
        registry: Arc<Registry>,
    ) -> Result<Self, PresenceStartError> {
        let seats = Seats::new(settings.grace);
        let views = Arc::new(Views::new(settings.listed_max));
        let stop = Arc::new(AtomicBool::new(false));
        let ticker = Ticker {
            node,
            seats: seats.clone(),
            views: views.clone(),
            store: store.clone(),
            signals: signals.clone(),
            registry,
        };
        let stopped = stop.clone();
        std::thread::Builder::new().name("roomcast-presence".into()).spawn(move || ticker.run(&stopped))?;
        Ok(Self { node, seats, views, store, signals, stop })
    }

    /// `who` connected to `group`; it leaves when the seat is dropped.
    pub fn seat(&self, group: &GroupName, who: Who) -> Seat {
        let seat = self.seats.take_seat(group, who);
        self.views.greet(group);
        seat
    }

    /// What this node does with what the nodes say about presence.
    pub fn heard(&self) -> Heard {
        Heard { views: self.views.clone() }
    }

    /// `group`'s counts and up to `limit` people in listing order, for the
    /// API: from this node's view if it follows the group, else from the
    /// store (of live nodes). May wait on Redis.
    pub fn lookup(&self, group: &GroupName, limit: usize) -> Result<(PresenceCount, Vec<PresentMember>), LookupError> {
        if let Some(found) = self.views.read(group, limit) {
            return Ok(found);
        }
        let live = self.signals.live_nodes()?;
        let parts = self.store.load(group)?;
        let node = self.node;
        Ok(self.views.read_parts(parts, |other| other == node || live.contains(&other), limit))
    }
}

impl Drop for Presence {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The hearing half, for the node's signal handler.
#[derive(Debug, Clone)]
pub struct Heard {
    views: Arc<Views>,
}

impl Heard {
    /// `node` says this of each group in `parts`.
    pub fn heard(&self, node: NodeId, parts: Vec<(GroupName, NodePart)>) {
        for (group, part) in parts {
            self.views.heard(&group, node, part);
        }
    }

    /// The control channel listens again: what was said while it did not
    /// may be lost, so every view is read again.
    pub fn listening(&self) {
        self.views.reload_all();
    }
}
