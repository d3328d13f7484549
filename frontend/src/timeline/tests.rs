use proptest::prelude::*;

use super::*;
use crate::test_support::message;

fn messages(seqs: impl IntoIterator<Item = u64>) -> Vec<ChatMessage> {
    seqs.into_iter().map(message).collect()
}

fn page(seqs: impl IntoIterator<Item = u64>, has_more: bool) -> Page {
    Page { messages: messages(seqs), has_more }
}

/// Rows as short strings: `m7` for message 7, `[text]` for a line.
fn texts(timeline: &Timeline) -> Vec<String> {
    timeline
        .rows()
        .iter()
        .map(|row| match row {
            Row::Message(m) => m.text.clone(),
            Row::Line { line, .. } => format!("[{}]", line.text),
            Row::Divider { .. } => "[New messages]".to_owned(),
        })
        .collect()
}

fn event(timeline: &mut Timeline, text: &str) {
    timeline.note(LineKind::Event, text.into(), 0.0);
}

#[test]
fn live_messages_after_a_reconnect_go_below_the_connection_lines() {
    let mut timeline = Timeline::default();
    event(&mut timeline, "connected");
    timeline.receive(messages(1..=3));
    timeline.exists(3);
    event(&mut timeline, "disconnected: 1012");
    timeline.note(LineKind::Retry, "could not connect (attempt 1)".into(), 0.0);
    event(&mut timeline, "connected");
    timeline.receive(messages(4..=5));
    timeline.exists(5);
    timeline.receive(messages(6..=7));
    assert_eq!(
        texts(&timeline),
        [
            "[connected]",
            "m1",
            "m2",
            "m3",
            "[disconnected: 1012]",
            "[could not connect (attempt 1)]",
            "[connected]",
            "m4",
            "m5",
            "m6",
            "m7"
        ]
    );
    assert!(matches!(timeline.rows().last(), Some(Row::Message(m)) if m.seq == 7), "the newest message is last");
}

#[test]
fn lines_before_the_first_message_sit_just_before_it() {
    let mut timeline = Timeline::default();
    event(&mut timeline, "connected");
    timeline.receive(messages(901..=903));
    assert_eq!(texts(&timeline), ["[connected]", "m901", "m902", "m903"]);
    timeline.older_page(timeline.generation(), 901, page(899..=900, true));
    assert_eq!(texts(&timeline), ["m899", "m900", "[connected]", "m901", "m902", "m903"]);
}

#[test]
fn an_empty_room_shows_its_lines() {
    let mut timeline = Timeline::default();
    event(&mut timeline, "connected");
    timeline.exists(0);
    event(&mut timeline, "disconnected: 1000");
    assert_eq!(texts(&timeline), ["[connected]", "[disconnected: 1000]"]);
    assert_eq!(timeline.older(), Edge::Complete);
}

#[test]
fn repeated_attempts_update_one_line() {
    let mut timeline = Timeline::default();
    timeline.receive(messages(1..=2));
    event(&mut timeline, "disconnected: 1006");
    for attempt in 1..=7 {
        timeline.note(LineKind::Retry, format!("reconnecting… attempt {attempt}"), 0.0);
    }
    assert_eq!(texts(&timeline), ["m1", "m2", "[disconnected: 1006]", "[reconnecting… attempt 7]"]);
    event(&mut timeline, "connected");
    timeline.note(LineKind::Retry, "reconnecting… attempt 1".into(), 0.0);
    assert_eq!(texts(&timeline).len(), 6, "a new outage gets a new line");
}

#[test]
fn repeated_attempts_in_an_empty_room_update_one_line() {
    let mut timeline = Timeline::default();
    for attempt in 1..=5 {
        timeline.note(LineKind::Retry, format!("attempt {attempt}"), 0.0);
    }
    assert_eq!(texts(&timeline), ["[attempt 5]"]);
}

#[test]
fn a_retry_line_with_messages_after_it_is_not_reused() {
    let mut timeline = Timeline::default();
    timeline.receive(messages(1..=1));
    timeline.note(LineKind::Retry, "attempt 1".into(), 0.0);
    timeline.receive(messages(2..=2));
    timeline.note(LineKind::Retry, "attempt 2".into(), 0.0);
    assert_eq!(texts(&timeline), ["m1", "[attempt 1]", "m2", "[attempt 2]"]);
}

