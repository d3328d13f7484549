//! Messages the user typed that the server has not acknowledged yet, and
//! what became of each: queued → sending → sent (acknowledged, it leaves the
//! outbox), or refused for now (resent after a backoff, on its own), or
//! failed for good (only the user's Retry sends it again; Delete drops it).
//!
//! # Invariants
//! - **One in flight.** Only the oldest message that has not failed is ever
//!   written to the socket, and the next one only after its `ack`. So the
//!   group stores a tab's messages in the order they were typed, even when
//!   the server refuses one for a while (a refused message is resent before
//!   anything typed after it), and a close with 1009 names its culprit.
//! - **Exactly once.** A message keeps its id through every resend, reload
//!   and tab; the server acknowledges a repeated id with its original number.
//! - **Nothing is resent on its own after a permanent refusal.**

use roomcast_shared::{close, MessageId};
use serde::{Deserialize, Serialize};

use super::attempt::Reached;

/// Where one message is.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    /// Waiting for its turn or for a connection.
    Queued,
    /// Written to the socket, waiting for the `ack`.
    Sending,
    /// Refused for now (`rate_limited`, `unavailable`); sent again at
    /// `at_ms`.
    Retrying { at_ms: f64, reason: String },
    /// Refused for good; never resent on its own.
    Failed { reason: String },
}

impl Delivery {
    /// A stable machine-readable name (also used by the UI tests).
    pub fn key(&self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sending => "sending",
            Self::Retrying { .. } => "retrying",
            Self::Failed { .. } => "failed",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    pub id: MessageId,
    pub text: String,
    pub delivery: Delivery,
    /// Temporary refusals in a row, for the backoff.
    refusals: u32,
}

/// One message as kept in storage: failed ones stay failed after a reload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Saved {
    pub id: MessageId,
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
}

/// Backoff after a temporary refusal: `base · 2^(n−1)` capped, times a
/// factor in `[0.5, 1)` so that the tabs of a refused client spread out.
const RETRY_BASE_MS: f64 = 500.0;
const RETRY_CAP_MS: f64 = 10_000.0;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outbox {
    items: Vec<Pending>,
}

