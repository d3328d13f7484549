//! The room's timeline as plain Rust: messages in sequence order inside a
//! bounded window, and the system lines placed between them.
//!
//! # Invariants
//! - **Order by construction.** Every row has a [`RowKey`]: a message sits at
//!   `(seq, 0)`; a system line at `(anchor, n)` with `n ≥ 1`, where `anchor`
//!   is the newest sequence number the page knew when the line happened. So
//!   a line is always after the messages it followed and before every message
//!   that arrives later, and lines at one anchor keep the order they happened
//!   in.
//! - **A real window.** At most [`MAX_MESSAGES`] messages, whatever the order
//!   of inserts. The window covers one contiguous stretch of sequence numbers
//!   (`covered`), unrecoverable gaps included. Past the bound, messages are
//!   dropped from the end away from what the user is looking at, and the
//!   dropped side becomes loadable again ([`Edge::More`]).
//! - **Cheap actions.** Inserting a message is `O(log n)` and never copies the
//!   window; rows are built once per render by [`Timeline::rows`].

use std::collections::BTreeMap;
use std::rc::Rc;

use roomcast_shared::{ChatMessage, ClientId, DisplayName};

mod chunk;
mod gap;
mod paging;
mod row;
pub mod scroll;
#[cfg(test)]
mod tests;

pub use chunk::{chunked, Chunk, CHUNK};
pub use gap::Gap;
pub use paging::{Ask, Page, PageAt, PageRequest, Paging};
pub use row::{LineKind, Row, RowKey, SystemLine};

/// Most messages the window holds.
pub const MAX_MESSAGES: usize = 2_000;

/// Most system lines kept; the oldest go first.
pub const MAX_LINES: usize = 500;

/// One end of the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edge {
    /// The window reaches this end: the group's first message (older side)
    /// or its newest known one (newer side).
    Complete,
    /// More messages exist beyond this end and can be loaded.
    More,
    /// A page is being loaded.
    Loading,
    /// The last load failed; the user may retry.
    Failed,
}

impl Edge {
    /// A load that came back for another window leaves this end loadable.
    fn unstick(&mut self) {
        if *self == Edge::Loading {
            *self = Edge::More;
        }
    }
}

/// The timeline of one room view.
#[derive(Debug, Clone)]
pub struct Timeline {
    messages: BTreeMap<u64, Rc<ChatMessage>>,
    lines: BTreeMap<RowKey, Rc<SystemLine>>,
    /// Lines (with their numbers) that happened while the window held no
    /// message: they are placed just before the first messages that arrive.
    floating: Vec<(u64, Rc<SystemLine>)>,
    next_line: u64,
    /// The stretch of sequence numbers the window covers, inclusive.
    covered: Option<(u64, u64)>,
    /// The newest sequence number known to exist in the group.
    head: u64,
    older: Edge,
    newer: Edge,
    /// The user is at the bottom: the view follows new messages.
    following: bool,
    /// Messages that arrived while the user was not at the bottom.
    unseen: u64,
    /// The number of the line that collapses repeated reconnect attempts.
    retry_line: Option<u64>,
    /// Bumped whenever the window is replaced (a reset, a jump): a page
    /// asked for before belongs to another window and is ignored.
    generation: u64,
    /// The last failed load below the window was a jump to the newest: its
    /// Retry jumps again rather than loading the next page.
    jump_failed: bool,
    /// Where the unread part began when the room opened.
    divider: Option<Divider>,
}

/// The "New messages" divider: above the first message after `after` that
/// is not `me`'s (verified) own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Divider {
    after: u64,
    me: Option<ClientId>,
}

impl Default for Timeline {
    fn default() -> Self {
        Self {
            messages: BTreeMap::new(),
            lines: BTreeMap::new(),
            floating: Vec::new(),
            next_line: 1,
            covered: None,
            head: 0,
            older: Edge::More,
            newer: Edge::Complete,
            following: true,
            unseen: 0,
            retry_line: None,
            generation: 0,
            jump_failed: false,
            divider: None,
        }
    }
}

