//! The presence thread: once a tick it publishes this node's changes,
//! loads the groups it starts following, and tells the members what moved;
//! now and then it drops what dead nodes left, and writes this node's
//! whole part again. Every wait on the store or the signals happens here,
//! never on a connection's loop.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::contract::PresenceStore;
use super::seats::Seats;
use super::views::Views;
use crate::registry::Registry;
use crate::signals::NodePart;
use crate::signals::{Control, NodeId, Signals, NODE_TTL, REFRESH_EVERY};

/// How often changes go out: at most one update per group per tick.
pub const TICK: Duration = Duration::from_millis(200);

/// How long a node is off the list of live nodes before its presence is
/// dropped: a node's place lapses [`NODE_TTL`] after its last refresh, so
/// this is only for a node that has just started, or a refresh that came
/// late.
const ABSENT_FOR: Duration = Duration::from_secs(5);

/// How long a node found dead is remembered, in case it comes back.
const REMEMBER_DEAD: Duration = Duration::from_secs(300);

/// What the thread works with.
#[derive(Debug)]
pub struct Ticker {
    pub node: NodeId,
    pub seats: Arc<Seats>,
    pub views: Arc<Views>,
    pub store: Arc<dyn PresenceStore>,
    pub signals: Arc<dyn Signals>,
    pub registry: Arc<Registry>,
}

/// The thread's own state between ticks.
#[derive(Debug, Default)]
struct Clock {
    next_check: Option<Instant>,
    next_rewrite: Option<Instant>,
    /// The live nodes at the last check (`None` before one succeeded:
    /// every node counts as live).
    live: Option<HashSet<NodeId>>,
    /// Nodes with presence here that were off the list of live nodes at a
    /// check, and since when.
    absent_since: HashMap<NodeId, Instant>,
    /// When the last check was.
    now: Option<Instant>,
    /// Nodes found dead whose presence was dropped, and when: if one is
    /// back (its refreshes only lapsed), its part is read again. Kept for
    /// [`REMEMBER_DEAD`].
    dropped: HashMap<NodeId, Instant>,
}

impl Ticker {
    /// Ticks until `stop`.
    pub fn run(self, stop: &AtomicBool) {
        let mut clock = Clock::default();
        while !stop.load(Ordering::Relaxed) {
            self.tick(&mut clock, Instant::now());
            std::thread::sleep(TICK);
        }
    }

    fn tick(&self, clock: &mut Clock, now: Instant) {
        let taken = self.seats.take(now);
        for group in &taken.opened {
            self.views.open(group);
        }
        if !taken.changes.is_empty() && self.publish(&taken.changes) {
            // This node's own views take its changes at once, not only
            // when its broadcast comes back (the control channel may not
            // listen yet, or have lost it): hearing one twice is the same.
            for (group, part) in &taken.changes {
                self.views.heard(group, self.node, part.clone());
            }
            for group in self.seats.published(&taken.changes) {
                self.views.close(&group);
            }
        }
        for group in &taken.closed {
            self.views.close(group);
        }
        if clock.next_check.is_none_or(|at| now >= at) {
            clock.next_check = Some(now + REFRESH_EVERY);
            self.check_nodes(clock, now);
        }
        if clock.next_rewrite.is_none_or(|at| now >= at) {
            clock.next_rewrite = Some(now + NODE_TTL);
            if let Err(err) = self.store.write(self.node, &self.seats.whole()) {
                tracing::debug!(%err, "cannot write this node's presence again");
            }
        }
        for group in self.views.unloaded() {
            self.views.loading(&group);
            match self.store.load(&group) {
                Ok(parts) => self.views.loaded(&group, parts, |node| clock.is_live(node, self.node)),
                Err(err) => {
                    tracing::debug!(%err, "cannot read a group's presence; again at the next tick");
                    break;
                }
            }
        }
        for update in self.views.updates(now) {
            if self.registry.present(&update.group, &update.frames, update.snapshot.as_ref()) {
                self.views.still_waiting(&update.group);
            }
        }
    }

    /// Stores `changes`, then tells every node: in that order, so that a
    /// node that loads a group after hearing a change finds it stored.
    fn publish(&self, changes: &[(roomcast_shared::GroupName, NodePart)]) -> bool {
        if let Err(err) = self.store.write(self.node, changes) {
            tracing::debug!(%err, "cannot store this node's presence; again at the next tick");
            return false;
        }
        let control = Control::Presence { node: self.node, parts: changes.to_vec() };
        if let Err(err) = self.signals.broadcast(&control) {
            tracing::debug!(%err, "cannot tell the nodes about presence; again at the next tick");
            return false;
        }
        true
    }

    /// Drops what nodes no longer live left, in the views and the store;
    /// reads everything again if a node dropped before is back.
    fn check_nodes(&self, clock: &mut Clock, now: Instant) {
        let live: HashSet<NodeId> = match self.signals.live_nodes() {
            Ok(live) => live.into_iter().collect(),
            Err(err) => {
                tracing::debug!(%err, "cannot read the live nodes; presence keeps what it has");
                return;
            }
        };
        clock.dropped.retain(|_, at| now.duration_since(*at) < REMEMBER_DEAD);
        if clock.dropped.keys().any(|node| live.contains(node)) {
            clock.dropped.retain(|node, _| !live.contains(node));
            self.views.reload_all();
        }
        // A node off the list counts as dead only once it has been off it
        // for `ABSENT_FOR` as this node sees it: one that has just
        // started (not on the list yet), or whose refresh came late, is not
        // dropped, nor its entries removed from the store.
        clock.absent_since.retain(|node, _| !live.contains(node));
        for node in self.views.nodes() {
            if node != self.node && !live.contains(&node) {
                clock.absent_since.entry(node).or_insert(now);
            }
        }
        clock.now = Some(now);
        for (group, dead) in self.views.drop_nodes(|node| clock.is_live(node, self.node)) {
            if let Err(err) = self.store.forget(&group, &dead) {
                tracing::debug!(%err, "cannot remove a dead node's presence");
            }
            clock.dropped.extend(dead.into_iter().map(|node| (node, now)));
        }
        clock.live = Some(live);
    }
}

impl Clock {
    /// Whether `node`'s presence counts: this node, a node on the list, or
    /// one off it for less than a time to live.
    fn is_live(&self, node: NodeId, me: NodeId) -> bool {
        node == me
            || self.live.as_ref().is_none_or(|live| live.contains(&node))
            || self
                .absent_since
                .get(&node)
                .is_none_or(|since| self.now.is_none_or(|now| now.duration_since(*since) < ABSENT_FOR))
    }
}