#[test]
fn a_gap_line_sits_where_the_gap_is() {
    let mut timeline = Timeline::default();
    timeline.receive(messages(1..=10));
    event(&mut timeline, "disconnected");
    event(&mut timeline, "connected");
    timeline.gap(11, 50, 0.0);
    timeline.receive(messages(51..=53));
    assert_eq!(
        texts(&timeline),
        [
            "m1",
            "m2",
            "m3",
            "m4",
            "m5",
            "m6",
            "m7",
            "m8",
            "m9",
            "m10",
            "[disconnected]",
            "[connected]",
            "[40 messages could not be recovered]",
            "m51",
            "m52",
            "m53"
        ]
    );
    assert!(timeline.is_live());
}

#[test]
fn a_gap_on_a_fresh_page_starts_the_window() {
    let mut timeline = Timeline::default();
    timeline.gap(1, 1, 0.0);
    timeline.receive(messages(2..=3));
    assert_eq!(texts(&timeline), ["[1 message could not be recovered]", "m2", "m3"]);
}

#[test]
fn a_reset_server_replaces_what_is_shown() {
    let mut timeline = Timeline::default();
    timeline.receive(messages(1..=90));
    event(&mut timeline, "disconnected");
    // The server's history now ends at 30; the page knew up to 90.
    timeline.gap(31, 90, 0.0);
    timeline.receive(messages(1..=30));
    timeline.exists(30);
    let shown = texts(&timeline);
    assert_eq!(shown[0], "[disconnected]", "the connection log stays");
    assert!(shown[1].starts_with("[the server's history was reset"), "{shown:?}");
    assert_eq!(shown.len(), 32);
    assert_eq!(timeline.head(), 30);
    timeline.receive(messages(31..=31));
    assert_eq!(timeline.newest_seq(), Some(31), "numbers after the reset are live again");
}

#[test]
fn older_pages_go_to_the_front_and_the_start_is_known() {
    let mut timeline = Timeline::default();
    timeline.receive(messages(5..=7));
    assert_eq!(timeline.older(), Edge::More);
    timeline.loading_older();
    assert_eq!(timeline.older(), Edge::Loading);
    timeline.older_page(timeline.generation(), 5, page(3..=4, true));
    assert_eq!(texts(&timeline), ["m3", "m4", "m5", "m6", "m7"]);
    assert_eq!(timeline.older(), Edge::More);
    timeline.older_page(timeline.generation(), 3, page(1..=2, false));
    assert_eq!(timeline.older(), Edge::Complete);
    assert_eq!(timeline.oldest_seq(), Some(1));
}

#[test]
fn a_jump_asked_for_before_a_reset_is_ignored() {
    let mut timeline = Timeline::default();
    timeline.receive(messages(1..=3000));
    timeline.set_following(false);
    let asked_in = timeline.generation();
    timeline.gap(3, 3000, 0.0);
    timeline.receive(messages(1..=2));
    timeline.latest_page(asked_in, page(2901..=3000, true));
    assert_eq!(timeline.newest_seq(), Some(2), "the old server's page is not shown");
    assert_eq!(timeline.head(), 2);
    timeline.receive(messages(3..=3));
    assert_eq!(timeline.newest_seq(), Some(3), "and live messages still come");
}

#[test]
fn a_full_window_keeps_what_a_reader_scrolled_up_is_reading() {
    let mut timeline = Timeline::default();
    timeline.receive(messages(1..=MAX_MESSAGES as u64));
    timeline.set_following(false);
    timeline.receive(messages(MAX_MESSAGES as u64 + 1..=MAX_MESSAGES as u64 + 15));
    assert_eq!(timeline.oldest_seq(), Some(1), "nothing the reader may be reading was dropped");
    assert_eq!(timeline.unseen(), 15);
    assert!(!timeline.is_live(), "the new ones wait below, loadable");
    let after = timeline.covered_to().unwrap();
    timeline.newer_page(timeline.generation(), after, page(after + 1..=after + 15, false));
    assert_eq!(timeline.newest_seq(), Some(MAX_MESSAGES as u64 + 15));
    assert_eq!(timeline.len(), MAX_MESSAGES);
}

#[test]
fn a_stale_older_page_is_ignored() {
    let mut timeline = Timeline::default();
    timeline.receive(messages(5..=7));
    timeline.loading_older();
    timeline.gap(8, 8, 0.0);
    timeline.older_page(timeline.generation(), 4, page(1..=3, false));
    assert_eq!(timeline.oldest_seq(), Some(5));
    assert_eq!(timeline.older(), Edge::More, "it may be asked for again");
}

