//! A member's outbound queue: bounded in messages and in bytes, and free of
//! allocations while empty.
//!
//! The registry pushes into it (never waiting: a full queue means the member
//! is too slow and gets evicted, and its queue is emptied at once) and the
//! connection task drains it. While its connection replays history, the
//! queue is *catching up*: group messages are not queued but only noted
//! (the replay reads them from the store instead), so that a slow but
//! reading client in a busy group is not evicted before it is live. It is a
//! `VecDeque` and the reader's waker behind one mutex, rather than a tokio
//! channel, because a channel allocates its first block of slots (~2 KiB) up
//! front and idle connections dominate a chat server's memory. One lock per
//! push and one per pop, nothing else: a large group's fan-out does this
//! once per member. Eviction travels through the same queue, so one wake-up
//! source tells the connection everything.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::os::fd::RawFd;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;

mod direct;

use crate::frame::Frame;
use crate::locks::lock;

use direct::DirectSocket;
pub use direct::{Claim, TakenBack};

/// The queue was full; the message was not queued.
#[derive(Debug, thiserror::Error)]
#[error("outbound queue full")]
pub struct QueueFull;

/// A frame waiting for the socket, with the group sequence number of the
/// message it carries (0 for control frames, replies and unsequenced relays).
/// The number lets a connection drop live messages its replay already sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Outbound {
    pub seq: u64,
    pub frame: Frame,
    /// The group's history started over (a new epoch): numbers from here on
    /// are new ones, so the connection forgets what its replay covered.
    pub rewinds: bool,
    /// Best-effort (`typing`): dropped to make room for anything else.
    pub best_effort: bool,
}

impl Outbound {
    /// A group message numbered `seq`.
    pub fn sequenced(seq: u64, frame: Frame) -> Self {
        Self { seq, frame, rewinds: false, best_effort: false }
    }

    /// A frame outside the group's sequence.
    pub fn unsequenced(frame: Frame) -> Self {
        Self { seq: 0, frame, rewinds: false, best_effort: false }
    }

    /// A frame outside the sequence that may be dropped (see
    /// [`MemberQueue::offer`]).
    pub fn best_effort(frame: Frame) -> Self {
        Self { seq: 0, frame, rewinds: false, best_effort: true }
    }

    /// A frame that announces a new epoch.
    pub fn rewinding(frame: Frame) -> Self {
        Self { seq: 0, frame, rewinds: true, best_effort: false }
    }

    /// Whether a catching-up queue leaves it to the replay.
    fn is_replayed(&self) -> bool {
        self.seq > 0 || self.rewinds
    }
}

/// What [`MemberQueue::next`] yields.
#[derive(Debug, PartialEq)]
pub enum Next {
    Message(Outbound),
    /// The member was evicted; stop writing.
    Evicted,
    /// The member was removed (its identity revoked, disconnected or
    /// banned); stop writing.
    Removed(Removal),
}

/// Why a member was removed, not for being slow: what its close says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    /// Its identity was revoked (4403).
    Revoked,
    /// An operator disconnected its identity (4010): it may come back.
    Disconnected { reason: Arc<str> },
    /// Its identity, address or network is banned until `until_ms` (4403).
    Banned { until_ms: u64, reason: Arc<str> },
}

impl std::fmt::Display for Removal {
    /// For logs: never the operator's reason.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Revoked => "identity revoked",
            Self::Disconnected { .. } => "disconnected by an operator",
            Self::Banned { .. } => "banned",
        })
    }
}

/// How much a member's queue may hold before the member is evicted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    pub messages: usize,
    /// Bytes of frames; one frame is always taken into an empty queue,
    /// whatever its size.
    pub bytes: usize,
}

