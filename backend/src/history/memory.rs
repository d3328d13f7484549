//! The in-memory store: the same contract as SQLite, gone on restart.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use roomcast_shared::{ChatMessage, GroupName, MessageId};

use super::store::{Appending, Bounds, HistoryError, Outcome, Retention, Store};

#[derive(Debug, Default)]
pub struct MemoryStore {
    groups: Mutex<HashMap<GroupName, Log>>,
}

#[derive(Debug, Default)]
struct Log {
    last_seq: u64,
    /// Consecutive sequence numbers, oldest first.
    messages: VecDeque<ChatMessage>,
    ids: HashMap<MessageId, u64>,
}

impl Log {
    fn range(&self, after: u64, before: u64) -> impl DoubleEndedIterator<Item = &ChatMessage> {
        self.messages.iter().filter(move |m| m.seq > after && m.seq < before)
    }

    fn pop_oldest(&mut self) {
        if let Some(message) = self.messages.pop_front() {
            self.ids.remove(&message.id);
        }
    }
}

impl MemoryStore {
    fn lock(&self) -> MutexGuard<'_, HashMap<GroupName, Log>> {
        // Each operation leaves the maps consistent before it can panic.
        self.groups.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn read(&self, group: &GroupName, pick: impl FnOnce(&Log) -> Vec<ChatMessage>) -> Vec<ChatMessage> {
        self.lock().get(group).map(pick).unwrap_or_default()
    }
}

impl Store for MemoryStore {
    fn append(&self, batch: &mut [Appending]) -> Result<(), HistoryError> {
        let mut groups = self.lock();
        for item in batch {
            let log = groups.entry(item.message.group.clone()).or_default();
            if let Some(&seq) = log.ids.get(&item.message.id) {
                item.outcome = Outcome::Duplicate(seq);
                continue;
            }
            log.last_seq += 1;
            item.message.seq = log.last_seq;
            item.outcome = Outcome::New;
            log.ids.insert(item.message.id, log.last_seq);
            log.messages.push_back(item.message.clone());
        }
        Ok(())
    }

    fn latest(&self, group: &GroupName, limit: usize) -> Result<Vec<ChatMessage>, HistoryError> {
        Ok(self.read(group, |log| {
            let skip = log.messages.len().saturating_sub(limit);
            log.messages.iter().skip(skip).cloned().collect()
        }))
    }

    fn after(&self, group: &GroupName, after: u64, limit: usize) -> Result<Vec<ChatMessage>, HistoryError> {
        Ok(self.read(group, |log| log.range(after, u64::MAX).take(limit).cloned().collect()))
    }

    fn before(&self, group: &GroupName, before: u64, limit: usize) -> Result<Vec<ChatMessage>, HistoryError> {
        Ok(self.read(group, |log| {
            let mut page: Vec<_> = log.range(0, before).rev().take(limit).cloned().collect();
            page.reverse();
            page
        }))
    }

    fn bounds(&self, group: &GroupName) -> Result<Bounds, HistoryError> {
        Ok(self.lock().get(group).map_or(Bounds { oldest: None, last: 0 }, |log| Bounds {
            oldest: log.messages.front().map(|m| m.seq),
            last: log.last_seq,
        }))
    }

    fn prune(&self, retention: &Retention, now_ms: u64) -> Result<u64, HistoryError> {
        let cutoff = retention.max_age.map(|age| now_ms.saturating_sub(age.as_millis() as u64));
        let mut removed = 0;
        for log in self.lock().values_mut() {
            while let Some(oldest) = log.messages.front() {
                let too_many = retention.max_messages.is_some_and(|max| log.messages.len() as u64 > max);
                let too_old = cutoff.is_some_and(|cutoff| oldest.ts < cutoff);
                if !(too_many || too_old) {
                    break;
                }
                log.pop_oldest();
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// Test stores: a [`MemoryStore`] with hooks that tests use to inject
/// failures, waits or retention at chosen points. A type implementing
/// [`Hooked`] is a [`Store`].
#[cfg(test)]
pub(crate) mod hooked {
    use super::*;
    use crate::history::store::{Bounds, Retention};

    pub(crate) trait Hooked: Send + Sync + 'static {
        fn inner(&self) -> &MemoryStore;

        /// Runs before every append; an error fails the append.
        fn before_append(&self) -> Result<(), HistoryError> {
            Ok(())
        }

        /// Runs before every `after` read.
        fn before_after(&self) -> Result<(), HistoryError> {
            Ok(())
        }
    }

    impl<T: Hooked> Store for T {
        fn append(&self, batch: &mut [Appending]) -> Result<(), HistoryError> {
            self.before_append()?;
            self.inner().append(batch)
        }

        fn latest(&self, group: &GroupName, limit: usize) -> Result<Vec<ChatMessage>, HistoryError> {
            self.inner().latest(group, limit)
        }

        fn after(&self, group: &GroupName, after: u64, limit: usize) -> Result<Vec<ChatMessage>, HistoryError> {
            self.before_after()?;
            self.inner().after(group, after, limit)
        }

        fn before(&self, group: &GroupName, before: u64, limit: usize) -> Result<Vec<ChatMessage>, HistoryError> {
            self.inner().before(group, before, limit)
        }

        fn bounds(&self, group: &GroupName) -> Result<Bounds, HistoryError> {
            self.inner().bounds(group)
        }

        fn prune(&self, retention: &Retention, now_ms: u64) -> Result<u64, HistoryError> {
            self.inner().prune(retention, now_ms)
        }
    }
}
