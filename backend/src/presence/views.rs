//! What this node knows of the presence of each group it has connections
//! in, from every node, and what it tells its members.
//!
//! A view starts when this node's first connection to a group does: it
//! reads the group's presence from the store, and puts what it heard
//! from the nodes meanwhile on top (each node part replaces what it
//! names, so hearing a change twice, or one the load already held, ends
//! in the same state). From then on it follows what the nodes say. Once a
//! tick it turns what changed into at most one `join` and one `leave` (or,
//! above the listing threshold, counts at most once a second), encoded
//! once for all members, and a snapshot for members that need one.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use roomcast_shared::limits::PRESENCE_LISTED;
use roomcast_shared::{ClientId, DisplayName, GroupName, PresenceCount, PresentMember, ServerEvent};
use tokio::time::Instant;

use crate::frame::Frame;
use crate::locks::lock;
use crate::signals::NodeId;
use crate::signals::NodePart;

/// Above the listing threshold, counts go out at most this often per
/// group.
pub const COUNTS_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub struct Views {
    views: Mutex<HashMap<GroupName, View>>,
    /// Groups with more present (people and anonymous connections) get
    /// counts only.
    listed_max: usize,
}

#[derive(Debug, Default)]
struct View {
    loaded: bool,
    /// Heard before the load: put on top of it.
    waiting: Vec<(NodeId, NodePart)>,
    people: HashMap<ClientId, Person>,
    anonymous: HashMap<NodeId, u32>,
    /// People whose presence moved since the last update.
    changed: HashSet<ClientId>,
    /// The anonymous count moved since the last update.
    counts_changed: bool,
    /// Members here may be waiting for a snapshot.
    ungreeted: bool,
    /// Whether the members were last told a list (below the threshold).
    listed: bool,
    /// When counts alone last went out (above the threshold).
    counted_at: Option<Instant>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Person {
    name: Option<DisplayName>,
    /// Connections per node.
    nodes: Vec<(NodeId, u32)>,
}

/// What one group's members here are to be told.
#[derive(Debug)]
pub struct Update {
    pub group: GroupName,
    /// For members that hold a view: the changes, in order.
    pub frames: Vec<Frame>,
    /// For members that have none yet (or lost part of it).
    pub snapshot: Option<Frame>,
}

impl Views {
    pub fn new(listed_max: usize) -> Self {
        Self { views: Mutex::default(), listed_max }
    }

    /// This node has connections in `group` now: follow it (loaded at the
    /// next tick).
    pub fn open(&self, group: &GroupName) {
        lock(&self.views).entry(group.clone()).or_insert_with(|| View { ungreeted: true, ..View::default() });
    }

    /// Nobody here is in `group` any more.
    pub fn close(&self, group: &GroupName) {
        lock(&self.views).remove(group);
    }

    /// A member of `group` here is (or will soon be) ready for a snapshot.
    pub fn greet(&self, group: &GroupName) {
        if let Some(view) = lock(&self.views).get_mut(group) {
            view.ungreeted = true;
        }
    }

    /// Members of `group` are still waiting for a snapshot (catching up,
    /// or with a full queue): try again at the next tick.
    pub fn still_waiting(&self, group: &GroupName) {
        self.greet(group);
    }

    /// `node` says this of `group`.
    pub fn heard(&self, group: &GroupName, node: NodeId, part: NodePart) {
        let mut views = lock(&self.views);
        let Some(view) = views.get_mut(group) else { return };
        if view.loaded {
            view.apply(node, &part);
        } else {
            view.waiting.push((node, part));
        }
    }

    /// A load of `group` from the store begins: what was heard before it
    /// is in the store already (a node stores a change before it tells
    /// it), so only what comes from now on is kept for after the load.
    /// Also what keeps `waiting` small while loads fail.
    pub fn loading(&self, group: &GroupName) {
        if let Some(view) = lock(&self.views).get_mut(group) {
            view.waiting.clear();
        }
    }

    /// Groups to load from the store.
    pub fn unloaded(&self) -> Vec<GroupName> {
        lock(&self.views).iter().filter(|(_, view)| !view.loaded).map(|(group, _)| group.clone()).collect()
    }

    /// Reads everything again (the control channel was lost, or a node
    /// thought dead is back): loaded at the next tick, and members told
    /// what differs.
    pub fn reload_all(&self) {
        for view in lock(&self.views).values_mut() {
            view.loaded = false;
            view.waiting.clear();
        }
    }

