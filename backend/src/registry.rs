//! Group membership and fan-out: the Channels-style "group layer".
//!
//! The interface is [`Registry::join`], leave (which happens when the
//! [`Membership`] is dropped, so that no exit path of a connection can forget
//! it), [`Registry::deliver`] for stored messages (called by the
//! [sequencer](crate::history::sequencer) in sequence order) and
//! [`Membership::relay`] for unsequenced raw frames. Sequencing lives in the
//! history, and getting stored messages here in the
//! [broker](crate::history::broker)'s: whichever broker a node has, it calls
//! `deliver` (through [`history::delivery`](crate::history::delivery)) and
//! this module does the fan-out. Each group also keeps its delivery
//! position (the epoch its members know and the last number they hold), so
//! that delivery is in order, without holes or repeats.
//!
//! Fan-out encodes a message once per wire mode and hands every member a
//! clone of the same [`Frame`], whose payload is reference-counted bytes:
//! there is no per-recipient serialization or copy. Each member has a bounded
//! [`MemberQueue`]; a member whose queue is full is evicted on the spot
//! instead of letting memory grow.

use std::collections::HashMap;
use std::net::IpAddr;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use roomcast_shared::{ChatMessage, ClientId, GroupName, LastMessage, ServerEvent, ROOMS_STREAM};

use crate::direct_writes::{text_frame, Lanes, Owed};
use crate::frame::Frame;
use crate::locks::lock;
use crate::queue::{Capacity, Claim, MemberQueue, Outbound, QueueFull, Removal};

/// How a member wants messages encoded; chosen by subprotocol negotiation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireMode {
    /// `roomcast.v1`: JSON events.
    Json,
    /// No subprotocol: bare text (and binary) frames.
    Raw,
}

impl WireMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Raw => "raw",
        }
    }
}

/// All groups of this node.
#[derive(Debug)]
pub struct Registry {
    groups: Mutex<HashMap<GroupName, Arc<Group>>>,
    next_member: AtomicU64,
    connections: AtomicUsize,
    outbound_queue: Capacity,
    /// Bumped whenever a group is opened or closed here.
    groups_changed: AtomicU64,
    /// What groups closed here had delivered (see [`Registry::totals`]).
    retired: Mutex<Totals>,
    /// The threads that write deliveries straight to waiting members'
    /// sockets (`--fanout-threads`); none: each member's task writes.
    lanes: Option<Lanes>,
}

/// Messages delivered here and the deliveries they made, by what members
/// took: counted per group under the lock fan-out holds anyway (no shared
/// counter is written per delivery), summed when read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Totals {
    /// Messages handed to a group with members here.
    pub messages: u64,
    /// Deliveries to JSON members (one per member per message).
    pub json: u64,
    /// Deliveries to raw members.
    pub raw: u64,
    /// `activity` events to rooms streams watching the group.
    pub activity: u64,
}

impl std::ops::AddAssign for Totals {
    fn add_assign(&mut self, other: Self) {
        self.messages += other.messages;
        self.json += other.json;
        self.raw += other.raw;
        self.activity += other.activity;
    }
}

/// One group here, as the admin surface lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupReport {
    pub name: GroupName,
    /// Connections in it (rooms streams watching it are not counted).
    pub members: usize,
    /// Messages delivered to it since it opened here.
    pub messages: u64,
}

/// One live connection here, as the admin surface lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MemberReport {
    pub group: GroupName,
    /// `json` or `raw`.
    pub mode: String,
}

#[derive(Debug)]
struct Group {
    name: GroupName,
    state: Mutex<GroupState>,
}

#[derive(Debug, Default)]
struct GroupState {
    /// The epoch of the last message delivered (empty before the first).
    epoch: String,
    /// The last sequence number this node's live members hold: delivered,
    /// or reached by the replay of the first member to go live. `None`
    /// until then.
    last: Option<u64>,
    members: HashMap<u64, Member>,
    json_members: usize,
    raw_members: usize,
    /// Rooms streams watching the group (see [`Registry::watch`]).
    watchers: usize,
    /// What it delivered since it opened here.
    totals: Totals,
}

/// What a member takes of the group's messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Takes {
    /// Each message as a JSON event (`roomcast.v1`).
    Json,
    /// Each message's bare text.
    Raw,
    /// A short `activity` event per message: an identity's rooms stream
    /// watching the room.
    Activity,
}

impl From<WireMode> for Takes {
    fn from(mode: WireMode) -> Self {
        match mode {
            WireMode::Json => Self::Json,
            WireMode::Raw => Self::Raw,
        }
    }
}

#[derive(Debug)]
struct Member {
    mode: Takes,
    /// The client id it connected as (the verified `sub` under
    /// `--auth required`).
    client: ClientId,
    queue: Arc<MemberQueue>,
    /// It holds the group's presence: it had a snapshot, and every update
    /// since.
    greeted: bool,
    /// The client's address, once its connection says
    /// ([`Membership::note_address`]): for bans of an address or network.
    ip: Option<IpAddr>,
}

