//! The room view as the driver sees it: actions dispatched to its state.

use roomcast_shared::ChatMessage;
use yew::UseReducerDispatcher;

use crate::net::events::now_ms;
use crate::state::{Action, RoomState};
use crate::timeline::LineKind;

#[derive(Clone)]
pub struct View(UseReducerDispatcher<RoomState>);

impl View {
    pub fn new(dispatch: UseReducerDispatcher<RoomState>) -> Self {
        Self(dispatch)
    }

    pub fn act(&self, action: Action) {
        self.0.dispatch(action);
    }

    /// A line in the timeline, stamped now.
    pub fn note(&self, kind: LineKind, text: String) {
        self.act(Action::Note { kind, text, at_ms: now_ms() });
    }

    /// Received messages, if a batch is ready, as one action (one render).
    pub fn hand_over(&self, batch: Option<Vec<ChatMessage>>) {
        if let Some(messages) = batch {
            self.act(Action::Received(messages));
        }
    }
}
