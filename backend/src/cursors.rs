//! Read cursors: how far each verified identity has read each group, kept
//! in the store and told to the identity's connections to that group on
//! every node, as `{"type":"cursor","epoch":…,"seq":…}`.
//!
//! Taking ([`Cursors::mark`]): a verified JSON member's `read` goes into a
//! map of pending cursors, one per (identity, group), where a later `read`
//! replaces an earlier one (the higher number within one epoch): never
//! waiting, never refused for its rate. One thread drains the map (the
//! store may wait on SQLite's writer or on Redis; the connection loop never
//! does), at most once per [`PASS_EVERY`]: so each (identity, group) costs
//! at most one store write and one broadcast per pass, however often it
//! sends `read`, and the last value is the one written. For each, the
//! thread checks the group's head (another epoch than the group's is
//! dropped: the client is about to get `reset`; a number past its last is
//! taken as the last), writes the batch in one call
//! ([`Store::set_cursors`]), and broadcasts each cursor that moved as a
//! [`Control::Cursor`].
//!
//! Hearing ([`Fanout::heard`]): every node, this one too, encodes the event
//! once and offers it to that identity's live JSON members of the group
//! ([`Registry::signal_to`]), the sender's own connection too (it learns
//! the cursor as stored). A connection still catching up misses it; it
//! gets its cursor right after its `welcome`.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use roomcast_shared::{ClientId, GroupName, ServerEvent};

use crate::clock::unix_millis;
use crate::frame::Frame;
use crate::history::{Cursor, CursorWrite, HistoryError, Store};
use crate::locks::lock;
use crate::registry::Registry;
use crate::signals::{Control, Signals};

/// The least time between two passes of the writer: each (identity, group)
/// is written at most this often.
pub const PASS_EVERY: Duration = Duration::from_millis(200);

/// Pending cursors held at once: past it, a `read` for an (identity,
/// group) not pending already is dropped (the next one gets through).
const MAX_PENDING: usize = 10_000;

/// Why cursors could not start.
#[derive(Debug, thiserror::Error)]
pub enum CursorsError {
    #[error("cannot start the read cursor thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// What became of one `read`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marked {
    /// Pending: written with the next pass (or replaced before it).
    Pending,
    /// Too many cursors pending: dropped.
    Dropped,
}

type Pending = HashMap<(ClientId, GroupName), Cursor>;

/// The taking half, shared by every connection of a server.
pub struct Cursors {
    pending: Arc<Mutex<Pending>>,
    /// Wakes the writer; one wake-up waiting is enough.
    wake: SyncSender<()>,
}

impl std::fmt::Debug for Cursors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cursors")
    }
}

impl Cursors {
    /// Writes cursors to `store` and tells every node through `signals`,
    /// on a thread of its own, which ends once this is dropped.
    pub fn start(store: Arc<dyn Store>, signals: Arc<dyn Signals>) -> Result<Self, CursorsError> {
        let pending = Arc::new(Mutex::new(Pending::new()));
        let (wake, woken) = mpsc::sync_channel(1);
        let taken = pending.clone();
        std::thread::Builder::new()
            .name("roomcast-cursors".into())
            .spawn(move || write_passes(&taken, &woken, store.as_ref(), signals.as_ref()))?;
        Ok(Self { pending, wake })
    }

    /// `sub` has read `group` up to `cursor`. Never waits.
    pub fn mark(&self, sub: ClientId, group: &GroupName, cursor: Cursor) -> Marked {
        {
            let mut pending = lock(&self.pending);
            let full = pending.len() >= MAX_PENDING;
            match pending.entry((sub, group.clone())) {
                Entry::Occupied(mut waiting) => {
                    let waiting = waiting.get_mut();
                    if waiting.epoch == cursor.epoch {
                        waiting.seq = waiting.seq.max(cursor.seq);
                    } else {
                        *waiting = cursor;
                    }
                }
                Entry::Vacant(_) if full => return Marked::Dropped,
                Entry::Vacant(place) => {
                    place.insert(cursor);
                }
            }
        }
        // Full: a wake-up is waiting already, and its pass takes this too.
        let _ = self.wake.try_send(());
        Marked::Pending
    }
}

/// The writer: a pass per wake-up, then a pause, until the taking half is
/// gone.
fn write_passes(pending: &Mutex<Pending>, woken: &Receiver<()>, store: &dyn Store, signals: &dyn Signals) {
    while woken.recv().is_ok() {
        let batch: Vec<_> = std::mem::take(&mut *lock(pending)).into_iter().collect();
        match pass(store, batch, unix_millis()) {
            Ok(moved) => {
                for control in moved {
                    if let Err(err) = signals.broadcast(&control) {
                        // Stored: the other connections learn it at their
                        // next `welcome` or the next move.
                        tracing::debug!(%err, "a read cursor was not broadcast");
                    }
                }
            }
            // The app sends its cursor again as it reads on.
            Err(err) => tracing::warn!(%err, "read cursors were not stored"),
        }
        std::thread::sleep(PASS_EVERY);
    }
}

