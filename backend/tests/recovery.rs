//! Nothing lost: replay on join, recovery with `since`, exactly-once sends,
//! scrollback, over real sockets.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use roomcast_shared::{ChatMessage, ClientCommand, MessageId, ServerEvent};
use support::*;
use uuid::Uuid;

fn texts(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|i| format!("{prefix}-{i}")).collect()
}

fn replayed_seqs(events: &[ServerEvent]) -> Vec<u64> {
    events
        .iter()
        .filter_map(|event| match event {
            ServerEvent::Message(message) => Some(message.seq),
            _ => None,
        })
        .collect()
}

fn gap(events: &[ServerEvent]) -> Option<(u64, u64)> {
    events.iter().find_map(|event| match event {
        ServerEvent::Gap { from, to } => Some((*from, *to)),
        _ => None,
    })
}

fn synced(events: &[ServerEvent]) -> u64 {
    match events.last() {
        Some(ServerEvent::Synced { seq }) => *seq,
        other => panic!("replay must end with synced, got {other:?}"),
    }
}

/// The recovery table: since = latest, inside the history, older than
/// retention, in the future, and an empty group.
#[tokio::test]
async fn recovery_table() {
    let mut config = test_config();
    config.history_on_join = 3;
    config.retention_messages = 6;
    config.retention_interval = Duration::from_millis(20);
    let server = start(config).await;
    let addr = server.local_addr();

    let (_ws, empty) = connect_json_with(addr, "recovery", "").await;
    assert_eq!((gap(&empty), replayed_seqs(&empty), synced(&empty)), (None, vec![], 0), "empty group");
    let (_ws, empty_since) = connect_json_with(addr, "recovery", "since=0").await;
    assert_eq!(synced(&empty_since), 0);

    let mut publisher = connect_json(addr, "recovery").await;
    publish_all(&mut publisher, &texts("m", 10), 10).await;
    // Retention keeps the last 6: 5..=10.
    let group = "recovery".parse().unwrap();
    eventually(|| server.history().store().head(&group).unwrap().oldest == Some(5)).await;

    type Case = (&'static str, Option<(u64, u64)>, Vec<u64>);
    let cases: [Case; 6] = [
        ("", None, vec![8, 9, 10]),                         // no since: the latest page
        ("since=10", None, vec![]),                         // since = latest
        ("since=6", None, vec![7, 8, 9, 10]),               // inside the history: all of it
        ("since=4", None, vec![5, 6, 7, 8, 9, 10]),         // just before the oldest kept
        ("since=2", Some((3, 4)), vec![5, 6, 7, 8, 9, 10]), // older than retention: all that is kept
        ("since=0", Some((1, 4)), vec![5, 6, 7, 8, 9, 10]), // from the start
    ];
    for (query, expected_gap, expected) in cases {
        let (_ws, events) = connect_json_with(addr, "recovery", query).await;
        assert_eq!(gap(&events), expected_gap, "{query}");
        assert_eq!(replayed_seqs(&events), expected, "{query}");
        assert_eq!(synced(&events), 10, "{query}");
    }

    // After a retention gap the replay picks up exactly where the gap ends
    // (the oldest kept) and runs without a hole up to `synced`.
    let (_ws, events) = connect_json_with(addr, "recovery", "since=2").await;
    assert_eq!(events.first(), Some(&ServerEvent::Gap { from: 3, to: 4 }), "the gap comes first");
    let replayed = replayed_seqs(&events);
    assert_eq!(replayed.first(), Some(&5), "the first message after the gap is the oldest kept");
    assert!(replayed.windows(2).all(|pair| pair[1] == pair[0] + 1), "contiguous: {replayed:?}");
    assert_eq!(replayed.last(), Some(&synced(&events)), "up to synced");

    // The history's epoch: the same one replays, another one, or a since
    // beyond the last number (the store went back), is a reset followed by
    // what a fresh join gets.
    let (_ws, welcome, _) = connect_json_welcomed(addr, "recovery", "").await;
    assert_eq!(welcome.epoch.len(), 16, "{welcome:?}");
    let reset = ServerEvent::Reset { epoch: welcome.epoch.clone() };
    let (_ws, same) = connect_json_with(addr, "recovery", &format!("since=6&epoch={}", welcome.epoch)).await;
    assert_eq!(replayed_seqs(&same), [7, 8, 9, 10]);
    assert!(!same.contains(&reset));
    for query in ["since=6&epoch=0011223344556677", "since=15", &format!("since=15&epoch={}", welcome.epoch)] {
        let (_ws, events) = connect_json_with(addr, "recovery", query).await;
        assert_eq!(events.first(), Some(&reset), "{query}");
        assert_eq!((gap(&events), replayed_seqs(&events), synced(&events)), (None, vec![8, 9, 10], 10), "{query}");
    }

    let client = Uuid::new_v4();
    for bad in ["since=-1", "since=1&epoch=not-hex!", "since=1&epoch=%20"] {
        let path = format!("/ws/recovery/{client}?{bad}&token={}", token_for(client));
        let (status, body) = http_request(addr, &path, &UPGRADE_HEADERS).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    server.shutdown().await;
}

/// Publishers keep sending while a client reconnects with `since` again and
/// again: what it ends up with is complete and strictly increasing.
#[tokio::test]
async fn reconnecting_during_publishing_misses_nothing() {
    let total = 600;
    let mut config = test_config();
    // Unlimited publishers may leave a reader on their thread any number of
    // frames behind; eviction has tests of its own, this one is about `since`.
    config.outbound_queue = total;
    let server = start(config).await;
    let addr = server.local_addr();
    let total_seq = total as u64;
    // The subscriber's first connection is in the group before anything is
    // published, so it must end up with exactly 1..=total.
    let (mut ws, replay) = connect_json_with(addr, "race", "").await;
    assert!(replayed_seqs(&replay).is_empty());
    let mut publishers = Vec::new();
    for p in 0..3 {
        let mut publisher = connect_json(addr, "race").await;
        publishers.push(tokio::spawn(async move {
            publish_all(&mut publisher, &texts(&format!("p{p}"), total / 3), 16).await
        }));
    }
    let mut seen: Vec<u64> = Vec::new();
    let mut connections = 1;
    loop {
        // Read a little live, then drop the connection mid-stream.
        for _ in 0..25 {
            if seen.last() == Some(&total_seq) {
                break;
            }
            seen.push(next_chat(&mut ws).await.seq);
        }
        drop(ws);
        let Some(&last) = seen.last().filter(|&&last| last < total_seq) else {
            break;
        };
        let replay;
        (ws, replay) = connect_json_with(addr, "race", &format!("since={last}")).await;
        connections += 1;
        seen.extend(replayed_seqs(&replay));
    }
    for publisher in publishers {
        publisher.await.unwrap();
    }
    assert_eq!(seen, (1..=total_seq).collect::<Vec<_>>(), "gap or duplicate");
    assert!(connections > 1, "never reconnected");
    server.shutdown().await;
}

/// 10 publishers send 2,000 messages while 20 subscribers drop their TCP
/// connections at random moments (no close frame) and come back with
/// `since`: every subscriber ends with the same complete sequence, and every
/// message is stored exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_with_abrupt_disconnects() {
    let database = TempDatabase::new();
    let mut config = test_config();
    config.history = roomcast_backend::config::HistoryKind::Sqlite;
    config.database = database.0.clone();
    const PUBLISHERS: usize = 10;
    const PER_PUBLISHER: usize = 200;
    const TOTAL: u64 = (PUBLISHERS * PER_PUBLISHER) as u64;
    // As above: the subject is reconnecting, not eviction.
    config.outbound_queue = TOTAL as usize;
    let server = start(config).await;
    let addr = server.local_addr();

    let mut subscribers = Vec::new();
    for s in 0..20u64 {
        subscribers.push(tokio::spawn(async move {
            let mut random = XorShift(0x9E37_79B9_7F4A_7C15 ^ (s + 1));
            let mut held: Vec<(u64, MessageId)> = Vec::new();
            let mut reconnects = 0;
            loop {
                let query = held.last().map_or_else(|| "since=0".to_owned(), |(seq, _)| format!("since={seq}"));
                let (mut ws, replay) = connect_json_with(addr, "soak", &query).await;
                assert_eq!(gap(&replay), None);
                for event in replay {
                    if let ServerEvent::Message(m) = event {
                        held.push((m.seq, m.id));
                    }
                }
                let live = random.below(150);
                for _ in 0..live {
                    if held.len() as u64 == TOTAL {
                        break;
                    }
                    let m = next_chat(&mut ws).await;
                    held.push((m.seq, m.id));
                }
                if held.len() as u64 == TOTAL {
                    return (held, reconnects);
                }
                // Abruptly: the TCP connection goes, no close frame.
                drop(ws);
                reconnects += 1;
            }
        }));
    }
    let mut publishers = Vec::new();
    for p in 0..PUBLISHERS {
        publishers.push(tokio::spawn(async move {
            let mut ws = connect_json(addr, "soak").await;
            publish_all(&mut ws, &texts(&format!("p{p}"), PER_PUBLISHER), 8).await
        }));
    }
    let mut sent = HashSet::new();
    for publisher in publishers {
        sent.extend(publisher.await.unwrap().into_iter().map(|(id, _)| id));
    }
    assert_eq!(sent.len() as u64, TOTAL);

    let mut reference = None;
    let mut total_reconnects = 0;
    for subscriber in subscribers {
        let (held, reconnects) = subscriber.await.unwrap();
        total_reconnects += reconnects;
        let seqs: Vec<u64> = held.iter().map(|(seq, _)| *seq).collect();
        assert_eq!(seqs, (1..=TOTAL).collect::<Vec<_>>(), "complete, in order, no duplicates");
        match &reference {
            None => reference = Some(held),
            Some(reference) => assert_eq!(&held, reference, "every subscriber sees the same sequence"),
        }
    }
    assert!(total_reconnects >= 20, "only {total_reconnects} reconnects");

    let stored = stored_history(addr, "soak").await;
    let stored_ids: Vec<MessageId> = stored.iter().map(|m| m.id).collect();
    assert_eq!(stored_ids.len() as u64, TOTAL, "stored exactly once");
    assert_eq!(stored_ids.iter().collect::<HashSet<_>>(), sent.iter().collect::<HashSet<_>>());
    server.shutdown().await;
}

#[tokio::test]
async fn a_resend_after_reconnect_is_acknowledged_with_its_first_number() {
    let server = start_default().await;
    let addr = server.local_addr();
    let id = MessageId(Uuid::new_v4());
    let send = ClientCommand::Send { id, text: "exactly once".into() };
    let mut first = connect_json(addr, "once").await;
    send_command(&mut first, &send).await;
    let seq = loop {
        if let ServerEvent::Ack { id: acked, seq } = next_event(&mut first).await {
            assert_eq!(acked, id);
            break seq;
        }
    };
    drop(first);
    // The same id, twice in a row, on a new connection.
    let mut second = connect_json(addr, "once").await;
    send_command(&mut second, &send).await;
    send_command(&mut second, &send).await;
    for _ in 0..2 {
        assert_eq!(next_event(&mut second).await, ServerEvent::Ack { id, seq });
    }
    assert_eq!(stored_history(addr, "once").await.len(), 1);
    server.shutdown().await;
}

/// An ack lost while retention removes the message: the resend, on a new
/// connection, still gets the first number, and nothing is stored again.
#[tokio::test]
async fn a_resend_after_retention_removed_the_message_gets_its_first_number() {
    let database = TempDatabase::new();
    let mut config = test_config();
    config.history = roomcast_backend::config::HistoryKind::Sqlite;
    config.database = database.0.clone();
    config.retention_messages = 2;
    config.retention_interval = Duration::from_millis(20);
    let server = start(config).await;
    let addr = server.local_addr();
    let mut ws = connect_json(addr, "kept").await;
    let acked = publish_all(&mut ws, &texts("m", 4), 4).await;
    let (id, seq) = acked[0];
    let group = "kept".parse().unwrap();
    eventually(|| server.history().store().head(&group).unwrap().oldest == Some(3)).await;
    drop(ws);
    let mut again = connect_json(addr, "kept").await;
    send_command(&mut again, &ClientCommand::Send { id, text: "m-0".into() }).await;
    assert_eq!(next_answer(&mut again).await, ServerEvent::Ack { id, seq });
    let stored: Vec<u64> = stored_history(addr, "kept").await.iter().map(|m| m.seq).collect();
    assert_eq!(stored, [3, 4], "nothing stored again");
    server.shutdown().await;
}

#[tokio::test]
async fn scrollback_pages_through_the_history() {
    let server = start_default().await;
    let addr = server.local_addr();
    let mut ws = connect_json(addr, "scroll").await;
    publish_all(&mut ws, &texts("m", 120), 32).await;
    let page = |query: &'static str| async move {
        let (status, body) = http_request(addr, &format!("/api/groups/scroll/messages{query}"), &[]).await;
        assert_eq!(status, 200, "{body}");
        let page: roomcast_shared::MessagePage = serde_json::from_str(&body).unwrap();
        (page.messages.first().map(|m| m.seq), page.messages.last().map(|m| m.seq), page.has_more)
    };
    assert_eq!(page("").await, (Some(71), Some(120), true));
    assert_eq!(page("?before=71").await, (Some(21), Some(70), true));
    assert_eq!(page("?before=21&limit=50").await, (Some(1), Some(20), false));
    assert_eq!(page("?limit=5").await, (Some(116), Some(120), true));
    assert_eq!(http_request(addr, "/api/groups/scroll/messages?before=x", &[]).await.0, 400);
    assert_eq!(http_request(addr, "/api/groups/no.dots/messages", &[]).await.0, 400);
    let (status, body) = http_request(addr, "/api/groups/empty/messages", &[]).await;
    assert_eq!((status, body.as_str()), (200, r#"{"messages":[],"has_more":false}"#));
    server.shutdown().await;
}

/// A page of the API holds at most 1 MiB of messages, however large the
/// `limit`: large messages come in more pages, none skipped.
#[tokio::test]
async fn api_pages_are_bounded_in_bytes() {
    let server = start_default().await;
    let addr = server.local_addr();
    let mut ws = connect_json(addr, "heavy").await;
    let texts: Vec<String> = (1..=40).map(|i| format!("{i:02}{}", "y".repeat(60 * 1024))).collect();
    publish_all(&mut ws, &texts, 8).await;
    let (status, body) = http_request(addr, "/api/groups/heavy/messages?limit=500", &[]).await;
    assert_eq!(status, 200);
    assert!(body.len() <= roomcast_shared::limits::MAX_HISTORY_PAGE_BYTES + 1024, "{} bytes", body.len());
    let page: roomcast_shared::MessagePage = serde_json::from_str(&body).unwrap();
    assert!(page.has_more && page.messages.len() < 40);
    assert_eq!(page.messages.last().unwrap().seq, 40, "the newest first");
    let all = stored_history(addr, "heavy").await;
    assert_eq!(all.iter().map(|m| m.seq).collect::<Vec<_>>(), (1..=40).collect::<Vec<_>>(), "every page, no gap");
    server.shutdown().await;
}

/// `after` pages go forward: the messages after a number, oldest first, with
/// `has_more` while newer ones exist.
#[tokio::test]
async fn forward_pages_catch_up_after_a_number() {
    let server = start_default().await;
    let addr = server.local_addr();
    let mut ws = connect_json(addr, "forward").await;
    publish_all(&mut ws, &texts("m", 120), 32).await;
    let page = |query: &'static str| async move {
        let page = history_page(addr, "forward", query).await;
        let seqs: Vec<u64> = page.messages.iter().map(|m| m.seq).collect();
        assert!(seqs.windows(2).all(|pair| pair[1] == pair[0] + 1), "{query}: {seqs:?}");
        (seqs.first().copied(), seqs.last().copied(), page.has_more)
    };
    assert_eq!(page("?after=20").await, (Some(21), Some(70), true), "in the middle");
    assert_eq!(page("?after=70").await, (Some(71), Some(120), false), "the last page, exactly full");
    assert_eq!(page("?after=100&limit=50").await, (Some(101), Some(120), false), "the last page");
    assert_eq!(page("?after=0&limit=5").await, (Some(1), Some(5), true));
    assert_eq!(page("?after=0&limit=0").await, (Some(1), Some(1), true), "limit is at least 1");
    assert_eq!(page("?after=120").await, (None, None, false), "after the last");
    assert_eq!(page("?after=500").await, (None, None, false), "beyond the last");

    // Walking forward from the start yields the whole history once.
    let mut walked: Vec<ChatMessage> = Vec::new();
    let mut more = true;
    while more {
        let after = walked.last().map_or(0, |m| m.seq);
        let page = history_page(addr, "forward", &format!("?after={after}&limit=50")).await;
        more = page.has_more;
        walked.extend(page.messages);
    }
    assert_eq!(walked, stored_history(addr, "forward").await);
    assert_eq!(walked.len(), 120);

    let (status, body) = http_request(addr, "/api/groups/forward/messages?before=50&after=10", &[]).await;
    assert_eq!((status, body.as_str()), (400, "before and after cannot be used together\n"));
    let (status, body) = http_request(addr, "/api/groups/forward/messages?after=-1", &[]).await;
    assert_eq!((status, body.as_str()), (400, "after must be a non-negative integer\n"));
    let empty = history_page(addr, "empty", "?after=0").await;
    assert_eq!((empty.messages.len(), empty.has_more), (0, false));
    server.shutdown().await;
}

/// A small deterministic generator for "random" moments.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}
