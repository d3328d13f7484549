//! A connection attempt's deadline: one that has not opened within
//! [`CONNECT_TIMEOUT_MS`] is abandoned and counts as failed, so a stalled
//! connect never blocks the next attempt.

/// How long an attempt may take to open.
pub const CONNECT_TIMEOUT_MS: f64 = 10_000.0;

/// One socket's attempt to open.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Attempt {
    deadline_ms: f64,
    opened: bool,
}

/// How far a socket got before it closed or was let go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reached {
    /// It had opened.
    Opened,
    /// It never opened (refused, failed, timed out or abandoned).
    NeverOpened,
}

/// Where an attempt stands at a given time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Opening {
    /// Not open yet: look again at `deadline_ms`.
    Until { deadline_ms: f64 },
    /// Not open in time: abandon it.
    TimedOut,
    /// Open: no deadline any more.
    Open,
}

impl Attempt {
    /// An attempt started at `now_ms`.
    pub fn started(now_ms: f64) -> Self {
        Self { deadline_ms: now_ms + CONNECT_TIMEOUT_MS, opened: false }
    }

    /// The socket opened.
    pub fn opened(&mut self) {
        self.opened = true;
    }

    pub fn is_open(&self) -> bool {
        self.opened
    }

    /// How far the socket got.
    pub fn reached(&self) -> Reached {
        if self.opened {
            Reached::Opened
        } else {
            Reached::NeverOpened
        }
    }

    /// Where the attempt stands at `now_ms`.
    pub fn check(&self, now_ms: f64) -> Opening {
        match (self.opened, now_ms >= self.deadline_ms) {
            (true, _) => Opening::Open,
            (false, true) => Opening::TimedOut,
            (false, false) => Opening::Until { deadline_ms: self.deadline_ms },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_attempt_that_does_not_open_in_time_is_abandoned() {
        let attempt = Attempt::started(1_000.0);
        assert_eq!(attempt.check(1_000.0), Opening::Until { deadline_ms: 1_000.0 + CONNECT_TIMEOUT_MS });
        assert_eq!(attempt.check(1_000.0 + CONNECT_TIMEOUT_MS - 1.0), Opening::Until { deadline_ms: 11_000.0 });
        assert_eq!(attempt.check(1_000.0 + CONNECT_TIMEOUT_MS), Opening::TimedOut);
    }

    #[test]
    fn an_open_socket_has_no_deadline() {
        let mut attempt = Attempt::started(0.0);
        assert!(!attempt.is_open());
        assert_eq!(attempt.reached(), Reached::NeverOpened);
        attempt.opened();
        assert!(attempt.is_open());
        assert_eq!(attempt.reached(), Reached::Opened);
        assert_eq!(attempt.check(CONNECT_TIMEOUT_MS * 10.0), Opening::Open);
    }
}
