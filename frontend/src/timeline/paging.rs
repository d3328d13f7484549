//! Paging through history: which page the view asks for, and the page it
//! gets. A page is asked for in one window (its
//! [`generation`](super::Timeline::generation)) at one bound; the timeline
//! ([`Timeline::ask`](super::Timeline::ask),
//! [`Timeline::answered`](super::Timeline::answered)) decides which, and
//! ignores an answer for a window that has moved since.

use roomcast_shared::ChatMessage;

/// Which way the user pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paging {
    /// The page before the oldest message shown.
    Older,
    /// The page after the newest message covered.
    Newer,
    /// The group's latest page, replacing the window ("jump to newest").
    Latest,
}

/// Where a page starts, as the history API is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageAt {
    Before(u64),
    After(u64),
    Latest,
}

/// A page asked for in window `generation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub at: PageAt,
    pub generation: u64,
}

impl PageRequest {
    /// The request's bound in the API's query (after `?limit=…`):
    /// `&before=…`, `&after=…`, or nothing for the latest page.
    pub fn query(&self) -> String {
        match self.at {
            PageAt::Before(seq) => format!("&before={seq}"),
            PageAt::After(seq) => format!("&after={seq}"),
            PageAt::Latest => String::new(),
        }
    }

    /// Whether an end of the window shows as loading while it is under way.
    /// The latest page replaces the window, which stays as it is until then.
    pub fn shows_loading(&self) -> bool {
        self.at != PageAt::Latest
    }
}

/// What asking for a page means now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    /// Nothing to load: a load at that end is under way, or the window
    /// holds nothing to page from.
    Nothing,
    /// The window already holds the newest messages: follow them.
    Follow,
    /// Load this page.
    Load(PageRequest),
}

/// A page of history as the server sent it, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub messages: Vec<ChatMessage>,
    /// Older messages exist (a `before` page) or newer ones (an `after` page).
    pub has_more: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::message;
    use crate::timeline::{Edge, Timeline};

    fn page(seqs: impl IntoIterator<Item = u64>, has_more: bool) -> Page {
        let messages = seqs.into_iter().map(message).collect();
        Page { messages, has_more }
    }

    /// A window holding 101..=150 of a group whose newest is 150.
    fn live_window() -> Timeline {
        let mut timeline = Timeline::default();
        timeline.receive(page(101..=150, false).messages);
        timeline
    }

    fn load(timeline: &Timeline, paging: Paging) -> PageRequest {
        match timeline.ask(paging) {
            Ask::Load(request) => request,
            other => panic!("expected a load, got {other:?}"),
        }
    }

    #[test]
    fn older_pages_are_asked_before_the_oldest_message_shown() {
        let timeline = live_window();
        let request = load(&timeline, Paging::Older);
        assert_eq!(request, PageRequest { at: PageAt::Before(101), generation: timeline.generation() });
        assert_eq!(request.query(), "&before=101");
        assert!(request.shows_loading());
    }

    #[test]
    fn nothing_is_asked_twice_nor_from_an_empty_window() {
        let mut timeline = live_window();
        let request = load(&timeline, Paging::Older);
        timeline.loading(request);
        assert_eq!(timeline.ask(Paging::Older), Ask::Nothing, "one load per end at a time");
        assert_eq!(Timeline::default().ask(Paging::Older), Ask::Nothing);
        assert_eq!(Timeline::default().ask(Paging::Newer), Ask::Nothing);
    }

    #[test]
    fn jumping_to_the_newest_while_live_only_follows() {
        let mut timeline = live_window();
        timeline.set_following(false);
        assert_eq!(timeline.ask(Paging::Latest), Ask::Follow);
    }

    #[test]
    fn a_window_behind_the_newest_asks_after_what_it_covers_or_jumps() {
        let mut timeline = live_window();
        timeline.set_following(false);
        // A gap beyond the window: what follows it is not held here.
        timeline.gap(160, 160, 0.0);
        assert!(!timeline.is_live());
        assert_eq!(load(&timeline, Paging::Newer).at, PageAt::After(150));
        let latest = load(&timeline, Paging::Latest);
        assert_eq!((latest.at, latest.query()), (PageAt::Latest, String::new()));
        assert!(!latest.shows_loading(), "the window stays as it is until the page comes");
    }

    #[test]
    fn answers_fill_the_window_and_failures_mark_their_end() {
        let mut timeline = live_window();
        let request = load(&timeline, Paging::Older);
        timeline.loading(request);
        timeline.answered(request, Some(page(51..=100, true)));
        assert_eq!((timeline.oldest_seq(), timeline.older()), (Some(51), Edge::More));
        let request = load(&timeline, Paging::Older);
        timeline.loading(request);
        timeline.answered(request, None);
        assert_eq!(timeline.older(), Edge::Failed);
        assert_eq!(load(&timeline, Paging::Older).at, PageAt::Before(51), "Retry asks again");
    }

    #[test]
    fn the_retry_after_a_failed_jump_jumps_again() {
        let mut timeline = live_window();
        timeline.gap(160, 160, 0.0);
        timeline.set_following(false);
        let jump = load(&timeline, Paging::Latest);
        timeline.answered(jump, None);
        assert_eq!(timeline.newer(), Edge::Failed);
        assert_eq!(load(&timeline, Paging::Newer).at, PageAt::Latest);
        let next = PageRequest { at: PageAt::After(150), generation: timeline.generation() };
        timeline.answered(next, None);
        assert_eq!(load(&timeline, Paging::Newer).at, PageAt::After(150), "the last failure was a page");
    }

    #[test]
    fn the_latest_page_replaces_the_window_and_is_followed() {
        let mut timeline = live_window();
        timeline.gap(160, 160, 0.0);
        timeline.set_following(false);
        let jump = load(&timeline, Paging::Latest);
        timeline.answered(jump, Some(page(200..=210, true)));
        assert_eq!((timeline.oldest_seq(), timeline.newest_seq()), (Some(200), Some(210)));
        assert!(timeline.following());
        assert_ne!(timeline.generation(), jump.generation, "pages asked for the old window are ignored");
    }
}
