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