#[test]
fn a_failed_load_can_be_retried() {
    let mut timeline = Timeline::default();
    timeline.receive(messages(5..=7));
    timeline.loading_older();
    timeline.older_failed();
    assert_eq!(timeline.older(), Edge::Failed);
    timeline.loading_older();
    timeline.older_page(timeline.generation(), 5, page(4..=4, true));
    assert_eq!(timeline.oldest_seq(), Some(4));
}

#[test]
fn live_messages_drop_the_oldest() {
    let mut timeline = Timeline::default();
    let total = MAX_MESSAGES as u64 + 600;
    timeline.receive(messages(1..=total));
    assert_eq!(timeline.len(), MAX_MESSAGES);
    assert_eq!(timeline.newest_seq(), Some(total));
    assert_eq!(timeline.oldest_seq(), Some(601));
    assert_eq!(timeline.older(), Edge::More, "the dropped ones can be loaded again");
    timeline.older_page(timeline.generation(), 601, page(551..=600, true));
    assert_eq!(timeline.len(), MAX_MESSAGES, "following: the page is dropped again");
}

#[test]
fn older_pages_drop_the_newest_while_scrolled_up_and_newer_pages_bring_them_back() {
    let mut timeline = Timeline::default();
    timeline.receive(messages(1001..=3000));
    timeline.set_following(false);
    timeline.older_page(timeline.generation(), 1001, page(501..=1000, true));
    assert_eq!(timeline.len(), MAX_MESSAGES);
    assert_eq!((timeline.oldest_seq(), timeline.newest_seq()), (Some(501), Some(2500)));
    assert_eq!(timeline.newer(), Edge::More);
    assert!(!timeline.is_live());

    // Live messages meanwhile cannot be placed: they are counted.
    timeline.receive(messages(3001..=3002));
    assert_eq!(timeline.newest_seq(), Some(2500));
    assert_eq!(timeline.unseen(), 2);
    assert_eq!(timeline.head(), 3002);

    timeline.set_following(true);
    timeline.loading_newer();
    timeline.newer_page(timeline.generation(), 2500, page(2501..=3000, true));
    assert_eq!(timeline.newest_seq(), Some(3000));
    assert_eq!(timeline.newer(), Edge::More);
    timeline.newer_page(timeline.generation(), 3000, page(3001..=3002, false));
    assert!(timeline.is_live());
    assert_eq!(timeline.unseen(), 0);
    assert_eq!(timeline.len(), MAX_MESSAGES);
    timeline.receive(messages(3003..=3003));
    assert_eq!(timeline.newest_seq(), Some(3003));
}

#[test]
fn a_newer_page_behind_the_head_keeps_loading() {
    let mut timeline = Timeline::default();
    timeline.receive(messages(1..=10));
    timeline.set_following(false);
    timeline.older_page(timeline.generation(), 1, page([], false));
    timeline.receive(messages(11..=11));
    timeline.gap(12, 12, 0.0);
    timeline.newer_page(timeline.generation(), 10, page([], false));
    assert!(timeline.is_live(), "an empty answer at the top ends paging");
}

#[test]
fn jumping_to_newest_replaces_the_window() {
    let mut timeline = Timeline::default();
    timeline.receive(messages(1001..=3000));
    timeline.set_following(false);
    timeline.older_page(timeline.generation(), 1001, page(1..=1000, true));
    timeline.receive(messages(3001..=3100));
    timeline.set_following(true);
    timeline.latest_page(timeline.generation(), page(3051..=3100, true));
    assert_eq!((timeline.oldest_seq(), timeline.newest_seq()), (Some(3051), Some(3100)));
    assert!(timeline.is_live());
    assert_eq!(timeline.older(), Edge::More);
    assert_eq!(timeline.unseen(), 0);
}

#[test]
fn new_messages_while_scrolled_up_are_counted() {
    let mut timeline = Timeline::default();
    timeline.receive(messages(1..=5));
    timeline.set_following(false);
    timeline.receive(messages(6..=8));
    assert_eq!(timeline.unseen(), 3);
    assert_eq!(timeline.newest_seq(), Some(8), "a live window still takes them");
    timeline.set_following(true);
    assert_eq!(timeline.unseen(), 0);
}

