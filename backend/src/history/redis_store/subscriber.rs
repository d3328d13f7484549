//! Delivery across nodes: one thread per node listens on the channels of
//! the groups this node has members in (subscribed as a group gets its
//! first member here, unsubscribed a few seconds after its last one left),
//! and delivers what is announced to this node's members, in order.
//!
//! Pub/sub is only a hint. Whatever it loses is found in the stream:
//! - a number past the next one is filled from the stream by range first
//!   ([`deliver_in_order`]);
//! - a missing tail (the last messages of a quiet group) is caught by
//!   comparing the heads of the groups this node has members in with what
//!   it delivered, right after every (re)subscribe and twice a second;
//! - a lost pub/sub connection is noticed (its reads fail) and made again,
//!   followed by the same check, so it never silently loses messages;
//! - a store that holds less than members hold (Redis lost its last second,
//!   or an old snapshot was restored) gets a new epoch above what was seen,
//!   so no number is given twice and members are told (`reset`).
//!
//! A refusal to listen (`NOPERM`: the node would be deaf for ever) ends it
//! with an error, and so does a panic (see
//! [`Worker`](crate::history::broker::Worker)); the server then shuts down.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::store::{channel_of, decode_entry, RedisStore};
use roomcast_shared::GroupName;

use crate::history::broker::waiting_acks::WaitingAcks;
use crate::history::broker::DeliveryError;
use crate::history::delivery::{deliver_in_order, fill};
use crate::history::store::Head;
use crate::metrics::Metrics;
use crate::registry::Registry;

/// How often the heads are checked.
const CHECK_EVERY: Duration = Duration::from_millis(500);
/// How long a read of the channels waits before the thread looks at which
/// groups it should listen to: a new group's subscription lags its first
/// member by at most this (and what is announced meanwhile is filled from
/// the stream right after subscribing).
const POLL: Duration = Duration::from_millis(20);
/// How long a group's channel stays subscribed after its last member here
/// left (members come back: a reload, a reconnect).
const LINGER: Duration = Duration::from_secs(5);
/// How long an acknowledgement waits for its message's delivery here
/// (the delivery holds publishers back; a stuck one must not hold them for
/// good: the message is stored either way).
const LATE_ACK: Duration = Duration::from_secs(10);
/// Pause between attempts to reach Redis again.
const RETRY_AFTER: Duration = Duration::from_millis(200);

/// What the subscriber delivers to, the acks that wait for it, and where
/// it counts its reconnects, fills and head checks.
#[derive(Clone, Copy)]
pub struct Deliver<'a> {
    pub registry: &'a Registry,
    pub acks: &'a WaitingAcks,
    pub metrics: &'a Metrics,
}

/// Listens until `stop` is set; a lost connection is made again, a refusal
/// to listen is returned.
pub fn run(store: &RedisStore, to: Deliver<'_>, stop: &AtomicBool) -> Result<(), DeliveryError> {
    while !stop.load(Ordering::Relaxed) {
        match listen(store, to, stop) {
            Ok(()) => {}
            Err(err) if is_refusal(&err) => {
                store.set_subscribed(false);
                tracing::error!(%err, "Redis refuses this node's subscriptions; the node stops");
                return Err(DeliveryError::Refused(err.to_string()));
            }
            Err(err) => {
                tracing::warn!(%err, "Redis pub/sub connection lost; connecting again");
                to.metrics.resubscribed();
                // Not ready until it listens again to every group here.
                store.set_subscribed(false);
                store.check_health();
                // Not delivering: acknowledgements do not wait for it.
                to.acks.release_late(LATE_ACK);
                std::thread::sleep(RETRY_AFTER);
            }
        }
    }
    Ok(())
}

/// Redis will not let this node listen (its user may not subscribe to the
/// channels): trying again would not help, and a node that cannot listen
/// delivers nothing from other nodes.
fn is_refusal(err: &redis::RedisError) -> bool {
    err.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoPerm)
}

