//! The room view's state: what the user sees, changed only by [`Action`]s.
//!
//! The timeline is large (up to 2,000 messages) and changes with every
//! message, so it is not copied per action: the state holds it behind an
//! `Rc<RefCell<_>>`, each action changes it in place and bumps `revision`,
//! and a new state shares the same timeline. Everything else is small and
//! replaced whole.

use std::cell::{Ref, RefCell};
use std::rc::Rc;

use roomcast_shared::{limits, ChatMessage, ClientId};
use yew::Reducible;

use crate::session::{Pending, PeopleShown, SeenByLine, Transport, TypingLine};
use crate::timeline::{LineKind, Page, PageRequest, Timeline};

/// The connection status line.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    Connecting {
        attempt: u32,
    },
    /// Connected, over `via`.
    Open {
        via: Transport,
    },
    Reconnecting {
        attempt: u32,
        at_ms: f64,
    },
    /// The browser says it is offline.
    Offline,
    Closed {
        reason: String,
    },
    /// The server refuses this room for good (a direct message of other
    /// people): nothing is retried.
    Refused {
        reason: String,
    },
}

impl Status {
    /// A stable machine-readable name (also used by the UI tests).
    pub fn key(&self) -> &'static str {
        match self {
            Self::Connecting { .. } => "connecting",
            Self::Open { .. } => "open",
            Self::Reconnecting { .. } => "reconnecting",
            Self::Offline => "offline",
            Self::Closed { .. } => "closed",
            Self::Refused { .. } => "refused",
        }
    }
}

#[derive(Debug, Clone)]
pub struct RoomState {
    pub status: Status,
    timeline: Rc<RefCell<Timeline>>,
    /// Messages typed by the user and not yet acknowledged.
    pub outbox: Rc<[Pending]>,
    /// The largest `send` frame the server accepts: the last value it told
    /// (kept for use while offline), else the protocol's default.
    pub max_message_bytes: usize,
    /// This browser's client id, once it has an identity: its verified
    /// messages are "You".
    pub me: Option<ClientId>,
    /// Who else is typing, if anyone.
    pub typing: Option<TypingLine>,
    /// Who is in the room (nothing known before the first snapshot).
    pub people: Rc<PeopleShown>,
    /// "Seen by …" under one's own latest message, if anyone has.
    pub seen_by: Option<Rc<SeenByLine>>,
    /// Bumped by every action: the timeline changes in place.
    revision: u64,
}

impl PartialEq for RoomState {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.timeline, &other.timeline) && self.revision == other.revision
    }
}

impl Default for RoomState {
    fn default() -> Self {
        Self::new(None)
    }
}

impl RoomState {
    /// A state for a room view, with the message size limit remembered from
    /// an earlier visit, if any.
    pub fn new(max_message_bytes: Option<usize>) -> Self {
        Self {
            status: Status::Connecting { attempt: 0 },
            timeline: Rc::default(),
            outbox: Rc::new([]),
            max_message_bytes: max_message_bytes.unwrap_or(limits::MAX_MESSAGE_BYTES),
            me: None,
            typing: None,
            people: Rc::default(),
            seen_by: None,
            revision: 0,
        }
    }

    pub fn timeline(&self) -> Ref<'_, Timeline> {
        self.timeline.borrow()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Status(Status),
    /// A connection event for the timeline.
    Note {
        kind: LineKind,
        text: String,
        at_ms: f64,
    },
    /// Group messages, live or replayed, in the order they came.
    Received(Vec<ChatMessage>),
    /// The server could not replay messages `from..=to`.
    Gap {
        from: u64,
        to: u64,
        at_ms: f64,
    },
    /// The group's history started over: what is shown is gone.
    Reset {
        at_ms: f64,
    },
    /// The replay is complete up to `seq`.
    Synced(u64),
    /// A message of ours was stored as this number.
    Acked(u64),
    /// A page of history was asked for.
    Loading(PageRequest),
    /// The answer to a page asked for: the page, or `None` if it failed.
    Paged {
        request: PageRequest,
        page: Option<Page>,
    },
    /// The user is at the bottom of the timeline (or left it).
    Following(bool),
    /// The outbox changed.
    Outbox(Vec<Pending>),
    /// The server's message size limit.
    Limit(usize),
    /// This browser's identity (new, or renewed).
    Me(ClientId),
    /// The typing line changed (`None`: nobody is typing).
    Typing(Option<TypingLine>),
    /// Who is in the room changed.
    People(Rc<PeopleShown>),
    /// The room opened with new messages after `after` (the stored read
    /// cursor): "New messages" goes above the first not `me`'s.
    Divider {
        after: u64,
        me: ClientId,
    },
    /// Who has seen one's own latest message changed.
    SeenBy(Option<Rc<SeenByLine>>),
}

impl Reducible for RoomState {
    type Action = Action;

    fn reduce(self: Rc<Self>, action: Action) -> Rc<Self> {
        let mut next = (*self).clone();
        next.revision += 1;
        {
            let mut timeline = next.timeline.borrow_mut();
            match action {
                Action::Status(status) => next.status = status,
                Action::Note { kind, text, at_ms } => timeline.note(kind, text, at_ms),
                Action::Received(messages) => timeline.receive(messages),
                Action::Gap { from, to, at_ms } => timeline.gap(from, to, at_ms),
                Action::Reset { at_ms } => timeline.reset(0, at_ms),
                Action::Synced(seq) | Action::Acked(seq) => timeline.exists(seq),
                Action::Loading(request) => timeline.loading(request),
                Action::Paged { request, page } => timeline.answered(request, page),
                Action::Following(following) => timeline.set_following(following),
                Action::Outbox(pending) => next.outbox = pending.into(),
                Action::Limit(limit) => next.max_message_bytes = limit,
                Action::Me(client_id) => next.me = Some(client_id),
                Action::Typing(line) => next.typing = line,
                Action::People(people) => next.people = people,
                Action::Divider { after, me } => timeline.divide(after, Some(me)),
                Action::SeenBy(line) => next.seen_by = line,
            }
        }
        Rc::new(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_change_the_shared_timeline_in_place() {
        let state = Rc::new(RoomState::default());
        let before = state.clone();
        let state = state.reduce(Action::Note { kind: LineKind::Event, text: "connected".into(), at_ms: 0.0 });
        assert_ne!(*state, *before, "a new revision renders");
        assert!(Rc::ptr_eq(&state.timeline, &before.timeline), "the timeline is not copied");
        assert_eq!(state.timeline().rows().len(), 1);
    }

    #[test]
    fn status_and_limits_are_recorded() {
        let state = Rc::new(RoomState::new(Some(8192)));
        assert_eq!(state.max_message_bytes, 8192);
        let state =
            state.reduce(Action::Status(Status::Open { via: Transport::WebSocket })).reduce(Action::Limit(1024));
        assert_eq!(state.status.key(), "open");
        assert_eq!(state.max_message_bytes, 1024);
    }

    #[test]
    fn the_typing_line_is_recorded_and_cleared() {
        let state = Rc::new(RoomState::default());
        let line = TypingLine::One("Alice".into());
        let state = state.reduce(Action::Typing(Some(line.clone())));
        assert_eq!(state.typing, Some(line));
        assert_eq!(state.reduce(Action::Typing(None)).typing, None);
    }
}
