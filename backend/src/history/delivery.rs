//! Delivering stored messages to this node's members, in order and without
//! silent holes, whoever reports them (the sequencer after its commit, or
//! the Redis subscriber after a publish on any node).

use roomcast_shared::{ChatMessage, GroupName};

use super::store::{Limit, Range, Store};
use crate::registry::{Delivery, Registry};

/// Most messages read at once to fill a hole.
const FILL: Limit = Limit { messages: 500, bytes: 4 * 1024 * 1024 };

/// Delivers `message` of `epoch`, first reading from `store` the numbers
/// before it this node has not delivered yet (and, for an epoch members do
/// not know, first telling them). Returns how many it read from `store`
/// to fill a hole.
pub fn deliver_in_order(registry: &Registry, store: &dyn Store, message: ChatMessage, epoch: &str) -> u64 {
    let message = match registry.deliver(message, epoch) {
        Delivery::NewEpoch { message } => {
            let group = message.group.clone();
            // Only the store's current epoch is announced: a late message of
            // an epoch that is over already is dropped (members are, or will
            // be, moved to the current one by the subscriber's head check).
            let Some(base) = store.head(&group).ok().filter(|head| head.epoch == epoch).map(|head| head.base) else {
                return 0;
            };
            registry.restart(&group, epoch, base);
            match registry.deliver(message, epoch) {
                Delivery::Missing { message, .. } => message,
                _ => return 0,
            }
        }
        Delivery::Missing { message, .. } => message,
        Delivery::Delivered | Delivery::Duplicate => return 0,
    };
    let (group, seq) = (message.group.clone(), message.seq);
    let filled = match registry.last_delivered(&group, epoch) {
        Some(last) => fill(registry, store, &group, epoch, last + 1, seq - 1),
        None => 0,
    };
    deliver_or_skip(registry, message, epoch);
    filled
}

/// Delivers numbers `from..=to` of `group`'s `epoch` from `store`: those
/// retention kept, in order; members are told of the others as a gap.
/// Returns how many it read and delivered.
pub fn fill(registry: &Registry, store: &dyn Store, group: &GroupName, epoch: &str, from: u64, to: u64) -> u64 {
    let mut after = from.saturating_sub(1);
    let mut filled = 0;
    while after < to {
        let slice = match store.read(group, Range::After(after), FILL) {
            Ok(slice) if slice.head.epoch == epoch => slice,
            // The group started over: its next message says so.
            Ok(_) => break,
            Err(err) => {
                tracing::warn!(%err, %group, "cannot read missed messages");
                break;
            }
        };
        let Some(last) = slice.messages.last().map(|m| m.seq) else { break };
        for missed in slice.messages.into_iter().take_while(|m| m.seq <= to) {
            deliver_or_skip(registry, missed, epoch);
            filled += 1;
        }
        after = last;
    }
    filled
}

/// Delivers `message`; numbers before it that could not be had (retention
/// removed them, or the history could not be read) go to members as a gap.
fn deliver_or_skip(registry: &Registry, message: ChatMessage, epoch: &str) {
    if let Delivery::Missing { message, .. } = registry.deliver(message, epoch) {
        registry.skip_to(&message.group, epoch, message.seq - 1);
        let _ = registry.deliver(message, epoch);
    }
}
