//! Storage under pressure: the group quota, the database size limit and
//! recovery when space returns, retention during a replay, a store that
//! starts over, and the files' modes.

mod support;

use std::time::Duration;

use roomcast_backend::config::HistoryKind;
use roomcast_backend::history::{Appending, Store};
use roomcast_shared::{ChatMessage, ClientId, ErrorCode, MessageId, Sender, ServerEvent};
use support::*;
use uuid::Uuid;

#[tokio::test]
async fn a_send_that_would_create_a_group_past_the_quota_is_refused_for_good() {
    let mut config = test_config();
    config.max_groups = 2;
    let server = start(config).await;
    let addr = server.local_addr();
    for group in ["first", "second"] {
        let mut ws = connect_json(addr, group).await;
        send_text(&mut ws, "hello").await;
        assert!(matches!(next_answer(&mut ws).await, ServerEvent::Ack { seq: 1, .. }));
    }
    let mut third = connect_json(addr, "third").await;
    let id = send_text(&mut third, "one too many").await;
    let ServerEvent::Error { code, id: refused, .. } = next_answer(&mut third).await else { panic!("an error") };
    assert_eq!((code, refused), (ErrorCode::Quota, Some(id)));
    assert!(!code.is_retryable());
    // Existing groups go on.
    let mut first = connect_json(addr, "first").await;
    send_text(&mut first, "still fine").await;
    assert!(matches!(next_answer(&mut first).await, ServerEvent::Ack { seq: 2, .. }));
    server.shutdown().await;
}

/// A server on a SQLite database of its own directory limited to 512 KiB.
async fn start_at_the_size_limit() -> (std::path::PathBuf, roomcast_backend::Server) {
    let dir = std::env::temp_dir().join(format!("roomcast-full-{}", Uuid::new_v4()));
    let mut config = test_config();
    config.history = HistoryKind::Sqlite;
    config.database = dir.join("history.sqlite3");
    config.max_database_bytes = 512 * 1024;
    (dir, start(config).await)
}

/// At the database limit a send is refused as retryable, and the oldest
/// messages make room: the resend goes through, with the default retention
/// (which alone would never make room).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_database_limit_sends_are_unavailable_until_the_oldest_make_room() {
    let (dir, server) = start_at_the_size_limit().await;
    let addr = server.local_addr();
    let mut sender = connect_json(addr, "full").await;
    let mut member = connect_json(addr, "full").await;
    let text = "f".repeat(8 * 1024);
    let mut acked = 0;
    let refused = loop {
        send_text(&mut sender, &text).await;
        match next_answer(&mut sender).await {
            ServerEvent::Ack { .. } => acked += 1,
            ServerEvent::Error { code: ErrorCode::Unavailable, id: Some(refused), .. } => break refused,
            other => panic!("{other:?}"),
        }
        assert!(acked < 1_000, "the database never filled");
    };
    // Resent with the same id, as the app does, until retention has made
    // room: then stored once, and delivered once.
    let resend = roomcast_shared::ClientCommand::Send { id: refused, text: text.clone() };
    let stored = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            send_command(&mut sender, &resend).await;
            match next_answer(&mut sender).await {
                ServerEvent::Ack { id, seq } if id == refused => return seq,
                ServerEvent::Error { code: ErrorCode::Unavailable, .. } => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                other => panic!("{other:?}"),
            }
        }
    })
    .await
    .expect("sending never resumed");
    // The member sees it once, as stored, and up to then never: the group
    // may have started over meanwhile (retention emptied it).
    let marker = send_text(&mut sender, "marker").await;
    let mut deliveries = Vec::new();
    loop {
        match next_event(&mut member).await {
            ServerEvent::Message(message) if message.id == marker => break,
            ServerEvent::Message(message) if message.id == refused => deliveries.push(message.seq),
            _ => {}
        }
    }
    assert_eq!(deliveries, [stored], "delivered once, as stored");
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

fn stored(group: &str, text: &str) -> Appending {
    Appending::new(ChatMessage {
        group: group.parse().unwrap(),
        seq: 0,
        id: MessageId(Uuid::new_v4()),
        from: Sender { client_id: ClientId(Uuid::new_v4()), name: None, verified: true },
        text: text.to_owned(),
        ts: roomcast_backend::clock::unix_millis(),
    })
}

fn append(store: &dyn Store, group: &str, count: usize, text: &str) {
    let mut batch: Vec<_> = (0..count).map(|_| stored(group, text)).collect();
    store.append(&mut batch).unwrap();
}

