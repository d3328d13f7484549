//! What the view (and the tab watcher) asks of the driver: the one type
//! both sides of the command channel depend on, so neither depends on the
//! other.

use roomcast_shared::MessageId;

use crate::session::{Owner, Saved};

/// What the view asks of the driver.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Send(String),
    /// The user changed the composer's text; `has_text`: it is not blank.
    Typing {
        has_text: bool,
    },
    /// The user has seen message `seq`: its row is in view, in a visible,
    /// focused tab.
    Seen(u64),
    /// The user's Retry on a failed message.
    Retry(MessageId),
    /// The user's Delete on an unsent message.
    Delete(MessageId),
    Close,
    Reconnect,
    /// The browser's `online` event.
    Online,
    /// The browser's `offline` event.
    Offline,
    /// Another tab's outbox, left by a tab that is gone.
    Adopt {
        owner: Owner,
        items: Vec<Saved>,
    },
    /// Rewrite this tab's outbox so that other tabs see it is alive (for
    /// browsers without Web Locks).
    Refresh,
}