/// One connection's place in a group (or a rooms stream's watch of one).
/// Dropping it leaves the group.
#[derive(Debug)]
pub struct Membership {
    registry: Arc<Registry>,
    group: Arc<Group>,
    key: u64,
    queue: Arc<MemberQueue>,
    /// A connection of its own (not a rooms stream's watch): counted in
    /// [`Stats::connections`].
    counted: bool,
}

/// What [`Registry::deliver`] did with a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Handed to every member (or nobody is connected to its group here).
    Delivered,
    /// Members already hold it (delivered before, or replayed).
    Duplicate,
    /// Numbers `from..=to` of this epoch have not been delivered yet: the
    /// caller delivers them (from the history) first, then this message
    /// again (it comes back here). Delivery never leaves a hole.
    Missing { from: u64, to: u64, message: ChatMessage },
    /// The message belongs to an epoch members do not know: the caller
    /// tells them ([`Registry::restart`], with the epoch's base from the
    /// store), then delivers it again (it comes back here).
    NewEpoch { message: ChatMessage },
}

/// A snapshot of the registry's size, for health checks and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    pub connections: usize,
    pub groups: usize,
}

impl Registry {
    /// `outbound_queue`: what a member may have waiting before it is
    /// evicted.
    pub fn new(outbound_queue: Capacity) -> Arc<Self> {
        Self::with_lanes(outbound_queue, None)
    }

    /// A registry whose `lanes` write deliveries straight to the sockets
    /// of members that allow it ([`Membership::write_directly`]).
    pub fn with_lanes(outbound_queue: Capacity, lanes: Option<Lanes>) -> Arc<Self> {
        Arc::new(Self {
            groups: Mutex::new(HashMap::new()),
            next_member: AtomicU64::new(0),
            connections: AtomicUsize::new(0),
            groups_changed: AtomicU64::new(0),
            retired: Mutex::default(),
            outbound_queue,
            lanes,
        })
    }

    /// Adds a member to `group`, creating the group on first use. The
    /// membership's [`queue`](Membership::queue) holds everything the member
    /// must write to its socket. A JSON member's queue starts catching up
    /// (its connection replays history first, and calls
    /// [`MemberQueue::go_live`] when done).
    pub fn join(self: &Arc<Self>, group: &GroupName, mode: WireMode, client: ClientId) -> Membership {
        let queue = Arc::new(match mode {
            WireMode::Json => MemberQueue::catching_up(self.outbound_queue),
            WireMode::Raw => MemberQueue::new(self.outbound_queue),
        });
        self.connections.fetch_add(1, Ordering::Relaxed);
        self.insert(group, Takes::from(mode), client, queue, true)
    }

    /// Watches `group` for `client`'s rooms stream, whose queue is `queue`:
    /// each message delivered here is pushed there as an `activity` event
    /// (encoded once per message for every watcher), like any delivery: a
    /// stream that cannot keep up is evicted. Not a connection: it has no
    /// presence and is not counted.
    pub fn watch(self: &Arc<Self>, group: &GroupName, client: ClientId, queue: Arc<MemberQueue>) -> Membership {
        self.insert(group, Takes::Activity, client, queue, false)
    }

    fn insert(
        self: &Arc<Self>,
        group: &GroupName,
        mode: Takes,
        client: ClientId,
        queue: Arc<MemberQueue>,
        counted: bool,
    ) -> Membership {
        let key = self.next_member.fetch_add(1, Ordering::Relaxed);
        let member = Member { mode, client, queue: queue.clone(), greeted: false, ip: None };
        // The map stays locked while the member is inserted so that a
        // concurrent leave cannot remove the group in between.
        let mut groups = lock(&self.groups);
        let group = groups
            .entry(group.clone())
            .or_insert_with(|| {
                self.groups_changed.fetch_add(1, Ordering::Relaxed);
                Arc::new(Group { name: group.clone(), state: Mutex::default() })
            })
            .clone();
        lock(&group.state).insert(key, member);
        drop(groups);
        Membership { registry: self.clone(), group, key, queue, counted }
    }