/// A queue with a single reader: the connection task that owns the member.
#[derive(Debug)]
pub struct MemberQueue {
    capacity: Capacity,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    messages: VecDeque<Outbound>,
    /// Bytes of the frames in `messages`.
    bytes: usize,
    evicted: bool,
    /// Evicted because it was removed, not for being slow (boxed: rare,
    /// and every idle connection has a queue).
    removed: Option<Box<Removal>>,
    /// Group messages are left to the replay, which reads them from the
    /// store; only replies are queued.
    catching_up: bool,
    /// The highest number left to the replay while catching up.
    skipped_to: u64,
    /// The reader, waiting for a message or for eviction.
    reader: Option<Waker>,
    /// Best-effort frames were dropped since [`MemberQueue::take_dropped`]
    /// last looked.
    dropped: bool,
    /// The member's socket, while the fan-out may write to it
    /// ([`MemberQueue::allow_direct`]).
    direct: Option<DirectSocket>,
}

impl MemberQueue {
    pub fn new(capacity: Capacity) -> Self {
        let capacity = Capacity { messages: capacity.messages.max(1), bytes: capacity.bytes.max(1) };
        Self { capacity, state: Mutex::default() }
    }

    /// A queue whose connection replays history before it goes live.
    pub fn catching_up(capacity: Capacity) -> Self {
        let queue = Self::new(capacity);
        queue.lock().catching_up = true;
        queue
    }

    /// Queues `message` unless the queue is full or evicted. A catching-up
    /// queue notes group messages instead of queueing them.
    pub fn push(&self, message: Outbound) -> Result<(), QueueFull> {
        self.push_locked(self.lock(), message)
    }

    fn push_locked(&self, mut state: MutexGuard<'_, State>, message: Outbound) -> Result<(), QueueFull> {
        if state.evicted {
            return Err(QueueFull);
        }
        if state.catching_up && message.is_replayed() {
            // A new epoch's numbers start over; the replay sees the new
            // epoch itself.
            state.skipped_to = if message.rewinds { 0 } else { state.skipped_to.max(message.seq) };
            return Ok(());
        }
        let size = message.frame.len();
        if self.is_full(&state, size) {
            // Best-effort frames give way first: only what must be
            // delivered decides whether a member is too slow.
            Self::drop_best_effort(&mut state);
            if self.is_full(&state, size) {
                return Err(QueueFull);
            }
        }
        Self::enqueue(state, message);
        Ok(())
    }

    fn is_full(&self, state: &State, size: usize) -> bool {
        state.messages.len() >= self.capacity.messages
            || (!state.messages.is_empty() && state.bytes + size > self.capacity.bytes)
    }

    /// Drops every best-effort frame: a scan, only when the queue is full.
    fn drop_best_effort(state: &mut State) {
        let before = state.messages.len();
        state.messages.retain(|message| !message.best_effort);
        if state.messages.len() < before {
            state.dropped = true;
            state.bytes = state.messages.iter().map(|message| message.frame.len()).sum();
        }
    }

    /// Queues a best-effort frame outside the sequence (`typing`,
    /// [`Outbound::best_effort`]): only for a live member, and only within
    /// the first half of its queue, so that such frames cannot cut into a
    /// replay, and a full queue drops them before it counts as full (they
    /// never get a member evicted). Never evicts. Returns whether it was
    /// queued.
    pub fn offer(&self, frame: Frame) -> bool {
        let message = Outbound::best_effort(frame);
        let state = self.lock();
        if state.evicted || state.catching_up {
            return false;
        }
        let size = message.frame.len();
        if state.messages.len() >= self.capacity.messages / 2 || state.bytes + size > self.capacity.bytes / 2 {
            return false;
        }
        Self::enqueue(state, message);
        true
    }

    /// Whether best-effort frames were dropped (to make room) since the
    /// last call: a member's presence then needs a snapshot again.
    pub fn take_dropped(&self) -> bool {
        std::mem::take(&mut self.lock().dropped)
    }

    fn enqueue(mut state: MutexGuard<'_, State>, message: Outbound) {
        state.bytes += message.frame.len();
        state.messages.push_back(message);
        // Whatever is queued goes out after what the socket already has:
        // the task writes it, so the fan-out stops writing here.
        if let Some(direct) = state.direct.as_mut() {
            direct.queued();
        }
        let reader = state.reader.take();
        drop(state);
        // Woken outside the lock, so the reader never finds it held.
        if let Some(reader) = reader {
            reader.wake();
        }
    }

