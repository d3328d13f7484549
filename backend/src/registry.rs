//! Group membership and fan-out: the Channels-style "group layer".
//!
//! The interface is three operations, [`Registry::join`], [`Membership::publish`]
//! (with its unsequenced sibling [`Membership::relay`]) and leave, which happens
//! when the [`Membership`] is dropped, so that no exit path of a connection can
//! forget it. Connection code sees nothing else, so a multi-node layer (e.g.
//! Redis carrying publishes between nodes) can take over sequencing behind the
//! same interface while this module keeps doing the local fan-out.
//!
//! Fan-out encodes a message once per wire mode and hands every member a
//! clone of the same [`Message`], whose payload is reference-counted bytes:
//! there is no per-recipient serialization or copy. Each member has a bounded
//! [`MemberQueue`]; a member whose queue is full is evicted on the spot
//! instead of letting memory grow.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use roomcast_shared::{ChatMessage, GroupName, MessageId, Sender, ServerEvent};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use crate::queue::{MemberQueue, QueueFull};

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

/// A message about to be sequenced.
#[derive(Debug)]
pub struct Draft {
    pub id: MessageId,
    pub from: Sender,
    pub text: Utf8Bytes,
}

/// What [`Membership::publish`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    /// Sequenced and delivered to the group.
    New { seq: u64 },
    /// This id was published recently: nothing was delivered again, and the
    /// sequence number is the one it got the first time.
    Duplicate { seq: u64 },
}

impl Published {
    pub fn seq(self) -> u64 {
        match self {
            Self::New { seq } | Self::Duplicate { seq } => seq,
        }
    }
}

/// All groups of this node.
#[derive(Debug)]
pub struct Registry {
    groups: Mutex<HashMap<GroupName, Arc<Group>>>,
    next_member: AtomicU64,
    connections: AtomicUsize,
    outbound_queue: usize,
    dedup_window: usize,
}

#[derive(Debug)]
struct Group {
    name: GroupName,
    state: Mutex<GroupState>,
}

#[derive(Debug)]
struct GroupState {
    next_seq: u64,
    members: HashMap<u64, Member>,
    json_members: usize,
    raw_members: usize,
    recent: RecentIds,
}

#[derive(Debug)]
struct Member {
    mode: WireMode,
    queue: Arc<MemberQueue>,
}

/// One connection's place in a group. Dropping it leaves the group.
#[derive(Debug)]
pub struct Membership {
    registry: Arc<Registry>,
    group: Arc<Group>,
    key: u64,
    queue: Arc<MemberQueue>,
}

/// A snapshot of the registry's size, for health checks and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    pub connections: usize,
    pub groups: usize,
}

impl Registry {
    /// `outbound_queue`: messages a member may have waiting before it is
    /// evicted; `dedup_window`: recent message ids remembered per group.
    pub fn new(outbound_queue: usize, dedup_window: usize) -> Arc<Self> {
        Arc::new(Self {
            groups: Mutex::new(HashMap::new()),
            next_member: AtomicU64::new(0),
            connections: AtomicUsize::new(0),
            outbound_queue: outbound_queue.max(1),
            dedup_window,
        })
    }

    /// Adds a member to `group`, creating the group on first use. The
    /// membership's [`queue`](Membership::queue) holds everything the member
    /// must write to its socket.
    pub fn join(self: &Arc<Self>, group: &GroupName, mode: WireMode) -> Membership {
        let queue = Arc::new(MemberQueue::new(self.outbound_queue));
        let key = self.next_member.fetch_add(1, Ordering::Relaxed);
        let member = Member { mode, queue: queue.clone() };
        // The map stays locked while the member is inserted so that a
        // concurrent leave cannot remove the group in between.
        let mut groups = lock(&self.groups);
        let group = groups
            .entry(group.clone())
            .or_insert_with(|| Arc::new(Group::new(group.clone(), self.dedup_window)))
            .clone();
        lock(&group.state).insert(key, member);
        drop(groups);
        self.connections.fetch_add(1, Ordering::Relaxed);
        Membership { registry: self.clone(), group, key, queue }
    }

    pub fn stats(&self) -> Stats {
        Stats {
            connections: self.connections.load(Ordering::Relaxed),
            groups: lock(&self.groups).len(),
        }
    }

