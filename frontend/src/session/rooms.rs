//! This identity's room list, as its rooms stream tells it: the `rooms`
//! snapshot, then `room` (a cursor moved, a room is new), `activity` (a
//! message: one more unread when it is someone else's and past the cursor
//! and what is known) and `forgotten`. Newest activity first; the total
//! unread for the tab's title.

use std::collections::HashMap;
use std::rc::Rc;

use roomcast_shared::limits::MAX_UNREAD;
use roomcast_shared::{ClientId, GroupName, RoomEntry, ServerEvent};

/// The list as this tab knows it.
#[derive(Debug)]
pub struct RoomList {
    me: ClientId,
    rooms: HashMap<GroupName, RoomEntry>,
    /// A `rooms` snapshot came (before it, nothing is known).
    known: bool,
}

/// What the view shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoomsShown {
    /// Newest activity first.
    pub rooms: Vec<RoomEntry>,
    /// Every room's unread, added up (each counts up to 100).
    pub total_unread: u64,
    /// The stream has told the list at least once.
    pub known: bool,
}

impl RoomList {
    pub fn new(me: ClientId) -> Self {
        Self { me, rooms: HashMap::new(), known: false }
    }

    /// Takes `event` if it is the rooms stream's; returns whether the list
    /// changed.
    pub fn heard(&mut self, event: &ServerEvent) -> bool {
        match event {
            ServerEvent::Rooms { rooms } => {
                self.rooms = rooms.iter().map(|room| (room.group.clone(), room.clone())).collect();
                self.known = true;
            }
            ServerEvent::Room { room } => {
                self.rooms.insert(room.group.clone(), room.clone());
            }
            ServerEvent::Forgotten { group } => return self.rooms.remove(group).is_some(),
            ServerEvent::Activity { group, epoch, last } => {
                let Some(room) = self.rooms.get_mut(group) else { return false };
                if room.epoch != *epoch {
                    // The group started over: nothing of it was read.
                    (room.epoch, room.read, room.unread, room.last) = (epoch.clone(), 0, 0, None);
                }
                if room.last.as_ref().is_some_and(|known| known.seq >= last.seq) {
                    return false; // the list had it already
                }
                if last.from.client_id != self.me && last.seq > room.read {
                    room.unread = (room.unread + 1).min(MAX_UNREAD);
                }
                room.active_ms = room.active_ms.max(last.ts);
                room.last = Some(last.clone());
            }
            _ => return false,
        }
        true
    }

    /// The snapshot a tab that just opened gets from the one holding the
    /// stream: the list as it is now.
    pub fn snapshot(&self) -> Option<ServerEvent> {
        self.known.then(|| ServerEvent::Rooms { rooms: self.rooms.values().cloned().collect() })
    }

    pub fn shown(&self) -> Rc<RoomsShown> {
        let mut rooms: Vec<RoomEntry> = self.rooms.values().cloned().collect();
        rooms.sort_by(|a, b| b.active_ms.cmp(&a.active_ms).then_with(|| a.group.cmp(&b.group)));
        let total_unread = rooms.iter().map(|room| room.unread).sum();
        Rc::new(RoomsShown { rooms, total_unread, known: self.known })
    }
}

/// A room's badge: nothing when all is read, "99+" from [`MAX_UNREAD`].
pub fn badge(unread: u64) -> Option<String> {
    match unread {
        0 => None,
        n if n >= MAX_UNREAD => Some("99+".to_owned()),
        n => Some(n.to_string()),
    }
}

/// The tab's title with the total unread: "(3) Roomcast".
pub fn title(total_unread: u64) -> String {
    badge(total_unread).map_or_else(|| "Roomcast".to_owned(), |count| format!("({count}) Roomcast"))
}

#[cfg(test)]
mod tests {
    use roomcast_shared::{LastMessage, Sender};
    use uuid::Uuid;

    use super::*;

    fn someone() -> ClientId {
        ClientId(Uuid::new_v4())
    }

    fn last(seq: u64, from: ClientId) -> LastMessage {
        LastMessage {
            seq,
            from: Sender { client_id: from, name: None, verified: true },
            preview: format!("m{seq}"),
            ts: seq * 10,
        }
    }

    fn room(name: &str, read: u64, unread: u64, last_seq: u64, from: ClientId) -> RoomEntry {
        RoomEntry {
            group: name.parse().unwrap(),
            with: None,
            epoch: "e".into(),
            read,
            unread,
            last: Some(last(last_seq, from)),
            active_ms: last_seq * 10,
        }
    }

    fn activity(name: &str, seq: u64, from: ClientId) -> ServerEvent {
        ServerEvent::Activity { group: name.parse().unwrap(), epoch: "e".into(), last: last(seq, from) }
    }

    #[test]
    fn activity_counts_others_messages_once_and_orders_the_list() {
        let (me, bob) = (someone(), someone());
        let mut list = RoomList::new(me);
        assert!(!list.shown().known);
        list.heard(&ServerEvent::Rooms { rooms: vec![room("a", 1, 2, 3, bob), room("b", 5, 0, 5, bob)] });
        let names = |list: &RoomList| list.shown().rooms.iter().map(|r| r.group.to_string()).collect::<Vec<_>>();
        assert_eq!(names(&list), ["b", "a"]);
        assert!(!list.heard(&activity("a", 3, bob)), "the list had it");
        assert!(list.heard(&activity("a", 4, bob)));
        assert!(list.heard(&activity("a", 5, me)), "one's own moves the room, not the count");
        assert_eq!((list.shown().rooms[0].unread, list.shown().total_unread), (3, 3));
        assert_eq!(names(&list), ["a", "b"], "newest activity first");
        assert!(!list.heard(&activity("unknown", 1, bob)), "a room not in the list waits for its `room`");
        let mut read = room("a", 5, 0, 5, me);
        read.active_ms = 50;
        list.heard(&ServerEvent::Room { room: read });
        assert_eq!(list.shown().total_unread, 0);
        list.heard(&ServerEvent::Forgotten { group: "b".parse().unwrap() });
        assert_eq!(names(&list), ["a"]);
    }

    #[test]
    fn unread_stops_at_the_cap_and_a_new_epoch_starts_over() {
        let (me, bob) = (someone(), someone());
        let mut list = RoomList::new(me);
        list.heard(&ServerEvent::Rooms { rooms: vec![room("a", 0, 99, 99, bob)] });
        list.heard(&activity("a", 100, bob));
        list.heard(&activity("a", 101, bob));
        assert_eq!(list.shown().rooms[0].unread, MAX_UNREAD);
        assert_eq!(badge(MAX_UNREAD).as_deref(), Some("99+"));
        let restarted = ServerEvent::Activity { group: "a".parse().unwrap(), epoch: "f".into(), last: last(1, bob) };
        list.heard(&restarted);
        assert_eq!(list.shown().rooms[0].unread, 1);
        assert_eq!(title(3), "(3) Roomcast");
        assert_eq!(title(0), "Roomcast");
        assert_eq!(list.snapshot().map(|event| matches!(event, ServerEvent::Rooms { .. })), Some(true));
    }
}