    /// Hands a stored message of history `epoch` to every member of its
    /// group, in sequence order: encoded once per wire mode in use, the same
    /// bytes for every member. A number members already hold is skipped; a
    /// number past the next one is not delivered but reported
    /// ([`Delivery::Missing`]), so that a broker losing a message cannot
    /// leave a hole. When the epoch differs from the one members know (the
    /// group started over, or it was created by this message), JSON members
    /// are first told the new epoch (`reset`, then `synced`).
    pub fn deliver(&self, message: ChatMessage, epoch: &str) -> Delivery {
        let Some(group) = lock(&self.groups).get(&message.group).cloned() else {
            return Delivery::Delivered; // nobody is connected to this group here
        };
        let mut state = lock(&group.state);
        let seq = message.seq;
        if state.epoch != epoch {
            return Delivery::NewEpoch { message };
        }
        match state.last {
            Some(last) if seq <= last => return Delivery::Duplicate,
            Some(last) if seq > last + 1 => return Delivery::Missing { from: last + 1, to: seq - 1, message },
            _ => state.last = Some(seq),
        }
        // Outside the sequence: a rooms stream still sending its list
        // keeps it (the list may hold it too; the client skips what it
        // has).
        let activity = (state.watchers > 0).then(|| Outbound::unsequenced(Frame::text(activity(&message, epoch))));
        let event = ServerEvent::Message(message);
        let json = (state.json_members > 0).then(|| Outbound::sequenced(seq, Frame::text(event.encode())));
        let ServerEvent::Message(message) = event else { unreachable!("built as a message above") };
        let raw = (state.raw_members > 0).then(|| Outbound::sequenced(seq, Frame::text(message.text)));
        let reserved = self.lanes.as_ref().and_then(|lanes| Some((lanes, lanes.reserve(state.members.len())?)));
        let mut wires = reserved.as_ref().map(|_| Wires::of(json.as_ref(), raw.as_ref()));
        let took = state.fan_out(json.as_ref(), raw.as_ref(), activity.as_ref(), wires.as_mut());
        state.totals += took;
        drop(state);
        if let (Some((lanes, reserved)), Some(wires)) = (reserved, wires) {
            lanes.hand_over(reserved, wires.owed);
        }
        Delivery::Delivered
    }

    /// Hands `frame`, a best-effort event outside the sequence (`typing`),
    /// to `group`'s live JSON members here except those of `except` (its
    /// sender's own tabs): the same bytes for each, and never an eviction
    /// (see [`MemberQueue::offer`]). Returns how many took it.
    pub fn signal(&self, group: &GroupName, frame: Frame, except: ClientId) -> usize {
        self.offer(group, &frame, |client| client != except)
    }

    /// Hands `frame`, a best-effort event outside the sequence (a read
    /// cursor), to `group`'s live JSON members here of `only` (its own
    /// tabs), as [`signal`](Self::signal) does. Returns how many took it.
    pub fn signal_to(&self, group: &GroupName, frame: Frame, only: ClientId) -> usize {
        self.offer(group, &frame, |client| client == only)
    }

    /// Hands `frame`, a best-effort event outside the sequence (a reader's
    /// move in a small group), to all of `group`'s live JSON members here,
    /// as [`signal`](Self::signal) does. Returns how many took it.
    pub fn signal_all(&self, group: &GroupName, frame: Frame) -> usize {
        self.offer(group, &frame, |_| true)
    }

    /// Offers `frame` to `group`'s JSON members whose client id `to` takes.
    fn offer(&self, group: &GroupName, frame: &Frame, to: impl Fn(ClientId) -> bool) -> usize {
        let Some(group) = lock(&self.groups).get(group).cloned() else { return 0 };
        let state = lock(&group.state);
        if state.json_members == 0 {
            return 0;
        }
        state
            .members
            .values()
            .filter(|member| member.mode == Takes::Json && to(member.client))
            .filter(|member| member.queue.offer(frame.clone()))
            .count()
    }

    /// Hands presence to `group`'s live JSON members here (best-effort
    /// frames, see [`MemberQueue::offer`]): `update`, in order, to those
    /// that hold the group's presence; `snapshot` to those that do not yet,
    /// or whose queue dropped a best-effort frame since (their view may
    /// have a hole). Returns whether a member still waits for a snapshot
    /// (catching up, its queue too full, or none given).
    pub fn present(&self, group: &GroupName, update: &[Frame], snapshot: Option<&Frame>) -> bool {
        let Some(group) = lock(&self.groups).get(group).cloned() else { return false };
        let mut state = lock(&group.state);
        if state.json_members == 0 {
            return false;
        }
        let mut waiting = false;
        for member in state.members.values_mut().filter(|member| member.mode == Takes::Json) {
            if member.queue.take_dropped() {
                member.greeted = false;
            }
            if member.greeted {
                member.greeted = update.iter().all(|frame| member.queue.offer(frame.clone()));
                waiting |= !member.greeted;
            } else {
                member.greeted = snapshot.is_some_and(|frame| member.queue.offer(frame.clone()));
                waiting |= !member.greeted;
            }
        }
        waiting
    }

    /// Reads `group`'s delivery position here, under its lock: the epoch
    /// its members know (empty before the first) and the last number they
    /// hold (`None` until one is delivered or reached by a replay). `None`
    /// when nobody is in `group` here.
    pub fn position<R>(&self, group: &GroupName, read: impl FnOnce(&str, Option<u64>) -> R) -> Option<R> {
        let group = lock(&self.groups).get(group).cloned()?;
        let state = lock(&group.state);
        Some(read(&state.epoch, state.last))
    }

    /// Tells `group`'s JSON members that its history is now `epoch`, whose
    /// numbers before it began end at `base` (0 for a group created afresh):
    /// they hold numbers of another epoch, or (having joined the group
    /// before it existed) none, and start over (`reset`, then `synced`
    /// at `base`). Delivery goes on after `base`.
    pub fn restart(&self, group: &GroupName, epoch: &str, base: u64) {
        let Some(group) = lock(&self.groups).get(group).cloned() else { return };
        let mut state = lock(&group.state);
        if state.epoch == epoch {
            return;
        }
        state.start_over(epoch, base);
        state.epoch = epoch.to_owned();
        // Delivery goes on after the base only for members that are live;
        // members still catching up read the history themselves, and the
        // first delivery (or go-live) sets where this node's delivery is.
        if state.last.is_some() {
            state.last = Some(base);
        }
    }

