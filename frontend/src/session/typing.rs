//! Typing indicators, both ways, as plain rules with the time passed in.
//!
//! - [`TypingSender`]: when the composer's input sends `typing` (at once on
//!   the first keystroke with text, then at most once per
//!   [`TYPING_EVERY_MS`], only on a connection that has been welcomed).
//! - [`TypingPeople`]: who is shown as typing: each identity until
//!   [`TYPING_SHOWN_MS`] after its last `typing`, or until its message
//!   arrives; a new connection starts with nobody.

use std::fmt;

use roomcast_shared::limits::{TYPING_EVERY_MS, TYPING_SHOWN_MS};
use roomcast_shared::{ClientId, Sender};

/// What a sender without a display name is called in the typing line.
pub const SOMEONE: &str = "Someone";

/// When this client tells the group that its user is typing. One per
/// connection: a new connection starts closed, and sends at once on the
/// first keystroke once open.
#[derive(Debug, Clone, Default)]
pub struct TypingSender {
    open: bool,
    last_sent_ms: Option<f64>,
}

impl TypingSender {
    /// The connection was welcomed: `typing` may go from now on.
    pub fn opened(&mut self) {
        self.open = true;
    }

    /// The user changed the composer's text at `now_ms`; `has_text` is false
    /// for an empty (or blank) box. True when a `typing` goes now (and counts
    /// as sent).
    pub fn keystroke(&mut self, has_text: bool, now_ms: f64) -> bool {
        if !self.open || !has_text {
            return false;
        }
        match self.last_sent_ms {
            Some(last) if now_ms - last < TYPING_EVERY_MS as f64 => false,
            _ => {
                self.last_sent_ms = Some(now_ms);
                true
            }
        }
    }
}

/// The typing line, names apart so that the view can isolate each one.
#[derive(Debug, Clone, PartialEq)]
pub enum TypingLine {
    /// "Alice is typing…"
    One(String),
    /// "Alice and Bob are typing…"
    Two(String, String),
    /// "3 people are typing…"
    Many(usize),
}

impl fmt::Display for TypingLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::One(name) => write!(f, "{name} is typing…"),
            Self::Two(first, second) => write!(f, "{first} and {second} are typing…"),
            Self::Many(count) => write!(f, "{count} people are typing…"),
        }
    }
}

#[derive(Debug, Clone)]
struct Typer {
    client_id: ClientId,
    name: String,
    last_ms: f64,
}

/// Who is typing in the room, in the order they started (a refresh keeps a
/// typer's place). The methods that change it say whether the line shown
/// changed, so the view is told only then.
#[derive(Debug, Clone)]
pub struct TypingPeople {
    /// This connection's own identity: its other tabs are not shown.
    me: ClientId,
    typers: Vec<Typer>,
}

impl TypingPeople {
    /// Nobody typing yet, for a connection as `me`.
    pub fn new(me: ClientId) -> Self {
        Self { me, typers: Vec::new() }
    }

    /// `from` is typing at `now_ms`: shown (or kept) until
    /// [`TYPING_SHOWN_MS`] from now. True when the line changed.
    pub fn typed(&mut self, from: &Sender, now_ms: f64) -> bool {
        if from.client_id == self.me {
            return false;
        }
        let name = from.name.as_ref().map_or_else(|| SOMEONE.to_owned(), ToString::to_string);
        match self.typers.iter_mut().find(|typer| typer.client_id == from.client_id) {
            Some(typer) => {
                typer.last_ms = typer.last_ms.max(now_ms);
                let renamed = typer.name != name;
                typer.name = name;
                renamed && self.typers.len() <= 2
            }
            None => {
                self.typers.push(Typer { client_id: from.client_id, name, last_ms: now_ms });
                true
            }
        }
    }

    /// A message from `client_id` arrived: it is no longer shown as typing.
    /// True when the line changed.
    pub fn message_from(&mut self, client_id: ClientId) -> bool {
        let before = self.typers.len();
        self.typers.retain(|typer| typer.client_id != client_id);
        self.typers.len() != before
    }