impl Timeline {
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// The oldest message held: the bound for loading older history.
    pub fn oldest_seq(&self) -> Option<u64> {
        self.messages.keys().next().copied()
    }

    /// The newest message held.
    pub fn newest_seq(&self) -> Option<u64> {
        self.messages.keys().next_back().copied()
    }

    /// The top of the covered stretch: the bound for loading newer history.
    pub fn covered_to(&self) -> Option<u64> {
        self.covered.map(|(_, to)| to)
    }

    pub fn head(&self) -> u64 {
        self.head
    }

    /// Which window a page request was made for (see [`PageRequest`]).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The older side: [`Edge::Complete`] once the group's first retained
    /// message is shown.
    pub fn older(&self) -> Edge {
        match (self.older, self.oldest_seq()) {
            (Edge::More, Some(1)) | (Edge::More, None) => Edge::Complete,
            (edge, _) => edge,
        }
    }

    pub fn newer(&self) -> Edge {
        self.newer
    }

    pub fn following(&self) -> bool {
        self.following
    }

    pub fn unseen(&self) -> u64 {
        self.unseen
    }

    /// Whether the window holds the newest known message (live messages are
    /// appended as they come).
    pub fn is_live(&self) -> bool {
        self.newer == Edge::Complete
    }

    /// The name on the newest message held from `client_id`'s verified
    /// identity, if any.
    pub fn last_name_of(&self, client_id: ClientId) -> Option<&DisplayName> {
        let theirs = |message: &&Rc<ChatMessage>| message.from.verified && message.from.client_id == client_id;
        self.messages.values().rev().find(theirs)?.from.name.as_ref()
    }

    /// Shows "New messages" above the first message after `after` that is
    /// not `me`'s own, for as long as this window's history lasts (a reset
    /// takes it away). It is placed by number: live messages never move
    /// it, and an older page can only bring its true place into view.
    pub fn divide(&mut self, after: u64, me: Option<ClientId>) {
        self.divider = Some(Divider { after, me });
    }

    /// The message the divider goes above, if the window holds where the
    /// unread part begins.
    fn divider_place(&self) -> Option<u64> {
        let Divider { after, me } = self.divider?;
        let (from, _) = self.covered?;
        if from > after.saturating_add(1) && self.older() != Edge::Complete {
            return None;
        }
        let mine = |message: &Rc<ChatMessage>| message.from.verified && Some(message.from.client_id) == me;
        self.messages.range(after.saturating_add(1)..).find(|(_, message)| !mine(message)).map(|(seq, _)| *seq)
    }

    /// The user scrolled to the bottom (`true`) or away from it.
    pub fn set_following(&mut self, following: bool) {
        self.following = following;
        self.settle();
    }

    /// Nothing is unseen once the user is at the bottom of a live window.
    fn settle(&mut self) {
        if self.following && self.is_live() {
            self.unseen = 0;
        }
    }

    /// A connection event, placed after the newest message known now. A
    /// [`LineKind::Retry`] line replaces the previous one while nothing came
    /// after it, so repeated attempts show as one line that updates.
    pub fn note(&mut self, kind: LineKind, text: String, at_ms: f64) {
        let line = Rc::new(SystemLine { kind, text, at_ms });
        if kind == LineKind::Retry && self.replace_last_retry(&line) {
            return;
        }
        let number = self.add_line(line);
        self.retry_line = (kind == LineKind::Retry).then_some(number);
    }

    /// Replaces the retry line if it is still the last row.
    fn replace_last_retry(&mut self, line: &Rc<SystemLine>) -> bool {
        let Some(number) = self.retry_line else { return false };
        if let Some((last, _)) = self.floating.last() {
            if *last == number {
                self.floating.last_mut().expect("checked").1 = line.clone();
                return true;
            }
            return false;
        }
        let Some(key) = self.lines.keys().next_back().copied() else { return false };
        let nothing_after = self.newest_seq().is_none_or(|seq| seq <= key.at);
        if key.line == number && key.at == self.anchor() && nothing_after {
            self.lines.insert(key, line.clone());
            return true;
        }
        false
    }

