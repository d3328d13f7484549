//! The room view's state: what the user sees, changed only by [`Action`]s.

use std::collections::HashSet;
use std::rc::Rc;

use roomcast_shared::{ChatMessage, MessageId};
use yew::Reducible;

use crate::session::Pending;

/// Most entries kept in the view; older ones scroll away for good.
const MAX_ENTRIES: usize = 2_000;

/// The connection status line.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    Connecting { attempt: u32 },
    Open,
    Reconnecting { attempt: u32, at_ms: f64 },
    Closed { reason: String },
}

impl Status {
    /// A stable machine-readable name (also used by the UI tests).
    pub fn key(&self) -> &'static str {
        match self {
            Self::Connecting { .. } => "connecting",
            Self::Open => "open",
            Self::Reconnecting { .. } => "reconnecting",
            Self::Closed { .. } => "closed",
        }
    }
}

/// One line of the room's timeline.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    /// Connection events: opened, closed with code and reason, errors.
    System { text: String, at_ms: f64 },
    Message(ChatMessage),
}

#[derive(Debug, Clone, PartialEq)]
pub struct RoomState {
    pub status: Status,
    /// Shared entries: a new state clones pointers, not messages.
    pub entries: Vec<Rc<Entry>>,
    /// Messages typed by the user and not yet acknowledged.
    pub pending: Vec<Pending>,
    seen: HashSet<MessageId>,
}

impl Default for RoomState {
    fn default() -> Self {
        Self {
            status: Status::Connecting { attempt: 0 },
            entries: Vec::new(),
            pending: Vec::new(),
            seen: HashSet::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Status(Status),
    System { text: String, at_ms: f64 },
    /// A group message; one already shown (same id) is ignored.
    Received(ChatMessage),
    /// The outbox changed.
    Pending(Vec<Pending>),
}

impl Reducible for RoomState {
    type Action = Action;

    fn reduce(self: Rc<Self>, action: Action) -> Rc<Self> {
        let mut state = Rc::unwrap_or_clone(self);
        match action {
            Action::Status(status) => state.status = status,
            Action::System { text, at_ms } => state.push(Entry::System { text, at_ms }),
            Action::Received(message) => {
                if state.seen.insert(message.id) {
                    state.push(Entry::Message(message));
                }
            }
            Action::Pending(pending) => state.pending = pending,
        }
        Rc::new(state)
    }
}

impl RoomState {
    fn push(&mut self, entry: Entry) {
        if self.entries.len() == MAX_ENTRIES {
            if let Entry::Message(old) = &*self.entries.remove(0) {
                self.seen.remove(&old.id);
            }
        }
        self.entries.push(Rc::new(entry));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use roomcast_shared::{ClientId, Sender};
    use uuid::Uuid;

    fn message(id: MessageId, seq: u64) -> ChatMessage {
        ChatMessage {
            group: "g".parse().unwrap(),
            seq,
            id,
            from: Sender { client_id: ClientId(Uuid::nil()), name: None },
            text: format!("m{seq}"),
            ts: 0,
        }
    }

    fn reduce(state: Rc<RoomState>, action: Action) -> Rc<RoomState> {
        state.reduce(action)
    }

    #[test]
    fn a_message_is_shown_once() {
        let id = MessageId(Uuid::new_v4());
        let mut state = Rc::new(RoomState::default());
        state = reduce(state, Action::Received(message(id, 1)));
        state = reduce(state, Action::Received(message(id, 1)));
        assert_eq!(state.entries.len(), 1);
    }

    #[test]
    fn the_timeline_is_bounded() {
        let mut state = Rc::new(RoomState::default());
        for seq in 0..(MAX_ENTRIES as u64 + 10) {
            state = reduce(state, Action::Received(message(MessageId(Uuid::new_v4()), seq)));
        }
        assert_eq!(state.entries.len(), MAX_ENTRIES);
        assert_eq!(state.seen.len(), MAX_ENTRIES);
    }

    #[test]
    fn status_and_system_lines_are_recorded() {
        let mut state = Rc::new(RoomState::default());
        state = reduce(state, Action::Status(Status::Open));
        state = reduce(state, Action::System { text: "connected".into(), at_ms: 1.0 });
        assert_eq!(state.status.key(), "open");
        assert_eq!(*state.entries[0], Entry::System { text: "connected".into(), at_ms: 1.0 });
    }
}
