//! Read cursors across nodes on one real Redis (a private `redis-server`):
//! a `read` taken by one node reaches the identity's connection to the
//! group on another, and a connection to any node gets the stored cursor
//! after its `welcome`.

mod support;

use std::time::Duration;

use roomcast_shared::{ClientCommand, ServerEvent};
use roomcast_testkit::LocalRedis;
use support::*;
use uuid::Uuid;

#[tokio::test]
async fn a_read_on_one_node_reaches_the_identitys_connection_on_another() {
    let redis = LocalRedis::start().expect("a local redis-server (the test script installs Debian's)");
    let first = start_node(&redis.url(), |_| {}).await;
    let second = start_node(&redis.url(), |_| {}).await;
    let ann = Uuid::new_v4();
    let mut bob = connect_json(first.local_addr(), "lobby").await;
    publish_all(&mut bob, &["one".to_owned(), "two".to_owned()], 2).await;
    let (mut here, welcome, _) = connect_json_welcomed_as(first.local_addr(), "lobby", ann, "").await;
    let mut there = connect_json_as(second.local_addr(), "lobby", ann, None).await;
    let expected = ServerEvent::Cursor { epoch: welcome.epoch.clone(), seq: 2 };
    // The second node's control channel may not listen yet (pub/sub keeps
    // nothing for it): read again (the same cursor is told again) until
    // it hears.
    let mut heard = None;
    for _ in 0..10 {
        send_command(&mut here, &ClientCommand::Read { epoch: welcome.epoch.clone(), seq: 2 }).await;
        if let Ok(event) = tokio::time::timeout(Duration::from_millis(1_000), next_event(&mut there)).await {
            heard = Some(event);
            break;
        }
    }
    assert_eq!(heard, Some(expected.clone()));
    let (_late, _, events) = connect_json_welcomed_as(second.local_addr(), "lobby", ann, "").await;
    assert_eq!(events.first(), Some(&expected), "stored in Redis: any node says it after the welcome");
    first.shutdown().await;
    second.shutdown().await;
}

/// A rooms stream on one node hears the rooms it lists, whichever node the
/// messages are sent to, and a `read` on another node.
#[tokio::test]
async fn a_rooms_stream_hears_its_rooms_from_every_node() {
    let redis = LocalRedis::start().expect("a local redis-server (the test script installs Debian's)");
    let first = start_node(&redis.url(), |_| {}).await;
    let second = start_node(&redis.url(), |_| {}).await;
    let ann = Uuid::new_v4();
    let mut bob = connect_json(first.local_addr(), "lobby").await;
    publish_all(&mut bob, &["one".to_owned()], 1).await;
    let (mut ann_here, welcome, _) = connect_json_welcomed_as(first.local_addr(), "lobby", ann, "").await;
    read(&mut ann_here, &welcome.epoch, 1).await;
    next_cursor(&mut ann_here).await;

    let mut stream = open_json(&ws_url(second.local_addr(), "_me", ann)).await.unwrap();
    assert!(matches!(next_event(&mut stream).await, ServerEvent::Welcome(_)));
    let ServerEvent::Rooms { rooms } = next_event(&mut stream).await else { panic!("the list") };
    assert_eq!(rooms.iter().map(|room| room.group.as_str()).collect::<Vec<_>>(), ["lobby"]);
    // The second node subscribes to the room's channel a moment after the
    // stream watches it (pub/sub keeps nothing for it): send until one
    // arrives, then every later one does, in order.
    // (Ann's own read may reach the stream as a `room` meanwhile.)
    let mut first_heard = None;
    'rounds: for round in 0..20 {
        publish_all(&mut bob, &[format!("wait {round}")], 1).await;
        while let Ok(event) = tokio::time::timeout(Duration::from_millis(500), next_event(&mut stream)).await {
            if matches!(event, ServerEvent::Activity { .. }) {
                first_heard = Some(event);
                break 'rounds;
            }
        }
    }
    let Some(ServerEvent::Activity { last, .. }) = first_heard else { panic!("no activity") };
    let texts: Vec<String> = (0..3).map(|i| format!("later {i}")).collect();
    publish_all(&mut bob, &texts, 3).await;
    for expected in 1..=3 {
        let ServerEvent::Activity { last: next, .. } = next_event(&mut stream).await else { panic!("activity") };
        assert_eq!(next.seq, last.seq + expected);
    }
    // A read on the first node moves the room on the second.
    read(&mut ann_here, &welcome.epoch, last.seq + 3).await;
    let mut room = None;
    while room.is_none() {
        match next_event(&mut stream).await {
            ServerEvent::Room { room: moved } => room = Some(moved),
            ServerEvent::Activity { .. } => {}
            other => panic!("expected the room, got {other:?}"),
        }
    }
    assert_eq!(room.map(|room| (room.read, room.unread)), Some((last.seq + 3, 0)));
    first.shutdown().await;
    second.shutdown().await;
}
