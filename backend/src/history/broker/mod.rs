//! The delivery half of a backend, modelled on centrifuge's `Broker`: the
//! sequencer hands each message it has just stored to a [`Broker`], and the
//! broker delivers it back to this node through its handler (the
//! [`Registry`](crate::registry::Registry)). The node never asks which
//! broker it has.
//!
//! - [`local`]: SQLite and memory: the sequencer's own commits, delivered
//!   in order right away.
//! - [`RedisBroker`](super::redis_store::broker::RedisBroker): the store's
//!   script announces, every node's subscriber delivers, and a sender's
//!   `ack` waits ([`waiting_acks`]) until the message reached this node.
//! - [`worker`]: a broker's own thread, which reports why it failed.

pub mod local;
pub mod waiting_acks;
pub mod worker;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use roomcast_shared::{ChatMessage, MessageId, ServerEvent};

use crate::frame::Frame;
use crate::queue::{MemberQueue, Outbound};

pub use local::LocalBroker;
pub use worker::{DeliveryError, Worker};

/// After-commit hand-off: how a stored message reaches this node's members.
pub trait Broker: Send + Sync + std::fmt::Debug {
    /// Takes `message`, just stored as new in `epoch`, on the writer thread
    /// and in commit order. `ack`, if any, goes to its sender once the
    /// message has reached this node's members (or, should that not come,
    /// once it is late: the message is stored either way).
    fn committed(&self, message: ChatMessage, epoch: &str, ack: Option<Ack>);
}

/// A JSON sender's `ack`, to be sent once its message is delivered here.
#[derive(Debug)]
pub struct Ack {
    pub(crate) seq: u64,
    frame: Frame,
    queue: Arc<MemberQueue>,
}

impl Ack {
    /// The `ack` of `id`, stored as `seq`, for the sender reading `queue`.
    pub fn new(id: MessageId, seq: u64, queue: Arc<MemberQueue>) -> Self {
        Self { seq, frame: Frame::text(ServerEvent::Ack { id, seq }.encode()), queue }
    }

    /// Queues it (a sender whose queue is full is evicted).
    pub fn send(self) {
        self.queue.push_or_evict(Outbound::unsequenced(self.frame));
    }
}
