//! Read cursors: when the app tells the server how far its user has read
//! (`read`), what the server's `cursor` events do, and where the "New
//! messages" divider goes when the room opens.
//!
//! - **Seen, not received.** The view reports the newest message the user
//!   has really seen (its row in the viewport of a visible, focused tab);
//!   a `read` goes only for a number above the cursor the app knows, at
//!   most one per [`READ_EVERY_MS`] (the server merges them anyway), and
//!   only on a welcomed connection, in the group's current epoch.
//! - **The known cursor** is the highest of the reads sent and the
//!   server's `cursor` events (the stored one after each `welcome`, and
//!   those another tab of this identity moved). A new connection forgets
//!   it until its own `cursor` comes: a read written just before a socket
//!   dropped may never have reached the server, and is sent again.
//! - **The divider** is decided once per room view: the first `cursor`
//!   (the stored one, after the first `welcome`) marks where new messages
//!   begin, and the replay up to `synced` says whether any of them is
//!   someone else's. Later cursors, from this tab or another, never move
//!   it: it stays until the room is opened again.

use roomcast_shared::{ChatMessage, ClientCommand, ClientId};

/// Least time between two `read`s of a view.
pub const READ_EVERY_MS: f64 = 250.0;

/// A room view's reading, across its connections.
#[derive(Debug, Default)]
pub struct Reading {
    /// The group's epoch (the last `welcome`'s or `reset`'s), once it has
    /// one: numbers are only comparable within it.
    epoch: Option<String>,
    /// The cursor the server holds, as far as this view knows.
    known: Option<u64>,
    /// The newest number the user has seen.
    seen: Option<u64>,
    /// A welcomed connection is open: reads may go.
    open: bool,
    last_sent_ms: Option<f64>,
    divider: Divider,
}

/// Where the view's "New messages" divider stands.
#[derive(Debug, Default)]
enum Divider {
    /// The room is opening, and no cursor has come (a first visit gets
    /// none).
    #[default]
    Opening,
    /// The stored cursor came: `seq`, and whether a message of someone
    /// else's came after it.
    After { seq: u64, new: bool },
    /// Placed (or not) for as long as the view is open.
    Decided,
}

impl Reading {
    /// A connection was welcomed in `epoch` (empty: the group has none yet,
    /// and nothing can be read). Another epoch than the one known means
    /// another history: nothing seen or known counts.
    pub fn welcomed(&mut self, epoch: &str) {
        self.open = true;
        self.known = None;
        if self.epoch.as_deref() != Some(epoch) {
            self.seen = None;
            self.epoch = (!epoch.is_empty()).then(|| epoch.to_owned());
        }
    }

    /// The group's history started over in `epoch`: what was seen is gone,
    /// and so is the divider's place.
    pub fn reset(&mut self, epoch: &str) {
        self.epoch = (!epoch.is_empty()).then(|| epoch.to_owned());
        self.seen = None;
        self.known = None;
        self.divider = Divider::Decided;
    }

    /// The connection ended: nothing goes until the next `welcome`.
    pub fn closed(&mut self) {
        self.open = false;
    }

    /// The server holds this identity's cursor at `seq` of `epoch`.
    pub fn cursor(&mut self, epoch: &str, seq: u64) {
        if self.epoch.as_deref() != Some(epoch) {
            return;
        }
        self.known = Some(self.known.map_or(seq, |known| known.max(seq)));
        if matches!(self.divider, Divider::Opening) {
            self.divider = Divider::After { seq, new: false };
        }
    }

    /// A message arrived (replayed or live); `me` is this browser's
    /// identity, whose own messages are never new to it.
    pub fn received(&mut self, message: &ChatMessage, me: ClientId) {
        if let Divider::After { seq, new } = &mut self.divider {
            let mine = message.from.verified && message.from.client_id == me;
            *new |= message.seq > *seq && !mine;
        }
    }

    /// The replay is over: where the divider goes (above the first message
    /// after this number that is not one's own), the first time only, and
    /// only if such a message came.
    pub fn synced(&mut self) -> Option<u64> {
        match std::mem::replace(&mut self.divider, Divider::Decided) {
            Divider::After { seq, new: true } => Some(seq),
            _ => None,
        }
    }

    /// The user has seen message `seq`.
    pub fn seen(&mut self, seq: u64) {
        self.seen = Some(self.seen.map_or(seq, |seen| seen.max(seq)));
    }

    /// The `read` to send at `now_ms`, if one is due; it counts as known.
    pub fn take(&mut self, now_ms: f64) -> Option<ClientCommand> {
        let seq = self.unread_seen()?;
        if self.due_ms()? > now_ms {
            return None;
        }
        self.known = Some(seq);
        self.last_sent_ms = Some(now_ms);
        Some(ClientCommand::Read { epoch: self.epoch.clone()?, seq })
    }

    /// When the next `read` may go, if one waits.
    pub fn due_ms(&self) -> Option<f64> {
        self.unread_seen()?;
        Some(self.last_sent_ms.map_or(0.0, |last| last + READ_EVERY_MS))
    }