    /// `group`'s presence as the store holds it, of the nodes `live` keeps.
    pub fn loaded(&self, group: &GroupName, parts: Vec<(NodeId, NodePart)>, live: impl Fn(NodeId) -> bool) {
        let mut views = lock(&self.views);
        let Some(view) = views.get_mut(group) else { return };
        let before = std::mem::take(&mut view.people);
        let anonymous_before: u32 = view.anonymous.drain().map(|(_, count)| count).sum();
        // What had changed and was not told yet stays news.
        let (pending, counts_pending) = (std::mem::take(&mut view.changed), view.counts_changed);
        for (node, part) in parts.into_iter().filter(|(node, _)| live(*node)) {
            view.apply(node, &part);
        }
        for (node, part) in std::mem::take(&mut view.waiting) {
            view.apply(node, &part);
        }
        // News: what differs from before the load, and what had changed
        // before it and was not told yet (members were told neither; a
        // reload must not swallow a change heard just before it).
        let differs: Vec<ClientId> = before
            .iter()
            .filter(|(sub, person)| view.people.get(sub) != Some(person))
            .map(|(sub, _)| *sub)
            .chain(view.people.keys().filter(|sub| !before.contains_key(sub)).copied())
            .collect();
        view.changed = pending.into_iter().chain(differs).collect();
        view.counts_changed = counts_pending || view.anonymous.values().sum::<u32>() != anonymous_before;
        if !view.loaded && before.is_empty() && anonymous_before == 0 {
            view.listed = view.count(self.listed_max).listed;
        }
        view.loaded = true;
    }

    /// Every node some view has presence of.
    pub fn nodes(&self) -> HashSet<NodeId> {
        let views = lock(&self.views);
        views
            .values()
            .flat_map(|view| {
                view.people
                    .values()
                    .flat_map(|person| person.nodes.iter().map(|(node, _)| *node))
                    .chain(view.anonymous.keys().copied())
            })
            .collect()
    }

    /// Forgets what nodes not `live` said; returns, per group, the nodes
    /// dropped (for the store to forget too).
    pub fn drop_nodes(&self, live: impl Fn(NodeId) -> bool) -> Vec<(GroupName, Vec<NodeId>)> {
        let mut dropped = Vec::new();
        for (group, view) in lock(&self.views).iter_mut() {
            let mut dead: Vec<NodeId> = view.anonymous.keys().copied().filter(|node| !live(*node)).collect();
            for (sub, person) in &mut view.people {
                let before = person.nodes.len();
                person.nodes.retain(|(node, _)| {
                    let keep = live(*node);
                    if !keep && !dead.contains(node) {
                        dead.push(*node);
                    }
                    keep
                });
                if person.nodes.len() != before {
                    view.changed.insert(*sub);
                }
            }
            view.people.retain(|_, person| !person.nodes.is_empty());
            if view.anonymous.keys().any(|node| !live(*node)) {
                view.anonymous.retain(|node, _| live(*node));
                view.counts_changed = true;
            }
            if !dead.is_empty() {
                dropped.push((group.clone(), dead));
            }
        }
        dropped
    }

    /// What each group's members here are to be told now.
    pub fn updates(&self, now: Instant) -> Vec<Update> {
        let mut views = lock(&self.views);
        views
            .iter_mut()
            .filter(|(_, view)| view.loaded)
            .filter_map(|(group, view)| {
                let frames = view.frames(self.listed_max, now);
                let snapshot = std::mem::take(&mut view.ungreeted).then(|| view.snapshot(self.listed_max));
                (!frames.is_empty() || snapshot.is_some()).then(|| Update { group: group.clone(), frames, snapshot })
            })
            .collect()
    }

    /// `group`'s presence for the API: the counts, and up to `limit`
    /// people in listing order. `None` when this node does not follow it.
    pub fn read(&self, group: &GroupName, limit: usize) -> Option<(PresenceCount, Vec<PresentMember>)> {
        let views = lock(&self.views);
        let view = views.get(group).filter(|view| view.loaded)?;
        Some((view.count(self.listed_max), view.members(limit)))
    }
}

impl Views {
    /// The counts and up to `limit` people of a group from the store's
    /// `parts`, of the nodes `live` keeps (a group this node does not
    /// follow).
    pub fn read_parts(
        &self,
        parts: Vec<(NodeId, NodePart)>,
        live: impl Fn(NodeId) -> bool,
        limit: usize,
    ) -> (PresenceCount, Vec<PresentMember>) {
        let mut view = View::default();
        for (node, part) in parts.into_iter().filter(|(node, _)| live(*node)) {
            view.apply(node, &part);
        }
        (view.count(self.listed_max), view.members(limit))
    }
}

impl View {
    fn apply(&mut self, node: NodeId, part: &NodePart) {
        for told in &part.people {
            let person = self.people.entry(told.client_id).or_insert(Person { name: None, nodes: Vec::new() });
            person.nodes.retain(|(other, _)| *other != node);
            if told.connections > 0 {
                person.nodes.push((node, told.connections));
                person.name.clone_from(&told.name);
            }
            if person.nodes.is_empty() {
                self.people.remove(&told.client_id);
            }
            self.changed.insert(told.client_id);
        }
        match part.anonymous {
            Some(0) => self.counts_changed |= self.anonymous.remove(&node).is_some(),
            Some(count) => self.counts_changed |= self.anonymous.insert(node, count) != Some(count),
            None => {}
        }
    }