    /// Queues `message`, or evicts the member if its queue is full: a
    /// pusher never waits for a reader. Returns whether the member is kept.
    pub fn push_or_evict(&self, message: Outbound) -> bool {
        match self.push(message) {
            Ok(()) => true,
            Err(QueueFull) => {
                self.evict();
                false
            }
        }
    }

    /// Ends catching up once the replay has sent everything up to
    /// `position`: from then on, group messages are queued. Returns `false`
    /// (still catching up) when a group message after `position` went by
    /// meanwhile: the replay reads on first.
    pub fn go_live(&self, position: u64) -> bool {
        let mut state = self.lock();
        if state.skipped_to > position {
            return false;
        }
        state.catching_up = false;
        true
    }

    /// Marks the member evicted and drops what it had queued; the reader
    /// learns it at once.
    pub fn evict(&self) {
        let mut state = self.lock();
        state.evicted = true;
        if let Some(direct) = state.direct.as_mut() {
            direct.evicted();
        }
        let dropped = std::mem::take(&mut state.messages);
        state.bytes = 0;
        let reader = state.reader.take();
        drop(state);
        drop(dropped);
        if let Some(reader) = reader {
            reader.wake();
        }
    }

    /// Lets the fan-out write group messages straight to `fd`, the
    /// member's socket, while its task is [parked](Self::park). The caller
    /// keeps `fd` open until [`end_direct`](Self::end_direct).
    pub fn allow_direct(&self, fd: RawFd) {
        self.lock().direct = Some(DirectSocket::new(fd));
    }

    /// No more direct writes: once this returns, `fd` is never written
    /// here again (a write in progress holds this lock).
    pub fn end_direct(&self) {
        self.lock().direct = None;
    }

    /// The task waits with nothing to write: nothing queued, nothing
    /// buffered, its replay written up to `replayed_to`. Until it
    /// [takes the socket back](Self::take_back), the fan-out writes the
    /// group's messages to it. Not while catching up (the replay writes),
    /// nor once evicted.
    pub fn park(&self, replayed_to: u64) {
        let mut state = self.lock();
        if state.messages.is_empty() && !state.evicted && !state.catching_up {
            if let Some(direct) = state.direct.as_mut() {
                direct.park(replayed_to);
            }
        }
    }

    /// The task takes its socket back from the fan-out (each pass of its
    /// loop starts here): the bytes the task must write first.
    pub fn take_back(&self) -> TakenBack {
        self.lock().direct.as_mut().map(DirectSocket::take_back).unwrap_or_default()
    }

    /// Hands `message` (a group message; `wire`, its whole frame) to the
    /// member: owed to its socket by a lane when its task is parked, else
    /// queued as [`push_or_evict`](Self::push_or_evict) does.
    pub fn claim(&self, message: &Outbound, wire: &Bytes) -> Claim {
        let mut state = self.lock();
        if message.seq > 0 && !message.rewinds {
            let queued = !state.messages.is_empty();
            if let Some(claim) = state.direct.as_mut().and_then(|direct| direct.claim(message.seq, wire, queued)) {
                return claim;
            }
        }
        match self.push_locked(state, message.clone()) {
            Ok(()) => Claim::Kept,
            Err(QueueFull) => {
                self.evict();
                Claim::Evicted
            }
        }
    }

    /// A lane writes the frames it owes this member's socket, unless the
    /// task took them over; the task is woken to write what the socket did
    /// not take.
    pub fn send_owed(&self) {
        let mut state = self.lock();
        let queued = !state.messages.is_empty() || state.evicted;
        let rest = state.direct.as_mut().is_some_and(|direct| direct.send_owed(queued));
        if rest {
            let reader = state.reader.take();
            drop(state);
            if let Some(reader) = reader {
                reader.wake();
            }
        }
    }

    /// Wakes the task to write what its socket is owed itself (no lane
    /// will).
    pub fn wake_owed(&self) {
        let reader = self.lock().reader.take();
        if let Some(reader) = reader {
            reader.wake();
        }
    }

    pub fn is_evicted(&self) -> bool {
        self.lock().evicted
    }

