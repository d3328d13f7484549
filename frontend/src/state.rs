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

/// Whether older history can be loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Older {
    /// Unknown until the oldest shown message is the group's first.
    Maybe,
    Loading,
    /// The oldest shown message is the oldest the server keeps.
    Exhausted,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RoomState {
    pub status: Status,
    /// System lines and messages; messages in sequence order. Shared
    /// entries: a new state clones pointers, not messages.
    pub entries: Vec<Rc<Entry>>,
    /// Messages typed by the user and not yet acknowledged.
    pub pending: Vec<Pending>,
    pub older: Older,
    seen: HashSet<MessageId>,
}

impl Default for RoomState {
    fn default() -> Self {
        Self {
            status: Status::Connecting { attempt: 0 },
            entries: Vec::new(),
            pending: Vec::new(),
            older: Older::Maybe,
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
    /// The server could not replay messages `from..=to`; the latest page
    /// follows, so what is shown is dropped.
    Gap { from: u64, to: u64, at_ms: f64 },
    LoadingOlder,
    /// A page of older history, oldest first.
    Older { messages: Vec<ChatMessage>, has_more: bool },
    /// Loading older history failed; it may be tried again.
    OlderFailed,
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
            Action::Received(message) => state.insert(message),
            Action::Gap { from, to, at_ms } => {
                state.entries.retain(|entry| matches!(**entry, Entry::System { .. }));
                state.seen.clear();
                state.older = Older::Maybe;
                let missing = to - from + 1;
                let text = format!("{missing} message{} could not be recovered", if missing == 1 { "" } else { "s" });
                state.push(Entry::System { text, at_ms });
            }
            Action::LoadingOlder => state.older = Older::Loading,
            Action::Older { messages, has_more } => {
                for message in messages {
                    state.insert(message);
                }
                state.older = if has_more { Older::Maybe } else { Older::Exhausted };
            }
            Action::OlderFailed => state.older = Older::Maybe,
            Action::Pending(pending) => state.pending = pending,
        }
        Rc::new(state)
    }
}

impl RoomState {
    /// The sequence number of the oldest message shown.
    pub fn oldest_seq(&self) -> Option<u64> {
        self.entries.iter().find_map(|entry| match &**entry {
            Entry::Message(message) => Some(message.seq),
            Entry::System { .. } => None,
        })
    }

    /// Whether there may be older messages to load.
    pub fn can_load_older(&self) -> bool {
        self.older == Older::Maybe && self.oldest_seq().is_some_and(|seq| seq > 1)
    }

    /// Places a message by sequence number: after every message with a
    /// lower one (live messages append; older pages go to the front).
    fn insert(&mut self, message: ChatMessage) {
        if !self.seen.insert(message.id) {
            return;
        }
        let position = self
            .entries
            .iter()
            .rposition(|entry| matches!(&**entry, Entry::Message(m) if m.seq < message.seq))
            .map_or_else(
                || self.entries.iter().position(|e| matches!(**e, Entry::Message(_))).unwrap_or(self.entries.len()),
                |index| index + 1,
            );
        if position == self.entries.len() {
            self.push(Entry::Message(message));
        } else {
            self.entries.insert(position, Rc::new(Entry::Message(message)));
        }
    }

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

    fn texts(state: &RoomState) -> Vec<String> {
        state
            .entries
            .iter()
            .map(|entry| match &**entry {
                Entry::Message(m) => m.text.clone(),
                Entry::System { text, .. } => format!("[{text}]"),
            })
            .collect()
    }

    #[test]
    fn messages_take_their_place_by_sequence_number() {
        let mut state = Rc::new(RoomState::default());
        state = reduce(state, Action::System { text: "connected".into(), at_ms: 0.0 });
        for seq in [5, 7, 6] {
            state = reduce(state, Action::Received(message(MessageId(Uuid::new_v4()), seq)));
        }
        assert_eq!(texts(&state), ["[connected]", "m5", "m6", "m7"]);
        assert_eq!(state.oldest_seq(), Some(5));
        assert!(state.can_load_older());
        let older = vec![message(MessageId(Uuid::new_v4()), 3), message(MessageId(Uuid::new_v4()), 4)];
        state = reduce(state, Action::Older { messages: older, has_more: false });
        assert_eq!(texts(&state), ["[connected]", "m3", "m4", "m5", "m6", "m7"]);
        assert!(!state.can_load_older());
    }

    #[test]
    fn a_gap_replaces_what_is_shown_with_a_note() {
        let mut state = Rc::new(RoomState::default());
        state = reduce(state, Action::Received(message(MessageId(Uuid::new_v4()), 1)));
        state = reduce(state, Action::Gap { from: 2, to: 41, at_ms: 0.0 });
        state = reduce(state, Action::Received(message(MessageId(Uuid::new_v4()), 90)));
        assert_eq!(texts(&state), ["[40 messages could not be recovered]", "m90"]);
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