impl Outbox {
    pub fn items(&self) -> &[Pending] {
        &self.items
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Adds a message typed by the user.
    pub fn push(&mut self, id: MessageId, text: String) {
        self.items.push(Pending { id, text, delivery: Delivery::Queued, refusals: 0 });
    }

    /// Adds messages another tab left, skipping any already here.
    pub fn adopt(&mut self, saved: Vec<Saved>) -> bool {
        let before = self.items.len();
        for item in saved {
            if !self.items.iter().any(|mine| mine.id == item.id) {
                self.items.push(Pending::restored(item));
            }
        }
        self.items.len() != before
    }

    /// The message to write now, if any: the oldest one that has not
    /// failed, when nothing is in flight and its retry time (if any) has
    /// come. It is marked as sending.
    pub fn next_to_send(&mut self, now_ms: f64) -> Option<(MessageId, String)> {
        let item = self.items.iter_mut().find(|item| !matches!(item.delivery, Delivery::Failed { .. }))?;
        match item.delivery {
            Delivery::Queued => {}
            Delivery::Retrying { at_ms, .. } if at_ms <= now_ms => {}
            _ => return None,
        }
        item.delivery = Delivery::Sending;
        Some((item.id, item.text.clone()))
    }

    /// When the message at the front may be resent, if it waits for that.
    pub fn next_retry_ms(&self) -> Option<f64> {
        match self.items.iter().find(|item| !matches!(item.delivery, Delivery::Failed { .. }))?.delivery {
            Delivery::Retrying { at_ms, .. } => Some(at_ms),
            _ => None,
        }
    }

    /// The server stored `id` (its `ack`, or the message delivered back).
    /// Returns whether it was here.
    pub fn acknowledge(&mut self, id: MessageId) -> bool {
        let before = self.items.len();
        self.items.retain(|item| item.id != id);
        self.items.len() != before
    }

    /// The server refused `id`: for now (`retryable`, resent after a
    /// backoff; `random` is uniform in `[0, 1)`) or for good.
    pub fn refused(&mut self, id: MessageId, retryable: bool, reason: &str, now_ms: f64, random: f64) -> bool {
        let Some(item) = self.items.iter_mut().find(|item| item.id == id) else { return false };
        item.delivery = if retryable {
            item.refusals += 1;
            let ceiling = (RETRY_BASE_MS * 2f64.powi(item.refusals.min(30) as i32 - 1)).min(RETRY_CAP_MS);
            Delivery::Retrying {
                at_ms: now_ms + ceiling * (0.5 + random.clamp(0.0, 1.0) / 2.0),
                reason: reason.to_owned(),
            }
        } else {
            Delivery::Failed { reason: reason.to_owned() }
        };
        true
    }

    /// The connection closed with "message too big" (1009): the message in
    /// flight caused it (whatever limit the server had announced). Returns
    /// its id.
    pub fn in_flight_too_big(&mut self) -> Option<MessageId> {
        let item = self.items.iter_mut().find(|item| item.delivery == Delivery::Sending)?;
        item.delivery = Delivery::Failed { reason: "too long for this server".to_owned() };
        Some(item.id)
    }

    /// Fails every unsent message whose frame exceeds `limit` bytes (as told
    /// by the server's `welcome`), so that none is sent to be refused.
    pub fn fail_oversized(&mut self, limit: usize, frame_len: impl Fn(&str) -> usize) -> bool {
        let mut changed = false;
        for item in &mut self.items {
            if !matches!(item.delivery, Delivery::Failed { .. }) && frame_len(&item.text) > limit {
                item.delivery = Delivery::Failed { reason: format!("too long for this server (over {limit} bytes)") };
                changed = true;
            }
        }
        changed
    }

    /// The socket closed with `code`, having `reached` as far: an open
    /// connection's 1009 fails the message in flight, which caused it;
    /// anything else in flight goes again after the reconnect.
    pub fn closed(&mut self, reached: Reached, code: u16) {
        if reached == Reached::Opened && code == close::MESSAGE_TOO_BIG {
            self.in_flight_too_big();
        }
        self.connection_lost();
    }

    /// The link dropped: what was in flight is sent again after the
    /// reconnect (waiting refusals keep their time).
    pub fn connection_lost(&mut self) {
        for item in &mut self.items {
            if item.delivery == Delivery::Sending {
                item.delivery = Delivery::Queued;
            }
        }
    }

    /// The user's Retry on a failed message.
    pub fn retry(&mut self, id: MessageId) -> bool {
        let Some(item) = self.items.iter_mut().find(|item| item.id == id) else { return false };
        item.delivery = Delivery::Queued;
        item.refusals = 0;
        true
    }

    /// The user's Delete: the message is dropped unsent. A message in flight
    /// cannot be taken back and is not deleted.
    pub fn delete(&mut self, id: MessageId) -> bool {
        let before = self.items.len();
        self.items.retain(|item| item.id != id || item.delivery == Delivery::Sending);
        self.items.len() != before
    }

    /// What must survive a page reload: every unacknowledged message.
    pub fn saved(&self) -> Vec<Saved> {
        self.items
            .iter()
            .map(|item| Saved {
                id: item.id,
                text: item.text.clone(),
                failed: match &item.delivery {
                    Delivery::Failed { reason } => Some(reason.clone()),
                    _ => None,
                },
            })
            .collect()
    }

    /// An outbox rebuilt from [`saved`](Self::saved): everything not failed
    /// is queued again (the server acknowledges what it already stored).
    pub fn restore(saved: Vec<Saved>) -> Self {
        Self { items: saved.into_iter().map(Pending::restored).collect() }
    }
}

impl Pending {
    fn restored(saved: Saved) -> Self {
        let delivery = match saved.failed {
            Some(reason) => Delivery::Failed { reason },
            None => Delivery::Queued,
        };
        Self { id: saved.id, text: saved.text, delivery, refusals: 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn id() -> MessageId {
        MessageId(Uuid::new_v4())
    }

    fn outbox_of(texts: &[&str]) -> (Outbox, Vec<MessageId>) {
        let mut outbox = Outbox::default();
        let ids: Vec<MessageId> = texts.iter().map(|_| id()).collect();
        for (id, text) in ids.iter().zip(texts) {
            outbox.push(*id, (*text).to_owned());
        }
        (outbox, ids)
    }

    fn states(outbox: &Outbox) -> Vec<&'static str> {
        outbox.items().iter().map(|item| item.delivery.key()).collect()
    }

    #[test]
    fn one_message_is_in_flight_at_a_time_in_typed_order() {
        let (mut outbox, ids) = outbox_of(&["first", "second"]);
        assert_eq!(outbox.next_to_send(0.0), Some((ids[0], "first".into())));
        assert_eq!(outbox.next_to_send(0.0), None, "waits for the ack");
        assert_eq!(states(&outbox), ["sending", "queued"]);
        assert!(outbox.acknowledge(ids[0]));
        assert_eq!(outbox.next_to_send(0.0), Some((ids[1], "second".into())));
        assert!(outbox.acknowledge(ids[1]));
        assert!(!outbox.acknowledge(ids[1]));
        assert!(outbox.is_empty());
    }

    #[test]
    fn a_temporary_refusal_is_resent_after_a_backoff_before_anything_later() {
        let (mut outbox, ids) = outbox_of(&["a", "b"]);
        outbox.next_to_send(0.0);
        assert!(outbox.refused(ids[0], true, "rate limited", 1_000.0, 0.0));
        assert_eq!(states(&outbox), ["retrying", "queued"]);
        assert_eq!(outbox.next_retry_ms(), Some(1_250.0));
        assert_eq!(outbox.next_to_send(1_249.0), None, "b does not overtake a");
        assert_eq!(outbox.next_to_send(1_250.0), Some((ids[0], "a".into())));
        // Refused again: the wait doubles.
        outbox.refused(ids[0], true, "rate limited", 2_000.0, 0.0);
        assert_eq!(outbox.next_retry_ms(), Some(2_500.0));
    }

    #[test]
    fn the_backoff_is_capped() {
        let (mut outbox, ids) = outbox_of(&["a"]);
        for _ in 0..40 {
            outbox.refused(ids[0], true, "unavailable", 0.0, 0.999_999);
        }
        assert!(outbox.next_retry_ms().unwrap() <= RETRY_CAP_MS);
    }

    #[test]
    fn a_permanent_refusal_fails_at_once_and_is_never_resent_on_its_own() {
        let (mut outbox, ids) = outbox_of(&["bad", "good"]);
        outbox.next_to_send(0.0);
        outbox.refused(ids[0], false, "text must not be empty", 0.0, 0.5);
        assert_eq!(outbox.next_to_send(0.0), Some((ids[1], "good".into())), "later messages go on");
        outbox.acknowledge(ids[1]);
        outbox.connection_lost();
        assert_eq!(outbox.next_to_send(f64::MAX), None);
        assert_eq!(outbox.items()[0].delivery, Delivery::Failed { reason: "text must not be empty".into() });
    }

    #[test]
    fn retry_and_delete_are_the_users_choice() {
        let (mut outbox, ids) = outbox_of(&["x", "y"]);
        outbox.next_to_send(0.0);
        outbox.refused(ids[0], false, "no", 0.0, 0.5);
        assert!(outbox.retry(ids[0]));
        assert_eq!(outbox.next_to_send(0.0), Some((ids[0], "x".into())));
        assert!(!outbox.delete(ids[0]), "in flight: cannot be taken back");
        outbox.refused(ids[0], false, "no", 0.0, 0.5);
        assert!(outbox.delete(ids[0]));
        assert_eq!(outbox.items().len(), 1);
        assert!(outbox.delete(ids[1]), "a queued message can be deleted");
        assert!(outbox.is_empty());
    }

    #[test]
    fn a_close_for_a_too_big_message_fails_the_one_in_flight() {
        let (mut outbox, ids) = outbox_of(&["huge", "next"]);
        outbox.next_to_send(0.0);
        assert_eq!(outbox.in_flight_too_big(), Some(ids[0]));
        outbox.connection_lost();
        assert_eq!(states(&outbox), ["failed", "queued"]);
        assert_eq!(outbox.next_to_send(0.0), Some((ids[1], "next".into())));
        assert_eq!(outbox.in_flight_too_big(), Some(ids[1]));
        assert_eq!(outbox.in_flight_too_big(), None);
    }

    #[test]
    fn only_an_open_connections_1009_fails_the_message_in_flight() {
        let (mut outbox, _) = outbox_of(&["huge"]);
        outbox.next_to_send(0.0);
        outbox.closed(Reached::NeverOpened, close::MESSAGE_TOO_BIG);
        assert_eq!(states(&outbox), ["queued"], "a socket that never opened sent nothing");
        outbox.next_to_send(0.0);
        outbox.closed(Reached::Opened, 1006);
        assert_eq!(states(&outbox), ["queued"]);
        outbox.next_to_send(0.0);
        outbox.closed(Reached::Opened, close::MESSAGE_TOO_BIG);
        assert_eq!(states(&outbox), ["failed"]);
    }

    #[test]
    fn messages_over_the_servers_limit_fail_before_they_are_sent() {
        let (mut outbox, _) = outbox_of(&["short", "far too long"]);
        assert!(outbox.fail_oversized(8, str::len));
        assert_eq!(states(&outbox), ["queued", "failed"]);
        assert!(!outbox.fail_oversized(8, str::len), "nothing new");
    }

    #[test]
    fn a_dropped_link_sends_the_message_in_flight_again() {
        let (mut outbox, ids) = outbox_of(&["sent, no ack", "typed while down"]);
        outbox.next_to_send(0.0);
        outbox.connection_lost();
        assert_eq!(outbox.next_to_send(0.0), Some((ids[0], "sent, no ack".into())));
    }

    #[test]
    fn a_restored_outbox_sends_everything_again_but_what_failed() {
        let (mut outbox, ids) = outbox_of(&["sent before the reload", "failed", "typed before the reload"]);
        outbox.next_to_send(0.0);
        outbox.refused(ids[1], false, "too long", 0.0, 0.5);
        let mut restored = Outbox::restore(outbox.saved());
        assert_eq!(states(&restored), ["queued", "failed", "queued"]);
        assert_eq!(restored.next_to_send(0.0), Some((ids[0], "sent before the reload".into())));
        restored.acknowledge(ids[0]);
        assert_eq!(restored.next_to_send(0.0), Some((ids[2], "typed before the reload".into())));
    }

    #[test]
    fn adopting_another_tabs_messages_skips_what_is_already_here() {
        let (mut outbox, ids) = outbox_of(&["mine"]);
        let theirs = Saved { id: id(), text: "theirs".into(), failed: None };
        let mine_again = Saved { id: ids[0], text: "mine".into(), failed: None };
        assert!(outbox.adopt(vec![mine_again.clone(), theirs.clone()]));
        assert_eq!(outbox.items().len(), 2);
        assert!(!outbox.adopt(vec![mine_again, theirs]));
    }

    #[test]
    fn saved_messages_have_a_stable_shape() {
        let saved = Saved { id: MessageId(Uuid::nil()), text: "hi".into(), failed: None };
        assert_eq!(
            serde_json::to_string(&saved).unwrap(),
            r#"{"id":"00000000-0000-0000-0000-000000000000","text":"hi"}"#
        );
    }
}