    fn count(&self, listed_max: usize) -> PresenceCount {
        let people = u32::try_from(self.people.len()).unwrap_or(u32::MAX);
        let anonymous = self.anonymous.values().copied().fold(0u32, u32::saturating_add);
        let present = usize::try_from(people.saturating_add(anonymous)).unwrap_or(usize::MAX);
        PresenceCount { people, anonymous, listed: present <= listed_max }
    }

    fn member(&self, sub: ClientId) -> Option<PresentMember> {
        self.people.get(&sub).map(|person| PresentMember {
            client_id: sub,
            name: person.name.clone(),
            connections: person.nodes.iter().map(|(_, connections)| connections).sum(),
        })
    }

    /// Up to `limit` people, in listing order.
    fn members(&self, limit: usize) -> Vec<PresentMember> {
        let mut members: Vec<PresentMember> = self.people.keys().filter_map(|sub| self.member(*sub)).collect();
        if members.len() > limit {
            members.select_nth_unstable_by(limit, PresentMember::listing_order);
            members.truncate(limit);
        }
        members.sort_by(PresentMember::listing_order);
        members
    }

    fn snapshot(&self, listed_max: usize) -> Frame {
        let count = self.count(listed_max);
        let members = if count.listed { self.members(PRESENCE_LISTED) } else { Vec::new() };
        Frame::text(ServerEvent::Presence { members, count }.encode())
    }

    /// What changed since the last update, for members that hold a view:
    /// `join` and `leave` below the threshold; above it, counts at most
    /// once per [`COUNTS_EVERY`]; a new snapshot when the group crosses it.
    fn frames(&mut self, listed_max: usize, now: Instant) -> Vec<Frame> {
        let count = self.count(listed_max);
        if count.listed != self.listed {
            self.listed = count.listed;
            self.clear_changes(now);
            return vec![self.snapshot(listed_max)];
        }
        if self.changed.is_empty() && !self.counts_changed {
            return Vec::new();
        }
        if !count.listed {
            if self.counted_at.is_some_and(|at| now.duration_since(at) < COUNTS_EVERY) {
                return Vec::new(); // coalesced into the next one
            }
            self.clear_changes(now);
            return vec![self.snapshot(listed_max)];
        }
        let changed = std::mem::take(&mut self.changed);
        let (members, ids): (Vec<ClientId>, Vec<ClientId>) =
            changed.into_iter().partition(|sub| self.people.contains_key(sub));
        let mut members: Vec<PresentMember> = members.into_iter().filter_map(|sub| self.member(sub)).collect();
        members.sort_by(PresentMember::listing_order);
        self.clear_changes(now);
        let mut frames = Vec::new();
        if !members.is_empty() || ids.is_empty() {
            frames.push(Frame::text(ServerEvent::Join { members, count }.encode()));
        }
        if !ids.is_empty() {
            frames.push(Frame::text(ServerEvent::Leave { ids, count }.encode()));
        }
        frames
    }

    fn clear_changes(&mut self, now: Instant) {
        self.changed.clear();
        self.counts_changed = false;
        self.counted_at = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    fn person(connections: u32) -> PresentMember {
        PresentMember { client_id: ClientId(Uuid::new_v4()), name: None, connections }
    }

    fn join_ids(frames: &[Frame]) -> Vec<ClientId> {
        frames
            .iter()
            .filter_map(|frame| match ServerEvent::decode(frame.as_text().unwrap_or_default()) {
                Ok(ServerEvent::Join { members, .. }) => Some(members.into_iter().map(|member| member.client_id)),
                _ => None,
            })
            .flatten()
            .collect()
    }

    #[test]
    fn a_reload_keeps_a_change_heard_before_it_and_not_yet_told() {
        let views = Views::new(1_000);
        let (group, node) = ("lobby".parse::<GroupName>().unwrap(), NodeId::random());
        let (first, second) = (person(1), person(1));
        views.open(&group);
        views.loaded(&group, vec![(node, NodePart { people: vec![first.clone()], anonymous: None })], |_| true);
        views.updates(Instant::now());
        views.heard(&group, node, NodePart { people: vec![second.clone()], anonymous: None });
        // The control channel listens again before the next update: all is
        // read again, and the store has the change too.
        views.reload_all();
        let both = NodePart { people: vec![first, second.clone()], anonymous: None };
        views.loaded(&group, vec![(node, both)], |_| true);
        let update = views.updates(Instant::now());
        assert_eq!(join_ids(&update[0].frames), [second.client_id], "the second one is still told");
    }
}