    /// Where a line happening now goes.
    fn anchor(&self) -> u64 {
        self.head.max(self.covered_to().unwrap_or(0))
    }

    /// Places a line and returns its number.
    fn add_line(&mut self, line: Rc<SystemLine>) -> u64 {
        let number = self.take_line_number();
        if self.covered.is_none() {
            self.floating.push((number, line));
            if self.floating.len() > MAX_LINES {
                self.floating.remove(0);
            }
        } else {
            self.insert_line(RowKey { at: self.anchor(), line: number }, line);
        }
        number
    }

    fn insert_line(&mut self, key: RowKey, line: Rc<SystemLine>) {
        self.lines.insert(key, line);
        while self.lines.len() > MAX_LINES {
            self.lines.pop_first();
        }
    }

    fn take_line_number(&mut self) -> u64 {
        let n = self.next_line;
        self.next_line += 1;
        n
    }

    /// Live or replayed messages, in the order the server sent them.
    pub fn receive(&mut self, messages: Vec<ChatMessage>) {
        for message in messages {
            self.head = self.head.max(message.seq);
            let placed = match self.covered {
                None => {
                    self.cover(message.seq, message.seq);
                    true
                }
                // Appended while the reader follows, or while there is room;
                // a full window of a reader scrolled up keeps what they read,
                // and the newer messages wait below it.
                Some((from, to))
                    if message.seq == to + 1
                        && self.is_live()
                        && (self.following || self.messages.len() < MAX_MESSAGES) =>
                {
                    self.covered = Some((from, message.seq));
                    true
                }
                // Already covered: the same message again (a resend's echo,
                // or a replay overlapping what is shown).
                Some((from, to)) if (from..=to).contains(&message.seq) => {
                    if self.messages.contains_key(&message.seq) {
                        continue;
                    }
                    true
                }
                // Beyond a part of the group the window does not hold.
                _ => false,
            };
            if !self.following || !placed {
                self.unseen += 1;
            }
            if placed {
                self.messages.insert(message.seq, Rc::new(message));
            } else if self.newer == Edge::Complete {
                self.newer = Edge::More;
            }
        }
        self.trim(Trim::Oldest);
    }

    /// The window starts covering `from..=to`; lines that were waiting for
    /// a place go just before it.
    fn cover(&mut self, from: u64, to: u64) {
        self.covered = Some((from, to));
        let at = from.saturating_sub(1);
        for (number, line) in std::mem::take(&mut self.floating) {
            self.lines.insert(RowKey { at, line: number }, line);
        }
    }

    /// The group has a message numbered `seq` (a replay is `synced` up to
    /// it, or a sent message was acknowledged as it).
    pub fn exists(&mut self, seq: u64) {
        self.head = self.head.max(seq);
    }

    /// The group's history started over (a `reset`, or from an older
    /// server a gap below what the page holds): what the page shows is not
    /// the group's any more, and the group's numbers now end at `head`; the
    /// latest messages follow.
    pub fn reset(&mut self, head: u64, at_ms: f64) {
        // A page that held nothing loses nothing: it only learns the epoch
        // (the group was created after it joined).
        let lost_something = !self.messages.is_empty() || self.head > 0;
        // The connection log stays, before what the server holds now.
        self.messages.clear();
        self.covered = None;
        let lines = std::mem::take(&mut self.lines).into_iter().map(|(key, line)| (key.line, line));
        self.floating = lines.chain(std::mem::take(&mut self.floating)).collect();
        self.head = head;
        self.older = Edge::More;
        self.newer = Edge::Complete;
        self.retry_line = None;
        self.generation += 1;
        self.divider = None;
        if lost_something {
            let text = "the server's history was reset: the messages shown before are gone from this room".to_owned();
            self.add_line(Rc::new(SystemLine { kind: LineKind::Gap, text, at_ms }));
        }
    }