    /// Evicts the member because it was removed: the reader learns it as
    /// [`Next::Removed`] (the first removal says why).
    pub fn remove(&self, removal: Removal) {
        self.lock().removed.get_or_insert_with(|| Box::new(removal));
        self.evict();
    }

    /// The next message, or [`Next::Evicted`]. Cancel-safe: a message is
    /// only taken from the queue when this returns.
    pub async fn next(&self) -> Next {
        poll_fn(|cx| self.poll_next(cx)).await
    }

    /// [`next`](Self::next) as a poll: when nothing is queued, the task is
    /// woken by the next push or by eviction.
    pub fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Next> {
        let mut state = self.lock();
        if state.evicted {
            return Poll::Ready(Self::ending(&state));
        }
        match Self::pop(&mut state, self.capacity.messages) {
            Some(message) => Poll::Ready(Next::Message(message)),
            None => {
                Self::wait(&mut state, cx);
                Poll::Pending
            }
        }
    }

    /// Ready once the member is evicted (with why); what is queued stays
    /// queued.
    pub fn poll_evicted(&self, cx: &mut Context<'_>) -> Poll<Next> {
        let mut state = self.lock();
        if state.evicted {
            return Poll::Ready(Self::ending(&state));
        }
        Self::wait(&mut state, cx);
        Poll::Pending
    }

    fn ending(state: &State) -> Next {
        match &state.removed {
            Some(removal) => Next::Removed(Removal::clone(removal)),
            None => Next::Evicted,
        }
    }

    /// A message already queued, if any (eviction aside).
    pub fn try_pop(&self) -> Option<Outbound> {
        let mut state = self.lock();
        if state.evicted {
            return None;
        }
        Self::pop(&mut state, self.capacity.messages)
    }

    fn pop(state: &mut State, capacity: usize) -> Option<Outbound> {
        let message = state.messages.pop_front();
        if let Some(message) = &message {
            state.bytes -= message.frame.len();
        }
        if state.messages.is_empty() && state.messages.capacity() > capacity.min(64) {
            // Give back what a burst grew, so an idle member stays small.
            state.messages = VecDeque::new();
        }
        message
    }

