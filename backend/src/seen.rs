//! "Seen by" in small groups: how far each reader of a group has read,
//! told to the group's JSON members as `{"type":"seen","epoch":…,
//! "readers":[{"client_id":…,"seq":…}]}`, only while the group has at most
//! `--seen-max` readers (identities with a read cursor in it).
//!
//! - **Which groups.** Whether a group is small is decided where its
//!   cursor moves, by the cursors writer ([`is_small`], one bounded look
//!   per moved group and pass), and travels as a flag of the
//!   [`Control::Cursor`](crate::signals::Control::Cursor) every node hears:
//!   the store is read once per move, on a thread that may wait, not on
//!   every node's signal handler (which must not), and a large group costs
//!   each node nothing.
//! - **After `welcome`.** A JSON member of a small group gets every reader
//!   of the group's current epoch ([`snapshot`]), read with its cursor
//!   before the replay.
//! - **Moves.** Each node offers one reader's move ([`moved`]) to all the
//!   group's JSON members there, best-effort as typing (never evicting); a
//!   member still catching up misses it (its snapshot was read before).

use roomcast_shared::{ClientId, GroupName, Reader, ServerEvent};

use crate::history::{Cursor, Store};

/// Whether `group` has at most `max` readers (`max` 0: "seen by" is off).
/// A store that cannot say counts as a large group: nothing is told.
pub fn is_small(store: &dyn Store, group: &GroupName, max: usize) -> bool {
    if max == 0 {
        return false;
    }
    store
        .readers(group, max)
        .unwrap_or_else(|err| {
            tracing::debug!(%err, "cannot count a group's readers: no seen event");
            None
        })
        .is_some()
}

/// The `seen` event after a `welcome` in `epoch`: the readers of that
/// epoch (an invitation or an older epoch's cursor is no reading of it).
pub fn snapshot(epoch: &str, readers: Vec<(ClientId, Cursor)>) -> ServerEvent {
    let readers = readers
        .into_iter()
        .filter(|(_, cursor)| cursor.epoch == epoch)
        .map(|(client_id, cursor)| Reader { client_id, seq: cursor.seq })
        .collect();
    ServerEvent::Seen { epoch: epoch.to_owned(), readers }
}

/// The `seen` event of one reader's move.
pub fn moved(sub: ClientId, epoch: String, seq: u64) -> ServerEvent {
    ServerEvent::Seen { epoch, readers: vec![Reader { client_id: sub, seq }] }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::history::memory::MemoryStore;
    use crate::history::CursorWrite;

    #[test]
    fn a_group_is_small_up_to_the_limit_and_the_snapshot_keeps_its_epoch() {
        let store = MemoryStore::default();
        let lobby: GroupName = "lobby".parse().unwrap();
        let (ann, bob) = (ClientId(Uuid::new_v4()), ClientId(Uuid::new_v4()));
        let at = |sub, epoch: &str, seq| CursorWrite {
            sub,
            group: lobby.clone(),
            cursor: Cursor { epoch: epoch.into(), seq },
        };
        store.set_cursors(&[at(ann, "e", 4), at(bob, "old", 9)], 1).unwrap();
        assert!(is_small(&store, &lobby, 2));
        assert!(!is_small(&store, &lobby, 1), "more readers than the limit");
        assert!(!is_small(&store, &lobby, 0), "off");
        let readers = store.readers(&lobby, 2).unwrap().unwrap();
        let ServerEvent::Seen { epoch, readers } = snapshot("e", readers) else { panic!("a seen event") };
        assert_eq!((epoch.as_str(), readers), ("e", vec![Reader { client_id: ann, seq: 4 }]));
    }
}
