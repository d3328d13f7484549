//! The timeline view's scrolling rules as plain Rust: from the list's scroll
//! metrics, whether the view follows the newest message and whether a page
//! is asked for at either end. The component reads the metrics and does
//! what is decided.

use super::Edge;

/// Distance from the top, in pixels, at which older history is loaded.
pub const NEAR_TOP: i32 = 40;
/// Distance from the bottom, in pixels, that still counts as at the bottom.
pub const NEAR_BOTTOM: i32 = 32;
/// Distance from the bottom, in pixels, at which newer history is loaded
/// (when the window does not hold the newest messages).
pub const NEAR_END: i32 = 400;

/// The list's scroll position, in pixels, as the DOM gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metrics {
    /// `scrollTop`.
    pub top: i32,
    /// `scrollHeight`.
    pub height: i32,
    /// `clientHeight`.
    pub client_height: i32,
}

impl Metrics {
    /// How far the view's bottom is from the list's end.
    pub fn to_end(&self) -> i32 {
        self.height - self.top - self.client_height
    }
}

/// What the view shows when the user scrolls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shown {
    /// The view follows the newest message.
    pub following: bool,
    /// The window holds the newest message.
    pub live: bool,
    pub older: Edge,
    pub newer: Edge,
}

/// A change to following the newest message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Follow {
    /// The user reached the bottom of a live window.
    Start,
    /// The user scrolled up away from the bottom.
    Stop,
}

/// What a scroll event leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scrolled {
    pub follow: Option<Follow>,
    pub load_older: bool,
    pub load_newer: bool,
}

/// A scroll event that found the list at `metrics`; `placed_at` is where
/// the app itself last put the view (a position there or further down is
/// the app's doing, not the user's).
///
/// Only the user scrolls up: rows landing below the bottom move nothing, so
/// a view the app put at the bottom is not "left".
pub fn scrolled(metrics: Metrics, placed_at: i32, shown: Shown) -> Scrolled {
    let at_bottom = metrics.to_end() <= NEAR_BOTTOM;
    let follow = if at_bottom && shown.live && !shown.following {
        Some(Follow::Start)
    } else if shown.following && left_bottom(metrics, placed_at) {
        Some(Follow::Stop)
    } else {
        None
    };
    Scrolled {
        follow,
        load_older: metrics.top < NEAR_TOP && shown.older == Edge::More,
        load_newer: near_end_of_loadable(metrics, shown.newer),
    }
}

/// Whether the user has moved the view up from where the app last put it
/// (`placed_at`), away from the bottom. A render that finds this, before
/// the scroll event has told the view, must not put the view back down:
/// the user's scroll wins.
pub fn left_bottom(metrics: Metrics, placed_at: i32) -> bool {
    metrics.top < placed_at - 1 && metrics.to_end() > NEAR_BOTTOM
}

/// After a render, or a scroll: whether to ask for the next newer page
/// (the view is near the end of a window that lacks the newest messages).
pub fn near_end_of_loadable(metrics: Metrics, newer: Edge) -> bool {
    newer == Edge::More && metrics.to_end() <= NEAR_END
}

/// Whether a row `height` pixels high, its top at `top` (from the list's
/// top), counts as seen in the view at `metrics`: at least half of it is in
/// view, or, for a row taller than the view, half the view.
pub fn seen(top: i32, height: i32, metrics: Metrics) -> bool {
    let (view_top, view_bottom) = (metrics.top, metrics.top + metrics.client_height);
    let shown = (top + height).min(view_bottom) - top.max(view_top);
    shown > 0 && shown * 2 >= height.min(metrics.client_height)
}

#[cfg(test)]
mod tests {
    use super::*;

    const VIEW: i32 = 500;

    /// A list `height` high scrolled to `top`.
    fn at(top: i32, height: i32) -> Metrics {
        Metrics { top, height, client_height: VIEW }
    }

    fn shown(following: bool) -> Shown {
        Shown { following, live: true, older: Edge::Complete, newer: Edge::Complete }
    }

