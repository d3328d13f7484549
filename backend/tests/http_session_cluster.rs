//! The HTTP fallback across two nodes on one real Redis (a private
//! `redis-server`): a session's posts are taken by any node, and its
//! stream moves to another node with `Last-Event-ID`, missing and
//! repeating nothing.

mod support;

use roomcast_shared::ServerEvent;
use roomcast_testkit::LocalRedis;
use serde_json::json;
use support::*;
use uuid::Uuid;

/// The next message on `stream`, with its id.
async fn next_message_of(stream: &mut SseClient) -> (String, roomcast_shared::ChatMessage) {
    loop {
        let event = stream.next_event().await.expect("the stream goes on");
        if let ServerEvent::Message(message) = event.server_event() {
            return (event.id.expect("a message has an id"), message);
        }
    }
}

#[tokio::test]
async fn a_session_posts_to_any_node_and_moves_its_stream_with_last_event_id() {
    let redis = LocalRedis::start().expect("a local redis-server (the test script installs Debian's)");
    let first = start_node(&redis.url(), |_| {}).await;
    let second = start_node(&redis.url(), |_| {}).await;
    let ann = Uuid::new_v4();
    let bearer = format!("Bearer {}", token_for(ann));
    let path = format!("/api/events/lobby/{ann}");
    let (status, stream, head) = SseClient::open(first.local_addr(), &path, &[("Authorization", &bearer)]).await;
    assert_eq!(status, 200, "{head}");
    let mut on_first = stream.unwrap();
    let mut bob = connect_json(second.local_addr(), "lobby").await;
    send_text(&mut bob, "one").await;
    let (one, message) = next_message_of(&mut on_first).await;
    assert_eq!(message.text, "one");

    // A post to the other node: acknowledged there, heard on the stream.
    let id = Uuid::new_v4();
    let body = json!([{"type": "send", "id": id, "text": "two, posted to the other node"}]).to_string();
    let headers = [("Authorization", bearer.as_str()), ("X-Roomcast", "1")];
    let (status, answer) = raw_request(second.local_addr(), "POST", &path, &headers, &body).await;
    assert_eq!(status, 200, "{answer}");
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer, json!([{"type": "ack", "id": id, "seq": 2}]));
    let (two, message) = next_message_of(&mut on_first).await;
    assert_eq!((message.seq, message.id.0), (2, id));
    assert_eq!(one.split_once(':').unwrap().0, two.split_once(':').unwrap().0, "one epoch");

    // The stream moves: the other node resumes after the last id.
    drop(on_first);
    send_text(&mut bob, "three, while ann moved").await;
    let moved = [("Authorization", bearer.as_str()), ("Last-Event-ID", two.as_str())];
    let (status, stream, head) = SseClient::open(second.local_addr(), &path, &moved).await;
    assert_eq!(status, 200, "{head}");
    let mut on_second = stream.unwrap();
    let (three, message) = next_message_of(&mut on_second).await;
    assert_eq!((message.seq, message.text.as_str()), (3, "three, while ann moved"));
    assert!(three.ends_with(":3"));
    send_text(&mut bob, "four").await;
    assert_eq!(next_message_of(&mut on_second).await.1.seq, 4, "nothing missed, nothing twice");
    first.shutdown().await;
    second.shutdown().await;
}
