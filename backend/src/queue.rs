//! A member's outbound queue: bounded, and free of allocations while empty.
//!
//! The registry pushes into it (never waiting: a full queue means the member
//! is too slow and gets evicted) and the connection task drains it. It is a
//! `VecDeque` behind a mutex plus a [`Notify`], rather than a tokio channel,
//! because a channel allocates its first block of slots (~2 KiB) up front and
//! idle connections dominate a chat server's memory. Eviction travels through
//! the same queue, so one wake-up source tells the connection everything.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

use tokio::sync::Notify;
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

#[derive(Debug)]
pub struct MemberQueue {
    capacity: usize,
    state: Mutex<State>,
    ready: Notify,
}

#[derive(Debug, Default)]
struct State {
    messages: VecDeque<Outbound>,
    evicted: bool,
}

impl MemberQueue {
    pub fn new(capacity: usize) -> Self {
        Self { capacity: capacity.max(1), state: Mutex::default(), ready: Notify::new() }
    }

    /// Queues `message` unless the queue is full or evicted.
    pub fn push(&self, message: Outbound) -> Result<(), QueueFull> {
        let mut state = self.lock();
        if state.evicted || state.messages.len() >= self.capacity {
            return Err(QueueFull);
        }
        state.messages.push_back(message);
        drop(state);
        self.ready.notify_one();
        Ok(())
    }

    /// Marks the member evicted; [`next`](Self::next) reports it at once.
    pub fn evict(&self) {
        self.lock().evicted = true;
        self.ready.notify_one();
    }

    pub fn is_evicted(&self) -> bool {
        self.lock().evicted
    }

    /// The next message, or [`Next::Evicted`]. Cancel-safe: a message is
    /// only taken from the queue when this returns.
    pub async fn next(&self) -> Next {
        loop {
            if let Some(next) = self.poll_now() {
                return next;
            }
            // notify_one stores a permit when nobody waits, so a push between
            // the check above and this await is not missed.
            self.ready.notified().await;
        }
    }

    /// Resolves once the member is evicted. It consumes wake-ups meant for
    /// [`next`](Self::next), so wait in one or the other, never both; `next`
    /// looks at the queue before it waits, so nothing is lost by switching.
    pub async fn evicted(&self) {
        while !self.is_evicted() {
            self.ready.notified().await;
        }
    }

    /// A message already queued, if any (eviction aside).
    pub fn try_pop(&self) -> Option<Outbound> {
        match self.poll_now() {
            Some(Next::Message(message)) => Some(message),
            _ => None,
        }
    }

    /// Eviction, else the next queued message, under one lock.
    fn poll_now(&self) -> Option<Next> {
        let mut state = self.lock();
        if state.evicted {
            return Some(Next::Evicted);
        }
        let message = state.messages.pop_front();
        if state.messages.is_empty() && state.messages.capacity() > self.capacity.min(64) {
            // Give back what a burst grew, so an idle member stays small.
            state.messages = VecDeque::new();
        }
        message.map(Next::Message)
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
