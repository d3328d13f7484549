//! Read cursors through a real server and real sockets: a `read` reaches
//! every connection of its identity to the group (and nobody else), only
//! moves forward, is clamped to the group's last number, follows the
//! `welcome`, survives a restart (SQLite); unread counts are exact after
//! retention pruned, without one's own messages; a tokenless member's
//! `read` is refused.
//!
//! Ordering used as proof of absence: cursors are written by one thread,
//! a batch at a time, and each one told to all of its identity's members
//! at once; a `ping`'s `pong` comes after whatever was queued before it.

mod support;

use roomcast_backend::config::HistoryKind;
use roomcast_shared::limits::MAX_UNREAD;
use roomcast_shared::{ClientId, ErrorCode, GroupName, ServerEvent};
use support::*;
use uuid::Uuid;

fn lobby() -> GroupName {
    "lobby".parse().unwrap()
}

#[tokio::test]
async fn a_read_reaches_every_connection_of_its_identity_moves_forward_only_and_follows_the_welcome() {
    let server = start_default().await;
    let addr = server.local_addr();
    let (ann, bob) = (Uuid::new_v4(), Uuid::new_v4());
    let mut bob_ws = connect_json_as(addr, "lobby", bob, None).await;
    publish(&mut bob_ws, 5).await;
    let (mut tab, welcome, before) = connect_json_welcomed_as(addr, "lobby", ann, "").await;
    assert!(!before.iter().any(|event| matches!(event, ServerEvent::Cursor { .. })), "no cursor yet");
    let epoch = welcome.epoch;
    let mut other_tab = connect_json_as(addr, "lobby", ann, None).await;
    let mut elsewhere = connect_json_as(addr, "elsewhere", ann, None).await;

    read(&mut tab, &epoch, 3).await;
    assert_eq!(next_cursor(&mut tab).await, (epoch.clone(), 3), "the sender learns it as stored");
    assert_eq!(next_cursor(&mut other_tab).await, (epoch.clone(), 3));
    assert_eq!(settled(&mut bob_ws).await, [], "another identity hears nothing");
    assert_eq!(settled(&mut elsewhere).await, [], "nor the identity in another group");

    // A lower number is ignored: Bob's `read`, taken after it, is written
    // in the same pass or a later one, and still Ann hears nothing.
    read(&mut other_tab, &epoch, 2).await;
    settled(&mut other_tab).await;
    read(&mut bob_ws, &epoch, 5).await;
    assert_eq!(next_cursor(&mut bob_ws).await, (epoch.clone(), 5));
    assert_eq!(settled(&mut tab).await, [], "nothing moved");
    assert_eq!(settled(&mut other_tab).await, []);
    let store = server.history().store().clone();
    let cursor = store.cursor(ClientId(ann), &lobby()).unwrap().unwrap();
    assert_eq!((cursor.epoch.as_str(), cursor.seq), (epoch.as_str(), 3));

    // Past the group's last number: taken as the last. Another epoch than
    // the group's: dropped.
    read(&mut other_tab, "another-epoch", 4).await;
    read(&mut other_tab, &epoch, 99).await;
    assert_eq!(next_cursor(&mut tab).await, (epoch.clone(), 5));
    assert_eq!(next_cursor(&mut other_tab).await, (epoch.clone(), 5));

    // A new connection of Ann's gets it right after its welcome.
    let (_third, _, events) = connect_json_welcomed_as(addr, "lobby", ann, "").await;
    assert_eq!(events.first(), Some(&ServerEvent::Cursor { epoch: epoch.clone(), seq: 5 }));
    server.shutdown().await;
}

#[tokio::test]
async fn a_cursor_survives_a_restart_of_an_sqlite_server() {
    let database = TempDatabase::new();
    let config = || {
        let mut config = test_config();
        config.history = HistoryKind::Sqlite;
        config.database = database.0.clone();
        config
    };
    let ann = Uuid::new_v4();
    let server = start(config()).await;
    let (mut tab, welcome, _) = connect_json_welcomed_as(server.local_addr(), "lobby", ann, "").await;
    publish(&mut tab, 3).await;
    // The group got its epoch with its first message.
    let epoch = server.history().store().head(&lobby()).unwrap().epoch;
    assert!(welcome.epoch.is_empty() && !epoch.is_empty());
    read(&mut tab, &epoch, 2).await;
    assert_eq!(next_cursor(&mut tab).await, (epoch.clone(), 2));
    server.shutdown().await;

    let server = start(config()).await;
    let (_tab, welcome, events) = connect_json_welcomed_as(server.local_addr(), "lobby", ann, "").await;
    assert_eq!(welcome.epoch, epoch);
    assert_eq!(events.first(), Some(&ServerEvent::Cursor { epoch, seq: 2 }));
    server.shutdown().await;
}

#[tokio::test]
async fn unread_is_exact_after_retention_pruned_and_leaves_out_ones_own() {
    let mut config = test_config();
    config.retention_messages = 4;
    config.retention_interval = std::time::Duration::from_millis(20);
    let server = start(config).await;
    let addr = server.local_addr();
    let (ann, bob) = (Uuid::new_v4(), Uuid::new_v4());
    let mut bob_ws = connect_json_as(addr, "lobby", bob, None).await;
    let (mut ann_ws, _, _) = connect_json_welcomed_as(addr, "lobby", ann, "").await;
    publish(&mut bob_ws, 3).await;
    publish(&mut ann_ws, 2).await;
    let store = server.history().store().clone();
    let epoch = store.head(&lobby()).unwrap().epoch;
    read(&mut ann_ws, &epoch, 2).await;
    assert_eq!(next_cursor(&mut ann_ws).await, (epoch.clone(), 2));
    publish(&mut bob_ws, 3).await;
    eventually(|| store.head(&lobby()).unwrap().oldest == Some(5)).await;

    let unread = |sub| server.history().unread(ClientId(sub), lobby(), MAX_UNREAD);
    assert_eq!(unread(ann).await.unwrap(), 3, "6, 7 and 8: 3 and 4 are pruned, 5 is her own");
    assert_eq!(unread(bob).await.unwrap(), 1, "no cursor: what is retained, but his own (5 is Ann's)");
    read(&mut ann_ws, &epoch, 7).await;
    assert_eq!(next_cursor(&mut ann_ws).await, (epoch.clone(), 7));
    assert_eq!(unread(ann).await.unwrap(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn a_tokenless_members_read_is_refused() {
    let server = start_open().await;
    let addr = server.local_addr();
    let anonymous = Uuid::new_v4();
    let mut ws = connect_json_url(&format!("ws://{addr}/ws/open/{anonymous}"), "open").await;
    read(&mut ws, "e", 1).await;
    match next_event(&mut ws).await {
        ServerEvent::Error { code: ErrorCode::InvalidMessage, id: None, .. } => {}
        other => panic!("expected an error, got {other:?}"),
    }
    server.shutdown().await;
}