/// Writes `batch` at `now_ms` (each checked against its group's head) and
/// returns what to tell the nodes: the cursors that are now as asked.
fn pass(
    store: &dyn Store,
    batch: Vec<((ClientId, GroupName), Cursor)>,
    now_ms: u64,
) -> Result<Vec<Control>, HistoryError> {
    let mut writes = Vec::with_capacity(batch.len());
    for ((sub, group), cursor) in batch {
        let head = store.head(&group)?;
        if head.epoch.is_empty() || head.epoch != cursor.epoch {
            continue;
        }
        let seq = cursor.seq.min(head.last);
        writes.push(CursorWrite { sub, group, cursor: Cursor { epoch: head.epoch, seq } });
    }
    let stored = store.set_cursors(&writes, now_ms)?;
    Ok(writes
        .into_iter()
        .zip(stored)
        // A lower number than the stored one left it: nothing to tell.
        .filter(|(write, stored)| write.cursor == *stored)
        .map(|(write, stored)| Control::Cursor {
            sub: write.sub,
            group: write.group,
            epoch: stored.epoch,
            seq: stored.seq,
        })
        .collect())
}

/// The hearing half: what a node does with a [`Control::Cursor`].
#[derive(Debug, Clone)]
pub struct Fanout {
    registry: Arc<Registry>,
}

impl Fanout {
    pub fn new(registry: Arc<Registry>) -> Self {
        Self { registry }
    }

    /// Tells `sub`'s JSON members of `group` here that its cursor is `seq`
    /// of `epoch`.
    pub fn heard(&self, sub: ClientId, group: &GroupName, epoch: String, seq: u64) {
        let frame = Frame::text(ServerEvent::Cursor { epoch, seq }.encode());
        self.registry.signal_to(group, frame, sub);
    }
}

#[cfg(test)]
mod tests {
    use roomcast_shared::{ChatMessage, MessageId, Sender};
    use uuid::Uuid;

    use super::*;
    use crate::history::memory::MemoryStore;
    use crate::history::Appending;

    fn group(name: &str) -> GroupName {
        name.parse().unwrap()
    }

    /// Appends `count` messages to `name`; returns its epoch.
    fn messages(store: &MemoryStore, name: &str, count: usize) -> String {
        let from = Sender { client_id: ClientId(Uuid::new_v4()), name: None, verified: true };
        let mut batch: Vec<_> = (0..count)
            .map(|_| {
                let id = MessageId(Uuid::new_v4());
                Appending::new(ChatMessage {
                    group: group(name),
                    seq: 0,
                    id,
                    from: from.clone(),
                    text: "m".into(),
                    ts: 1,
                })
            })
            .collect();
        store.append(&mut batch).unwrap();
        batch[0].epoch.clone()
    }

    #[test]
    fn a_pass_clamps_drops_other_epochs_and_tells_only_what_moved() {
        let store = MemoryStore::default();
        let (epoch, other) = (messages(&store, "a", 5), messages(&store, "b", 2));
        let ann = ClientId(Uuid::new_v4());
        let at = |name: &str, epoch: &str, seq| ((ann, group(name)), Cursor { epoch: epoch.into(), seq });
        let told = pass(&store, vec![at("a", &epoch, 9), at("b", "stale", 1), at("nobody", "e", 1)], 10).unwrap();
        assert_eq!(told, [Control::Cursor { sub: ann, group: group("a"), epoch: epoch.clone(), seq: 5 }], "clamped");
        assert_eq!(store.cursor(ann, &group("b")).unwrap(), None, "another epoch than the group's is dropped");
        assert_eq!(pass(&store, vec![at("a", &epoch, 3)], 11).unwrap(), [], "lower: nothing moved");
        assert_eq!(store.cursor(ann, &group("a")).unwrap(), Some(Cursor { epoch, seq: 5 }));
        assert_eq!(pass(&store, vec![at("b", &other, 1)], 12).unwrap().len(), 1);
    }

    #[test]
    fn marks_coalesce_per_identity_and_group_and_a_full_map_drops_new_ones() {
        let (wake, _woken) = mpsc::sync_channel(1);
        let cursors = Cursors { pending: Arc::new(Mutex::new(Pending::new())), wake };
        let (ann, lobby) = (ClientId(Uuid::new_v4()), group("lobby"));
        let at = |epoch: &str, seq| Cursor { epoch: epoch.into(), seq };
        for (epoch, seq) in [("e1", 4), ("e1", 9), ("e1", 2)] {
            assert_eq!(cursors.mark(ann, &lobby, at(epoch, seq)), Marked::Pending);
        }
        assert_eq!(lock(&cursors.pending)[&(ann, lobby.clone())], at("e1", 9), "the highest of one epoch");
        cursors.mark(ann, &lobby, at("e2", 1));
        assert_eq!(lock(&cursors.pending)[&(ann, lobby.clone())], at("e2", 1), "another epoch replaces it");
        for _ in 1..MAX_PENDING {
            cursors.mark(ClientId(Uuid::new_v4()), &lobby, at("e", 1));
        }
        assert_eq!(cursors.mark(ClientId(Uuid::new_v4()), &lobby, at("e", 1)), Marked::Dropped);
        assert_eq!(cursors.mark(ann, &lobby, at("e2", 3)), Marked::Pending, "a pending one still moves");
    }
}