    /// Tells `group`'s JSON members that the numbers after what they hold,
    /// up to `seq`, cannot be delivered (retention removed them before
    /// this node could), and goes on after them.
    pub fn skip_to(&self, group: &GroupName, epoch: &str, seq: u64) {
        let Some(group) = lock(&self.groups).get(group).cloned() else { return };
        let mut state = lock(&group.state);
        let Some(last) = state.last.filter(|last| *last < seq && state.epoch == epoch) else { return };
        if state.json_members > 0 {
            let gap = ServerEvent::Gap { from: last + 1, to: seq }.encode();
            state.fan_out(Some(&Outbound::unsequenced(Frame::text(gap))), None, None, None);
        }
        state.last = Some(seq);
    }

    /// The last number of `epoch` delivered to `group`'s members, if known.
    pub fn last_delivered(&self, group: &GroupName, epoch: &str) -> Option<u64> {
        let group = lock(&self.groups).get(group).cloned()?;
        let state = lock(&group.state);
        state.last.filter(|_| state.epoch == epoch)
    }

    /// Changes whenever a group is opened or closed here: whoever follows
    /// [`group_names`](Self::group_names) (the Redis subscriber's
    /// subscriptions; metrics) reads them again only when it moved, not on
    /// every pass: with 100,000 groups, a copy of their names takes
    /// milliseconds under the lock every join and leave waits for.
    pub fn groups_changed(&self) -> u64 {
        self.groups_changed.load(Ordering::Relaxed)
    }

    /// The groups this node has members in.
    pub fn group_names(&self) -> Vec<GroupName> {
        lock(&self.groups).keys().cloned().collect()
    }

    /// Connections (rooms streams included: each is a socket) and groups
    /// (rooms: the rooms streams' reserved group is not one).
    pub fn stats(&self) -> Stats {
        let groups = lock(&self.groups);
        let rooms = groups.len() - usize::from(groups.keys().any(|name| name.as_str() == ROOMS_STREAM));
        Stats { connections: self.connections.load(Ordering::Relaxed), groups: rooms }
    }

    /// Everything delivered here since start: the open groups' counts and
    /// those of groups that closed.
    pub fn totals(&self) -> Totals {
        // Both read under the map's lock, which a group closing holds while
        // it retires its counts: each group is counted once, open or closed.
        let (groups, mut totals) = {
            let groups = lock(&self.groups);
            (groups.values().cloned().collect::<Vec<Arc<Group>>>(), *lock(&self.retired))
        };
        for group in groups {
            totals += lock(&group.state).totals;
        }
        totals
    }

    /// Every room here (not the rooms streams' reserved group): its
    /// members and messages delivered.
    pub fn group_reports(&self) -> Vec<GroupReport> {
        let groups: Vec<Arc<Group>> = lock(&self.groups).values().cloned().collect();
        groups
            .iter()
            .filter(|group| group.name.as_str() != ROOMS_STREAM)
            .map(|group| {
                let state = lock(&group.state);
                let members = state.json_members + state.raw_members;
                GroupReport { name: group.name.clone(), members, messages: state.totals.messages }
            })
            .collect()
    }

    /// `client`'s connections here: the group and wire mode of each.
    pub fn connections_of(&self, client: ClientId) -> Vec<MemberReport> {
        let groups: Vec<Arc<Group>> = lock(&self.groups).values().cloned().collect();
        let mut found = Vec::new();
        for group in groups {
            let state = lock(&group.state);
            for member in state.members.values().filter(|member| member.client == client) {
                let mode = match member.mode {
                    Takes::Json => "json",
                    Takes::Raw => "raw",
                    Takes::Activity => continue,
                };
                found.push(MemberReport { group: group.name.clone(), mode: mode.to_owned() });
            }
        }
        found
    }

    /// Ends every connection here whose client id and address `matches`
    /// (an identity revoked, disconnected or banned; an address or a
    /// network banned), each told `removal` by its close. Returns how many
    /// there were (a rooms stream's watches not counted). Walks every
    /// member: removals are rare, and this keeps the registry free of a
    /// second index.
    pub fn remove(&self, matches: impl Fn(ClientId, Option<IpAddr>) -> bool, removal: &Removal) -> usize {
        let groups: Vec<Arc<Group>> = lock(&self.groups).values().cloned().collect();
        let mut removed = 0;
        for group in groups {
            let state = lock(&group.state);
            for member in state.members.values().filter(|member| matches(member.client, member.ip)) {
                member.queue.remove(removal.clone());
                removed += usize::from(member.mode != Takes::Activity);
            }
        }
        removed
    }

    /// Members currently in `group` (0 when it does not exist).
    pub fn members(&self, group: &GroupName) -> usize {
        lock(&self.groups).get(group).map_or(0, |g| lock(&g.state).members.len())
    }

