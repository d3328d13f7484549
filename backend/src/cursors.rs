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
//! [`Control::Cursor`], flagged when its group is small enough for "seen
//! by" ([`seen::is_small`], once per group and pass).
//!
//! Hearing ([`Fanout::heard`]): every node, this one too, encodes the event
//! once and offers it to that identity's live JSON members of the group
//! ([`Registry::signal_to`]), the sender's own connection too (it learns
//! the cursor as stored), and when flagged, a `seen` event to every JSON
//! member of the group. A connection still catching up misses it; it gets
//! its cursor (and the group's readers) right after its `welcome`.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use roomcast_shared::{ClientId, GroupName, ServerEvent};

use crate::clock::unix_millis;
use crate::frame::Frame;
use crate::history::{Cursor, CursorWrite, HistoryError, Store};
use crate::locks::lock;
use crate::registry::Registry;
use crate::rooms::entry::entry;
use crate::seen;
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

/// What waits for the writer: cursors to set, rooms to forget, and
/// invitations (a direct message's other side, and who wrote to them).
#[derive(Debug, Default)]
struct Pending {
    cursors: HashMap<(ClientId, GroupName), Cursor>,
    forgets: HashSet<(ClientId, GroupName)>,
    invites: Invites,
}

/// Invitations: (the invited, the group) → who wrote.
type Invites = HashMap<(ClientId, GroupName), ClientId>;

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
    /// Writes cursors to `store` and tells every node through `signals`
    /// (with "seen by" for groups of at most `seen_max` readers), on a
    /// thread of its own, which ends once this is dropped.
    pub fn start(store: Arc<dyn Store>, signals: Arc<dyn Signals>, seen_max: usize) -> Result<Self, CursorsError> {
        let pending = Arc::new(Mutex::new(Pending::default()));
        let (wake, woken) = mpsc::sync_channel(1);
        let taken = pending.clone();
        std::thread::Builder::new()
            .name("roomcast-cursors".into())
            .spawn(move || write_passes(&taken, &woken, store.as_ref(), signals.as_ref(), seen_max))?;
        Ok(Self { pending, wake })
    }

    /// `sub` has read `group` up to `cursor`. Never waits.
    pub fn mark(&self, sub: ClientId, group: &GroupName, cursor: Cursor) -> Marked {
        {
            let mut pending = lock(&self.pending);
            let full = pending.cursors.len() >= MAX_PENDING;
            pending.forgets.remove(&(sub, group.clone()));
            match pending.cursors.entry((sub, group.clone())) {
                // An invitation never replaces a cursor.
                Entry::Occupied(_) if cursor.epoch.is_empty() => {}
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
        self.wake();
        Marked::Pending
    }

    /// Puts `group` in `sub`'s room list, unread, unless it is there
    /// already: `from` wrote in their direct message. Written a pass later
    /// than it came (the message that caused it is stored by then, so the
    /// list counts it). Never waits.
    pub fn invite(&self, sub: ClientId, group: &GroupName, from: ClientId) -> Marked {
        {
            let mut pending = lock(&self.pending);
            if pending.invites.len() >= MAX_PENDING {
                return Marked::Dropped;
            }
            pending.invites.insert((sub, group.clone()), from);
        }
        self.wake();
        Marked::Pending
    }

    /// Takes `group` off `sub`'s room list (and its cursor) on every
    /// device. Never waits.
    pub fn forget(&self, sub: ClientId, group: &GroupName) -> Marked {
        {
            let mut pending = lock(&self.pending);
            if pending.forgets.len() >= MAX_PENDING {
                return Marked::Dropped;
            }
            pending.cursors.remove(&(sub, group.clone()));
            pending.forgets.insert((sub, group.clone()));
        }
        self.wake();
        Marked::Pending
    }

    fn wake(&self) {
        // Full: a wake-up is waiting already, and its pass takes this too.
        let _ = self.wake.try_send(());
    }
}

/// The writer: a pass per wake-up, then a pause, until the taking half is
/// gone.
fn write_passes(
    pending: &Mutex<Pending>,
    woken: &Receiver<()>,
    store: &dyn Store,
    signals: &dyn Signals,
    seen_max: usize,
) {
    // Invitations wait one pass (see `Cursors::invite`).
    let mut deferred = Invites::new();
    loop {
        let woken = if deferred.is_empty() {
            woken.recv().is_ok()
        } else {
            !matches!(woken.recv_timeout(PASS_EVERY), Err(RecvTimeoutError::Disconnected))
        };
        if !woken {
            break;
        }
        let Pending { cursors, forgets, invites } = std::mem::take(&mut *lock(pending));
        let invited = std::mem::replace(&mut deferred, invites);
        let mut batch: Vec<_> = cursors.into_iter().collect();
        batch.extend(invited.keys().map(|key| (key.clone(), Cursor::default())));
        let now_ms = unix_millis();
        let told = pass(store, batch, &invited, now_ms, seen_max)
            .map_err(|err| {
                // The app sends its cursor again as it reads on.
                tracing::warn!(%err, "read cursors were not stored");
            })
            .into_iter()
            .flatten()
            .chain(forgotten(store, forgets));
        for control in told {
            if let Err(err) = signals.broadcast(&control) {
                // Stored: the other connections learn it at their next
                // `welcome` (or list) or the next move.
                tracing::debug!(%err, "a read cursor was not broadcast");
            }
        }
        std::thread::sleep(PASS_EVERY);
    }
}

/// Forgets each of `forgets`; what to tell the nodes.
fn forgotten(store: &dyn Store, forgets: HashSet<(ClientId, GroupName)>) -> Vec<Control> {
    forgets
        .into_iter()
        .filter_map(|(sub, group)| match store.forget(sub, &group) {
            Ok(_) => Some(Control::Forgotten { sub, group }),
            Err(err) => {
                tracing::warn!(%err, "a room was not forgotten");
                None
            }
        })
        .collect()
}

/// Writes `batch` at `now_ms` (each checked against its group's head) and
/// returns what to tell the nodes: the cursors that are now as asked (for
/// "seen by" too in groups of at most `seen_max` readers), and each moved
/// room as its identity's list now has it (an invitation's with who wrote,
/// if its history does not say yet).
fn pass(
    store: &dyn Store,
    batch: Vec<((ClientId, GroupName), Cursor)>,
    invited: &Invites,
    now_ms: u64,
    seen_max: usize,
) -> Result<Vec<Control>, HistoryError> {
    let mut writes = Vec::with_capacity(batch.len());
    for ((sub, group), cursor) in batch {
        if cursor.epoch.is_empty() {
            // An invitation: in the list, whatever the group holds.
            writes.push(CursorWrite { sub, group, cursor });
            continue;
        }
        let head = store.head(&group)?;
        if head.epoch.is_empty() || head.epoch != cursor.epoch {
            continue;
        }
        let seq = cursor.seq.min(head.last);
        writes.push(CursorWrite { sub, group, cursor: Cursor { epoch: head.epoch, seq } });
    }
    let stored = store.set_cursors(&writes, now_ms)?;
    let mut told = Vec::new();
    let mut small = HashMap::new();
    // A lower number than the stored one (or an invitation where a cursor
    // is) left it: nothing to tell.
    for (write, stored) in writes.into_iter().zip(stored).filter(|(write, stored)| write.cursor == *stored) {
        let mut room = entry(store, write.sub, &write.group, Some(&stored), now_ms)?;
        if room.with.is_none() {
            room.with = invited.get(&(write.sub, write.group.clone())).copied();
        }
        if !stored.epoch.is_empty() {
            let seen =
                *small.entry(write.group.clone()).or_insert_with(|| seen::is_small(store, &write.group, seen_max));
            let (sub, group, epoch, seq) = (write.sub, write.group, stored.epoch, stored.seq);
            told.push(Control::Cursor { sub, group, epoch, seq, seen });
        }
        told.push(Control::Room { sub: write.sub, room });
    }
    Ok(told)
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
    /// of `epoch`, and when `seen` (a small group), every JSON member of it.
    pub fn heard(&self, sub: ClientId, group: &GroupName, epoch: String, seq: u64, seen: bool) {
        if seen {
            self.registry.signal_all(group, Frame::text(seen::moved(sub, epoch.clone(), seq).encode()));
        }
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
        let told =
            pass(&store, vec![at("a", &epoch, 9), at("b", "stale", 1), at("nobody", "e", 1)], &Invites::new(), 10, 0)
                .unwrap();
        let cursor = Control::Cursor { sub: ann, group: group("a"), epoch: epoch.clone(), seq: 5, seen: false };
        assert_eq!(told[0], cursor, "clamped");
        let Control::Room { sub, room } = &told[1] else { panic!("the room follows: {told:?}") };
        assert_eq!((*sub, room.group.as_str(), room.read, room.unread), (ann, "a", 5, 0));
        assert_eq!(told.len(), 2);
        assert_eq!(store.cursor(ann, &group("b")).unwrap(), None, "another epoch than the group's is dropped");
        assert_eq!(pass(&store, vec![at("a", &epoch, 3)], &Invites::new(), 11, 0).unwrap(), [], "lower: nothing moved");
        assert_eq!(store.cursor(ann, &group("a")).unwrap(), Some(Cursor { epoch, seq: 5 }));
        assert_eq!(pass(&store, vec![at("b", &other, 1)], &Invites::new(), 12, 0).unwrap().len(), 2);
    }

    #[test]
    fn a_move_in_a_group_of_at_most_seen_max_readers_is_flagged_for_seen_by() {
        let store = MemoryStore::default();
        let epoch = messages(&store, "a", 3);
        let (ann, bob) = (ClientId(Uuid::new_v4()), ClientId(Uuid::new_v4()));
        let at = |sub, seq| ((sub, group("a")), Cursor { epoch: epoch.clone(), seq });
        let seen = |told: &[Control]| match &told[0] {
            Control::Cursor { seen, .. } => *seen,
            other => panic!("a cursor first: {other:?}"),
        };
        assert!(seen(&pass(&store, vec![at(ann, 1)], &Invites::new(), 10, 1).unwrap()), "one reader of at most one");
        let told = pass(&store, vec![at(ann, 2), at(bob, 2)], &Invites::new(), 11, 1).unwrap();
        assert!(!seen(&told) && !seen(&told[2..]), "two readers: too many for one, both unflagged");
        assert!(!seen(&pass(&store, vec![at(ann, 3)], &Invites::new(), 12, 0).unwrap()), "0: off");
    }

    #[test]
    fn an_invitation_lists_the_room_unread_once_and_a_forget_takes_it_off() {
        let store = MemoryStore::default();
        messages(&store, "dm", 3);
        let bob = ClientId(Uuid::new_v4());
        let invited = ((bob, group("dm")), Cursor::default());
        let told = pass(&store, vec![invited.clone()], &Invites::new(), 10, 50).unwrap();
        let [Control::Room { sub, room }] = told.as_slice() else { panic!("a room, no cursor: {told:?}") };
        assert_eq!((*sub, room.read, room.unread, room.last.as_ref().map(|last| last.seq)), (bob, 0, 3, Some(3)));
        let epoch = store.head(&group("dm")).unwrap().epoch;
        pass(&store, vec![((bob, group("dm")), Cursor { epoch, seq: 2 })], &Invites::new(), 11, 50).unwrap();
        assert_eq!(
            pass(&store, vec![invited], &Invites::new(), 12, 50).unwrap(),
            [],
            "invited again: a cursor is there"
        );
        let gone = forgotten(&store, [(bob, group("dm"))].into());
        assert_eq!(gone, [Control::Forgotten { sub: bob, group: group("dm") }]);
        assert_eq!(store.cursors(bob).unwrap(), []);
    }

    #[test]
    fn marks_coalesce_per_identity_and_group_and_a_full_map_drops_new_ones() {
        let (wake, _woken) = mpsc::sync_channel(1);
        let cursors = Cursors { pending: Arc::new(Mutex::new(Pending::default())), wake };
        let (ann, lobby) = (ClientId(Uuid::new_v4()), group("lobby"));
        let at = |epoch: &str, seq| Cursor { epoch: epoch.into(), seq };
        for (epoch, seq) in [("e1", 4), ("e1", 9), ("e1", 2)] {
            assert_eq!(cursors.mark(ann, &lobby, at(epoch, seq)), Marked::Pending);
        }
        assert_eq!(lock(&cursors.pending).cursors[&(ann, lobby.clone())], at("e1", 9), "the highest of one epoch");
        cursors.mark(ann, &lobby, at("e2", 1));
        assert_eq!(lock(&cursors.pending).cursors[&(ann, lobby.clone())], at("e2", 1), "another epoch replaces it");
        for _ in 1..MAX_PENDING {
            cursors.mark(ClientId(Uuid::new_v4()), &lobby, at("e", 1));
        }
        assert_eq!(cursors.mark(ClientId(Uuid::new_v4()), &lobby, at("e", 1)), Marked::Dropped);
        assert_eq!(cursors.mark(ann, &lobby, at("e2", 3)), Marked::Pending, "a pending one still moves");
    }
}
