//! Acknowledgements that wait for their message to reach this node's
//! members, for a broker whose deliveries come back from elsewhere (Redis:
//! the subscriber). Waiting holds a sender back while this node's fan-out
//! is behind, as delivering before the ack does in the local broker.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use roomcast_shared::GroupName;

use super::contract::Ack;
use crate::locks::lock;
use crate::registry::Registry;

/// Per group, the acks waiting for their delivery here.
#[derive(Debug, Default)]
pub struct WaitingAcks {
    groups: Mutex<HashMap<GroupName, Vec<Waiting>>>,
}

#[derive(Debug)]
struct Waiting {
    epoch: String,
    since: Instant,
    ack: Ack,
}

impl WaitingAcks {
    /// Sends `ack` (its message stored in `group`'s `epoch`) once `registry`
    /// has delivered the message to the group's members here, or at once if
    /// it has, or if there is no such delivery to wait for (nobody is in the
    /// group here, or its members know another epoch). Members that know no
    /// epoch yet (the group's first message makes it) wait for its delivery
    /// too: an ack before the `reset` that brings the new epoch would read
    /// as history lost.
    pub fn add(&self, registry: &Registry, group: &GroupName, epoch: &str, ack: Ack) {
        // Held while the registry is asked: a delivery that lands meanwhile
        // releases this group's acks only after this one is in the list.
        let mut groups = lock(&self.groups);
        if !is_behind(registry, group, epoch, ack.seq) {
            drop(groups);
            ack.send();
            return;
        }
        groups.entry(group.clone()).or_default().push(Waiting { epoch: epoch.to_owned(), since: Instant::now(), ack });
    }

    /// Sends `group`'s acks whose messages `registry` has delivered here (or
    /// never will as numbered: the group started over, or nobody is left).
    /// Called after each delivery to the group.
    pub fn release_delivered(&self, registry: &Registry, group: &GroupName) {
        let released = {
            let mut groups = lock(&self.groups);
            let Some(waiting) = groups.get_mut(group) else { return };
            let released = registry
                .position(group, |epoch, last| {
                    take_where(waiting, |w| (w.epoch != epoch && !epoch.is_empty()) || last >= Some(w.ack.seq))
                })
                .unwrap_or_else(|| std::mem::take(waiting));
            if waiting.is_empty() {
                groups.remove(group);
            }
            released
        };
        released.into_iter().for_each(|waiting| waiting.ack.send());
    }

    /// Sends the acks that have waited `longer_than` for their delivery (it
    /// is late: the message is stored all the same).
    pub fn release_late(&self, longer_than: Duration) {
        let released: Vec<Waiting> = {
            let mut groups = lock(&self.groups);
            let released = groups
                .values_mut()
                .flat_map(|waiting| take_where(waiting, |w| w.since.elapsed() >= longer_than))
                .collect();
            groups.retain(|_, waiting| !waiting.is_empty());
            released
        };
        released.into_iter().for_each(|waiting| waiting.ack.send());
    }
}

/// Whether `registry`'s members of `group` know `epoch` (or no epoch yet)
/// and do not hold `seq` yet.
fn is_behind(registry: &Registry, group: &GroupName, epoch: &str, seq: u64) -> bool {
    registry
        .position(group, |known, last| (known == epoch || known.is_empty()) && last.is_none_or(|last| last < seq))
        .unwrap_or(false)
}

