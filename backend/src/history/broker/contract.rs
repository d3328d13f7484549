//! The delivery contract every broker keeps: [`Broker`] (the after-commit
//! hand-off) and a sender's [`Ack`], sent once its message is delivered here.

use std::sync::Arc;

use roomcast_shared::{ChatMessage, MessageId, ServerEvent};

use crate::frame::Frame;
use crate::queue::{MemberQueue, Outbound};

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