#[test]
fn rows_are_chunked_by_sequence_number_with_lines_beside_their_message() {
    let mut timeline = Timeline::default();
    event(&mut timeline, "connected");
    timeline.receive(messages(48..=101));
    event(&mut timeline, "disconnected");
    let chunks = chunked(timeline.rows());
    let shape: Vec<(u64, usize)> = chunks.iter().map(|chunk| (chunk.id, chunk.rows.len())).collect();
    // "connected" (after 47) and 48, 49 | 50..=99 | 100, 101, "disconnected"
    assert_eq!(shape, [(0, 3), (1, 50), (2, 3)]);
    let again = chunked(timeline.rows());
    assert_eq!(chunks[..2], again[..2], "unchanged runs compare equal");
    timeline.receive(messages(102..=102));
    assert_eq!(chunked(timeline.rows())[..2], chunks[..2], "a new message changes the last run only");
}

#[test]
fn a_message_is_shown_once() {
    let mut timeline = Timeline::default();
    timeline.receive(messages([1, 2, 2, 1]));
    assert_eq!(texts(&timeline), ["m1", "m2"]);
}

/// What can happen to a timeline, for the property test.
#[derive(Debug, Clone)]
enum Op {
    Live(u16),
    Older(u16, bool),
    Newer(u16),
    Latest(u16),
    Follow(bool),
    Gap(u16),
    Line,
    Retry,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1..800u16).prop_map(Op::Live),
        2 => (1..800u16, any::<bool>()).prop_map(|(n, more)| Op::Older(n, more)),
        2 => (1..800u16).prop_map(Op::Newer),
        1 => (1..500u16).prop_map(Op::Latest),
        2 => any::<bool>().prop_map(Op::Follow),
        1 => (1..50u16).prop_map(Op::Gap),
        1 => Just(Op::Line),
        1 => Just(Op::Retry),
    ]
}

