//! The in-memory store: the same contract as SQLite, gone on restart.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard};

use roomcast_shared::{ChatMessage, ClientId, GroupName, MessageId};
use uuid::Uuid;

use super::store::{
    moved, new_epoch, take_within, text_digest, Appending, Cursor, CursorEntry, CursorWrite, Head, HistoryError, Limit,
    Outcome, Range, Retention, Slice, Store, CURSORS_PER_IDENTITY, DEDUP_WINDOW,
};
use crate::ban::Ban;
use crate::locks::lock;

#[derive(Debug, Default)]
pub struct MemoryStore {
    groups: Mutex<HashMap<GroupName, Log>>,
    /// Most groups held at once (`None`: no limit).
    max_groups: Option<u64>,
    /// Earliest `iat` accepted per revoked identity (in process, as the
    /// rest of this store).
    revoked: Mutex<HashMap<ClientId, u64>>,
    /// Bans by id.
    bans: Mutex<HashMap<Uuid, Ban>>,
    /// Read cursors per identity, and who has one per group.
    cursors: Mutex<Cursors>,
}

/// One identity's cursors, each with when it was last set.
type OwnCursors = HashMap<GroupName, (Cursor, u64)>;

/// The read cursors, by identity, with an index by group kept beside them
/// (under the same lock): `readers` looks at one group's, never at every
/// identity's.
#[derive(Debug, Default)]
struct Cursors {
    by_sub: HashMap<ClientId, OwnCursors>,
    by_group: HashMap<GroupName, HashSet<ClientId>>,
}

impl Cursors {
    fn remove(&mut self, sub: ClientId, group: &GroupName) -> bool {
        let removed = self.by_sub.get_mut(&sub).is_some_and(|own| own.remove(group).is_some());
        if let Some(readers) = self.by_group.get_mut(group) {
            readers.remove(&sub);
            if readers.is_empty() {
                self.by_group.remove(group);
            }
        }
        removed
    }
}

#[derive(Debug)]
struct Log {
    epoch: String,
    last_seq: u64,
    /// Consecutive sequence numbers, oldest first.
    messages: VecDeque<ChatMessage>,
    /// Bytes of message text held.
    bytes: u64,
    ids: HashMap<MessageId, u64>,
    /// Ids of messages retention removed, until they are [`DEDUP_WINDOW`]
    /// old.
    removed: HashMap<MessageId, Removed>,
}

/// What is kept of a message retention removed.
#[derive(Debug)]
struct Removed {
    seq: u64,
    ts: u64,
    digest: [u8; 8],
}

impl Log {
    fn new() -> Self {
        Self {
            epoch: new_epoch(),
            last_seq: 0,
            messages: VecDeque::new(),
            bytes: 0,
            ids: HashMap::new(),
            removed: HashMap::new(),
        }
    }

    fn head(&self) -> Head {
        Head { epoch: self.epoch.clone(), oldest: self.messages.front().map(|m| m.seq), last: self.last_seq, base: 0 }
    }

    fn pop_oldest(&mut self, recognized_since: u64) {
        if let Some(message) = self.messages.pop_front() {
            self.bytes -= message.text.len() as u64;
            self.ids.remove(&message.id);
            if message.ts >= recognized_since {
                let removed = Removed { seq: message.seq, ts: message.ts, digest: text_digest(&message.text) };
                self.removed.insert(message.id, removed);
            }
        }
    }

    /// How `message` compares with what the group holds under its id, if
    /// anything.
    fn repeat_of(&self, message: &ChatMessage) -> Option<Outcome> {
        let (seq, same) = match self.ids.get(&message.id) {
            Some(&seq) => {
                // Numbers are consecutive: a number's place is its distance
                // from the oldest.
                let first = self.messages.front().map_or(seq, |oldest| oldest.seq);
                let stored = &self.messages[(seq - first) as usize];
                (seq, stored.text == message.text)
            }
            None => {
                let removed = self.removed.get(&message.id)?;
                (removed.seq, removed.digest == text_digest(&message.text))
            }
        };
        Some(Outcome::repeated(same, seq))
    }
}

impl MemoryStore {
    /// A store that holds at most `max_groups` groups at once.
    pub fn with_max_groups(max_groups: Option<u64>) -> Self {
        Self { max_groups, ..Self::default() }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<GroupName, Log>> {
        // Each operation leaves the maps consistent before it can panic.
        lock(&self.groups)
    }
}

impl Store for MemoryStore {
    fn revoke(&self, sub: ClientId, min_iat: u64) -> Result<(), HistoryError> {
        let mut revoked = lock(&self.revoked);
        let entry = revoked.entry(sub).or_insert(0);
        *entry = (*entry).max(min_iat);
        Ok(())
    }

