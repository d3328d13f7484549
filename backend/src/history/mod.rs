//! Durable per-group history: every message is stored with its sequence
//! number before anyone receives it, so a client can always recover what it
//! missed.
//!
//! - [`store`]: the [`Store`] contract; [`memory`] and [`sqlite`] implement it.
//! - [`sequencer`]: the single writer. It batches publishes into one
//!   transaction (group commit), then fans out the stored messages in
//!   sequence order and acknowledges them.
//! - [`retention`]: the background task that applies the retention policy.
//! - [`History`]: the async read side (replay on join, scrollback pages).

pub mod memory;
pub mod retention;
pub mod sequencer;
pub mod sqlite;
pub mod store;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use roomcast_shared::{limits, ChatMessage, GroupName};

pub use store::{Appending, Bounds, HistoryError, Outcome, Retention, Store};

/// Now, in Unix milliseconds: message timestamps and retention ages.
pub fn unix_millis() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// What a joining client receives before live messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replay {
    /// Messages that cannot be recovered, as `(from, to)`.
    pub gap: Option<(u64, u64)>,
    pub messages: Vec<ChatMessage>,
    /// The last message sent, or with none, the group's last sequence number
    /// when the replay was read.
    pub synced: u64,
}

/// Where a history page starts, and which way it extends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageFrom {
    /// The last messages before this number (`None`: the latest messages);
    /// for scrolling back.
    Before(Option<u64>),
    /// The first messages after this number; for catching up forward.
    After(u64),
}

/// History reads running at once. Reads block a thread (SQLite), so a burst
/// of joins must not grow the blocking pool, the per-thread allocator arenas
/// and the SQLite reader pool to hundreds; they queue here instead.
const CONCURRENT_READS: usize = 4;

/// The read side of the history, usable from async code.
#[derive(Clone)]
pub struct History {
    store: Arc<dyn Store>,
    reads: Arc<tokio::sync::Semaphore>,
}

impl std::fmt::Debug for History {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("History")
    }
}

impl History {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store, reads: Arc::new(tokio::sync::Semaphore::new(CONCURRENT_READS)) }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// What a client joining `group` gets: everything retained after `since`
    /// (after a gap if retention removed some of it); with no `since`, the
    /// latest `latest` messages; with a `since` beyond the group's last, a
    /// gap and the latest `latest` messages.
    pub async fn replay(&self, group: GroupName, since: Option<u64>, latest: usize) -> Result<Replay, HistoryError> {
        self.blocking(move |store| plan_replay(store, &group, since, latest)).await
    }

    /// Up to `limit` messages from `from`, oldest first, and whether more
    /// exist beyond the page in its direction: older ones before it for
    /// [`PageFrom::Before`], newer ones after it for [`PageFrom::After`].
    pub async fn page(
        &self,
        group: GroupName,
        from: PageFrom,
        limit: usize,
    ) -> Result<(Vec<ChatMessage>, bool), HistoryError> {
        self.blocking(move |store| {
            let mut messages = match from {
                PageFrom::Before(before) => store.before(&group, before.unwrap_or(u64::MAX), limit)?,
                PageFrom::After(after) => store.after(&group, after, limit)?,
            };
            keep_within_bytes(&mut messages, &from, limits::MAX_HISTORY_PAGE_BYTES);
            let bounds = store.bounds(&group)?;
            let has_more = match from {
                PageFrom::Before(_) => match (messages.first(), bounds.oldest) {
                    (Some(first), Some(oldest)) => first.seq > oldest,
                    _ => false,
                },
                // Retention removes the oldest messages only, so the numbers
                // between this page's last and the group's last are retained.
                PageFrom::After(_) => messages.last().is_some_and(|last| last.seq < bounds.last),
            };
            Ok((messages, has_more))
        })
        .await
    }

    /// Runs a store read on the blocking pool: SQLite calls block.
    async fn blocking<T: Send + 'static>(
        &self,
        read: impl FnOnce(&dyn Store) -> Result<T, HistoryError> + Send + 'static,
    ) -> Result<T, HistoryError> {
        let _permit = self.reads.acquire().await.map_err(|err| HistoryError::Task(err.to_string()))?;
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || read(store.as_ref()))
            .await
            .map_err(|err| HistoryError::Task(err.to_string()))?
    }
}

/// Bounds a page in bytes (as JSON), keeping the messages nearest to where
/// it was asked from: the newest of a `before` page, the oldest of an
/// `after` page; at least one. What is dropped is reported by `has_more`.
fn keep_within_bytes(messages: &mut Vec<ChatMessage>, from: &PageFrom, max_bytes: usize) {
    let size = |message: &ChatMessage| serde_json::to_vec(message).map_or(0, |json| json.len());
    let nearest_first: Box<dyn Iterator<Item = &ChatMessage>> = match from {
        PageFrom::Before(_) => Box::new(messages.iter().rev()),
        PageFrom::After(_) => Box::new(messages.iter()),
    };
    let (mut total, mut kept) = (0, 0);
    for message in nearest_first {
        total += size(message);
        if total > max_bytes && kept > 0 {
            break;
        }
        kept += 1;
    }
    match from {
        PageFrom::Before(_) => drop(messages.drain(..messages.len() - kept)),
        PageFrom::After(_) => messages.truncate(kept),
    }
}

/// Decides the replay. The client's watermark after it (`synced`) is the last
/// message it was sent, so that live messages already replayed are dropped
/// and none after it are.
fn plan_replay(
    store: &dyn Store,
    group: &GroupName,
    since: Option<u64>,
    latest: usize,
) -> Result<Replay, HistoryError> {
    let bounds = store.bounds(group)?;
    let (gap, messages) = match since {
        None => (None, store.latest(group, latest)?),
        // The client holds numbers this group never gave out (its data was
        // reset): nothing it holds after `last` can be trusted.
        Some(since) if since > bounds.last => (Some((bounds.last + 1, since)), store.latest(group, latest)?),
        // Everything retained after `since`, however many, so that the
        // client's timeline has no hole but the one it is told about. The
        // gap is what retention removed before the first message read, taken
        // from that read rather than from `bounds`: a prune between the two
        // reads then widens the gap instead of leaving a silent hole.
        Some(since) => {
            let messages = store.after(group, since, usize::MAX)?;
            let first_kept = messages.first().map_or(bounds.last + 1, |first| first.seq);
            let gap = (since + 1 < first_kept).then(|| (since + 1, first_kept - 1));
            (gap, messages)
        }
    };
    let synced = messages.last().map_or(bounds.last, |last| last.seq);
    Ok(Replay { gap, messages, synced })
}

#[cfg(test)]
mod tests;
