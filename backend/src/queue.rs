//! A member's outbound queue: bounded, and free of allocations while empty.
//!
//! The registry pushes into it (never waiting: a full queue means the member
//! is too slow and gets evicted) and the connection task drains it. It is a
//! `VecDeque` and the reader's waker behind one mutex, rather than a tokio
//! channel, because a channel allocates its first block of slots (~2 KiB) up
//! front and idle connections dominate a chat server's memory. One lock per
//! push and one per pop, nothing else: a large group's fan-out does this
//! once per member. Eviction travels through the same queue, so one wake-up
//! source tells the connection everything.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use tokio_tungstenite::tungstenite::Message;

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
    pub message: Message,
}

impl Outbound {
    /// A frame outside the group's sequence.
    pub fn unsequenced(message: Message) -> Self {
        Self { seq: 0, message }
    }
}

/// What [`MemberQueue::next`] yields.
#[derive(Debug, PartialEq)]
pub enum Next {
    Message(Outbound),
    /// The member was evicted; stop writing.
    Evicted,
}

/// A queue with a single reader: the connection task that owns the member.
#[derive(Debug)]
pub struct MemberQueue {
    capacity: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    messages: VecDeque<Outbound>,
    evicted: bool,
    /// The reader, waiting for a message or for eviction.
    reader: Option<Waker>,
}

impl MemberQueue {
    pub fn new(capacity: usize) -> Self {
        Self { capacity: capacity.max(1), state: Mutex::default() }
    }

    /// Queues `message` unless the queue is full or evicted.
    pub fn push(&self, message: Outbound) -> Result<(), QueueFull> {
        let mut state = self.lock();
        if state.evicted || state.messages.len() >= self.capacity {
            return Err(QueueFull);
        }
        state.messages.push_back(message);
        let reader = state.reader.take();
        drop(state);
        // Woken outside the lock, so the reader never finds it held.
        if let Some(reader) = reader {
            reader.wake();
        }
        Ok(())
    }

    /// Marks the member evicted; the reader learns it at once.
    pub fn evict(&self) {
        let mut state = self.lock();
        state.evicted = true;
        let reader = state.reader.take();
        drop(state);
        if let Some(reader) = reader {
            reader.wake();
        }
    }

    pub fn is_evicted(&self) -> bool {
        self.lock().evicted
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
            return Poll::Ready(Next::Evicted);
        }
        match Self::pop(&mut state, self.capacity) {
            Some(message) => Poll::Ready(Next::Message(message)),
            None => {
                Self::wait(&mut state, cx);
                Poll::Pending
            }
        }
    }

    /// Ready once the member is evicted; what is queued stays queued.
    pub fn poll_evicted(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.lock();
        if state.evicted {
            return Poll::Ready(());
        }
        Self::wait(&mut state, cx);
        Poll::Pending
    }

    /// A message already queued, if any (eviction aside).
    pub fn try_pop(&self) -> Option<Outbound> {
        let mut state = self.lock();
        if state.evicted {
            return None;
        }
        Self::pop(&mut state, self.capacity)
    }

    fn pop(state: &mut State, capacity: usize) -> Option<Outbound> {
        let message = state.messages.pop_front();
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
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(text: &'static str) -> Outbound {
        Outbound::unsequenced(Message::text(text))
    }

    #[tokio::test]
    async fn messages_come_out_in_order() {
        let queue = MemberQueue::new(4);
        queue.push(text("a")).unwrap();
        queue.push(text("b")).unwrap();
        assert_eq!(queue.next().await, Next::Message(text("a")));
        assert_eq!(queue.try_pop(), Some(text("b")));
        assert_eq!(queue.try_pop(), None);
    }

    #[test]
    fn a_full_queue_refuses() {
        let queue = MemberQueue::new(2);
        queue.push(text("a")).unwrap();
        queue.push(text("b")).unwrap();
        assert!(queue.push(text("c")).is_err());
    }

    #[tokio::test]
    async fn eviction_wins_over_queued_messages() {
        let queue = MemberQueue::new(2);
        queue.push(text("a")).unwrap();
        queue.evict();
        assert_eq!(queue.next().await, Next::Evicted);
        assert!(queue.push(text("b")).is_err());
    }

    #[tokio::test]
    async fn a_reader_waiting_for_eviction_is_woken_by_it_and_keeps_the_queue() {
        let queue = std::sync::Arc::new(MemberQueue::new(2));
        queue.push(text("a")).unwrap();
        let reader = tokio::spawn({
            let queue = queue.clone();
            async move { poll_fn(|cx| queue.poll_evicted(cx)).await }
        });
        tokio::task::yield_now().await;
        assert!(!reader.is_finished());
        queue.evict();
        reader.await.unwrap();
        assert_eq!(queue.next().await, Next::Evicted);
    }

    #[tokio::test]
    async fn a_waiting_reader_is_woken_by_a_push() {
        let queue = std::sync::Arc::new(MemberQueue::new(2));
        let reader = tokio::spawn({
            let queue = queue.clone();
            async move { queue.next().await }
        });
        tokio::task::yield_now().await;
        queue.push(text("late")).unwrap();
        assert_eq!(reader.await.unwrap(), Next::Message(text("late")));
    }
}