    fn leave(&self, group: &Arc<Group>, key: u64) {
        let mut groups = lock(&self.groups);
        let mut state = lock(&group.state);
        state.remove(key);
        if state.members.is_empty() {
            // Only remove the entry if it is still this group (it always is
            // while a member holds it, but be exact).
            if groups.get(&group.name).is_some_and(|g| Arc::ptr_eq(g, group)) {
                groups.remove(&group.name);
                self.groups_changed.fetch_add(1, Ordering::Relaxed);
                *lock(&self.retired) += state.totals;
            }
        }
        drop(state);
        drop(groups);
    }
}

/// The `activity` event a rooms stream gets for `message`.
fn activity(message: &ChatMessage, epoch: &str) -> String {
    let last = LastMessage {
        seq: message.seq,
        from: message.from.clone(),
        preview: LastMessage::preview_of(&message.text),
        ts: message.ts,
    };
    ServerEvent::Activity { group: message.group.clone(), epoch: epoch.to_owned(), last }.encode()
}

impl GroupState {
    /// Tells the JSON members that the group's history is now `epoch`,
    /// whose numbers before it end at `base`: `reset`, then `synced`, both
    /// left to the replay of a member still catching up.
    fn start_over(&mut self, epoch: &str, base: u64) {
        if self.json_members == 0 {
            return;
        }
        let reset = ServerEvent::Reset { epoch: epoch.to_owned() }.encode();
        let synced = ServerEvent::Synced { seq: base }.encode();
        self.fan_out(Some(&Outbound::rewinding(Frame::text(reset))), None, None, None);
        self.fan_out(Some(&Outbound::rewinding(Frame::text(synced))), None, None, None);
    }

    fn insert(&mut self, key: u64, member: Member) {
        *self.count_mut(member.mode) += 1;
        self.members.insert(key, member);
    }

    fn remove(&mut self, key: u64) {
        if let Some(member) = self.members.remove(&key) {
            *self.count_mut(member.mode) -= 1;
        }
    }

    fn count_mut(&mut self, mode: Takes) -> &mut usize {
        match mode {
            Takes::Json => &mut self.json_members,
            Takes::Raw => &mut self.raw_members,
            Takes::Activity => &mut self.watchers,
        }
    }

    /// Hands `json` to JSON members, `raw` to raw members and `activity`
    /// to watching rooms streams (skipping those whose message is `None`),
    /// evicting every member whose queue is full. With `wires`, a member
    /// whose task waits for it is owed the message's frame instead
    /// ([`MemberQueue::claim`]), noted in `wires.owed` for the lanes.
    /// Returns what it delivered.
    fn fan_out(
        &mut self,
        json: Option<&Outbound>,
        raw: Option<&Outbound>,
        activity: Option<&Outbound>,
        wires: Option<&mut Wires>,
    ) -> Totals {
        let (mut json_left, mut raw_left, mut watchers_left) = (0, 0, 0);
        let (json_wire, raw_wire, mut owed) = match wires {
            Some(Wires { json, raw, owed }) => (json.as_ref(), raw.as_ref(), Some(owed)),
            None => (None, None, None),
        };
        self.members.retain(|_, member| {
            let (message, wire, left) = match member.mode {
                Takes::Json => (json, json_wire, &mut json_left),
                Takes::Raw => (raw, raw_wire, &mut raw_left),
                Takes::Activity => (activity, None, &mut watchers_left),
            };
            let keep = message.is_none_or(|message| match (wire, owed.as_deref_mut()) {
                (Some(wire), Some(owed)) => match member.queue.claim(message, wire) {
                    Claim::Owed => {
                        owed.push(Owed { queue: member.queue.clone() });
                        true
                    }
                    Claim::Kept => true,
                    Claim::Evicted => false,
                },
                _ => member.queue.push_or_evict(message.clone()),
            });
            *left += usize::from(keep);
            keep
        });
        self.json_members = json_left;
        self.raw_members = raw_left;
        self.watchers = watchers_left;
        let took = |message: Option<&Outbound>, left: usize| if message.is_some() { left as u64 } else { 0 };
        Totals {
            messages: 1,
            json: took(json, json_left),
            raw: took(raw, raw_left),
            activity: took(activity, watchers_left),
        }
    }
}

/// A delivery's message as whole server frames, one per wire mode in use
/// (see [`crate::direct_writes`]), and the sends it owes members.
struct Wires {
    json: Option<Bytes>,
    raw: Option<Bytes>,
    owed: Vec<Owed>,
}

impl Wires {
    fn of(json: Option<&Outbound>, raw: Option<&Outbound>) -> Self {
        let wire = |message: Option<&Outbound>| message.and_then(|message| message.frame.as_text()).map(text_frame);
        Self { json: wire(json), raw: wire(raw), owed: Vec::new() }
    }
}

