//! What a history store must do. Three implementations: [`MemoryStore`]
//! for tests and throwaway runs, [`SqliteStore`] for one node, and
//! [`RedisStore`] for many; the contract tests in `history/tests.rs` run
//! against all three (retention by `prune` against the first two: Redis
//! applies it as it appends).
//!
//! [`MemoryStore`]: super::memory::MemoryStore
//! [`SqliteStore`]: super::sqlite::SqliteStore
//! [`RedisStore`]: super::redis_store::RedisStore

use std::time::Duration;

use roomcast_shared::{ChatMessage, ClientId, GroupName};
use uuid::Uuid;

use crate::ban::Ban;

/// Why the history could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("database error: {0}")]
    Database(Box<dyn std::error::Error + Send + Sync>),
    #[error("cannot open the history at {path}: {source}")]
    Open { path: String, source: std::io::Error },
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("history task failed: {0}")]
    Task(String),
}

/// One message to append. The store fills in `message.seq`, `epoch` and
/// `outcome`.
#[derive(Debug, Clone)]
pub struct Appending {
    pub message: ChatMessage,
    /// The epoch of the group's history the message is (or was) stored in.
    pub epoch: String,
    pub outcome: Outcome,
}

impl Appending {
    pub fn new(message: ChatMessage) -> Self {
        Self { message, epoch: String::new(), outcome: Outcome::Pending }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Not appended yet (or the batch failed).
    Pending,
    /// Stored as `message.seq`.
    New,
    /// The group already holds this message id, as this sequence number.
    Duplicate(u64),
    /// The group holds this message id for another text, as this number:
    /// nothing is stored (a client is answered as for a duplicate, the
    /// publish API with `409`).
    Conflict(u64),
    /// Not stored: it would create a group past the store's `max_groups`.
    OverQuota,
}

impl Outcome {
    /// The outcome of an id the group holds as `seq`: a resend of the same
    /// text, or another text under that id.
    pub fn repeated(same_text: bool, seq: u64) -> Self {
        if same_text {
            Self::Duplicate(seq)
        } else {
            Self::Conflict(seq)
        }
    }
}

/// A group's history as one read saw it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Head {
    /// Sequence numbers are only comparable within one epoch: a group gets
    /// a new random one whenever it is created, so numbers given out again
    /// after it was removed (retention emptied it) or after the store
    /// started over are never mistaken for the old ones. Empty for a group
    /// that does not exist.
    pub epoch: String,
    /// The oldest message still retained, if any.
    pub oldest: Option<u64>,
    /// The last sequence number given out in this epoch (0 for no group).
    /// Never decreases within an epoch, whatever retention removes.
    pub last: u64,
    /// Numbers up to this one were given out before this epoch began (0
    /// for a group created afresh; above 0 when a Redis history that went
    /// back started a new epoch above what nodes had seen).
    pub base: u64,
}

/// Where a read starts, and which way it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    /// The first messages with `seq > n`.
    After(u64),
    /// The last messages with `seq < n` (`u64::MAX`: the latest).
    Before(u64),
}

impl Range {
    pub const LATEST: Self = Self::Before(u64::MAX);
}

/// How much one read returns: at most `messages`, and no more than `bytes`
/// of them as JSON, counting from where the read starts, though always at
/// least one message when there is one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub messages: usize,
    pub bytes: usize,
}

impl Limit {
    pub const NONE: Self = Self { messages: 0, bytes: 0 };

    pub fn messages(messages: usize) -> Self {
        Self { messages, bytes: usize::MAX }
    }
}

/// What one read returns: the group's head and the messages, from one
/// consistent snapshot (a prune cannot fall between the two).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Slice {
    pub head: Head,
    /// Oldest first.
    pub messages: Vec<ChatMessage>,
}

/// How much history each group keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Retention {
    /// Keep at most this many messages per group.
    pub max_messages: Option<u64>,
    /// Remove messages older than this.
    pub max_age: Option<Duration>,
    /// Keep at most this many bytes of message text per group.
    pub max_bytes: Option<u64>,
    /// Remove groups nothing was written to for this long and nobody is
    /// in (the retention task asks who is).
    pub group_idle_age: Option<Duration>,
}