    /// Drops the typers whose time is up at `now_ms`. True when the line
    /// changed.
    pub fn expire(&mut self, now_ms: f64) -> bool {
        let before = self.typers.len();
        self.typers.retain(|typer| now_ms - typer.last_ms < TYPING_SHOWN_MS as f64);
        self.typers.len() != before
    }

    /// Nobody is typing any more (the connection is gone). True when the
    /// line changed.
    pub fn clear(&mut self) -> bool {
        let had = !self.typers.is_empty();
        self.typers.clear();
        had
    }

    /// When [`expire`](Self::expire) next has something to drop.
    pub fn due_ms(&self) -> Option<f64> {
        self.typers.iter().map(|typer| typer.last_ms + TYPING_SHOWN_MS as f64).reduce(f64::min)
    }

    /// The line shown, if anyone is typing.
    pub fn shown(&self) -> Option<TypingLine> {
        match self.typers.as_slice() {
            [] => None,
            [one] => Some(TypingLine::One(one.name.clone())),
            [first, second] => Some(TypingLine::Two(first.name.clone(), second.name.clone())),
            many => Some(TypingLine::Many(many.len())),
        }
    }

    /// The line shown, as text.
    pub fn line(&self) -> Option<String> {
        self.shown().map(|line| line.to_string())
    }
}

#[cfg(test)]
mod tests {
    use roomcast_shared::DisplayName;
    use uuid::Uuid;

    use super::*;

    const EVERY: f64 = TYPING_EVERY_MS as f64;
    const SHOWN: f64 = TYPING_SHOWN_MS as f64;

    fn id(n: u128) -> ClientId {
        ClientId(Uuid::from_u128(n))
    }

    fn sender(n: u128, name: Option<&str>) -> Sender {
        let name = name.map(|name| name.parse::<DisplayName>().unwrap());
        Sender { client_id: id(n), name, verified: true }
    }

    fn people() -> TypingPeople {
        TypingPeople::new(id(99))
    }

    fn open_sender() -> TypingSender {
        let mut typing = TypingSender::default();
        typing.opened();
        typing
    }

    #[test]
    fn the_first_keystroke_sends_at_once_then_one_per_interval() {
        let mut typing = open_sender();
        assert!(typing.keystroke(true, 1_000.0));
        assert!(!typing.keystroke(true, 1_001.0));
        assert!(!typing.keystroke(true, 1_000.0 + EVERY - 1.0));
        assert!(typing.keystroke(true, 1_000.0 + EVERY));
        assert!(!typing.keystroke(true, 1_000.0 + EVERY + 500.0));
    }

    #[test]
    fn a_pause_longer_than_the_interval_sends_at_once_again() {
        let mut typing = open_sender();
        assert!(typing.keystroke(true, 0.0));
        assert!(typing.keystroke(true, 10_000.0));
    }

    #[test]
    fn nothing_goes_before_the_connection_is_open() {
        let mut typing = TypingSender::default();
        assert!(!typing.keystroke(true, 0.0));
        typing.opened();
        assert!(typing.keystroke(true, 1.0), "a keystroke before open does not use up the interval");
    }

    #[test]
    fn an_empty_box_sends_nothing_and_does_not_use_up_the_interval() {
        let mut typing = open_sender();
        assert!(!typing.keystroke(false, 0.0));
        assert!(typing.keystroke(true, 1.0));
        assert!(!typing.keystroke(false, EVERY + 10.0));
    }

    #[test]
    fn one_typer_is_shown_by_name() {
        let mut typing = people();
        assert!(typing.typed(&sender(1, Some("Alice")), 0.0));
        assert_eq!(typing.line().as_deref(), Some("Alice is typing…"));
        assert_eq!(typing.due_ms(), Some(SHOWN));
    }

    #[test]
    fn a_sender_without_a_name_is_someone() {
        let mut typing = people();
        typing.typed(&sender(1, None), 0.0);
        assert_eq!(typing.line().as_deref(), Some("Someone is typing…"));
    }

