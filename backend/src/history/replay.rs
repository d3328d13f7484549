//! What a joining JSON client receives before it goes live, read one page
//! at a time so that a connection holds one page, however much history
//! there is and whatever `since` says.
//!
//! A [`Replay`] is a cursor: each [`step`](Replay::step) reads the next page
//! (head and rows from one snapshot, so a prune in between becomes an exact
//! gap), and says what to send. The connection writes a page before it asks
//! for the next, so a client that does not read holds one page at most.

use roomcast_shared::{ChatMessage, GroupName};

use super::store::{Head, HistoryError, Limit, Range, Store};

/// Most of one replay page: a connection holds one at a time.
pub const PAGE: Limit = Limit { messages: 100, bytes: 128 * 1024 };

/// Where a client starts: everything retained after `since` of `epoch`
/// (`None`: the current one), or with no `since`, the latest messages.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Start {
    pub since: Option<u64>,
    pub epoch: Option<String>,
}

/// One thing to send, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// What the client holds is not the group's history any more; what
    /// follows is what a fresh join gets.
    Reset {
        epoch: String,
    },
    /// Messages `from..=to` cannot be recovered.
    Gap {
        from: u64,
        to: u64,
    },
    Message(ChatMessage),
}

/// What one step read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub pieces: Vec<Piece>,
    /// The replay has reached the group's last number as this page saw it.
    pub caught_up: bool,
}

/// A replay in progress.
#[derive(Debug, Clone)]
pub struct Replay {
    group: GroupName,
    /// Messages a fresh join gets.
    latest: usize,
    state: State,
    /// The group's epoch as the replay knows it (empty until read).
    epoch: String,
}

#[derive(Debug, Clone)]
enum State {
    Starting(Start),
    /// Everything up to this number is sent (or reported as a gap).
    After(u64),
}

impl Replay {
    /// A replay from `start`; a fresh join (or a reset) gets the latest
    /// `latest` messages.
    pub fn new(group: GroupName, start: Start, latest: usize) -> Self {
        Self { group, latest, state: State::Starting(start), epoch: String::new() }
    }

    /// The last number sent or reported: the client's watermark.
    pub fn position(&self) -> u64 {
        match self.state {
            State::Starting(_) => 0,
            State::After(seq) => seq,
        }
    }

    /// The group's epoch, once the first step has read it.
    pub fn epoch(&self) -> &str {
        &self.epoch
    }

    /// Reads the next page.
    pub fn step(&mut self, store: &dyn Store) -> Result<Page, HistoryError> {
        let mut pieces = Vec::new();
        let after = match std::mem::replace(&mut self.state, State::After(0)) {
            State::Starting(start) => self.start(store, start, &mut pieces)?,
            State::After(after) => after,
        };
        let slice = store.read(&self.group, Range::After(after), PAGE)?;
        if slice.head.epoch != self.epoch {
            // The group was emptied and created again under the replay.
            self.state = State::Starting(Start::default());
            pieces.push(Piece::Reset { epoch: slice.head.epoch });
            return Ok(Page { pieces, caught_up: false });
        }
        let first = slice.messages.first().map_or(slice.head.last + 1, |first| first.seq);
        if first > after + 1 {
            // Retention removed these, before this page or between two.
            pieces.push(Piece::Gap { from: after + 1, to: first - 1 });
        }
        let last = slice.messages.last().map_or(slice.head.last.max(after), |last| last.seq);
        pieces.extend(slice.messages.into_iter().map(Piece::Message));
        self.state = State::After(last);
        Ok(Page { pieces, caught_up: last >= slice.head.last })
    }

    /// Decides where the replay starts; may begin with a reset.
    fn start(&mut self, store: &dyn Store, start: Start, pieces: &mut Vec<Piece>) -> Result<u64, HistoryError> {
        let head = store.head(&self.group)?;
        self.epoch.clone_from(&head.epoch);
        if let Some(since) = start.since {
            let other_epoch = start.epoch.is_some_and(|epoch| !epoch.is_empty() && epoch != head.epoch);
            if !other_epoch && since <= head.last {
                return Ok(since);
            }
            pieces.push(Piece::Reset { epoch: head.epoch.clone() });
        }
        Ok(fresh_start(&head, self.latest))
    }
}

/// Where a fresh join of `latest` messages starts: numbers are consecutive
/// from the oldest kept, so no read is needed.
fn fresh_start(head: &Head, latest: usize) -> u64 {
    let oldest_kept = head.oldest.map_or(head.last, |oldest| oldest - 1);
    head.last.saturating_sub(latest as u64).max(oldest_kept)
}