/// Retention removes messages a replay has not reached yet: the client is
/// told exactly which, and gets everything else once, in order.
#[tokio::test]
async fn retention_during_a_replay_is_an_exact_gap() {
    let mut config = test_config();
    config.retention_messages = 3_000;
    config.retention_interval = Duration::from_millis(50);
    let server = start(config).await;
    let addr = server.local_addr();
    let store = server.history().store().clone();
    let text = "r".repeat(4 * 1024);
    append(store.as_ref(), "pruned", 3_000, &text);
    // A client that reads the first page, then pauses: the server writes
    // until the socket buffers are full, and waits.
    let tcp = tcp_from([127, 0, 0, 1], addr, Some(4096)).await;
    let url = format!("{}&since=0", ws_url(addr, "pruned", Uuid::new_v4()));
    let mut ws = upgrade_over(tcp, &url, &[]).await.unwrap();
    assert!(matches!(next_event(&mut ws).await, ServerEvent::Welcome(_)));
    // Meanwhile 2,000 more: retention then keeps 2,001..=5,000.
    append(store.as_ref(), "pruned", 2_000, &text);
    let group = "pruned".parse().unwrap();
    eventually(|| store.head(&group).unwrap().oldest == Some(2_001)).await;

    let (mut covered, mut gaps, mut last) = (0u64, Vec::new(), 0u64);
    let synced = loop {
        match next_event(&mut ws).await {
            ServerEvent::Message(message) => {
                assert_eq!(message.seq, last + 1, "in order, nothing skipped silently");
                last = message.seq;
                covered += 1;
            }
            ServerEvent::Gap { from, to } => {
                assert_eq!(from, last + 1, "the gap starts right after what came");
                gaps.push((from, to));
                covered += to - from + 1;
                last = to;
            }
            ServerEvent::Synced { seq } => break seq,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!((synced, covered), (5_000, 5_000), "every number, as a message or in a gap, once");
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    assert!(gaps[0].0 > 1, "the gap came during the replay, not before it: {gaps:?}");
    server.shutdown().await;
}

/// A memory history starts over with every start: a client that comes back
/// with its old number and epoch is told so.
#[tokio::test]
async fn a_store_that_started_over_is_a_reset() {
    let first = start_default().await;
    let mut ws = connect_json(first.local_addr(), "again").await;
    publish_all(&mut ws, &["a".into(), "b".into(), "c".into()], 3).await;
    let (_ws, welcome, _) = connect_json_welcomed(first.local_addr(), "again", "").await;
    first.shutdown().await;

    let second = start_default().await;
    let mut ws = connect_json(second.local_addr(), "again").await;
    publish_all(&mut ws, &["fresh".into()], 1).await;
    let query = format!("since=3&epoch={}", welcome.epoch);
    let (_ws, now, events) = connect_json_welcomed(second.local_addr(), "again", &query).await;
    assert_ne!(now.epoch, welcome.epoch);
    assert_eq!(events.first(), Some(&ServerEvent::Reset { epoch: now.epoch.clone() }));
    let texts: Vec<_> = events
        .iter()
        .filter_map(|e| if let ServerEvent::Message(m) = e { Some(m.text.clone()) } else { None })
        .collect();
    assert_eq!(texts, ["fresh"]);
    assert_eq!(events.last(), Some(&ServerEvent::Synced { seq: 1 }));
    second.shutdown().await;
}

/// Connected members learn that their group started over (emptied by
/// retention, created again by a new message).
#[tokio::test]
async fn members_are_told_when_their_group_starts_over() {
    let mut config = test_config();
    config.retention_age = Duration::from_millis(300);
    config.retention_interval = Duration::from_millis(50);
    let server = start(config).await;
    let addr = server.local_addr();
    let mut member = connect_json(addr, "reborn").await;
    let mut sender = connect_json(addr, "reborn").await;
    publish_all(&mut sender, &["old".into()], 1).await;
    assert_eq!(next_chat(&mut member).await.text, "old");
    let group = "reborn".parse().unwrap();
    let store = server.history().store().clone();
    eventually(|| store.head(&group).unwrap().epoch.is_empty()).await;
    publish_all(&mut sender, &["new".into()], 1).await;
    let epoch = store.head(&group).unwrap().epoch;
    assert_eq!(next_event(&mut member).await, ServerEvent::Reset { epoch });
    assert_eq!(next_event(&mut member).await, ServerEvent::Synced { seq: 0 });
    let message = next_chat(&mut member).await;
    assert_eq!((message.seq, message.text.as_str()), (1, "new"));
    server.shutdown().await;
}

/// A member that joined a group before it existed learns its epoch from
/// the message that creates it, and one that joined after the last message
/// is told when the group starts over: nobody is left holding numbers of
/// an epoch it was never told.
#[tokio::test]
async fn every_member_learns_the_epoch_of_the_history_it_holds() {
    let mut config = test_config();
    config.retention_age = Duration::from_millis(300);
    config.retention_interval = Duration::from_millis(50);
    let server = start(config).await;
    let addr = server.local_addr();
    let store = server.history().store().clone();
    let group = "learning".parse().unwrap();

    let (mut early, welcome, _) = connect_json_welcomed(addr, "learning", "").await;
    assert_eq!(welcome.epoch, "", "the group does not exist yet");
    let mut sender = connect_json(addr, "learning").await;
    publish_all(&mut sender, &["first".into()], 1).await;
    let epoch = store.head(&group).unwrap().epoch;
    assert_eq!(next_event(&mut early).await, ServerEvent::Reset { epoch: epoch.clone() });
    assert_eq!(next_event(&mut early).await, ServerEvent::Synced { seq: 0 });
    assert_eq!(next_chat(&mut early).await.text, "first");

    // A member that joins after the last message, with nothing live since.
    drop(early);
    let (mut late, welcome, _) = connect_json_welcomed(addr, "learning", "").await;
    assert_eq!(welcome.epoch, epoch);
    eventually(|| store.head(&group).unwrap().epoch.is_empty()).await;
    publish_all(&mut sender, &["again".into()], 1).await;
    let again = store.head(&group).unwrap().epoch;
    assert_ne!(again, epoch);
    assert_eq!(next_event(&mut late).await, ServerEvent::Reset { epoch: again });
    assert_eq!(next_event(&mut late).await, ServerEvent::Synced { seq: 0 });
    let message = next_chat(&mut late).await;
    assert_eq!((message.seq, message.text.as_str()), (1, "again"));
    server.shutdown().await;
}

/// The history holds every message: the data directory the server creates
/// is 0700, the database and its `-wal` and `-shm` files 0600 whatever the
/// umask, and a database an earlier version left readable by all is made
/// owner-only at start.
#[tokio::test]
async fn the_data_directory_and_the_database_files_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let root = std::env::temp_dir().join(format!("roomcast-modes-{}", Uuid::new_v4()));
    let dir = root.join("data");
    let mut config = test_config();
    config.history = HistoryKind::Sqlite;
    config.database = dir.join("roomcast.sqlite3");
    let files = ["", "-wal", "-shm"].map(|suffix| dir.join(format!("roomcast.sqlite3{suffix}")));
    for earlier_version in [false, true] {
        if earlier_version {
            std::fs::set_permissions(&files[0], std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        let server = start(config.clone()).await;
        let mut ws = connect_json(server.local_addr(), "private").await;
        assert_round_trip(&mut ws, "for members only").await;
        assert_eq!(mode(&dir), 0o700, "the data directory");
        for file in &files {
            assert_eq!(mode(file), 0o600, "{} (an earlier version's: {earlier_version})", file.display());
        }
        drop(ws);
        server.shutdown().await;
    }
    std::fs::remove_dir_all(root).unwrap();
}

/// `--group-idle-age`: a room nobody is in and nothing was written to for
/// that long goes, with its history, and its `--max-groups` place is free
/// again; a room with a member stays.
#[tokio::test]
async fn an_idle_room_nobody_is_in_goes_and_frees_its_place() {
    let mut config = test_config();
    config.max_groups = 2;
    config.group_idle_age = Duration::from_secs(1);
    config.retention_interval = Duration::from_millis(100);
    let server = start(config).await;
    let addr = server.local_addr();
    let mut stays = connect_json(addr, "stays").await;
    send_text(&mut stays, "kept").await;
    {
        let mut leaves = connect_json(addr, "leaves").await;
        send_text(&mut leaves, "soon gone").await;
        next_answer(&mut leaves).await;
    }
    // The quota is full now; once the idle room is gone, a third fits.
    let gone = tokio::time::Instant::now() + PATIENCE;
    while !stored_history(addr, "leaves").await.is_empty() {
        assert!(tokio::time::Instant::now() < gone, "the idle room was never removed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut third = connect_json(addr, "third").await;
    send_text(&mut third, "fits").await;
    assert!(matches!(next_answer(&mut third).await, ServerEvent::Ack { seq: 1, .. }));
    assert_eq!(stored_history(addr, "stays").await.len(), 1, "a room with a member stays");
    server.shutdown().await;
}

/// At the database limit, a flooding room makes its own room: a quiet
/// room written to meanwhile keeps its whole history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_database_limit_the_flooder_pays() {
    let (dir, server) = start_at_the_size_limit().await;
    let addr = server.local_addr();
    let mut quiet = connect_json(addr, "quiet").await;
    for n in 0..10 {
        send_text(&mut quiet, &format!("quiet {n}")).await;
        next_answer(&mut quiet).await;
    }
    let mut flooder = connect_json(addr, "flood").await;
    let text = "f".repeat(8 * 1024);
    let mut refusals = 0;
    for _ in 0..300 {
        send_text(&mut flooder, &text).await;
        if let ServerEvent::Error { code: ErrorCode::Unavailable, .. } = next_answer(&mut flooder).await {
            refusals += 1;
        }
    }
    assert!(refusals > 0, "the database never filled");
    assert_eq!(stored_history(addr, "quiet").await.len(), 10, "the quiet room kept all it had");
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}
