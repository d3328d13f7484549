//! The rows of a timeline: messages and system lines, in key order.

use std::rc::Rc;

use roomcast_shared::ChatMessage;

/// Where a row sits. Messages are `(seq, 0)`, system lines `(anchor, n)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RowKey {
    pub at: u64,
    pub line: u64,
}

/// What a system line is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    /// The connection opened or closed (the seeds' onopen/onclose log).
    Event,
    /// A failed reconnect attempt; repeated attempts update one line.
    Retry,
    /// Messages that could not be recovered.
    Gap,
    /// Anything else worth telling (a server error without a message id).
    Notice,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SystemLine {
    pub kind: LineKind,
    pub text: String,
    pub at_ms: f64,
}

/// One row as rendered.
#[derive(Debug, Clone, PartialEq)]
pub enum Row {
    Message(Rc<ChatMessage>),
    Line {
        key: RowKey,
        line: Rc<SystemLine>,
    },
    /// "New messages": where the unread part began when the room opened,
    /// just above message `before`.
    Divider {
        before: u64,
    },
}
