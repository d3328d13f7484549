//! When received messages are handed to the view, so that a catch-up of
//! thousands renders once, not once per message: a replay whole at
//! `synced`, live messages at most [`BATCH_MS`] after the first of their
//! batch. A gap, a reset or the end of a connection hands over what waits
//! first, so the view sees everything in the order it came.

use roomcast_shared::ChatMessage;

use crate::timeline::MAX_MESSAGES;

/// Live messages wait at most this long to be shown with the ones after
/// them (one render per batch).
pub const BATCH_MS: f64 = 16.0;

/// Most replayed messages held before they are handed over (a render each
/// time): ten windows' worth, about 3 MB of messages.
pub const REPLAY_BATCH_MAX: usize = 10 * MAX_MESSAGES;

/// Messages received and not yet handed to the view.
#[derive(Debug, Default)]
pub struct Batcher {
    waiting: Vec<ChatMessage>,
    /// When `waiting` is handed over, unless something hands it over first.
    due_ms: Option<f64>,
    /// Between the socket opening and `synced`: the replay is batched whole.
    replaying: bool,
}

impl Batcher {
    /// The socket opened: what comes until `synced` is the replay.
    pub fn opened(&mut self) {
        self.replaying = true;
    }

    /// `message` arrived at `now_ms`; a batch to hand over now, if any.
    pub fn received(&mut self, message: ChatMessage, now_ms: f64) -> Option<Vec<ChatMessage>> {
        self.waiting.push(message);
        if self.replaying {
            // Only a huge replay is handed over in parts, to bound what
            // waits here.
            if self.waiting.len() >= REPLAY_BATCH_MAX {
                return self.flush();
            }
        } else if self.due_ms.is_none() {
            self.due_ms = Some(now_ms + BATCH_MS);
        }
        None
    }

    /// The replay is complete: everything goes now, and later messages are
    /// live.
    pub fn synced(&mut self) -> Option<Vec<ChatMessage>> {
        self.replaying = false;
        self.flush()
    }

    /// The connection ended: what waits goes now; the next connection
    /// replays again once it opens.
    pub fn closed(&mut self) -> Option<Vec<ChatMessage>> {
        self.replaying = false;
        self.flush()
    }

    /// Everything waiting goes now (before a gap or a reset is shown).
    pub fn flush(&mut self) -> Option<Vec<ChatMessage>> {
        self.due_ms = None;
        (!self.waiting.is_empty()).then(|| std::mem::take(&mut self.waiting))
    }

    /// Time passed: the live batch, once it is due.
    pub fn tick(&mut self, now_ms: f64) -> Option<Vec<ChatMessage>> {
        if self.due_ms.is_some_and(|due| now_ms >= due) {
            return self.flush();
        }
        None
    }

    /// When the live batch is due, while one waits for time.
    pub fn due_ms(&self) -> Option<f64> {
        self.due_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::message;

    fn seqs(batch: Option<Vec<ChatMessage>>) -> Vec<u64> {
        batch.unwrap_or_default().iter().map(|m| m.seq).collect()
    }

    #[test]
    fn live_messages_go_together_one_batch_period_after_the_first() {
        let mut batcher = Batcher::default();
        assert_eq!(batcher.received(message(1), 100.0), None);
        assert_eq!(batcher.received(message(2), 110.0), None);
        assert_eq!(batcher.due_ms(), Some(100.0 + BATCH_MS), "the first message sets the time");
        assert_eq!(batcher.tick(115.0), None);
        assert_eq!(seqs(batcher.tick(116.0)), [1, 2]);
        assert_eq!(batcher.due_ms(), None);
        assert_eq!(batcher.tick(1_000.0), None, "nothing waits");
    }

    #[test]
    fn a_replay_goes_whole_at_synced_whatever_the_time() {
        let mut batcher = Batcher::default();
        batcher.opened();
        for seq in 1..=3 {
            assert_eq!(batcher.received(message(seq), 0.0), None);
        }
        assert_eq!(batcher.due_ms(), None, "a replay does not wait for time");
        assert_eq!(batcher.tick(1_000_000.0), None);
        assert_eq!(seqs(batcher.synced()), [1, 2, 3]);
        batcher.received(message(4), 5.0);
        assert_eq!(batcher.due_ms(), Some(5.0 + BATCH_MS), "after synced, messages are live");
    }

    #[test]
    fn a_huge_replay_goes_in_parts() {
        let mut batcher = Batcher::default();
        batcher.opened();
        for seq in 1..REPLAY_BATCH_MAX as u64 {
            assert_eq!(batcher.received(message(seq), 0.0), None);
        }
        assert_eq!(seqs(batcher.received(message(REPLAY_BATCH_MAX as u64), 0.0)).len(), REPLAY_BATCH_MAX);
        assert_eq!(seqs(batcher.synced()), Vec::<u64>::new());
    }

    #[test]
    fn a_flush_hands_over_what_waits_and_stops_the_clock() {
        let mut batcher = Batcher::default();
        batcher.received(message(1), 0.0);
        assert_eq!(seqs(batcher.flush()), [1]);
        assert_eq!(batcher.due_ms(), None);
        assert_eq!(batcher.flush(), None, "an empty batch is not handed over");
    }

    #[test]
    fn a_closed_connection_hands_over_its_replay_and_the_next_one_is_live_until_it_opens() {
        let mut batcher = Batcher::default();
        batcher.opened();
        batcher.received(message(1), 0.0);
        assert_eq!(seqs(batcher.closed()), [1]);
        batcher.received(message(2), 50.0);
        assert_eq!(batcher.due_ms(), Some(50.0 + BATCH_MS));
    }
}
