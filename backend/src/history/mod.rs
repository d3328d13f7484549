//! Durable per-group history: every message is stored with its sequence
//! number before anyone receives it, so a client can always recover what it
//! missed.
//!
//! - [`store`]: the [`Store`] contract; [`memory`], [`sqlite`] and
//!   [`redis_store`] implement it.
//! - [`sequencer`]: the single writer. It batches publishes into one
//!   transaction (group commit), then fans out the stored messages in
//!   sequence order and acknowledges them.
//! - [`retention`]: the background task that applies the retention policy.
//! - [`replay`]: what a joining client gets, one bounded page at a time.
//! - [`broker`]: the delivery half: after-commit hand-off from the
//!   sequencer to this node's members, local or through Redis.
//! - [`delivery`]: stored messages to this node's members, in order,
//!   filling what pub/sub lost from the history.
//! - [`unread`]: unread counts after a read cursor, from any store.
//! - [`History`]: the async read side (replay on join, scrollback pages).

pub mod broker;
pub mod delivery;
pub mod memory;
pub mod redis_store;
pub mod replay;
pub mod retention;
pub mod sequencer;
pub mod sqlite;
pub mod store;
pub mod unread;

use std::sync::Arc;
use std::time::Instant;

use roomcast_shared::{limits, ChatMessage, ClientId, GroupName};

use crate::metrics::Metrics;

pub use replay::{Page, Piece, Replay, Start};
pub use store::{
    Appending, Cursor, CursorEntry, CursorWrite, Head, HistoryError, Limit, Outcome, Range, Retention, Slice, Store,
    DEDUP_WINDOW,
};

/// History reads running at once. Reads block a thread (SQLite), so a burst
/// of joins must not grow the blocking pool, the per-thread allocator arenas
/// and the SQLite reader pool to hundreds; they queue here instead. Each
/// read is one bounded page, so nobody waits long.
const CONCURRENT_READS: usize = 4;

/// The read side of the history, usable from async code.
#[derive(Clone)]
pub struct History {
    store: Arc<dyn Store>,
    reads: Arc<tokio::sync::Semaphore>,
    /// Replays' and pages' read times.
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for History {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("History")
    }
}

impl History {
    pub fn new(store: Arc<dyn Store>, metrics: Arc<Metrics>) -> Self {
        Self { store, reads: Arc::new(tokio::sync::Semaphore::new(CONCURRENT_READS)), metrics }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The next page of `replay`; the replay comes back with it.
    pub async fn step(&self, mut replay: Replay) -> Result<(Replay, Page), HistoryError> {
        let _permit = self.reads.acquire().await.map_err(|err| HistoryError::Task(err.to_string()))?;
        let store = self.store.clone();
        let metrics = self.metrics.clone();
        let stepped = tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let page = replay.step(store.as_ref());
            metrics.read(started.elapsed());
            Ok((replay, page?))
        });
        stepped.await.map_err(|err| HistoryError::Task(err.to_string()))?
    }

    /// Whether the store holds `group` (someone wrote to it), on the
    /// blocking pool.
    pub async fn holds(&self, group: GroupName) -> Result<bool, HistoryError> {
        let store = self.store.clone();
        let head = tokio::task::spawn_blocking(move || store.head(&group));
        Ok(!head.await.map_err(|err| HistoryError::Task(err.to_string()))??.epoch.is_empty())
    }

    /// `sub`'s read cursor in `group` (whatever its epoch), on the blocking
    /// pool.
    pub async fn cursor(&self, sub: ClientId, group: GroupName) -> Result<Option<Cursor>, HistoryError> {
        self.blocking(move |store| store.cursor(sub, &group)).await
    }

    /// How many of `group`'s messages `sub` has not read (after its cursor,
    /// not its own), up to `cap` ([`unread::unread`]), on the blocking
    /// pool.
    pub async fn unread(&self, sub: ClientId, group: GroupName, cap: u64) -> Result<u64, HistoryError> {
        self.blocking(move |store| {
            let cursor = store.cursor(sub, &group)?;
            unread::unread(store, &group, cursor.as_ref(), sub, cap)
        })
        .await
    }

    /// Runs `read` on the blocking pool, among the reads at once.
    pub async fn blocking<T: Send + 'static>(
        &self,
        read: impl FnOnce(&dyn Store) -> Result<T, HistoryError> + Send + 'static,
    ) -> Result<T, HistoryError> {
        let _permit = self.reads.acquire().await.map_err(|err| HistoryError::Task(err.to_string()))?;
        let store = self.store.clone();
        let read = tokio::task::spawn_blocking(move || read(store.as_ref()));
        read.await.map_err(|err| HistoryError::Task(err.to_string()))?
    }

    /// Whether the store can take writes now (`/readyz`).
    pub fn ready(&self) -> bool {
        self.store.ready()
    }

    /// Up to `limit` messages of `range` (and at most
    /// [`limits::MAX_HISTORY_PAGE_BYTES`] of them as JSON, keeping the ones
    /// nearest to where the page starts), oldest first, and whether more
    /// exist beyond the page in its direction: older ones before it for
    /// [`Range::Before`] (scrolling back; [`Range::LATEST`]: the latest
    /// messages), newer ones after it for [`Range::After`] (catching up).
    pub async fn page(
        &self,
        group: GroupName,
        range: Range,
        limit: usize,
    ) -> Result<(Vec<ChatMessage>, bool), HistoryError> {
        let _permit = self.reads.acquire().await.map_err(|err| HistoryError::Task(err.to_string()))?;
        let store = self.store.clone();
        let metrics = self.metrics.clone();
        let read = tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let read = store.read(&group, range, Limit { messages: limit, bytes: limits::MAX_HISTORY_PAGE_BYTES });
            metrics.read(started.elapsed());
            let Slice { head, messages } = read?;
            let has_more = match range {
                Range::Before(_) => match (messages.first(), head.oldest) {
                    (Some(first), Some(oldest)) => first.seq > oldest,
                    _ => false,
                },
                // Retention removes the oldest messages only, so the numbers
                // between this page's last and the group's last are retained.
                Range::After(_) => messages.last().is_some_and(|last| last.seq < head.last),
            };
            Ok((messages, has_more))
        });
        read.await.map_err(|err| HistoryError::Task(err.to_string()))?
    }
}

#[cfg(test)]
mod tests;
