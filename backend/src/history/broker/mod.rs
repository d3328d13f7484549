//! The delivery half of a backend, modelled on centrifuge's `Broker`: the
//! sequencer hands each message it has just stored to a [`Broker`], and the
//! broker delivers it back to this node through its handler (the
//! [`Registry`](crate::registry::Registry)). The node never asks which
//! broker it has.
//!
//! - [`contract`]: the [`Broker`] trait and a sender's [`Ack`].
//! - [`local`]: SQLite and memory: the sequencer's own commits, delivered
//!   in order right away.
//! - [`RedisBroker`](super::redis_store::broker::RedisBroker): the store's
//!   script announces, every node's subscriber delivers, and a sender's
//!   `ack` waits ([`waiting_acks`]) until the message reached this node.
//! - [`worker`]: a broker's own thread, which reports why it failed.

pub mod contract;
pub mod local;
pub mod waiting_acks;
pub mod worker;

#[cfg(test)]
mod tests;

pub use contract::{Ack, Broker};
pub use local::LocalBroker;
pub use worker::{DeliveryError, Worker};
