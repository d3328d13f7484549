//! What a `gap` from the server means. One rule for the timeline (which
//! line to show, whether what it holds is gone) and the resume cursor
//! (where the next connection resumes).

/// Messages `from..=to` that the server could not replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    pub from: u64,
    pub to: u64,
}

impl Gap {
    /// Where the group's numbers end now, if this gap says that the
    /// server's history was reset: one that starts at or below a number
    /// already known to exist (`newest_known`) is how an older server says
    /// `reset`, and the group's numbers end just below `from`. `None` for a
    /// gap beyond everything known: those messages are lost, the rest holds.
    pub fn reset_head(self, newest_known: Option<u64>) -> Option<u64> {
        // Numbers start at 1: a gap from 0 (which no server sends) resets
        // to an empty group rather than underflow.
        newest_known.filter(|known| self.from <= *known).map(|_| self.from.saturating_sub(1))
    }

    /// How many messages are lost (none for a gap that ends before it
    /// starts, which no server sends).
    pub fn missing(self) -> u64 {
        self.to.checked_sub(self.from).map_or(0, |span| span.saturating_add(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gap_beyond_what_is_known_loses_only_its_messages() {
        let gap = Gap { from: 5, to: 9 };
        assert_eq!(gap.reset_head(Some(4)), None);
        assert_eq!(gap.reset_head(None), None, "nothing known, nothing reset");
        assert_eq!(gap.missing(), 5);
    }

    #[test]
    fn a_gap_at_or_below_a_known_number_is_a_reset_below_it() {
        assert_eq!(Gap { from: 5, to: 9 }.reset_head(Some(5)), Some(4));
        assert_eq!(Gap { from: 1, to: 3 }.reset_head(Some(40)), Some(0));
    }

    #[test]
    fn a_malformed_gap_neither_underflows_nor_overflows() {
        assert_eq!(Gap { from: 0, to: 3 }.reset_head(Some(2)), Some(0));
        assert_eq!(Gap { from: 9, to: 5 }.missing(), 0);
        assert_eq!(Gap { from: 0, to: u64::MAX }.missing(), u64::MAX);
    }
}
