//! Messages the user sent that the server has not acknowledged yet.
//!
//! A message typed while disconnected waits here and is sent when the link
//! opens; a message sent but not acknowledged when the link drops is sent
//! again after the reconnect. Both carry their original id, and the server
//! acknowledges a repeated id with its original sequence number instead of
//! publishing it twice.

use roomcast_shared::MessageId;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PendingState {
    /// Waiting for an open connection.
    Queued,
    /// Written to the socket, waiting for the `ack`.
    Sent,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub id: MessageId,
    pub text: String,
    pub state: PendingState,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
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
        self.items.push(Pending { id, text, state: PendingState::Queued });
    }

    /// Marks every queued message as sent and returns them, oldest first, for
    /// writing to the socket.
    pub fn take_queued(&mut self) -> Vec<(MessageId, String)> {
        self.items
            .iter_mut()
            .filter(|item| item.state == PendingState::Queued)
            .map(|item| {
                item.state = PendingState::Sent;
                (item.id, item.text.clone())
            })
            .collect()
    }

    /// The server acknowledged `id` (or delivered it back to us). Returns
    /// whether it was pending.
    pub fn acknowledge(&mut self, id: MessageId) -> bool {
        let before = self.items.len();
        self.items.retain(|item| item.id != id);
        self.items.len() != before
    }

    /// The server could not store `id` for now: send it again with the next
    /// batch.
    pub fn requeue(&mut self, id: MessageId) -> bool {
        let item = self.items.iter_mut().find(|item| item.id == id);
        item.map(|item| item.state = PendingState::Queued).is_some()
    }

    /// What must survive a page reload: every unacknowledged message.
    pub fn saved(&self) -> Vec<(MessageId, String)> {
        self.items.iter().map(|item| (item.id, item.text.clone())).collect()
    }

    /// An outbox rebuilt from [`saved`](Self::saved): everything is queued
    /// again (the server acknowledges what it already stored).
    pub fn restore(saved: Vec<(MessageId, String)>) -> Self {
        Self { items: saved.into_iter().map(|(id, text)| Pending { id, text, state: PendingState::Queued }).collect() }
    }

    /// The link dropped: everything unacknowledged must be sent again.
    pub fn requeue_all(&mut self) {
        for item in &mut self.items {
            item.state = PendingState::Queued;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn id() -> MessageId {
        MessageId(Uuid::new_v4())
    }

    #[test]
    fn queued_messages_are_sent_once_in_order() {
        let mut outbox = Outbox::default();
        let (a, b) = (id(), id());
        outbox.push(a, "first".into());
        outbox.push(b, "second".into());
        assert_eq!(outbox.take_queued(), vec![(a, "first".into()), (b, "second".into())]);
        assert!(outbox.take_queued().is_empty(), "already sent");
        assert_eq!(outbox.items().len(), 2, "kept until acknowledged");
    }

    #[test]
    fn acknowledged_messages_leave_the_outbox() {
        let mut outbox = Outbox::default();
        let a = id();
        outbox.push(a, "x".into());
        outbox.take_queued();
        assert!(outbox.acknowledge(a));
        assert!(!outbox.acknowledge(a));
        assert!(outbox.is_empty());
    }

    #[test]
    fn a_restored_outbox_sends_everything_again() {
        let mut outbox = Outbox::default();
        let (a, b) = (id(), id());
        outbox.push(a, "sent before the reload".into());
        outbox.take_queued();
        outbox.push(b, "typed before the reload".into());
        let mut restored = Outbox::restore(outbox.saved());
        assert_eq!(restored.take_queued(), vec![(a, "sent before the reload".into()), (b, "typed before the reload".into())]);
    }

    #[test]
    fn a_message_the_server_could_not_store_goes_out_again() {
        let mut outbox = Outbox::default();
        let a = id();
        outbox.push(a, "x".into());
        outbox.take_queued();
        assert!(outbox.requeue(a));
        assert_eq!(outbox.take_queued(), vec![(a, "x".into())]);
    }

    #[test]
    fn unacknowledged_messages_are_resent_after_a_drop() {
        let mut outbox = Outbox::default();
        let (a, b) = (id(), id());
        outbox.push(a, "sent, no ack".into());
        outbox.take_queued();
        outbox.push(b, "typed while down".into());
        outbox.requeue_all();
        assert_eq!(outbox.take_queued(), vec![(a, "sent, no ack".into()), (b, "typed while down".into())]);
    }
}
