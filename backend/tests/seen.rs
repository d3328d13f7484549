//! "Seen by" through a real server and real sockets: in a group of at most
//! `--seen-max` readers, every JSON member gets the readers after its
//! `welcome` and each reader's move; once the group has more readers,
//! nobody gets either. (Redis tier: the same across two nodes, the readers
//! kept in Redis.)
//!
//! Ordering used as proof of absence: each node hears a cursor once and
//! queues the group's `seen` before the reader's own `cursor`; a `ping`'s
//! `pong` comes after whatever was queued before it.

mod support;

use std::net::SocketAddr;

use roomcast_backend::Server;
use roomcast_shared::{ClientId, Reader, ServerEvent};
use support::*;
use uuid::Uuid;

/// A server whose groups get "seen by" up to `max` readers.
async fn start_with_seen_max(max: usize) -> Server {
    let mut config = test_config();
    config.seen_max = max;
    start(config).await
}

/// Every event up to the answer to a `ping`, `seen` included (presence
/// apart).
async fn all_until_pong(ws: &mut Client) -> Vec<ServerEvent> {
    send_command(ws, &roomcast_shared::ClientCommand::Ping).await;
    let mut before = Vec::new();
    loop {
        match next_any_event(ws).await {
            ServerEvent::Pong => return before,
            event if is_presence(&event) => {}
            event => before.push(event),
        }
    }
}

/// The next `seen` event, passing over the group's messages, acks and
/// cursors.
async fn next_seen(ws: &mut Client) -> (String, Vec<Reader>) {
    loop {
        match next_any_event(ws).await {
            ServerEvent::Seen { epoch, readers } => return (epoch, readers),
            ServerEvent::Message(_) | ServerEvent::Ack { .. } | ServerEvent::Cursor { .. } => {}
            event if is_presence(&event) => {}
            other => panic!("expected seen, got {other:?}"),
        }
    }
}

/// Connects as `who` and returns the `seen` between its `welcome` and
/// `synced`, if any (none or one).
async fn join_seen(addr: SocketAddr, who: Uuid) -> (Client, Option<(String, Vec<Reader>)>) {
    let url = ws_url(addr, "team", who);
    let mut ws = open_json(&url).await.unwrap();
    assert!(matches!(next_event(&mut ws).await, ServerEvent::Welcome(_)), "welcome first");
    let mut seen = Vec::new();
    loop {
        match next_any_event(&mut ws).await {
            ServerEvent::Seen { epoch, readers } => seen.push((epoch, sorted(readers))),
            ServerEvent::Synced { .. } => break,
            _ => {}
        }
    }
    assert!(seen.len() <= 1, "one snapshot at most: {seen:?}");
    (ws, seen.pop())
}

/// The group's epoch, as its store holds it.
fn epoch_of(server: &Server) -> String {
    server.history().store().head(&"team".parse().unwrap()).unwrap().epoch
}

fn reader(who: Uuid, seq: u64) -> Reader {
    Reader { client_id: ClientId(who), seq }
}

fn sorted(mut readers: Vec<Reader>) -> Vec<Reader> {
    readers.sort_by_key(|reader| reader.client_id.0);
    readers
}