/// How long a message id is recognized after the message was stored,
/// whatever retention removes meanwhile: an outbox resend after a long
/// outage, or an API retry, is still exactly-once. (The SQLite store gives
/// this up for the oldest ids when the database is at its size limit.)
pub const DEDUP_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// What a repeated message id's text is compared with once its message is
/// removed: the first 8 bytes of the SHA-256 of the text. (Kept per
/// removed id for a day, so small: two texts that share it, one chance in
/// 2^64, would answer a repeat as a duplicate instead of a conflict.)
pub fn text_digest(text: &str) -> [u8; 8] {
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest.as_ref()[..8]);
    first
}

/// How far an identity has read a group: up to `seq` of history `epoch`.
/// Numbers are only comparable within one epoch, so a cursor of another
/// epoch than the group's counts as none.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Cursor {
    pub epoch: String,
    pub seq: u64,
}

/// One of an identity's cursors, as [`Store::cursors`] lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorEntry {
    pub group: GroupName,
    pub cursor: Cursor,
    /// When it was last set (Unix milliseconds), moved or not.
    pub updated_ms: u64,
}

/// One cursor to set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorWrite {
    pub sub: ClientId,
    pub group: GroupName,
    pub cursor: Cursor,
}

/// Most cursors kept per identity (its room list): setting one more
/// forgets the least recently set.
pub const CURSORS_PER_IDENTITY: usize = 200;

/// Where a new value leaves a cursor: the higher of the two within one
/// epoch; the new one when the epochs differ (the caller only sets cursors
/// of a group's current epoch, so the stored one is of an older one). A
/// cursor of no epoch (an invitation: the room is in the list, nothing
/// read) is set only where there is none.
pub fn moved(stored: Option<&Cursor>, new: &Cursor) -> Cursor {
    match stored {
        Some(stored) if new.epoch.is_empty() => stored.clone(),
        Some(stored) if stored.epoch == new.epoch => Cursor { epoch: new.epoch.clone(), seq: stored.seq.max(new.seq) },
        _ => new.clone(),
    }
}

