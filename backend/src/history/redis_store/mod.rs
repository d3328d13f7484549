//! The Redis store: sequence numbers, history, deduplication and cross-node
//! delivery live in Redis, so that any number of nodes started with the same
//! URL (and secret) are one system.
//!
//! Per group (every key of a group shares the `{group}` hash tag, for a
//! Cluster later): `rc:{g}:epoch`, `rc:{g}:seq` (the last number),
//! `rc:{g}:log` (a stream whose entry ids are the sequence numbers; each
//! entry holds the message and its text's digest), `rc:{g}:bytes`,
//! `rc:{g}:ids` (message id → number while retained) and `rc:{g}:old:{id}`
//! (`number:digest`, for a removed message until it is a dedup window old).
//! `rc:groups` holds the group names, for `--max-groups`. Per verified
//! identity, `rc:{id:SUB}:cursors` (its read cursors, a hash of group →
//! `epoch:seq:updated`, set by `cursor.lua`) has a hash tag of its own.
//!
//! One script per publish does everything at once (`publish.lua`):
//! deduplicate, create the group's epoch, number, append, trim, announce on
//! the group's channel. A batch is one pipeline of scripts: one round trip.
//! Scripts start with `#!lua`, so an out-of-memory Redis refuses them
//! before they write anything. Reads are one script too (`read.lua`): head
//! and rows from one snapshot.
//!
//! TLS (`rediss://`, on rustls) and AUTH in the URL (`user:password@`) are
//! the `redis` crate's own.
//!
//! Pub/sub is a hint, the stream is the truth: [`subscriber`] delivers what
//! the channels announce (for the [`broker::RedisBroker`]), in order, and fills from the stream whatever they
//! lost. Retention is by count and bytes, applied as messages are appended;
//! age-based retention is not supported in this mode.

pub mod broker;
pub mod store;
pub mod subscriber;

pub use store::{channel_of, decode_entry, RedisOptions, RedisStore};