    /// Messages `from..=to` cannot be recovered; what follows starts after
    /// `to`. A gap starting at or below the newest number the page knows
    /// means the server's history was reset.
    pub fn gap(&mut self, from: u64, to: u64, at_ms: f64) {
        let gap = Gap { from, to };
        if let Some(head) = gap.reset_head(Some(self.head)) {
            self.reset(head, at_ms);
            return;
        }
        let missing = gap.missing();
        let text = format!("{missing} message{} could not be recovered", if missing == 1 { "" } else { "s" });
        let line = Rc::new(SystemLine { kind: LineKind::Gap, text, at_ms });
        let number = self.take_line_number();
        self.insert_line(RowKey { at: from.saturating_sub(1), line: number }, line);
        self.retry_line = None;
        match self.covered {
            Some((held_from, held_to)) if from == held_to + 1 && self.is_live() => {
                self.covered = Some((held_from, to));
            }
            None => self.cover(from, to),
            // Beyond the window: the line waits there for the window.
            Some(_) => self.newer = Edge::More,
        }
        self.head = self.head.max(to);
    }

    /// Keeps the window within [`MAX_MESSAGES`].
    fn trim(&mut self, side: Trim) {
        let excess = self.messages.len().saturating_sub(MAX_MESSAGES);
        if excess == 0 {
            return;
        }
        for _ in 0..excess {
            match side {
                Trim::Oldest => self.messages.pop_first(),
                Trim::Newest => self.messages.pop_last(),
            };
        }
        let (Some(oldest), Some(newest)) = (self.oldest_seq(), self.newest_seq()) else { return };
        match side {
            Trim::Oldest => {
                self.covered = self.covered.map(|(_, to)| (oldest, to));
                self.older = Edge::More;
            }
            Trim::Newest => {
                self.covered = self.covered.map(|(from, _)| (from, newest));
                self.newer = Edge::More;
            }
        }
    }

    /// The rows to show, in order: the window's messages and the lines that
    /// fall inside it (and those beyond an end that is complete).
    pub fn rows(&self) -> Vec<Row> {
        let mut rows = Vec::with_capacity(self.messages.len() + self.lines.len() + self.floating.len());
        let Some((from, to)) = self.covered else {
            rows.extend(self.lines.iter().map(|(key, line)| Row::Line { key: *key, line: line.clone() }));
            rows.extend(
                self.floating.iter().map(|(number, line)| Row::Line {
                    key: RowKey { at: u64::MAX, line: *number },
                    line: line.clone(),
                }),
            );
            return rows;
        };
        let older_complete = self.older() == Edge::Complete;
        let newer_complete = self.is_live();
        let visible = |key: &RowKey| (key.at + 1 >= from || older_complete) && (key.at <= to || newer_complete);
        let mut lines = self.lines.iter().filter(|(key, _)| visible(key)).peekable();
        let divider = self.divider_place();
        for (seq, message) in &self.messages {
            while let Some((key, line)) = lines.next_if(|(key, _)| key.at < *seq) {
                rows.push(Row::Line { key: *key, line: line.clone() });
            }
            if divider == Some(*seq) {
                rows.push(Row::Divider { before: *seq });
            }
            rows.push(Row::Message(message.clone()));
        }
        rows.extend(lines.map(|(key, line)| Row::Line { key: *key, line: line.clone() }));
        rows
    }
}

/// Paging: which page to ask for, and what its answer does (see [`paging`]).
impl Timeline {
    /// What paging `paging` asks for now. After a failed jump to the
    /// newest, the Retry below the window jumps again.
    pub fn ask(&self, paging: Paging) -> Ask {
        let paging = match paging {
            Paging::Newer if self.jump_failed && self.newer() == Edge::Failed => Paging::Latest,
            other => other,
        };
        let at = match paging {
            Paging::Older if self.older() == Edge::Loading => return Ask::Nothing,
            Paging::Newer if self.newer() == Edge::Loading => return Ask::Nothing,
            Paging::Older => match self.oldest_seq() {
                Some(before) => PageAt::Before(before),
                None => return Ask::Nothing,
            },
            Paging::Newer => match self.covered_to() {
                Some(after) => PageAt::After(after),
                None => return Ask::Nothing,
            },
            Paging::Latest if self.is_live() => return Ask::Follow,
            Paging::Latest => PageAt::Latest,
        };
        Ask::Load(PageRequest { at, generation: self.generation })
    }