    fn remove_idle_groups(
        &self,
        idle_since_ms: u64,
        occupied: &(dyn Fn(&GroupName) -> bool + Sync),
    ) -> Result<u64, HistoryError> {
        let mut groups = self.lock();
        let before = groups.len();
        groups.retain(|name, log| {
            let idle = log.messages.back().is_none_or(|last| last.ts < idle_since_ms);
            !idle || occupied(name)
        });
        Ok((before - groups.len()) as u64)
    }

    fn revocations(&self) -> Result<Vec<(ClientId, u64)>, HistoryError> {
        let revoked = lock(&self.revoked);
        Ok(revoked.iter().map(|(sub, min_iat)| (*sub, *min_iat)).collect())
    }

    fn ban(&self, ban: &Ban) -> Result<(), HistoryError> {
        lock(&self.bans).insert(ban.id, ban.clone());
        Ok(())
    }

    fn lift(&self, id: Uuid) -> Result<bool, HistoryError> {
        Ok(lock(&self.bans).remove(&id).is_some())
    }

    fn bans(&self, now_ms: u64) -> Result<Vec<Ban>, HistoryError> {
        let mut bans = lock(&self.bans);
        bans.retain(|_, ban| ban.until_ms > now_ms);
        Ok(bans.values().cloned().collect())
    }

    fn set_cursors(&self, writes: &[CursorWrite], now_ms: u64) -> Result<Vec<Cursor>, HistoryError> {
        let mut all = lock(&self.cursors);
        let mut now = Vec::with_capacity(writes.len());
        for write in writes {
            let own = all.by_sub.entry(write.sub).or_default();
            let cursor = moved(own.get(&write.group).map(|(cursor, _)| cursor), &write.cursor);
            let updated = own.get(&write.group).map_or(now_ms, |(_, updated)| now_ms.max(*updated));
            own.insert(write.group.clone(), (cursor.clone(), updated));
            let oldest = (own.len() > CURSORS_PER_IDENTITY)
                .then(|| own.iter().min_by(|a, b| (a.1 .1, a.0).cmp(&(b.1 .1, b.0))).map(|(group, _)| group.clone()))
                .flatten();
            all.by_group.entry(write.group.clone()).or_default().insert(write.sub);
            if let Some(oldest) = oldest {
                all.remove(write.sub, &oldest);
            }
            now.push(cursor);
        }
        Ok(now)
    }

    fn cursor(&self, sub: ClientId, group: &GroupName) -> Result<Option<Cursor>, HistoryError> {
        Ok(lock(&self.cursors).by_sub.get(&sub).and_then(|own| own.get(group)).map(|(cursor, _)| cursor.clone()))
    }

    fn cursors(&self, sub: ClientId) -> Result<Vec<CursorEntry>, HistoryError> {
        let all = lock(&self.cursors);
        let mut listed: Vec<CursorEntry> = all
            .by_sub
            .get(&sub)
            .into_iter()
            .flatten()
            .map(|(group, (cursor, updated_ms))| CursorEntry {
                group: group.clone(),
                cursor: cursor.clone(),
                updated_ms: *updated_ms,
            })
            .collect();
        listed.sort_by(|a, b| b.updated_ms.cmp(&a.updated_ms).then_with(|| b.group.cmp(&a.group)));
        Ok(listed)
    }

    fn forget(&self, sub: ClientId, group: &GroupName) -> Result<bool, HistoryError> {
        Ok(lock(&self.cursors).remove(sub, group))
    }

    fn readers(&self, group: &GroupName, limit: usize) -> Result<Option<Vec<(ClientId, Cursor)>>, HistoryError> {
        let all = lock(&self.cursors);
        let Some(readers) = all.by_group.get(group) else { return Ok(Some(Vec::new())) };
        if readers.len() > limit {
            return Ok(None);
        }
        let cursor = |sub: &ClientId| all.by_sub.get(sub).and_then(|own| own.get(group)).map(|(cursor, _)| cursor);
        Ok(Some(readers.iter().filter_map(|sub| Some((*sub, cursor(sub)?.clone()))).collect()))
    }

    fn append(&self, batch: &mut [Appending]) -> Result<(), HistoryError> {
        let mut groups = self.lock();
        for item in batch {
            if !groups.contains_key(&item.message.group) {
                if self.max_groups.is_some_and(|max| groups.len() as u64 >= max) {
                    item.outcome = Outcome::OverQuota;
                    continue;
                }
                groups.insert(item.message.group.clone(), Log::new());
            }
            let log = groups.get_mut(&item.message.group).expect("inserted above");
            item.epoch.clone_from(&log.epoch);
            if let Some(repeat) = log.repeat_of(&item.message) {
                item.outcome = repeat;
                continue;
            }
            log.last_seq += 1;
            item.message.seq = log.last_seq;
            item.outcome = Outcome::New;
            log.ids.insert(item.message.id, log.last_seq);
            log.bytes += item.message.text.len() as u64;
            log.messages.push_back(item.message.clone());
        }
        Ok(())
    }