    /// Members currently in `group` (0 when it does not exist).
    pub fn members(&self, group: &GroupName) -> usize {
        lock(&self.groups)
            .get(group)
            .map_or(0, |g| lock(&g.state).members.len())
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
            }
        }
        drop(state);
        drop(groups);
        self.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Group {
    fn new(name: GroupName, dedup_window: usize) -> Self {
        Self {
            name,
            state: Mutex::new(GroupState {
                next_seq: 1,
                members: HashMap::new(),
                json_members: 0,
                raw_members: 0,
                recent: RecentIds::new(dedup_window),
            }),
        }
    }
}

impl GroupState {
    fn insert(&mut self, key: u64, member: Member) {
        *self.count_mut(member.mode) += 1;
        self.members.insert(key, member);
    }

    fn remove(&mut self, key: u64) {
        if let Some(member) = self.members.remove(&key) {
            *self.count_mut(member.mode) -= 1;
        }
    }

    fn count_mut(&mut self, mode: WireMode) -> &mut usize {
        match mode {
            WireMode::Json => &mut self.json_members,
            WireMode::Raw => &mut self.raw_members,
        }
    }

    /// Hands `json` to JSON members and `raw` to raw members (skipping a mode
    /// whose message is `None`), evicting every member whose queue is full.
    fn fan_out(&mut self, json: Option<&Message>, raw: Option<&Message>) {
        let (mut json_left, mut raw_left) = (0, 0);
        self.members.retain(|_, member| {
            let (message, left) = match member.mode {
                WireMode::Json => (json, &mut json_left),
                WireMode::Raw => (raw, &mut raw_left),
            };
            let keep = match message {
                None => true,
                Some(message) => match member.queue.push(message.clone()) {
                    Ok(()) => true,
                    Err(QueueFull) => {
                        member.queue.evict();
                        false
                    }
                },
            };
            *left += usize::from(keep);
            keep
        });
        self.json_members = json_left;
        self.raw_members = raw_left;
    }
}

impl Membership {
    /// Sequences `draft` and delivers it to every member of the group,
    /// this one included. A recently seen id is not delivered again.
    pub fn publish(&self, draft: Draft) -> Published {
        let mut state = lock(&self.group.state);
        if let Some(seq) = state.recent.get(&draft.id) {
            return Published::Duplicate { seq };
        }
        let seq = state.next_seq;
        state.next_seq += 1;
        state.recent.insert(draft.id, seq);
        let json = (state.json_members > 0).then(|| {
            let event = ServerEvent::Message(ChatMessage {
                group: self.group.name.clone(),
                seq,
                id: draft.id,
                from: draft.from,
                text: draft.text.as_str().to_owned(),
                ts: unix_millis(),
            });
            Message::text(event.encode())
        });
        let raw = (state.raw_members > 0).then(|| Message::Text(draft.text));
        // Delivering under the group lock keeps every member's queue in
        // sequence order even when several connections publish at once.
        state.fan_out(json.as_ref(), raw.as_ref());
        Published::New { seq }
    }

    /// Delivers `message` to the group's raw members as it is, outside the
    /// sequence (binary frames and empty texts, which JSON members cannot
    /// receive).
    pub fn relay(&self, message: Message) {
        lock(&self.group.state).fan_out(None, Some(&message));
    }

    /// Queues `message` for this member only.
    pub fn reply(&self, message: Message) -> Result<(), QueueFull> {
        self.queue.push(message)
    }

    /// What this member must write to its socket; reports eviction too.
    pub fn queue(&self) -> &Arc<MemberQueue> {
        &self.queue
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.registry.leave(&self.group, self.key);
    }
}

/// The last `capacity` message ids of a group with their sequence numbers.
#[derive(Debug)]
struct RecentIds {
    capacity: usize,
    seqs: HashMap<MessageId, u64>,
    order: VecDeque<MessageId>,
}

impl RecentIds {
    fn new(capacity: usize) -> Self {
        Self { capacity, seqs: HashMap::new(), order: VecDeque::new() }
    }

    fn get(&self, id: &MessageId) -> Option<u64> {
        self.seqs.get(id).copied()
    }

    fn insert(&mut self, id: MessageId, seq: u64) {
        if self.capacity == 0 {
            return;
        }
        if self.order.len() == self.capacity {
            if let Some(oldest) = self.order.pop_front() {
                self.seqs.remove(&oldest);
            }
        }
        self.order.push_back(id);
        self.seqs.insert(id, seq);
    }
}

fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Locks a mutex, ignoring poisoning: every critical section here leaves the
/// state consistent at each step, so a panic elsewhere cannot corrupt it.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use roomcast_shared::ClientId;
    use uuid::Uuid;

    fn group(name: &str) -> GroupName {
        name.parse().unwrap()
    }

    fn draft(text: &str) -> Draft {
        Draft {
            id: MessageId(Uuid::new_v4()),
            from: Sender { client_id: ClientId(Uuid::nil()), name: None },
            text: text.into(),
        }
    }

    fn text_of(message: Message) -> String {
        message.into_text().unwrap().to_string()
    }

    #[test]
    fn publish_reaches_every_member_of_the_group_and_no_other() {
        let registry = Registry::new(8, 16);
        let alice = registry.join(&group("a"), WireMode::Raw);
        let bob = registry.join(&group("a"), WireMode::Raw);
        let carol = registry.join(&group("b"), WireMode::Raw);
        assert_eq!(alice.publish(draft("hi")), Published::New { seq: 1 });
        assert_eq!(text_of(alice.queue().try_pop().unwrap()), "hi");
        assert_eq!(text_of(bob.queue().try_pop().unwrap()), "hi");
        assert!(carol.queue().try_pop().is_none());
    }

    #[test]
    fn each_mode_gets_its_own_encoding() {
        let registry = Registry::new(8, 16);
        let raw = registry.join(&group("a"), WireMode::Raw);
        let json = registry.join(&group("a"), WireMode::Json);
        raw.publish(draft("hi"));
        assert_eq!(text_of(raw.queue().try_pop().unwrap()), "hi");
        let event = ServerEvent::decode(&text_of(json.queue().try_pop().unwrap())).unwrap();
        assert!(matches!(event, ServerEvent::Message(m) if m.text == "hi" && m.seq == 1));
    }

    #[test]
    fn duplicates_are_acknowledged_with_the_first_sequence_number() {
        let registry = Registry::new(8, 16);
        let member = registry.join(&group("a"), WireMode::Raw);
        member.publish(draft("first"));
        let again = draft("second");
        let id = again.id;
        assert_eq!(member.publish(again), Published::New { seq: 2 });
        let resend = Draft { id, ..draft("second") };
        assert_eq!(member.publish(resend), Published::Duplicate { seq: 2 });
        assert_eq!(text_of(member.queue().try_pop().unwrap()), "first");
        assert_eq!(text_of(member.queue().try_pop().unwrap()), "second");
        assert!(member.queue().try_pop().is_none(), "a duplicate is not delivered again");
    }

    #[test]
    fn a_full_queue_evicts_only_that_member() {
        let registry = Registry::new(2, 16);
        let fast = registry.join(&group("a"), WireMode::Raw);
        let slow = registry.join(&group("a"), WireMode::Raw);
        for i in 0..5 {
            fast.publish(draft(&format!("m{i}")));
            while fast.queue().try_pop().is_some() {}
        }
        assert!(slow.queue().is_evicted());
        assert!(!fast.queue().is_evicted());
        assert_eq!(registry.members(&group("a")), 1);
    }

    #[test]
    fn leaving_last_removes_the_group() {
        let registry = Registry::new(8, 16);
        let a = registry.join(&group("a"), WireMode::Raw);
        let b = registry.join(&group("a"), WireMode::Json);
        assert_eq!(registry.stats(), Stats { connections: 2, groups: 1 });
        drop(a);
        assert_eq!(registry.stats(), Stats { connections: 1, groups: 1 });
        drop(b);
        assert_eq!(registry.stats(), Stats { connections: 0, groups: 0 });
    }

    #[test]
    fn relay_skips_json_members_and_the_sequence() {
        let registry = Registry::new(8, 16);
        let raw = registry.join(&group("a"), WireMode::Raw);
        let json = registry.join(&group("a"), WireMode::Json);
        raw.relay(Message::binary(vec![1, 2, 3]));
        assert_eq!(raw.queue().try_pop().unwrap(), Message::binary(vec![1, 2, 3]));
        assert!(json.queue().try_pop().is_none());
        assert_eq!(raw.publish(draft("x")).seq(), 1);
    }

    #[test]
    fn the_dedup_window_forgets_the_oldest() {
        let mut recent = RecentIds::new(2);
        let ids: Vec<_> = (0..3).map(|_| MessageId(Uuid::new_v4())).collect();
        for (seq, id) in ids.iter().enumerate() {
            recent.insert(*id, seq as u64);
        }
        assert_eq!(recent.get(&ids[0]), None);
        assert_eq!(recent.get(&ids[2]), Some(2));
    }
}