    /// `request` is under way: its end shows as loading.
    pub fn loading(&mut self, request: PageRequest) {
        match request.at {
            PageAt::Before(_) => self.loading_older(),
            PageAt::After(_) => self.loading_newer(),
            PageAt::Latest => {}
        }
    }

    /// The answer to `request`: its page, or `None` when the load failed.
    /// The latest page is followed: the view shows its bottom.
    pub fn answered(&mut self, request: PageRequest, page: Option<Page>) {
        let generation = request.generation;
        match (request.at, page) {
            (PageAt::Before(before), Some(page)) => self.older_page(generation, before, page),
            (PageAt::After(after), Some(page)) => self.newer_page(generation, after, page),
            (PageAt::Latest, Some(page)) => {
                self.set_following(true);
                self.latest_page(generation, page);
            }
            (PageAt::Before(_), None) => self.older_failed(),
            (PageAt::After(_) | PageAt::Latest, None) => {
                self.jump_failed = request.at == PageAt::Latest;
                self.newer_failed();
            }
        }
    }

    fn loading_older(&mut self) {
        self.older = Edge::Loading;
    }

    fn older_failed(&mut self) {
        self.older = Edge::Failed;
    }

    /// A page of messages before `before` (the oldest shown when it was
    /// asked for, in window `generation`). A page for a window that has
    /// moved since is ignored.
    fn older_page(&mut self, generation: u64, before: u64, page: Page) {
        if generation != self.generation || self.oldest_seq() != Some(before) {
            self.older.unstick();
            return;
        }
        let mut from = before;
        for message in page.messages.into_iter().filter(|m| m.seq < before) {
            from = from.min(message.seq);
            self.messages.insert(message.seq, Rc::new(message));
        }
        if let Some((_, to)) = self.covered {
            self.covered = Some((from, to));
        }
        self.older = if page.has_more { Edge::More } else { Edge::Complete };
        self.trim(if self.following { Trim::Oldest } else { Trim::Newest });
    }

    fn loading_newer(&mut self) {
        self.newer = Edge::Loading;
    }

    fn newer_failed(&mut self) {
        self.newer = Edge::Failed;
    }

    /// A page of messages after `after` (the top of the covered stretch
    /// when it was asked for, in window `generation`). A page for a window
    /// that has moved is ignored.
    fn newer_page(&mut self, generation: u64, after: u64, page: Page) {
        if generation != self.generation || self.covered_to() != Some(after) {
            self.newer.unstick();
            return;
        }
        let mut to = after;
        for message in page.messages.into_iter().filter(|m| m.seq > after) {
            to = to.max(message.seq);
            self.head = self.head.max(message.seq);
            self.messages.insert(message.seq, Rc::new(message));
        }
        if let Some((from, _)) = self.covered {
            self.covered = Some((from, to));
        }
        self.newer = if page.has_more || to < self.head { Edge::More } else { Edge::Complete };
        self.trim(Trim::Oldest);
        self.settle();
    }

    /// The group's latest page, asked for in window `generation`, replaces
    /// the window ("jump to newest"). One that comes after the window was
    /// replaced otherwise (a reset of the server) is ignored: it may hold
    /// numbers the server no longer has.
    fn latest_page(&mut self, generation: u64, page: Page) {
        if generation != self.generation {
            self.newer.unstick();
            return;
        }
        self.generation += 1;
        let (Some(first), Some(last)) = (page.messages.first(), page.messages.last()) else {
            self.newer = Edge::Complete;
            return;
        };
        let (from, to) = (first.seq, last.seq);
        self.messages.clear();
        self.covered = Some((from, to));
        for message in page.messages {
            self.messages.insert(message.seq, Rc::new(message));
        }
        self.head = self.head.max(to);
        self.older = if page.has_more { Edge::More } else { Edge::Complete };
        self.newer = if to < self.head { Edge::More } else { Edge::Complete };
        self.trim(Trim::Oldest);
        self.settle();
    }
}

/// Which end of the window [`Timeline::trim`] drops messages from.
#[derive(Debug, Clone, Copy)]
enum Trim {
    Oldest,
    Newest,
}