/// A group's durable log. Implementations are internally synchronized:
/// `append` is called by one writer at a time, reads from anywhere.
pub trait Store: Send + Sync + 'static {
    /// Appends a batch in order, giving each new message the next sequence
    /// number of its group, and sets each item's outcome. A message whose
    /// `(group, id)` is already stored, or was removed by retention less
    /// than [`DEDUP_WINDOW`] after it was stored, is not stored again (its
    /// group not having started over since): `Duplicate`, or `Conflict`
    /// when its text differs (for a removed message, by [`text_digest`]);
    /// one that would
    /// create a group past the store's quota is not stored at all. An item
    /// left `Pending` was not stored, or its fate is unknown (a lost
    /// connection): either way a resend with the same id is stored once.
    /// SQLite stores a batch all or nothing; Redis item by item.
    fn append(&self, batch: &mut [Appending]) -> Result<(), HistoryError>;

    /// Messages of `group` from `range`, within `limit`, oldest first, and
    /// the group's head, from one snapshot.
    fn read(&self, group: &GroupName, range: Range, limit: Limit) -> Result<Slice, HistoryError>;

    /// Removes what `retention` no longer keeps, and the groups left empty
    /// (a later message creates them again, in a new epoch); returns how
    /// many messages it removed.
    fn prune(&self, retention: &Retention, now_ms: u64) -> Result<u64, HistoryError>;

    /// Whether the store can take writes now: for `/readyz`, and to refuse
    /// new sockets while it cannot.
    fn ready(&self) -> bool {
        true
    }

    /// Removes the groups whose last message was stored before
    /// `idle_since_ms` and that `occupied` says nobody is in, with their
    /// history and kept ids, freeing their places under `max_groups`;
    /// returns how many went. (A later message creates such a group again,
    /// in a new epoch.)
    fn remove_idle_groups(
        &self,
        idle_since_ms: u64,
        occupied: &(dyn Fn(&GroupName) -> bool + Sync),
    ) -> Result<u64, HistoryError>;

    /// Refuses the tokens of `sub` issued before `min_iat` (Unix seconds),
    /// from now on and after restarts; an earlier revocation of the same
    /// identity keeps the later of the two.
    fn revoke(&self, sub: ClientId, min_iat: u64) -> Result<(), HistoryError>;

    /// Every revocation: for a node's copy at start, and (in Redis mode)
    /// for learning what other nodes revoked.
    fn revocations(&self) -> Result<Vec<(ClientId, u64)>, HistoryError>;

    /// Keeps `ban` (replacing one of the same id) until it ends, across
    /// restarts.
    fn ban(&self, ban: &Ban) -> Result<(), HistoryError>;

    /// Ends the ban `id` now; whether it was there.
    fn lift(&self, id: Uuid) -> Result<bool, HistoryError>;

    /// The bans in force at `now_ms`; those over are removed on the way.
    fn bans(&self, now_ms: u64) -> Result<Vec<Ban>, HistoryError>;

    /// Sets each write's cursor at `now_ms` (see [`moved`]: a lower number
    /// of the same epoch is ignored, another epoch replaces it), keeping
    /// each identity's [`CURSORS_PER_IDENTITY`] most recently set ones;
    /// returns the cursors as they now are, in order. Durable as the
    /// history is; a batch is one transaction where the store has them.
    fn set_cursors(&self, writes: &[CursorWrite], now_ms: u64) -> Result<Vec<Cursor>, HistoryError>;

    /// `sub`'s cursor in `group`, whatever its epoch.
    fn cursor(&self, sub: ClientId, group: &GroupName) -> Result<Option<Cursor>, HistoryError>;

    /// Every cursor of `sub`, the most recently set first.
    fn cursors(&self, sub: ClientId) -> Result<Vec<CursorEntry>, HistoryError>;

    /// Forgets `sub`'s cursor in `group` (the room leaves its list);
    /// returns whether there was one.
    fn forget(&self, sub: ClientId, group: &GroupName) -> Result<bool, HistoryError>;

    /// Every cursor set in `group` (invitations too, whatever the epoch),
    /// with its identity, in no order; `None` when more than `limit`
    /// identities have one there. A large group costs one bounded look (an
    /// index or a count), never a read of its cursors: "seen by" is for
    /// small groups.
    fn readers(&self, group: &GroupName, limit: usize) -> Result<Option<Vec<(ClientId, Cursor)>>, HistoryError>;

    /// The group's head alone.
    fn head(&self, group: &GroupName) -> Result<Head, HistoryError> {
        Ok(self.read(group, Range::LATEST, Limit::NONE)?.head)
    }
}

/// A new random epoch: 16 hex digits.
pub fn new_epoch() -> String {
    let mut bytes = [0u8; 8];
    // The OS random source; without it, the time still differs per store.
    if getrandom::getrandom(&mut bytes).is_err() {
        bytes = (crate::clock::unix_millis() ^ u64::from(std::process::id()).rotate_left(32)).to_be_bytes();
    }
    crate::hex::hex(&bytes)
}

/// Bytes of `message` as JSON, as a page or a replay carries it.
pub fn json_len(message: &ChatMessage) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing to a counter cannot fail, and neither can serializing a message.
    let _ = serde_json::to_writer(&mut count, message);
    count.0
}

/// Takes messages from `rows` (nearest to where the read starts first) while
/// they fit `limit`: always the first, then while the byte total holds.
pub fn take_within<E>(rows: impl Iterator<Item = Result<ChatMessage, E>>, limit: Limit) -> Result<Vec<ChatMessage>, E> {
    let mut taken = Vec::new();
    let mut bytes = 0usize;
    for row in rows.take(limit.messages) {
        let message = row?;
        if limit.bytes != usize::MAX {
            bytes = bytes.saturating_add(json_len(&message));
            if bytes > limit.bytes && !taken.is_empty() {
                break;
            }
        }
        taken.push(message);
    }
    Ok(taken)
}
