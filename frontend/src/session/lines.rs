//! What the view says about the connection: the status of a stopped link,
//! and the timeline's line for a socket that closed or was let go.

use roomcast_shared::close;

use super::attempt::{Reached, CONNECT_TIMEOUT_MS};
use super::link::{Phase, Stop};
use crate::timeline::LineKind;

/// Why the link stopped, for the status line.
pub fn stopped(stop: &Stop) -> String {
    match stop {
        Stop::ByUser => "closed by you".to_owned(),
        Stop::Revoked => "this browser's identity was revoked by the server".to_owned(),
        Stop::Terminal { code, reason } => format!("closed by the server ({code} {reason})"),
        Stop::Refused(refusal) => refusal.text().to_owned(),
    }
}

/// The line for a socket that closed (or never opened) with `code` and
/// `reason`; `phase` is the link's after the close. Failed attempts while
/// the link retries are one line that updates.
pub fn closed(reached: Reached, code: u16, reason: &str, phase: &Phase) -> (LineKind, String) {
    let detail = if reason.is_empty() { close::describe(code) } else { reason };
    match (reached, phase) {
        (Reached::Opened, _) => (LineKind::Event, format!("disconnected: {code} {detail}")),
        (Reached::NeverOpened, Phase::Waiting { attempt, .. }) => {
            (LineKind::Retry, format!("could not connect (attempt {attempt}): {code} {detail}"))
        }
        (Reached::NeverOpened, _) => (LineKind::Event, format!("could not connect: {code} {detail}")),
    }
}

/// The reason given for an attempt that did not open within
/// [`CONNECT_TIMEOUT_MS`].
pub fn timed_out() -> String {
    format!("no answer within {} s", CONNECT_TIMEOUT_MS / 1_000.0)
}

/// The line for a socket this app let go of (`why`) without waiting for
/// its close.
pub fn let_go(reached: Reached, why: &str) -> String {
    match reached {
        Reached::Opened => format!("disconnected: {} {why}", close::NORMAL),
        Reached::NeverOpened => format!("connection attempt abandoned: {why}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::Refusal;

    #[test]
    fn a_stopped_link_says_who_stopped_it() {
        assert_eq!(stopped(&Stop::ByUser), "closed by you");
        let terminal = Stop::Terminal { code: 4400, reason: "bad name".into() };
        assert_eq!(stopped(&terminal), "closed by the server (4400 bad name)");
        assert!(stopped(&Stop::Revoked).contains("revoked"));
        let refused = Stop::Refused(Refusal::OtherPeople);
        assert_eq!(stopped(&refused), "This direct message is between two other people");
    }

    #[test]
    fn an_open_connection_that_closed_is_an_event_with_its_code_and_reason() {
        let waiting = Phase::Waiting { attempt: 1, at_ms: 0.0 };
        assert_eq!(
            closed(Reached::Opened, 1012, "restart", &waiting),
            (LineKind::Event, "disconnected: 1012 restart".into())
        );
        let (_, text) = closed(Reached::Opened, 1006, "", &waiting);
        assert_eq!(text, format!("disconnected: 1006 {}", close::describe(1006)), "no reason: the code's");
    }

    #[test]
    fn failed_attempts_while_retrying_are_a_retry_line() {
        let waiting = Phase::Waiting { attempt: 3, at_ms: 0.0 };
        let (kind, text) = closed(Reached::NeverOpened, 1006, "no answer", &waiting);
        assert_eq!((kind, text.as_str()), (LineKind::Retry, "could not connect (attempt 3): 1006 no answer"));
        let stopped = Phase::Stopped(Stop::Revoked);
        assert_eq!(
            closed(Reached::NeverOpened, 4403, "x", &stopped),
            (LineKind::Event, "could not connect: 4403 x".into())
        );
    }

    #[test]
    fn the_timeout_reason_follows_the_connect_timeout() {
        assert_eq!(timed_out(), "no answer within 10 s");
        assert!(timed_out().contains(&(CONNECT_TIMEOUT_MS / 1_000.0).to_string()));
    }

    #[test]
    fn a_socket_let_go_says_whether_it_had_opened() {
        assert_eq!(let_go(Reached::Opened, "closed by you"), "disconnected: 1000 closed by you");
        assert_eq!(let_go(Reached::NeverOpened, "reconnecting"), "connection attempt abandoned: reconnecting");
    }
}
