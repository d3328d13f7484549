//! How the admin page writes numbers, ages and bans.

use super::state::Outcome;
use super::wire::BanRecord;

/// A connection's room as the lookup lists it: the rooms stream's
/// reserved group is the identity's room list, not a room.
pub fn room_of_connection(group: &str) -> String {
    if group == roomcast_shared::ROOMS_STREAM {
        "(room list)".to_owned()
    } else {
        group.to_owned()
    }
}

/// A rate per second: one decimal below 10 ("0.5", "2.0"), whole above
/// ("123"), "0" for none.
pub fn rate(per_s: f64) -> String {
    if per_s <= 0.0 || !per_s.is_finite() {
        "0".to_owned()
    } else if per_s < 10.0 {
        format!("{per_s:.1}")
    } else {
        format!("{per_s:.0}")
    }
}

/// A scale's label: as few decimals as it needs ("5", "2.5", "0.25").
pub fn axis(value: f64) -> String {
    let text = format!("{value:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// A node's state: "this node" (the one that answered), "draining".
pub fn node_state(this: bool, draining: bool) -> String {
    match (this, draining) {
        (true, true) => "this node, draining",
        (true, false) => "this node",
        (false, true) => "draining",
        (false, false) => "serving",
    }
    .to_owned()
}

/// The warning for live nodes missing from an answer, if any.
pub fn missing_nodes(missing: u32) -> Option<String> {
    match missing {
        0 => None,
        1 => Some("1 live node did not answer in time: what it holds is not shown".to_owned()),
        n => Some(format!("{n} live nodes did not answer in time: what they hold is not shown")),
    }
}

/// How long ago `started_ms` was at `now_ms`: "45 s", "12 min", "3 h 05
/// min", "2 d 4 h".
pub fn uptime(now_ms: f64, started_ms: u64) -> String {
    let seconds = ((now_ms - started_ms as f64) / 1_000.0).max(0.0) as u64;
    let (minutes, hours, days) = (seconds / 60, seconds / 3_600, seconds / 86_400);
    match seconds {
        0..60 => format!("{seconds} s"),
        60..3_600 => format!("{minutes} min"),
        3_600..86_400 => format!("{hours} h {:02} min", minutes % 60),
        _ => format!("{days} d {} h", hours % 24),
    }
}

/// The left end of the chart's time axis, `span_ms` before now: "−90 s",
/// "−5 min".
pub fn before_now(span_ms: u64) -> String {
    let seconds = span_ms / 1_000;
    if seconds < 120 {
        format!("−{seconds} s")
    } else {
        format!("−{} min", (seconds + 30) / 60)
    }
}

/// Whom a ban is of: "client {id}", "network {cidr}", or both.
pub fn ban_target(ban: &BanRecord) -> String {
    match (&ban.sub, &ban.network) {
        (Some(sub), Some(network)) => format!("client {sub} and network {network}"),
        (Some(sub), None) => format!("client {sub}"),
        (None, Some(network)) => format!("network {network}"),
        (None, None) => "nobody".to_owned(),
    }
}

/// A ban as its identity's report lists it: "banned until {local time}",
/// and ": {reason}" when one was given.
pub fn banned_until(ban: &BanRecord, local_time: impl Fn(u64) -> String) -> String {
    let until = format!("banned until {}", local_time(ban.until_ms));
    if ban.reason.is_empty() {
        until
    } else {
        format!("{until}: {}", ban.reason)
    }
}

/// What a disconnect did: "closed 1 connection", "closed 3 connections".
pub fn closed(connections: u64) -> String {
    match connections {
        1 => "closed 1 connection".to_owned(),
        n => format!("closed {n} connections"),
    }
}

/// What the operator's last action did, in words; `local_time` writes a
/// Unix time in ms as the operator reads it.
pub fn outcome(outcome: &Outcome, local_time: impl Fn(u64) -> String) -> String {
    match outcome {
        Outcome::Disconnected(done) => format!("client {}: {}", done.sub, closed(done.closed)),
        Outcome::Banned(ban) => format!("banned {} until {}", ban_target(ban), local_time(ban.until_ms)),
        Outcome::Lifted => "ban lifted".to_owned(),
        Outcome::Failed(problem) => problem.clone(),
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    #[test]
    fn rates_have_a_decimal_only_while_small() {
        let shown: Vec<String> =
            [0.0, -1.0, f64::NAN, 0.04, 0.5, 2.0, 9.94, 10.0, 123.4].into_iter().map(rate).collect();
        assert_eq!(shown, ["0", "0", "0", "0.0", "0.5", "2.0", "9.9", "10", "123"]);
    }

    #[test]
    fn scale_labels_have_only_the_decimals_they_need() {
        let shown: Vec<String> = [0.0, 5.0, 2.5, 0.25, 500.0, 1.0].into_iter().map(axis).collect();
        assert_eq!(shown, ["0", "5", "2.5", "0.25", "500", "1"]);
    }

    #[test]
    fn a_nodes_state_says_which_answered_and_which_drain() {
        assert_eq!(node_state(true, false), "this node");
        assert_eq!(node_state(true, true), "this node, draining");
        assert_eq!(node_state(false, true), "draining");
        assert_eq!(node_state(false, false), "serving");
    }

    #[test]
    fn missing_nodes_are_warned_of() {
        assert_eq!(missing_nodes(0), None);
        assert!(missing_nodes(1).unwrap().starts_with("1 live node did not"));
        assert!(missing_nodes(3).unwrap().starts_with("3 live nodes did not"));
    }

    #[test]
    fn uptimes_use_the_two_largest_units() {
        let start = 1_700_000_000_000u64;
        let at = |seconds: u64| (start + seconds * 1_000) as f64;
        assert_eq!(uptime(at(45), start), "45 s");
        assert_eq!(uptime(at(12 * 60 + 5), start), "12 min");
        assert_eq!(uptime(at(3 * 3_600 + 5 * 60), start), "3 h 05 min");
        assert_eq!(uptime(at(2 * 86_400 + 4 * 3_600 + 59), start), "2 d 4 h");
        assert_eq!(uptime(at(0) - 5_000.0, start), "0 s", "a clock behind the node's");
    }

    #[test]
    fn the_time_axis_starts_seconds_or_minutes_ago() {
        assert_eq!(before_now(2_000), "−2 s");
        assert_eq!(before_now(90_000), "−90 s");
        assert_eq!(before_now(300_000), "−5 min");
        assert_eq!(before_now(298_000), "−5 min");
    }

    #[test]
    fn a_ban_names_whom_it_is_of() {
        let mut ban = BanRecord {
            id: Uuid::from_u128(9),
            sub: Some(Uuid::from_u128(1)),
            network: None,
            until_ms: 0,
            reason: String::new(),
            created_ms: 0,
        };
        assert_eq!(ban_target(&ban), format!("client {}", Uuid::from_u128(1)));
        assert_eq!(banned_until(&ban, |ms| format!("<{ms}>")), "banned until <0>");
        ban.reason = "spam".into();
        assert_eq!(banned_until(&ban, |ms| format!("<{ms}>")), "banned until <0>: spam");
        ban.network = Some("10.0.0.0/8".into());
        assert_eq!(ban_target(&ban), format!("client {} and network 10.0.0.0/8", Uuid::from_u128(1)));
        ban.sub = None;
        assert_eq!(ban_target(&ban), "network 10.0.0.0/8");
    }

    #[test]
    fn an_outcome_says_what_was_done() {
        use crate::admin::wire::Disconnected;
        let local = |ms: u64| format!("<{ms}>");
        let sub = Uuid::from_u128(1);
        let done = Outcome::Disconnected(Disconnected { sub, closed: 2 });
        assert_eq!(outcome(&done, local), format!("client {sub}: closed 2 connections"));
        let ban = BanRecord {
            id: sub,
            sub: None,
            network: Some("10.0.0.0/8".into()),
            until_ms: 7,
            reason: "x".into(),
            created_ms: 0,
        };
        assert_eq!(outcome(&Outcome::Banned(ban), local), "banned network 10.0.0.0/8 until <7>");
        assert_eq!(outcome(&Outcome::Lifted, local), "ban lifted");
        assert_eq!(outcome(&Outcome::Failed("no".into()), local), "no");
    }

    #[test]
    fn a_disconnect_counts_what_it_closed() {
        assert_eq!(closed(1), "closed 1 connection");
        assert_eq!(closed(0), "closed 0 connections");
        assert_eq!(closed(3), "closed 3 connections");
    }

    #[test]
    fn the_rooms_stream_is_the_room_list() {
        assert_eq!(room_of_connection("_me"), "(room list)");
        assert_eq!(room_of_connection("lobby"), "lobby");
    }
}