/// Whether Redis lets this node listen on `channel`, tried on a connection
/// of its own (closed after): redis 1.8's `PubSub::subscribe` drops an error
/// reply, so a `NOPERM` there would look like success and leave the node
/// deaf. Once per pub/sub connection, before its first subscription (a
/// changed ACL drops the subscribers it no longer allows).
fn may_listen(store: &RedisStore, channel: &str) -> redis::RedisResult<()> {
    let mut probe = store.client().get_connection_with_timeout(Duration::from_secs(2))?;
    redis::cmd("SUBSCRIBE").arg(channel).query::<redis::Value>(&mut probe)?;
    Ok(())
}

/// One pub/sub connection, until it fails or `stop`.
fn listen(store: &RedisStore, to: Deliver<'_>, stop: &AtomicBool) -> redis::RedisResult<()> {
    let registry = to.registry;
    let mut connection = store.client().get_connection_with_timeout(Duration::from_secs(2))?;
    let mut pubsub = connection.as_pubsub();
    pubsub.set_read_timeout(Some(POLL))?;
    // Per group: subscribed; `Some(since)` once it has no members here.
    let mut subscribed: HashMap<GroupName, Option<Instant>> = HashMap::new();
    let mut first_pass = true;
    let mut seen_changes = None;
    let mut previous = HashMap::new();
    let mut checked = Instant::now();
    let mut allowed = false;
    while !stop.load(Ordering::Relaxed) {
        // Which groups this node has members in, compared with what it
        // listens to whenever that set changed.
        let changes = registry.groups_changed();
        if seen_changes != Some(changes) {
            seen_changes = Some(changes);
            let names: HashSet<GroupName> = registry.group_names().into_iter().collect();
            let new: Vec<GroupName> = names.iter().filter(|name| !subscribed.contains_key(*name)).cloned().collect();
            if !new.is_empty() {
                if !allowed {
                    may_listen(store, &channel_of(&new[0]))?;
                    allowed = true;
                }
                pubsub.subscribe(new.iter().map(channel_of).collect::<Vec<_>>())?;
                subscribed.extend(new.iter().map(|name| (name.clone(), None)));
                // Whatever was announced before the subscription took.
                catch_up(store, to, &mut previous, true);
            }
            for (name, left) in subscribed.iter_mut() {
                match (names.contains(name), *left) {
                    (true, _) => *left = None,
                    (false, None) => *left = Some(Instant::now()),
                    (false, Some(_)) => {}
                }
            }
        }
        if std::mem::take(&mut first_pass) {
            // Listening to every group here again, and everything they
            // missed filled: ready once the writer answers too (checked
            // now, rather than at the next round).
            store.check_health();
            store.set_subscribed(true);
        }
        let gone: Vec<GroupName> = subscribed
            .iter()
            .filter(|(_, left)| left.is_some_and(|since| since.elapsed() >= LINGER))
            .map(|(name, _)| name.clone())
            .collect();
        if !gone.is_empty() {
            pubsub.unsubscribe(gone.iter().map(channel_of).collect::<Vec<_>>())?;
            for name in &gone {
                subscribed.remove(name);
            }
        }
        match pubsub.get_message() {
            Ok(message) => announce(store, to, message.get_payload_bytes()),
            Err(err) if err.is_timeout() => {}
            Err(err) => return Err(err),
        }
        if checked.elapsed() >= CHECK_EVERY {
            store.check_health();
            catch_up(store, to, &mut previous, false);
            // A stored message is acknowledged, delivered here or not.
            to.acks.release_late(LATE_ACK);
            checked = Instant::now();
        }
    }
    Ok(())
}

/// Delivers an announced message: `epoch \n seq \n message JSON`.
fn announce(store: &RedisStore, to: Deliver<'_>, payload: &[u8]) {
    let Ok(payload) = std::str::from_utf8(payload) else { return };
    let mut parts = payload.splitn(3, '\n');
    let (Some(epoch), Some(seq), Some(json)) = (parts.next(), parts.next(), parts.next()) else { return };
    let Some(message) = decode_entry(seq, json) else {
        tracing::warn!("an announcement on a group channel is not a message; ignored");
        return;
    };
    store.observe(&message.group, epoch, message.seq);
    let group = message.group.clone();
    to.metrics.gaps_filled(deliver_in_order(to.registry, store, message, epoch));
    to.acks.release_delivered(to.registry, &group);
}