    fn wait(state: &mut State, cx: &mut Context<'_>) {
        match &state.reader {
            Some(reader) if reader.will_wake(cx.waker()) => {}
            _ => state.reader = Some(cx.waker().clone()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every critical section leaves the state consistent; a poisoned
        // lock (a panic elsewhere while holding it) is still usable.
        lock(&self.state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(text: &'static str) -> Outbound {
        Outbound::unsequenced(Frame::text(text))
    }

    fn counted(messages: usize) -> Capacity {
        Capacity { messages, bytes: usize::MAX }
    }

    #[test]
    fn an_offer_takes_half_the_queue_at_most_never_evicts_and_skips_a_catch_up() {
        let queue = MemberQueue::new(counted(4));
        assert!(queue.offer(Frame::text("t1")) && queue.offer(Frame::text("t2")));
        assert!(!queue.offer(Frame::text("t3")), "half the queue is the most offers take");
        assert!(queue.push(text("m1")).is_ok() && queue.push(text("m2")).is_ok(), "messages still fit");
        assert!(!queue.offer(Frame::text("t4")));
        assert!(!queue.is_evicted());
        let catching_up = MemberQueue::catching_up(counted(4));
        assert!(!catching_up.offer(Frame::text("t")), "left out of a replay");
        assert!(catching_up.try_pop().is_none());
    }

    #[test]
    fn best_effort_frames_give_way_to_messages() {
        let queue = MemberQueue::new(counted(4));
        assert!(queue.offer(Frame::text("t1")) && queue.offer(Frame::text("t2")));
        for m in ["m1", "m2", "m3", "m4"] {
            assert!(queue.push(text(m)).is_ok(), "{m}: the whole queue is still the messages'");
        }
        assert!(queue.push(text("m5")).is_err(), "full of messages: too slow");
        let popped: Vec<_> =
            std::iter::from_fn(|| queue.try_pop()).map(|o| o.frame.as_text().unwrap().to_owned()).collect();
        assert_eq!(popped, ["m1", "m2", "m3", "m4"]);
    }

    #[tokio::test]
    async fn messages_come_out_in_order() {
        let queue = MemberQueue::new(counted(4));
        queue.push(text("a")).unwrap();
        queue.push(text("b")).unwrap();
        assert_eq!(queue.next().await, Next::Message(text("a")));
        assert_eq!(queue.try_pop(), Some(text("b")));
        assert_eq!(queue.try_pop(), None);
    }

    #[test]
    fn a_full_queue_refuses() {
        let queue = MemberQueue::new(counted(2));
        queue.push(text("a")).unwrap();
        queue.push(text("b")).unwrap();
        assert!(queue.push(text("c")).is_err());
    }

    #[tokio::test]
    async fn eviction_wins_over_queued_messages() {
        let queue = MemberQueue::new(counted(2));
        queue.push(text("a")).unwrap();
        queue.evict();
        assert_eq!(queue.next().await, Next::Evicted);
        assert!(queue.push(text("b")).is_err());
    }

    #[tokio::test]
    async fn a_reader_waiting_for_eviction_is_woken_by_it_and_keeps_the_queue() {
        let queue = std::sync::Arc::new(MemberQueue::new(counted(2)));
        queue.push(text("a")).unwrap();
        let reader = tokio::spawn({
            let queue = queue.clone();
            async move { poll_fn(|cx| queue.poll_evicted(cx)).await }
        });
        tokio::task::yield_now().await;
        assert!(!reader.is_finished());
        queue.evict();
        assert_eq!(reader.await.unwrap(), Next::Evicted);
        assert_eq!(queue.next().await, Next::Evicted);
    }

    #[tokio::test]
    async fn a_revoked_member_learns_why() {
        let queue = MemberQueue::new(counted(2));
        queue.push(text("a")).unwrap();
        queue.remove(Removal::Revoked);
        queue.remove(Removal::Disconnected { reason: "later".into() });
        assert_eq!(poll_fn(|cx| queue.poll_evicted(cx)).await, Next::Removed(Removal::Revoked));
        assert_eq!(queue.next().await, Next::Removed(Removal::Revoked), "the first removal says why");
    }

    #[tokio::test]
    async fn a_waiting_reader_is_woken_by_a_push() {
        let queue = std::sync::Arc::new(MemberQueue::new(counted(2)));
        let reader = tokio::spawn({
            let queue = queue.clone();
            async move { queue.next().await }
        });
        tokio::task::yield_now().await;
        queue.push(text("late")).unwrap();
        assert_eq!(reader.await.unwrap(), Next::Message(text("late")));
    }

    #[test]
    fn bytes_bound_the_queue_but_one_frame_always_fits() {
        let queue = MemberQueue::new(Capacity { messages: 100, bytes: 10 });
        queue.push(Outbound::unsequenced(Frame::text("x".repeat(50)))).unwrap();
        assert!(queue.push(text("y")).is_err(), "over the bytes");
        queue.try_pop().unwrap();
        queue.push(text("12345")).unwrap();
        queue.push(text("67890")).unwrap();
        assert!(queue.push(text("z")).is_err());
    }

    #[test]
    fn eviction_frees_what_was_queued() {
        let queue = MemberQueue::new(counted(4));
        queue.push(text("a")).unwrap();
        queue.evict();
        assert!(queue.lock().messages.is_empty() && queue.lock().bytes == 0);
    }

    #[test]
    fn catching_up_leaves_group_messages_to_the_replay() {
        let queue = MemberQueue::catching_up(counted(1));
        for seq in 1..=10 {
            queue.push(Outbound::sequenced(seq, Frame::text("m"))).unwrap();
        }
        queue.push(text("ack")).unwrap();
        assert_eq!(queue.try_pop(), Some(text("ack")), "replies are queued");
        assert!(!queue.go_live(8), "9 and 10 went by: the replay reads on");
        assert!(queue.go_live(10));
        queue.push(Outbound::sequenced(11, Frame::text("m"))).unwrap();
        assert_eq!(queue.try_pop().map(|o| o.seq), Some(11), "live");
    }
}