#[tokio::test]
async fn a_small_groups_members_see_who_read_how_far_and_a_larger_group_gets_nothing() {
    let server = start_with_seen_max(2).await;
    let addr = server.local_addr();
    let (ann, bob, cat, dan) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let mut ann_ws = connect_json_as(addr, "team", ann, None).await;
    publish(&mut ann_ws, 3).await;
    let epoch = epoch_of(&server);
    let (mut bob_ws, seen) = join_seen(addr, bob).await;
    assert_eq!(seen, Some((epoch.clone(), Vec::new())), "a small group: its readers, none yet");

    read(&mut bob_ws, &epoch, 3).await;
    assert_eq!(next_seen(&mut ann_ws).await, (epoch.clone(), vec![reader(bob, 3)]), "another member hears it");
    assert_eq!(next_seen(&mut bob_ws).await, (epoch.clone(), vec![reader(bob, 3)]), "the reader too");
    assert_eq!(next_cursor(&mut bob_ws).await, (epoch.clone(), 3), "beside its own cursor");
    read(&mut ann_ws, &epoch, 2).await;
    assert_eq!(next_seen(&mut bob_ws).await, (epoch.clone(), vec![reader(ann, 2)]));
    assert_eq!(next_cursor(&mut ann_ws).await, (epoch.clone(), 2));

    let (mut cat_ws, seen) = join_seen(addr, cat).await;
    assert_eq!(seen, Some((epoch.clone(), sorted(vec![reader(ann, 2), reader(bob, 3)]))), "every reader so far");

    // A third reader: more than two, so its move and the next ones go
    // untold (each waited for: its `seen` would be queued before it).
    read(&mut cat_ws, &epoch, 1).await;
    assert_eq!(next_cursor(&mut cat_ws).await, (epoch.clone(), 1));
    read(&mut bob_ws, &epoch, 3).await;
    assert_eq!(next_cursor(&mut bob_ws).await, (epoch.clone(), 3));
    read(&mut ann_ws, &epoch, 3).await;
    assert_eq!(next_cursor(&mut ann_ws).await, (epoch.clone(), 3));
    for ws in [&mut ann_ws, &mut bob_ws, &mut cat_ws] {
        let heard = all_until_pong(ws).await;
        assert!(!heard.iter().any(|event| matches!(event, ServerEvent::Seen { .. })), "no seen: {heard:?}");
    }
    let (_dan_ws, seen) = join_seen(addr, dan).await;
    assert_eq!(seen, None, "a group above --seen-max: no readers after the welcome");
    server.shutdown().await;
}

#[tokio::test]
async fn seen_max_0_turns_it_off() {
    let server = start_with_seen_max(0).await;
    let addr = server.local_addr();
    let (ann, bob) = (Uuid::new_v4(), Uuid::new_v4());
    let mut ann_ws = connect_json_as(addr, "team", ann, None).await;
    publish(&mut ann_ws, 1).await;
    let epoch = epoch_of(&server);
    let (mut bob_ws, seen) = join_seen(addr, bob).await;
    assert_eq!(seen, None);
    read(&mut bob_ws, &epoch, 1).await;
    assert_eq!(next_cursor(&mut bob_ws).await, (epoch, 1));
    let heard = all_until_pong(&mut ann_ws).await;
    assert!(!heard.iter().any(|event| matches!(event, ServerEvent::Seen { .. })), "no seen: {heard:?}");
    server.shutdown().await;
}

/// Across two nodes on one Redis: a read on one reaches the group's member
/// on the other, and the readers a node lists after a `welcome` are the
/// ones kept in Redis.
#[cfg(feature = "redis-tests")]
#[tokio::test]
async fn a_read_on_one_node_is_seen_on_another() {
    use std::time::Duration;

    let redis = roomcast_testkit::LocalRedis::start().expect("a local redis-server");
    let first = start_node(&redis.url(), |_| {}).await;
    let second = start_node(&redis.url(), |_| {}).await;
    let (ann, bob, cat) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let mut ann_ws = connect_json_as(first.local_addr(), "team", ann, None).await;
    publish(&mut ann_ws, 2).await;
    let epoch = epoch_of(&first);
    let (mut bob_ws, _) = join_seen(second.local_addr(), bob).await;
    // The first node's control channel may not listen yet (pub/sub keeps
    // nothing for it): read again (a cursor written again is told again)
    // until it hears.
    let mut heard = None;
    for _ in 0..10 {
        read(&mut bob_ws, &epoch, 2).await;
        if let Ok(seen) = tokio::time::timeout(Duration::from_millis(1_000), next_seen(&mut ann_ws)).await {
            heard = Some(seen);
            break;
        }
    }
    assert_eq!(heard, Some((epoch.clone(), vec![reader(bob, 2)])));
    let (_cat_ws, seen) = join_seen(first.local_addr(), cat).await;
    assert_eq!(seen, Some((epoch, vec![reader(bob, 2)])), "the readers kept in Redis");
    first.shutdown().await;
    second.shutdown().await;
}