    #[test]
    fn reaching_the_bottom_of_a_live_window_follows_it() {
        let bottom = at(10_000 - VIEW - NEAR_BOTTOM, 10_000);
        assert_eq!(scrolled(bottom, 0, shown(false)).follow, Some(Follow::Start));
        let above = at(10_000 - VIEW - NEAR_BOTTOM - 1, 10_000);
        assert_eq!(scrolled(above, 0, shown(false)).follow, None);
        let not_live = Shown { live: false, ..shown(false) };
        assert_eq!(scrolled(bottom, 0, not_live).follow, None, "older pages: the newest is not in the window");
        assert_eq!(scrolled(bottom, 0, shown(true)).follow, None, "already following");
    }

    #[test]
    fn only_the_user_scrolling_up_stops_following() {
        let placed = 9_000;
        let up = at(placed - 2, 10_000);
        assert_eq!(scrolled(up, placed, shown(true)).follow, Some(Follow::Stop));
        // Rows added below move the end away, not the view: not the user's.
        let grown = at(placed, 20_000);
        assert_eq!(scrolled(grown, placed, shown(true)).follow, None);
        assert_eq!(scrolled(at(placed - 1, 20_000), placed, shown(true)).follow, None, "a pixel of rounding");
        let up_but_at_bottom = at(placed - 2, placed - 2 + VIEW);
        assert_eq!(scrolled(up_but_at_bottom, placed, shown(true)).follow, None);
        assert_eq!(scrolled(up, placed, shown(false)).follow, None, "not following");
        // A render checks the same before it puts the view back down.
        assert!(left_bottom(up, placed));
        assert!(!left_bottom(grown, placed) && !left_bottom(up_but_at_bottom, placed));
    }

    #[test]
    fn near_the_top_loads_older_pages_while_there_are_more() {
        let more = Shown { older: Edge::More, ..shown(false) };
        assert!(scrolled(at(NEAR_TOP - 1, 10_000), 0, more).load_older);
        assert!(!scrolled(at(NEAR_TOP, 10_000), 0, more).load_older);
        for older in [Edge::Complete, Edge::Loading, Edge::Failed] {
            let shown = Shown { older, ..more };
            assert!(!scrolled(at(0, 10_000), 0, shown).load_older, "{older:?}");
        }
    }

    #[test]
    fn near_the_end_of_a_window_without_the_newest_loads_newer_pages() {
        let more = Shown { live: false, newer: Edge::More, ..shown(false) };
        assert!(scrolled(at(10_000 - VIEW - NEAR_END, 10_000), 0, more).load_newer);
        assert!(!scrolled(at(10_000 - VIEW - NEAR_END - 1, 10_000), 0, more).load_newer);
        assert!(near_end_of_loadable(at(10_000 - VIEW, 10_000), Edge::More));
        for newer in [Edge::Complete, Edge::Loading, Edge::Failed] {
            assert!(!near_end_of_loadable(at(10_000 - VIEW, 10_000), newer), "{newer:?}");
        }
    }

    #[test]
    fn a_row_is_seen_once_half_of_it_is_in_view() {
        let view = at(1_000, 10_000);
        assert!(seen(1_200, 40, view), "inside");
        assert!(seen(1_000 + VIEW - 20, 40, view), "half of it above the view's bottom");
        assert!(!seen(1_000 + VIEW - 19, 40, view), "less than half");
        assert!(!seen(1_000 + VIEW, 40, view), "just below");
        assert!(seen(980, 40, view) && !seen(960, 40, view), "at the top, the same");
        assert!(seen(0, 5_000, view), "a row taller than the view that fills it");
        assert!(!seen(1_000 + VIEW / 2 + 1, 5_000, view), "less than half the view of it");
    }

    #[test]
    fn a_scroll_in_the_middle_decides_nothing() {
        let shown = Shown { following: false, live: false, older: Edge::More, newer: Edge::More };
        assert_eq!(scrolled(at(5_000, 10_000), 5_000, shown), Scrolled::default());
    }
}
