//! The Redis broker: the publish script announces each stored message on
//! its group's channel, and every node's [`subscriber`](super::subscriber),
//! this one's too, delivers it; a JSON sender's `ack` waits until the
//! message has reached this node's members.

use std::sync::Arc;

use roomcast_shared::ChatMessage;

use super::store::RedisStore;
use super::subscriber::{self, Deliver};
use crate::history::broker::waiting_acks::WaitingAcks;
use crate::history::broker::{Ack, Broker, Worker};
use crate::metrics::Metrics;
use crate::registry::Registry;

#[derive(Debug)]
pub struct RedisBroker {
    registry: Arc<Registry>,
    acks: Arc<WaitingAcks>,
}

impl RedisBroker {
    /// The broker, and its subscriber thread delivering from `store`'s
    /// channels to `registry`.
    pub fn start(
        store: Arc<RedisStore>,
        registry: Arc<Registry>,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<(Self, Worker)> {
        let acks = Arc::new(WaitingAcks::default());
        let (to_registry, to_acks) = (registry.clone(), acks.clone());
        let worker = Worker::spawn("roomcast-subscriber", move |stop| {
            subscriber::run(&store, Deliver { registry: &to_registry, acks: &to_acks, metrics: &metrics }, stop)
        })?;
        Ok((Self { registry, acks }, worker))
    }
}

impl Broker for RedisBroker {
    /// Delivered by the subscriber, when the announcement comes back.
    fn committed(&self, message: ChatMessage, epoch: &str, ack: Option<Ack>) {
        if let Some(ack) = ack {
            self.acks.add(&self.registry, &message.group, epoch, ack);
        }
    }
}