    fn read(&self, group: &GroupName, range: Range, limit: Limit) -> Result<Slice, HistoryError> {
        let groups = self.lock();
        let Some(log) = groups.get(group) else { return Ok(Slice::default()) };
        // Numbers are consecutive, so a number's place is its distance from
        // the oldest.
        let first = log.messages.front().map_or(1, |m| m.seq);
        let place = |seq: u64| (seq.saturating_sub(first) as usize).min(log.messages.len());
        let messages = match range {
            Range::After(after) => {
                let rows = log.messages.range(place(after.saturating_add(1))..).cloned().map(Ok::<_, HistoryError>);
                take_within(rows, limit)?
            }
            Range::Before(before) => {
                let rows = log.messages.range(..place(before)).rev().cloned().map(Ok::<_, HistoryError>);
                let mut page = take_within(rows, limit)?;
                page.reverse();
                page
            }
        };
        Ok(Slice { head: log.head(), messages })
    }

    fn prune(&self, retention: &Retention, now_ms: u64) -> Result<u64, HistoryError> {
        let cutoff = retention.max_age.map(|age| now_ms.saturating_sub(age.as_millis() as u64));
        let recognized_since = now_ms.saturating_sub(DEDUP_WINDOW.as_millis() as u64);
        let mut removed = 0;
        let mut groups = self.lock();
        for log in groups.values_mut() {
            log.removed.retain(|_, removed| removed.ts >= recognized_since);
            while let Some(oldest) = log.messages.front() {
                let too_many = retention.max_messages.is_some_and(|max| log.messages.len() as u64 > max);
                let too_old = cutoff.is_some_and(|cutoff| oldest.ts < cutoff);
                let too_big = retention.max_bytes.is_some_and(|max| log.bytes > max);
                if !(too_many || too_old || too_big) {
                    break;
                }
                log.pop_oldest(recognized_since);
                removed += 1;
            }
        }
        groups.retain(|_, log| !log.messages.is_empty());
        Ok(removed)
    }
}

/// Test stores: a [`MemoryStore`] with hooks that tests use to inject
/// failures, waits or retention at chosen points. A type implementing
/// [`Hooked`] is a [`Store`].
#[cfg(test)]
pub(crate) mod hooked {
    use super::*;

    pub(crate) trait Hooked: Send + Sync + 'static {
        fn inner(&self) -> &MemoryStore;

        /// Runs before every append; an error fails the append.
        fn before_append(&self) -> Result<(), HistoryError> {
            Ok(())
        }

        /// Runs before every read.
        fn before_read(&self) -> Result<(), HistoryError> {
            Ok(())
        }
    }

    impl<T: Hooked> Store for T {
        fn append(&self, batch: &mut [Appending]) -> Result<(), HistoryError> {
            self.before_append()?;
            self.inner().append(batch)
        }

        fn read(&self, group: &GroupName, range: Range, limit: Limit) -> Result<Slice, HistoryError> {
            self.before_read()?;
            self.inner().read(group, range, limit)
        }

        fn prune(&self, retention: &Retention, now_ms: u64) -> Result<u64, HistoryError> {
            self.inner().prune(retention, now_ms)
        }

        fn revoke(&self, sub: ClientId, min_iat: u64) -> Result<(), HistoryError> {
            self.inner().revoke(sub, min_iat)
        }

        fn remove_idle_groups(
            &self,
            idle_since_ms: u64,
            occupied: &(dyn Fn(&GroupName) -> bool + Sync),
        ) -> Result<u64, HistoryError> {
            self.inner().remove_idle_groups(idle_since_ms, occupied)
        }

        fn revocations(&self) -> Result<Vec<(ClientId, u64)>, HistoryError> {
            self.inner().revocations()
        }

        fn ban(&self, ban: &Ban) -> Result<(), HistoryError> {
            self.inner().ban(ban)
        }

        fn lift(&self, id: Uuid) -> Result<bool, HistoryError> {
            self.inner().lift(id)
        }

        fn bans(&self, now_ms: u64) -> Result<Vec<Ban>, HistoryError> {
            self.inner().bans(now_ms)
        }

        fn set_cursors(&self, writes: &[CursorWrite], now_ms: u64) -> Result<Vec<Cursor>, HistoryError> {
            self.inner().set_cursors(writes, now_ms)
        }

        fn cursor(&self, sub: ClientId, group: &GroupName) -> Result<Option<Cursor>, HistoryError> {
            self.inner().cursor(sub, group)
        }

        fn cursors(&self, sub: ClientId) -> Result<Vec<CursorEntry>, HistoryError> {
            self.inner().cursors(sub)
        }

        fn forget(&self, sub: ClientId, group: &GroupName) -> Result<bool, HistoryError> {
            self.inner().forget(sub, group)
        }

        fn readers(&self, group: &GroupName, limit: usize) -> Result<Option<Vec<(ClientId, Cursor)>>, HistoryError> {
            self.inner().readers(group, limit)
        }
    }
}