/// Compares the heads of the groups this node has members in with what it
/// delivered, and delivers what is missing (or, for a group that started
/// over, what its new epoch holds after its base). Right after a
/// (re)subscribe everything up to the head is missing; otherwise only what
/// was already there at the previous check (`previous`) counts as lost: a
/// message published since may still be on its way through pub/sub.
fn catch_up(store: &RedisStore, to: Deliver<'_>, previous: &mut HashMap<GroupName, Head>, everything: bool) {
    let registry = to.registry;
    let tracked = tracked(registry);
    let groups: Vec<_> = tracked.iter().map(|(group, _, _)| group.clone()).collect();
    let started = Instant::now();
    let Ok(heads) = store.heads(&groups) else { return };
    to.metrics.head_checked(started.elapsed());
    let mut now = HashMap::with_capacity(heads.len());
    for ((group, epoch, last), head) in tracked.into_iter().zip(heads) {
        let before = previous.get(&group).filter(|before| before.epoch == head.epoch).map(|before| before.last);
        let due = if everything { Some(head.last) } else { before };
        if head.epoch.is_empty() {
            // Emptied: its next message creates it again, and says so.
        } else if head.epoch != epoch {
            if let Some(due) = due {
                // A new epoch (Redis flushed, or it went back): members are
                // told, then get what it holds after its base.
                registry.restart(&group, &head.epoch, head.base);
                to.metrics.gaps_filled(fill(registry, store, &group, &head.epoch, head.base + 1, due));
            }
        } else if let Some(due) = due.filter(|due| *due > last) {
            to.metrics.gaps_filled(fill(registry, store, &group, &epoch, last + 1, due));
        } else if head.last < last {
            // Members hold numbers the store no longer has.
            let _ = store.went_back(&group, &epoch, last);
        }
        to.acks.release_delivered(registry, &group);
        now.insert(group, head);
    }
    *previous = now;
}

/// The groups this node has members in whose delivery position is set, with
/// the epoch and the last number their live members hold: what
/// [`catch_up`] checks against the store.
fn tracked(registry: &Registry) -> Vec<(GroupName, String, u64)> {
    registry
        .group_names()
        .into_iter()
        .filter_map(|group| {
            let (epoch, last) =
                registry.position(&group, |epoch, last| last.map(|last| (epoch.to_owned(), last)))??;
            Some((group, epoch, last))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use roomcast_shared::{ChatMessage, ClientId, MessageId, Sender};
    use uuid::Uuid;

    use super::*;
    use crate::queue::Capacity;
    use crate::registry::{Delivery, WireMode};

    fn group(name: &str) -> GroupName {
        name.parse().unwrap()
    }

    fn stored(seq: u64) -> ChatMessage {
        ChatMessage {
            group: group("a"),
            seq,
            id: MessageId(Uuid::new_v4()),
            from: Sender { client_id: ClientId(Uuid::nil()), name: None, verified: false },
            text: "m".into(),
            ts: 1,
        }
    }

    /// What the heads are checked against: each group's delivery position,
    /// once its members are live, and no group before.
    #[test]
    fn tracks_the_groups_whose_delivery_position_is_set() {
        let registry = Registry::new(Capacity { messages: 8, bytes: usize::MAX });
        let live = registry.join(&group("a"), WireMode::Json, ClientId(Uuid::new_v4()));
        let _catching_up = registry.join(&group("b"), WireMode::Json, ClientId(Uuid::new_v4()));
        assert!(live.go_live(0, "e"));
        for seq in 1..=4 {
            assert_eq!(registry.deliver(stored(seq), "e"), Delivery::Delivered);
        }
        assert_eq!(tracked(&registry), [(group("a"), "e".to_owned(), 4)]);
        drop(live);
        assert_eq!(tracked(&registry), []);
    }
}