impl Membership {
    /// Ends this member's catch-up at `position` of `epoch` (see
    /// [`MemberQueue::go_live`]). The first member to go live sets where
    /// the group's delivery continues; later ones drop what they already
    /// replayed by their watermark.
    pub fn go_live(&self, position: u64, epoch: &str) -> bool {
        let mut state = lock(&self.group.state);
        if state.epoch.is_empty() && !epoch.is_empty() && state.last.is_some() {
            // Members went live here before the group existed: they learn
            // its epoch now (this member, still catching up, is left out)
            // and get its messages from the start, from the history.
            state.start_over(epoch, 0);
            state.epoch = epoch.to_owned();
            state.last = Some(0);
        }
        if !self.queue.go_live(position) {
            return false;
        }
        if state.last.is_none() && (state.epoch.is_empty() || state.epoch == epoch) {
            state.last = Some(position);
            state.epoch = epoch.to_owned();
        }
        true
    }

    /// Delivers `frame` to the group's raw members as it is, outside the
    /// sequence (binary frames and empty texts, which JSON members cannot
    /// receive).
    pub fn relay(&self, frame: Frame) {
        lock(&self.group.state).fan_out(None, Some(&Outbound::unsequenced(frame)), None, None);
    }

    /// Queues `frame` for this member only.
    pub fn reply(&self, frame: Frame) -> Result<(), QueueFull> {
        self.queue.push(Outbound::unsequenced(frame))
    }

    /// What this member must write to its socket; reports eviction too.
    /// Notes the member's address (its connection's client address), so
    /// that a ban of it reaches this member.
    pub fn note_address(&self, ip: IpAddr) {
        if let Some(member) = lock(&self.group.state).members.get_mut(&self.key) {
            member.ip = Some(ip);
        }
    }

    pub fn queue(&self) -> &Arc<MemberQueue> {
        &self.queue
    }