    /// The number seen beyond the known cursor, if a `read` may tell it.
    fn unread_seen(&self) -> Option<u64> {
        let seen = self.seen?;
        (self.open && self.epoch.is_some() && self.known.is_none_or(|known| seen > known)).then_some(seen)
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::test_support::message;

    const EPOCH: &str = "9f2c";

    fn me() -> ClientId {
        ClientId(Uuid::from_u128(7))
    }

    /// Message `seq` from `from`.
    fn from(seq: u64, from: ClientId) -> ChatMessage {
        let mut message = message(seq);
        message.from.client_id = from;
        message
    }

    fn welcomed() -> Reading {
        let mut reading = Reading::default();
        reading.welcomed(EPOCH);
        reading
    }

    fn read(seq: u64) -> Option<ClientCommand> {
        Some(ClientCommand::Read { epoch: EPOCH.into(), seq })
    }

    #[test]
    fn what_was_seen_is_read_once_and_only_above_the_known_cursor() {
        let mut reading = welcomed();
        reading.cursor(EPOCH, 5);
        assert_eq!(reading.take(0.0), None, "nothing seen");
        reading.seen(4);
        assert_eq!((reading.take(0.0), reading.due_ms()), (None, None), "below the cursor: nothing to say");
        reading.seen(6);
        assert_eq!(reading.take(0.0), read(6));
        assert_eq!(reading.take(10_000.0), None, "told already");
        reading.cursor(EPOCH, 6);
        assert_eq!(reading.take(10_000.0), None, "the server's echo");
    }

    #[test]
    fn reads_go_at_most_every_quarter_second_with_the_newest_seen() {
        let mut reading = welcomed();
        reading.seen(1);
        assert_eq!(reading.take(1_000.0), read(1));
        reading.seen(2);
        reading.seen(3);
        assert_eq!(reading.due_ms(), Some(1_000.0 + READ_EVERY_MS));
        assert_eq!(reading.take(1_000.0 + READ_EVERY_MS - 1.0), None);
        assert_eq!(reading.take(1_000.0 + READ_EVERY_MS), read(3), "merged: the newest");
    }

    #[test]
    fn another_tab_moves_the_known_cursor() {
        let mut reading = welcomed();
        reading.seen(3);
        reading.cursor(EPOCH, 9);
        assert_eq!(reading.take(0.0), None, "another tab read further");
        reading.seen(9);
        assert_eq!(reading.take(0.0), None);
        reading.seen(10);
        assert_eq!(reading.take(0.0), read(10));
    }

    #[test]
    fn nothing_goes_without_a_welcomed_connection_or_an_epoch() {
        let mut reading = Reading::default();
        reading.seen(3);
        assert_eq!(reading.take(0.0), None, "not welcomed");
        reading.welcomed("");
        reading.seen(3);
        assert_eq!((reading.take(0.0), reading.due_ms()), (None, None), "the group has no epoch yet");
        reading.reset(EPOCH);
        reading.seen(1);
        assert_eq!(reading.take(0.0), read(1));
        reading.seen(2);
        reading.closed();
        assert_eq!(reading.take(10_000.0), None, "the connection is gone");
    }

    #[test]
    fn a_new_connection_tells_again_what_its_cursor_lacks() {
        let mut reading = welcomed();
        reading.seen(4);
        assert_eq!(reading.take(0.0), read(4));
        reading.closed();
        reading.welcomed(EPOCH);
        reading.cursor(EPOCH, 3);
        assert_eq!(reading.take(10_000.0), read(4), "the read before the drop was lost");
        reading.closed();
        reading.welcomed(EPOCH);
        reading.cursor(EPOCH, 4);
        assert_eq!(reading.take(20_000.0), None);
    }

    #[test]
    fn another_epoch_forgets_what_was_seen_and_ignores_old_cursors() {
        let mut reading = welcomed();
        reading.seen(40);
        reading.closed();
        reading.welcomed("new");
        reading.cursor(EPOCH, 50);
        assert_eq!(reading.take(0.0), None, "seen in another history");
        reading.seen(2);
        assert_eq!(reading.take(0.0), Some(ClientCommand::Read { epoch: "new".into(), seq: 2 }));
        reading.reset("newer");
        assert_eq!(reading.take(10_000.0), None);
    }

    #[test]
    fn the_divider_goes_above_the_first_message_after_the_stored_cursor_that_is_not_ones_own() {
        let mut reading = welcomed();
        reading.cursor(EPOCH, 3);
        for seq in 1..=3 {
            reading.received(&from(seq, ClientId(Uuid::nil())), me());
        }
        reading.received(&from(4, me()), me());
        assert_eq!(reading.synced(), None, "only one's own after the cursor");

        let mut reading = welcomed();
        reading.cursor(EPOCH, 3);
        reading.received(&from(4, me()), me());
        reading.received(&from(5, ClientId(Uuid::nil())), me());
        assert_eq!(reading.synced(), Some(3));
        assert_eq!(reading.synced(), None, "decided once");
    }

    #[test]
    fn no_stored_cursor_and_later_cursors_place_no_divider() {
        let mut reading = welcomed();
        reading.received(&message(1), me());
        assert_eq!(reading.synced(), None, "a first visit: no cursor");
        reading.cursor(EPOCH, 1);
        reading.received(&message(2), me());
        assert_eq!(reading.synced(), None, "a cursor after the room opened moves nothing");

        let mut reading = welcomed();
        reading.cursor(EPOCH, 1);
        reading.received(&message(2), me());
        reading.reset("new");
        assert_eq!(reading.synced(), None, "the history it pointed into is gone");
    }
}