/// Removes and returns the entries of `waiting` that `due` picks, keeping
/// the others in order.
fn take_where(waiting: &mut Vec<Waiting>, due: impl Fn(&Waiting) -> bool) -> Vec<Waiting> {
    let (released, kept) = std::mem::take(waiting).into_iter().partition(due);
    *waiting = kept;
    released
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use roomcast_shared::{ChatMessage, ClientId, MessageId, Sender, ServerEvent};
    use uuid::Uuid;

    use super::*;
    use crate::queue::Capacity;
    use crate::registry::{Membership, WireMode};

    fn group(name: &str) -> GroupName {
        name.parse().unwrap()
    }

    fn stored(seq: u64, text: &str) -> ChatMessage {
        ChatMessage {
            group: group("a"),
            seq,
            id: MessageId(Uuid::new_v4()),
            from: Sender { client_id: ClientId(Uuid::nil()), name: None, verified: false },
            text: text.into(),
            ts: 1,
        }
    }

    /// A JSON member as its connection has it once the replay is done.
    fn live_json(registry: &Arc<Registry>) -> Membership {
        let member = registry.join(&group("a"), WireMode::Json, ClientId(Uuid::new_v4()));
        assert!(member.go_live(0, "e"));
        member
    }

    /// Delivers as the subscriber does: the message, then the acks it
    /// releases.
    fn deliver(registry: &Registry, acks: &WaitingAcks, message: ChatMessage) {
        registry.deliver(message, "e");
        acks.release_delivered(registry, &group("a"));
    }

    #[test]
    fn an_ack_waits_for_its_message_to_be_delivered_here() {
        let registry = Registry::new(Capacity { messages: 8, bytes: usize::MAX });
        let acks = WaitingAcks::default();
        let sender = live_json(&registry);
        let id = MessageId(uuid::Uuid::new_v4());
        deliver(&registry, &acks, stored(1, "one"));
        sender.queue().try_pop();
        acks.add(&registry, &group("a"), "e", Ack::new(id, 2, sender.queue().clone()));
        assert!(sender.queue().try_pop().is_none(), "not before its message");
        deliver(&registry, &acks, stored(2, "two"));
        let frames: Vec<_> = std::iter::from_fn(|| sender.queue().try_pop()).collect();
        let events: Vec<_> = frames.iter().map(|o| ServerEvent::decode(o.frame.as_text().unwrap()).unwrap()).collect();
        assert!(
            matches!(&events[..], [ServerEvent::Message(m), ServerEvent::Ack { seq: 2, .. }] if m.seq == 2),
            "{events:?}"
        );
        // Already delivered: at once; never delivered: once it is late.
        acks.add(&registry, &group("a"), "e", Ack::new(id, 1, sender.queue().clone()));
        assert!(sender.queue().try_pop().is_some());
        acks.add(&registry, &group("a"), "e", Ack::new(id, 9, sender.queue().clone()));
        acks.release_late(Duration::ZERO);
        assert!(sender.queue().try_pop().is_some());
    }

    #[test]
    fn the_ack_of_a_groups_first_message_waits_for_its_new_epoch() {
        let registry = Registry::new(Capacity { messages: 8, bytes: usize::MAX });
        let acks = WaitingAcks::default();
        // Live in a group that has no history yet: no epoch known.
        let sender = registry.join(&group("a"), WireMode::Json, ClientId(Uuid::new_v4()));
        assert!(sender.go_live(0, ""));
        acks.add(&registry, &group("a"), "e", Ack::new(MessageId(Uuid::new_v4()), 1, sender.queue().clone()));
        acks.release_delivered(&registry, &group("a"));
        assert!(sender.queue().try_pop().is_none(), "not before the epoch and its message");
        registry.restart(&group("a"), "e", 0);
        deliver(&registry, &acks, stored(1, "first"));
        let events: Vec<_> = std::iter::from_fn(|| sender.queue().try_pop())
            .map(|o| ServerEvent::decode(o.frame.as_text().unwrap()).unwrap())
            .collect();
        assert!(
            matches!(
                &events[..],
                [
                    ServerEvent::Reset { .. },
                    ServerEvent::Synced { .. },
                    ServerEvent::Message(_),
                    ServerEvent::Ack { seq: 1, .. }
                ]
            ),
            "{events:?}"
        );
    }

    #[test]
    fn a_group_that_started_over_releases_its_acks() {
        let registry = Registry::new(Capacity { messages: 8, bytes: usize::MAX });
        let acks = WaitingAcks::default();
        let sender = live_json(&registry);
        acks.add(&registry, &group("a"), "e", Ack::new(MessageId(Uuid::new_v4()), 5, sender.queue().clone()));
        assert!(sender.queue().try_pop().is_none(), "waits for number 5 of epoch e");
        registry.restart(&group("a"), "f", 0);
        acks.release_delivered(&registry, &group("a"));
        let events: Vec<_> = std::iter::from_fn(|| sender.queue().try_pop())
            .map(|o| ServerEvent::decode(o.frame.as_text().unwrap()).unwrap())
            .collect();
        assert!(matches!(events.last(), Some(ServerEvent::Ack { seq: 5, .. })), "{events:?}");
    }
}
