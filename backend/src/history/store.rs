//! What a history store must do. Two implementations: [`MemoryStore`] for
//! tests and throwaway runs, [`SqliteStore`] for everything else.
//!
//! [`MemoryStore`]: super::memory::MemoryStore
//! [`SqliteStore`]: super::sqlite::SqliteStore

use std::time::Duration;

use roomcast_shared::{ChatMessage, GroupName};

/// Why the history could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("cannot open the history at {path}: {source}")]
    Open { path: String, source: std::io::Error },
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("history task failed: {0}")]
    Task(String),
}

/// One message to append. The store fills in `message.seq` and `outcome`.
#[derive(Debug, Clone)]
pub struct Appending {
    pub message: ChatMessage,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Not appended yet (or the batch failed).
    Pending,
    /// Stored as `message.seq`.
    New,
    /// The group already holds this message id, as this sequence number.
    Duplicate(u64),
}

/// The sequence numbers of a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// The oldest message still retained, if any.
    pub oldest: Option<u64>,
    /// The last sequence number ever given out (0 for a new group). Never
    /// decreases, whatever retention removes.
    pub last: u64,
}

/// How much history each group keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Keep at most this many messages per group.
    pub max_messages: Option<u64>,
    /// Remove messages older than this.
    pub max_age: Option<Duration>,
}

/// A group's durable log. Implementations are internally synchronized:
/// `append` is called by one writer at a time, reads from anywhere.
pub trait Store: Send + Sync + 'static {
    /// Appends a batch atomically (all or nothing), in order, giving each new
    /// message the next sequence number of its group. A message whose
    /// `(group, id)` is already stored is not stored again.
    fn append(&self, batch: &mut [Appending]) -> Result<(), HistoryError>;

    /// The last `limit` messages, oldest first.
    fn latest(&self, group: &GroupName, limit: usize) -> Result<Vec<ChatMessage>, HistoryError>;

    /// Messages with `seq > after`, oldest first, at most `limit`.
    fn after(&self, group: &GroupName, after: u64, limit: usize) -> Result<Vec<ChatMessage>, HistoryError>;

    /// The last `limit` messages with `seq < before`, oldest first.
    fn before(&self, group: &GroupName, before: u64, limit: usize) -> Result<Vec<ChatMessage>, HistoryError>;

    fn bounds(&self, group: &GroupName) -> Result<Bounds, HistoryError>;

    /// Removes what `retention` no longer keeps; returns how many messages.
    fn prune(&self, retention: &Retention, now_ms: u64) -> Result<u64, HistoryError>;
}