    #[test]
    fn the_time_shown_ends_exactly_after_typing_shown_ms() {
        let mut typing = people();
        typing.typed(&sender(1, Some("Alice")), 1_000.0);
        assert!(!typing.expire(1_000.0 + SHOWN - 0.5));
        assert_eq!(typing.line().as_deref(), Some("Alice is typing…"));
        assert!(typing.expire(1_000.0 + SHOWN));
        assert_eq!(typing.line(), None);
        assert_eq!(typing.due_ms(), None);
    }

    #[test]
    fn a_refresh_extends_the_time_without_changing_the_line() {
        let mut typing = people();
        typing.typed(&sender(1, Some("Alice")), 0.0);
        assert!(!typing.typed(&sender(1, Some("Alice")), 4_000.0), "the same line: no new render");
        assert_eq!(typing.due_ms(), Some(4_000.0 + SHOWN));
        assert!(!typing.expire(SHOWN));
        assert_eq!(typing.line().as_deref(), Some("Alice is typing…"));
        assert!(typing.expire(4_000.0 + SHOWN));
    }

    #[test]
    fn a_message_clears_its_sender_at_once() {
        let mut typing = people();
        typing.typed(&sender(1, Some("Alice")), 0.0);
        typing.typed(&sender(2, Some("Bob")), 0.0);
        assert!(typing.message_from(id(1)));
        assert_eq!(typing.line().as_deref(), Some("Bob is typing…"));
        assert!(!typing.message_from(id(3)), "someone not typing changes nothing");
        assert!(typing.message_from(id(2)));
        assert_eq!(typing.line(), None);
    }

    #[test]
    fn the_order_is_who_started_first_and_a_refresh_keeps_it() {
        let mut typing = people();
        typing.typed(&sender(1, Some("Alice")), 0.0);
        typing.typed(&sender(2, Some("Bob")), 100.0);
        typing.typed(&sender(1, Some("Alice")), 200.0);
        assert_eq!(typing.line().as_deref(), Some("Alice and Bob are typing…"));
        assert_eq!(typing.due_ms(), Some(100.0 + SHOWN), "Bob is due first");
        assert!(typing.expire(100.0 + SHOWN));
        assert_eq!(typing.line().as_deref(), Some("Alice is typing…"));
    }

    #[test]
    fn three_or_more_are_counted() {
        let mut typing = people();
        for (n, name) in [(1, "Alice"), (2, "Bob"), (3, "Carol")] {
            typing.typed(&sender(n, Some(name)), 0.0);
        }
        assert_eq!(typing.line().as_deref(), Some("3 people are typing…"));
        assert!(typing.typed(&sender(4, None), 0.0));
        assert_eq!(typing.line().as_deref(), Some("4 people are typing…"));
        assert_eq!(typing.shown(), Some(TypingLine::Many(4)));
    }

    #[test]
    fn a_new_name_changes_the_line_only_where_names_are_shown() {
        let mut typing = people();
        typing.typed(&sender(1, None), 0.0);
        assert!(typing.typed(&sender(1, Some("Alice")), 1.0));
        assert_eq!(typing.line().as_deref(), Some("Alice is typing…"));
        typing.typed(&sender(2, Some("Bob")), 1.0);
        typing.typed(&sender(3, Some("Carol")), 1.0);
        assert!(!typing.typed(&sender(1, Some("Alicia")), 2.0), "a count does not show names");
    }

    #[test]
    fn this_identity_in_another_tab_is_not_shown() {
        let mut typing = people();
        assert!(!typing.typed(&sender(99, Some("Me")), 0.0));
        assert_eq!(typing.line(), None);
    }

    #[test]
    fn a_closed_connection_clears_everyone() {
        let mut typing = people();
        assert!(!typing.clear());
        typing.typed(&sender(1, Some("Alice")), 0.0);
        assert!(typing.clear());
        assert_eq!(typing.line(), None);
        assert_eq!(typing.due_ms(), None);
    }

    #[test]
    fn names_are_text() {
        let mut typing = people();
        typing.typed(&sender(1, Some("<b>x</b>")), 0.0);
        assert_eq!(typing.shown(), Some(TypingLine::One("<b>x</b>".into())));
    }
}