/// Applies `op` the way the server would answer it, given the group's
/// newest number `head`.
fn apply(timeline: &mut Timeline, head: &mut u64, op: Op) {
    match op {
        Op::Live(n) => {
            let from = *head + 1;
            *head += u64::from(n);
            timeline.receive(messages(from..=*head));
        }
        Op::Older(n, has_more) => {
            if let Some(oldest) = timeline.oldest_seq() {
                let from = oldest.saturating_sub(u64::from(n)).max(1);
                timeline.older_page(timeline.generation(), oldest, page(from..oldest, has_more && from > 1));
            }
        }
        Op::Newer(n) => {
            if let Some(after) = timeline.covered_to() {
                let to = (after + u64::from(n)).min(*head);
                timeline.newer_page(timeline.generation(), after, page(after + 1..=to, to < *head));
            }
        }
        Op::Latest(n) => {
            let from = head.saturating_sub(u64::from(n)) + 1;
            let generation = timeline.generation();
            timeline.latest_page(generation, page(from..=*head, from > 1));
        }
        Op::Follow(following) => timeline.set_following(following),
        Op::Gap(n) => {
            let from = *head + 1;
            *head += u64::from(n);
            timeline.gap(from, *head, 0.0);
        }
        Op::Line => event(timeline, "event"),
        Op::Retry => timeline.note(LineKind::Retry, "retry".into(), 0.0),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Whatever the order of inserts: at most `MAX_MESSAGES` messages,
    /// shown in sequence order, each once, and the covered stretch holds
    /// every shown message.
    #[test]
    fn the_window_is_bounded_and_ordered(ops in proptest::collection::vec(op(), 1..60)) {
        let mut timeline = Timeline::default();
        let mut head = 0;
        for op in ops {
            apply(&mut timeline, &mut head, op);
            prop_assert!(timeline.len() <= MAX_MESSAGES);
            let seqs: Vec<u64> = timeline.rows().iter().filter_map(|row| match row {
                Row::Message(m) => Some(m.seq),
                Row::Line { .. } | Row::Divider { .. } => None,
            }).collect();
            prop_assert_eq!(seqs.len(), timeline.len());
            prop_assert!(seqs.windows(2).all(|pair| pair[0] < pair[1]), "in order, once");
            if let (Some(first), Some(last), Some((from, to))) = (seqs.first(), seqs.last(), timeline.covered) {
                prop_assert!(from <= *first && *last <= to);
            }
            prop_assert!(timeline.head() >= timeline.newest_seq().unwrap_or(0));
            if timeline.is_live() {
                prop_assert_eq!(timeline.covered_to().unwrap_or(head), head, "a live window reaches the head");
            }
        }
    }

    /// Lines never sit between messages they did not happen between: a line
    /// noted while the window was live comes after every message held then
    /// and before every message received later.
    #[test]
    fn lines_sit_after_what_was_there(before in 1..300u64, after in 1..300u64) {
        let mut timeline = Timeline::default();
        timeline.receive(messages(1..=before));
        event(&mut timeline, "here");
        timeline.receive(messages(before + 1..=before + after));
        let shown = texts(&timeline);
        let here = shown.iter().position(|text| text == "[here]").unwrap();
        let newest_before = format!("m{before}");
        let first_after = format!("m{}", before + 1);
        prop_assert!(shown[..here].contains(&newest_before));
        prop_assert!(shown[here..].contains(&first_after));
    }
}

/// A `reset` (the group's history started over, in a new epoch): what was
/// shown goes, the connection log stays, and the new numbers, lower than
/// the old ones, are taken.
#[test]
fn a_reset_replaces_what_was_shown_with_the_new_history() {
    let mut timeline = Timeline::default();
    timeline.receive(messages(41..=50));
    event(&mut timeline, "connected");
    timeline.reset(0, 0.0);
    timeline.receive(messages(1..=3));
    timeline.exists(3);
    let rows = texts(&timeline);
    assert_eq!(rows.iter().filter(|row| row.starts_with('m')).cloned().collect::<Vec<_>>(), ["m1", "m2", "m3"]);
    assert!(rows.iter().any(|row| row == "[connected]"), "{rows:?}");
    assert!(rows.iter().any(|row| row.contains("history was reset")), "{rows:?}");
    assert!(timeline.is_live());
}

/// A room that did not exist when the page joined gets its epoch with its
/// first message: nothing was shown, so nothing is said.
#[test]
fn a_reset_of_an_empty_timeline_says_nothing() {
    let mut timeline = Timeline::default();
    event(&mut timeline, "connected");
    timeline.exists(0);
    timeline.reset(0, 0.0);
    timeline.receive(messages(1..=1));
    assert_eq!(texts(&timeline), ["[connected]", "m1"]);
}

/// Message `seq` from client `from` (verified), named `name`.
fn from(seq: u64, from: u128, name: &str) -> ChatMessage {
    let mut message = message(seq);
    message.from.client_id = ClientId(uuid::Uuid::from_u128(from));
    message.from.name = Some(name.parse().unwrap());
    message
}

const ME: u128 = 7;

#[test]
fn the_divider_sits_above_the_first_new_message_of_someone_else_and_stays_put() {
    let mut timeline = Timeline::default();
    timeline.receive(vec![from(1, 1, "Ann"), from(2, 1, "Ann"), from(3, ME, "Me"), from(4, 1, "Ann")]);
    timeline.divide(2, Some(ClientId(uuid::Uuid::from_u128(ME))));
    assert_eq!(texts(&timeline), ["m1", "m2", "m3", "[New messages]", "m4"], "one's own message is not new");
    timeline.receive(messages(5..=6));
    event(&mut timeline, "disconnected");
    assert_eq!(texts(&timeline), ["m1", "m2", "m3", "[New messages]", "m4", "m5", "m6", "[disconnected]"]);
    let divider = timeline.rows().into_iter().find(|row| matches!(row, Row::Divider { .. }));
    assert_eq!(divider, Some(Row::Divider { before: 4 }), "keyed by the message it stands above");
    timeline.reset(0, 0.0);
    timeline.receive(messages(1..=2));
    assert!(!texts(&timeline).contains(&"[New messages]".to_owned()), "another history: gone");
}

#[test]
fn the_divider_waits_for_the_window_to_hold_where_the_new_messages_begin() {
    let mut timeline = Timeline::default();
    timeline.receive(messages(101..=200));
    timeline.divide(50, None);
    assert_eq!(timeline.rows().len(), 100, "message 51 is not in the window: no divider above 101");
    let request = match timeline.ask(Paging::Older) {
        Ask::Load(request) => request,
        other => panic!("expected a load, got {other:?}"),
    };
    timeline.answered(request, Some(page(31..=100, true)));
    let rows = texts(&timeline);
    let at = rows.iter().position(|row| row == "[New messages]").expect("shown once loaded");
    assert_eq!(rows[at + 1], "m51");
}

#[test]
fn the_last_name_of_someone_is_on_their_newest_verified_message() {
    let mut timeline = Timeline::default();
    let ann = ClientId(uuid::Uuid::from_u128(1));
    assert_eq!(timeline.last_name_of(ann), None);
    let mut forged = from(3, 1, "Mallory");
    forged.from.verified = false;
    timeline.receive(vec![from(1, 1, "Ann"), from(2, 1, "Annie"), forged, from(4, 2, "Bob")]);
    assert_eq!(timeline.last_name_of(ann).map(DisplayName::as_str), Some("Annie"));
}
