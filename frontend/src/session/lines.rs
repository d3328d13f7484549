//! What the view says about the connection: the status of a stopped link,
//! and the timeline's line for a socket that closed or was let go.

use roomcast_shared::close;

use super::attempt::{Reached, CONNECT_TIMEOUT_MS};
use super::link::{Phase, Stop};
use super::removal::Removal;
use crate::timeline::LineKind;

/// Why the link stopped, for the status line. `local_time` writes a Unix
/// time in ms as the user reads dates and times (the browser's locale and
/// time zone).
pub fn stopped(stop: &Stop, local_time: impl Fn(u64) -> String) -> String {
    match stop {
        Stop::ByUser => "closed by you".to_owned(),
        Stop::Revoked => "this browser's identity was revoked by the server".to_owned(),
        Stop::Terminal { code, reason } => format!("closed by the server ({code} {reason})"),
        Stop::Refused(refusal) => refusal.text().to_owned(),
        Stop::Removed(ban) => {
            with_reason(format!("removed from this server until {}", local_time(ban.until_ms)), &ban.reason)
        }
    }
}

/// The line for a socket that closed (or never opened) with `code` and
/// `reason`, after the server said an operator removed it (`removal`), if
/// it did; `phase` is the link's after the close. Failed attempts while the
/// link retries are one line that updates.
pub fn closed(
    reached: Reached,
    code: u16,
    reason: &str,
    removal: Option<&Removal>,
    phase: &Phase,
) -> (LineKind, String) {
    if let Some(removal) = removal {
        if removal.disconnected(code) {
            return (LineKind::Event, with_reason("disconnected by an operator".to_owned(), &removal.reason));
        }
        if removal.ban(code).is_some() {
            return (
                LineKind::Event,
                with_reason("removed from this server by an operator".to_owned(), &removal.reason),
            );
        }
    }
    let detail = if reason.is_empty() { close::describe(code) } else { reason };
    match (reached, phase) {
        (Reached::Opened, _) => (LineKind::Event, format!("disconnected: {code} {detail}")),
        (Reached::NeverOpened, Phase::Waiting { attempt, .. }) => {
            (LineKind::Retry, format!("could not connect (attempt {attempt}): {code} {detail}"))
        }
        (Reached::NeverOpened, _) => (LineKind::Event, format!("could not connect: {code} {detail}")),
    }
}

/// `text`, then `: {reason}` when the operator gave one.
fn with_reason(text: String, reason: &str) -> String {
    if reason.is_empty() {
        text
    } else {
        format!("{text}: {reason}")
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
    use crate::session::removal::Ban;
    use crate::session::Refusal;

    fn local_time(ms: u64) -> String {
        format!("<{ms}>")
    }

    #[test]
    fn a_stopped_link_says_who_stopped_it() {
        assert_eq!(stopped(&Stop::ByUser, local_time), "closed by you");
        let terminal = Stop::Terminal { code: 4400, reason: "bad name".into() };
        assert_eq!(stopped(&terminal, local_time), "closed by the server (4400 bad name)");
        assert!(stopped(&Stop::Revoked, local_time).contains("revoked"));
        let refused = Stop::Refused(Refusal::OtherPeople);
        assert_eq!(stopped(&refused, local_time), "This direct message is between two other people");
    }

    #[test]
    fn a_ban_says_until_when_in_local_time_and_why_when_told() {
        let ban = Stop::Removed(Ban { until_ms: 1_700_000_000_000, reason: "spam".into() });
        assert_eq!(stopped(&ban, local_time), "removed from this server until <1700000000000>: spam");
        let silent = Stop::Removed(Ban { until_ms: 5, reason: String::new() });
        assert_eq!(stopped(&silent, local_time), "removed from this server until <5>");
    }

    #[test]
    fn an_operators_disconnect_is_a_line_with_the_reason_given() {
        let waiting = Phase::Waiting { attempt: 1, at_ms: 0.0 };
        let removal = Removal { reason: "maintenance".into(), until_ms: None };
        let line = closed(Reached::Opened, close::DISCONNECTED, "disconnected", Some(&removal), &waiting);
        assert_eq!(line, (LineKind::Event, "disconnected by an operator: maintenance".into()));
        let silent = Removal { reason: String::new(), until_ms: None };
        let (_, text) = closed(Reached::Opened, close::DISCONNECTED, "", Some(&silent), &waiting);
        assert_eq!(text, "disconnected by an operator");
        let (_, text) = closed(Reached::Opened, 1006, "", Some(&removal), &waiting);
        assert_eq!(text, format!("disconnected: 1006 {}", close::describe(1006)), "lost before the close");
    }

    #[test]
    fn a_ban_is_a_line_with_the_reason_given() {
        let ban = Ban { until_ms: 5, reason: "spam".into() };
        let removal = Removal { reason: "spam".into(), until_ms: Some(5) };
        let line =
            closed(Reached::Opened, close::IDENTITY_REVOKED, "", Some(&removal), &Phase::Stopped(Stop::Removed(ban)));
        assert_eq!(line, (LineKind::Event, "removed from this server by an operator: spam".into()));
    }

    #[test]
    fn an_open_connection_that_closed_is_an_event_with_its_code_and_reason() {
        let waiting = Phase::Waiting { attempt: 1, at_ms: 0.0 };
        assert_eq!(
            closed(Reached::Opened, 1012, "restart", None, &waiting),
            (LineKind::Event, "disconnected: 1012 restart".into())
        );
        let (_, text) = closed(Reached::Opened, 1006, "", None, &waiting);
        assert_eq!(text, format!("disconnected: 1006 {}", close::describe(1006)), "no reason: the code's");
    }

    #[test]
    fn failed_attempts_while_retrying_are_a_retry_line() {
        let waiting = Phase::Waiting { attempt: 3, at_ms: 0.0 };
        let (kind, text) = closed(Reached::NeverOpened, 1006, "no answer", None, &waiting);
        assert_eq!((kind, text.as_str()), (LineKind::Retry, "could not connect (attempt 3): 1006 no answer"));
        let stopped = Phase::Stopped(Stop::Revoked);
        assert_eq!(
            closed(Reached::NeverOpened, 4403, "x", None, &stopped),
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