    /// Lets this node's fan-out write the group's messages straight to
    /// `fd`, the member's socket, while its task waits for them (when the
    /// node has lanes for it, `--fanout-threads`). `fd` must stay open
    /// until this membership is dropped: it ends direct writes first.
    pub fn write_directly(&self, fd: RawFd) {
        if self.registry.lanes.is_some() {
            self.queue.allow_direct(fd);
        }
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.queue.end_direct();
        self.registry.leave(&self.group, self.key);
        if self.counted {
            self.registry.connections.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::Next;
    use roomcast_shared::{MessageId, Sender};
    use uuid::Uuid;

    fn group(name: &str) -> GroupName {
        name.parse().unwrap()
    }

    fn someone() -> ClientId {
        ClientId(Uuid::new_v4())
    }

    #[tokio::test]
    async fn revoking_an_identity_ends_its_connections_in_every_group_and_no_other() {
        let registry = Registry::new(Capacity { messages: 8, bytes: 1 << 20 });
        let mallory = someone();
        let in_a = registry.join(&group("a"), WireMode::Json, mallory);
        let in_b = registry.join(&group("b"), WireMode::Raw, mallory);
        let bystander = registry.join(&group("a"), WireMode::Raw, someone());
        assert_eq!(registry.remove(|client, _| client == mallory, &Removal::Revoked), 2);
        assert_eq!(in_a.queue().next().await, Next::Removed(Removal::Revoked));
        assert_eq!(in_b.queue().next().await, Next::Removed(Removal::Revoked));
        assert!(!bystander.queue().is_evicted());
    }

    #[tokio::test]
    async fn removing_an_address_ends_the_connections_from_it_once_they_noted_it() {
        let registry = Registry::new(Capacity { messages: 8, bytes: 1 << 20 });
        let (banned, other): (IpAddr, IpAddr) = ("192.0.2.7".parse().unwrap(), "198.51.100.1".parse().unwrap());
        let from_banned = registry.join(&group("a"), WireMode::Json, someone());
        from_banned.note_address(banned);
        let from_other = registry.join(&group("a"), WireMode::Json, someone());
        from_other.note_address(other);
        let unnoted = registry.join(&group("a"), WireMode::Raw, someone());
        let removal = Removal::Banned { until_ms: 9, reason: "spam".into() };
        assert_eq!(registry.remove(|_, ip| ip == Some(banned), &removal), 1);
        assert_eq!(from_banned.queue().next().await, Next::Removed(removal));
        assert!(!from_other.queue().is_evicted() && !unnoted.queue().is_evicted());
    }

    fn stored(group_name: &str, seq: u64, text: &str) -> ChatMessage {
        ChatMessage {
            group: group(group_name),
            seq,
            id: MessageId(Uuid::new_v4()),
            from: Sender { client_id: ClientId(Uuid::nil()), name: None, verified: false },
            text: text.into(),
            ts: 1,
        }
    }

    fn text_of(outbound: Outbound) -> String {
        outbound.frame.as_text().unwrap().to_owned()
    }

    /// Delivers as `history::delivery` does for a store whose epochs all
    /// start at 0.
    fn deliver(registry: &Registry, message: ChatMessage, epoch: &str) -> Delivery {
        match registry.deliver(message, epoch) {
            Delivery::NewEpoch { message } => {
                registry.restart(&message.group, epoch, 0);
                registry.deliver(message, epoch)
            }
            other => other,
        }
    }

    fn capacity(messages: usize) -> Capacity {
        Capacity { messages, bytes: usize::MAX }
    }

    /// A JSON member as its connection has it once the replay is done.
    fn live_json(registry: &Arc<Registry>, name: &str) -> Membership {
        let member = registry.join(&group(name), WireMode::Json, someone());
        assert!(member.go_live(0, "e"));
        member
    }

    #[test]
    fn delivery_reaches_every_member_of_the_group_and_no_other() {
        let registry = Registry::new(capacity(8));
        let alice = registry.join(&group("a"), WireMode::Raw, someone());
        let bob = registry.join(&group("a"), WireMode::Raw, someone());
        let carol = registry.join(&group("b"), WireMode::Raw, someone());
        deliver(&registry, stored("a", 1, "hi"), "e");
        assert_eq!(text_of(alice.queue().try_pop().unwrap()), "hi");
        assert_eq!(bob.queue().try_pop().unwrap().seq, 1);
        assert!(carol.queue().try_pop().is_none());
    }

    #[test]
    fn each_mode_gets_its_own_encoding() {
        let registry = Registry::new(capacity(8));
        let raw = registry.join(&group("a"), WireMode::Raw, someone());
        let json = live_json(&registry, "a");
        deliver(&registry, stored("a", 1, "hi"), "e");
        assert_eq!(text_of(raw.queue().try_pop().unwrap()), "hi");
        let event = ServerEvent::decode(&text_of(json.queue().try_pop().unwrap())).unwrap();
        assert!(matches!(event, ServerEvent::Message(m) if m.text == "hi" && m.seq == 1));
    }

    #[test]
    fn delivery_is_in_order_without_holes_or_repeats() {
        let registry = Registry::new(capacity(8));
        let member = live_json(&registry, "a");
        assert_eq!(deliver(&registry, stored("a", 1, "one"), "e"), Delivery::Delivered);
        assert_eq!(deliver(&registry, stored("a", 1, "one"), "e"), Delivery::Duplicate);
        assert!(matches!(deliver(&registry, stored("a", 4, "four"), "e"), Delivery::Missing { from: 2, to: 3, .. }));
        for seq in 2..=4 {
            assert_eq!(deliver(&registry, stored("a", seq, "m"), "e"), Delivery::Delivered);
        }
        let seqs: Vec<_> = std::iter::from_fn(|| member.queue().try_pop()).map(|o| o.seq).collect();
        assert_eq!(seqs, [1, 2, 3, 4]);
        assert_eq!(
            registry.position(&group("a"), |epoch, last| (epoch.to_owned(), last)),
            Some(("e".to_owned(), Some(4)))
        );
    }

    /// A member that went live before its group existed learns the epoch
    /// when another goes live in it, and is not left behind.
    #[test]
    fn members_live_before_the_group_existed_learn_its_epoch() {
        let registry = Registry::new(capacity(8));
        let early = registry.join(&group("a"), WireMode::Json, someone());
        assert!(early.go_live(0, ""));
        let late = registry.join(&group("a"), WireMode::Json, someone());
        assert!(late.go_live(8, "e"), "replayed 1..=8 of epoch e");
        let events: Vec<_> = std::iter::from_fn(|| early.queue().try_pop())
            .map(|o| ServerEvent::decode(o.frame.as_text().unwrap()).unwrap())
            .collect();
        assert_eq!(events, [ServerEvent::Reset { epoch: "e".into() }, ServerEvent::Synced { seq: 0 }]);
        assert!(late.queue().try_pop().is_none(), "the late one holds it all already");
        assert!(
            matches!(registry.deliver(stored("a", 9, "nine"), "e"), Delivery::Missing { from: 1, to: 8, .. }),
            "the early one gets 1..=8 from the history first"
        );
    }

    /// A group whose members are all still catching up is not filled from
    /// the history when its epoch changes: they read it themselves.
    #[test]
    fn a_restart_before_anyone_is_live_leaves_delivery_unset() {
        let registry = Registry::new(capacity(8));
        let catching_up = registry.join(&group("a"), WireMode::Json, someone());
        registry.restart(&group("a"), "e", 0);
        assert_eq!(registry.last_delivered(&group("a"), "e"), None);
        assert_eq!(registry.deliver(stored("a", 7, "first seen"), "e"), Delivery::Delivered);
        assert_eq!(registry.last_delivered(&group("a"), "e"), Some(7));
        drop(catching_up);
    }

    #[test]
    fn the_first_member_to_go_live_sets_where_delivery_continues() {
        let registry = Registry::new(capacity(8));
        let member = registry.join(&group("a"), WireMode::Json, someone());
        assert!(member.go_live(7, "e"));
        assert_eq!(deliver(&registry, stored("a", 7, "replayed"), "e"), Delivery::Duplicate);
        assert!(matches!(deliver(&registry, stored("a", 9, "later"), "e"), Delivery::Missing { from: 8, to: 8, .. }));
    }

    #[test]
    fn a_full_queue_evicts_only_that_member() {
        let registry = Registry::new(capacity(2));
        let fast = registry.join(&group("a"), WireMode::Raw, someone());
        let slow = registry.join(&group("a"), WireMode::Raw, someone());
        for seq in 1..=5 {
            deliver(&registry, stored("a", seq, "m"), "e");
            while fast.queue().try_pop().is_some() {}
        }
        assert!(slow.queue().is_evicted());
        assert!(!fast.queue().is_evicted());
        assert_eq!(registry.members(&group("a")), 1);
    }

    #[test]
    fn leaving_last_removes_the_group() {
        let registry = Registry::new(capacity(8));
        let a = registry.join(&group("a"), WireMode::Raw, someone());
        let b = registry.join(&group("a"), WireMode::Json, someone());
        assert_eq!(registry.stats(), Stats { connections: 2, groups: 1 });
        drop(a);
        assert_eq!(registry.stats(), Stats { connections: 1, groups: 1 });
        drop(b);
        assert_eq!(registry.stats(), Stats { connections: 0, groups: 0 });
    }

    #[test]
    fn a_signal_reaches_live_json_members_but_not_its_sender_raw_members_or_a_replay() {
        let registry = Registry::new(capacity(8));
        let typist = someone();
        let own_tab = registry.join(&group("a"), WireMode::Json, typist);
        assert!(own_tab.go_live(0, "e"));
        let reader = live_json(&registry, "a");
        let replaying = registry.join(&group("a"), WireMode::Json, someone());
        let raw = registry.join(&group("a"), WireMode::Raw, someone());
        let elsewhere = live_json(&registry, "b");
        assert_eq!(registry.signal(&group("a"), Frame::text("typing"), typist), 1);
        assert_eq!(reader.queue().try_pop(), Some(Outbound::best_effort(Frame::text("typing"))));
        for member in [&own_tab, &replaying, &raw, &elsewhere] {
            assert!(member.queue().try_pop().is_none());
        }
        assert_eq!(registry.signal(&group("nobody"), Frame::text("typing"), typist), 0);
    }

    #[test]
    fn a_signal_to_one_identity_reaches_its_live_json_members_here_only() {
        let registry = Registry::new(capacity(8));
        let ann = someone();
        let tabs = [registry.join(&group("a"), WireMode::Json, ann), registry.join(&group("a"), WireMode::Json, ann)];
        assert!(tabs.iter().all(|tab| tab.go_live(0, "e")));
        let replaying = registry.join(&group("a"), WireMode::Json, ann);
        let other = live_json(&registry, "a");
        let elsewhere = registry.join(&group("b"), WireMode::Json, ann);
        assert!(elsewhere.go_live(0, "e"));
        assert_eq!(registry.signal_to(&group("a"), Frame::text("cursor"), ann), 2);
        for tab in &tabs {
            assert_eq!(tab.queue().try_pop(), Some(Outbound::best_effort(Frame::text("cursor"))));
        }
        for member in [&replaying, &other, &elsewhere] {
            assert!(member.queue().try_pop().is_none());
        }
    }

    #[test]
    fn relay_skips_json_members_and_the_sequence() {
        let registry = Registry::new(capacity(8));
        let raw = registry.join(&group("a"), WireMode::Raw, someone());
        let json = live_json(&registry, "a");
        raw.relay(Frame::binary(vec![1, 2, 3]));
        assert_eq!(raw.queue().try_pop().unwrap(), Outbound::unsequenced(Frame::binary(vec![1, 2, 3])));
        assert!(json.queue().try_pop().is_none());
    }

    #[test]
    fn a_new_epoch_is_announced_to_json_members_before_its_first_message() {
        let registry = Registry::new(capacity(8));
        let json = live_json(&registry, "a");
        let raw = registry.join(&group("a"), WireMode::Raw, someone());
        for (message, epoch) in [(stored("a", 1, "old"), "e1"), (stored("a", 1, "new"), "e2")] {
            let Delivery::NewEpoch { message } = registry.deliver(message, epoch) else { panic!("a new epoch") };
            registry.restart(&group("a"), epoch, 0);
            assert_eq!(registry.deliver(message, epoch), Delivery::Delivered);
        }
        let frames: Vec<_> = std::iter::from_fn(|| json.queue().try_pop()).collect();
        let events: Vec<_> = frames.iter().map(|o| ServerEvent::decode(o.frame.as_text().unwrap()).unwrap()).collect();
        // The group's creation tells members that joined it empty its epoch;
        // its start over tells them the new one.
        assert!(
            matches!(&events[..], [
            ServerEvent::Reset { epoch: first },
            ServerEvent::Synced { seq: 0 },
            ServerEvent::Message(_),
            ServerEvent::Reset { epoch },
            ServerEvent::Synced { seq: 0 },
            ServerEvent::Message(m),
        ] if first == "e1" && epoch == "e2" && m.seq == 1),
            "{events:?}"
        );
        assert!(frames[0].rewinds && frames[1].rewinds && frames[3].rewinds);
        assert_eq!(std::iter::from_fn(|| raw.queue().try_pop()).count(), 2, "raw members get the texts only");
    }
}
