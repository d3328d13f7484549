//! Where a reconnect resumes: the newest message number received and the
//! epoch it belongs to, and what each server event does to them. The next
//! connection asks for what follows (`since`), in that epoch (`epoch`): a
//! server whose history started over since answers `reset`.

use crate::timeline::Gap;

/// The resume point of a room view, across its connections.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResumeCursor {
    /// The newest number received; `None` before any (or after a reset).
    since: Option<u64>,
    /// The epoch `since` belongs to, once the server has told it.
    epoch: Option<String>,
}

impl ResumeCursor {
    pub fn since(&self) -> Option<u64> {
        self.since
    }

    pub fn epoch(&self) -> Option<&str> {
        self.epoch.as_deref()
    }

    /// What the socket's URL asks for: `&since=…[&epoch=…]`, or nothing
    /// before the first message (an epoch alone resumes nothing).
    pub fn query(&self) -> String {
        match (self.since, &self.epoch) {
            (None, _) => String::new(),
            (Some(seq), None) => format!("&since={seq}"),
            (Some(seq), Some(epoch)) => format!("&since={seq}&epoch={epoch}"),
        }
    }

    /// `welcome` named the group's epoch (empty while the group has none:
    /// the one known is kept).
    pub fn welcomed(&mut self, epoch: String) {
        if !epoch.is_empty() {
            self.epoch = Some(epoch);
        }
    }

    /// A message numbered `seq` arrived (live, or replayed).
    pub fn received(&mut self, seq: u64) {
        self.since = Some(self.since.map_or(seq, |since| since.max(seq)));
    }

    /// The server could not replay `gap`: one that says its history was
    /// reset below what is held moves the cursor back below it.
    pub fn gap(&mut self, gap: Gap) {
        if let Some(head) = gap.reset_head(self.since) {
            self.since = Some(head);
        }
    }

    /// The group's history started over in `epoch`: nothing held counts,
    /// and a fresh join's messages follow.
    pub fn reset(&mut self, epoch: String) {
        self.since = None;
        self.epoch = Some(epoch).filter(|epoch| !epoch.is_empty());
    }

    /// The replay is complete up to `seq`.
    pub fn synced(&mut self, seq: u64) {
        self.since = Some(seq);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(since: u64, epoch: &str) -> ResumeCursor {
        let mut cursor = ResumeCursor::default();
        cursor.welcomed(epoch.to_owned());
        cursor.received(since);
        cursor
    }

    #[test]
    fn a_first_connection_asks_for_nothing_in_particular() {
        let mut cursor = ResumeCursor::default();
        assert_eq!(cursor.query(), "");
        cursor.welcomed("9f2c".into());
        assert_eq!(cursor.query(), "", "an epoch without a number resumes nothing");
        assert_eq!(cursor.epoch(), Some("9f2c"));
    }

    #[test]
    fn a_reconnect_asks_for_what_follows_the_newest_message_received() {
        let mut cursor = at(41, "9f2c");
        cursor.received(7);
        assert_eq!(cursor.since(), Some(41), "an older number never moves it back");
        assert_eq!(cursor.query(), "&since=41&epoch=9f2c");
        let mut unwelcomed = ResumeCursor::default();
        unwelcomed.received(3);
        assert_eq!(unwelcomed.query(), "&since=3");
    }

    #[test]
    fn an_empty_epoch_in_welcome_keeps_the_one_known() {
        let mut cursor = at(41, "9f2c");
        cursor.welcomed(String::new());
        assert_eq!(cursor.epoch(), Some("9f2c"));
    }

    #[test]
    fn synced_sets_the_number_the_replay_reached() {
        let mut cursor = at(41, "9f2c");
        cursor.synced(45);
        assert_eq!(cursor.since(), Some(45));
    }

    #[test]
    fn a_gap_beyond_what_is_held_keeps_the_cursor_and_one_below_it_moves_it_back() {
        let mut cursor = at(41, "9f2c");
        cursor.gap(Gap { from: 42, to: 50 });
        assert_eq!(cursor.since(), Some(41));
        cursor.gap(Gap { from: 30, to: 35 });
        assert_eq!(cursor.since(), Some(29), "the server's history was reset below what we held");
        let mut empty = ResumeCursor::default();
        empty.gap(Gap { from: 1, to: 5 });
        assert_eq!(empty.since(), None);
    }

    #[test]
    fn a_reset_forgets_the_number_and_takes_the_new_epoch() {
        let mut cursor = at(41, "9f2c");
        cursor.reset("a1b2".into());
        assert_eq!((cursor.since(), cursor.epoch()), (None, Some("a1b2")));
        assert_eq!(cursor.query(), "");
        cursor.reset(String::new());
        assert_eq!(cursor.epoch(), None, "a reset to no epoch forgets it");
    }
}
