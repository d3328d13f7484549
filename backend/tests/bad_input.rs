//! Hostile and broken input: each gets an error event or the right close
//! code, never a crash, and never disturbs the rest of the group.

mod support;

use bytes::Bytes;
use futures_util::SinkExt;
use roomcast_shared::{close, ErrorCode, ServerEvent};
use support::*;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

async fn expect_error(ws: &mut Client, code: ErrorCode) {
    match next_event(ws).await {
        ServerEvent::Error { code: got, message, .. } => {
            assert_eq!(got, code, "{message}");
            assert!(!message.is_empty());
        }
        other => panic!("expected an error event, got {other:?}"),
    }
}

#[tokio::test]
async fn bad_commands_get_error_events_and_the_connection_stays_open() {
    let server = start_default().await;
    let mut ws = connect_json(server.local_addr(), "errors").await;
    for (frame, code) in [
        ("not json", ErrorCode::BadJson),
        ("{\"type\":\"send\"}", ErrorCode::BadJson),
        ("{\"type\":\"teleport\"}", ErrorCode::UnknownType),
        (
            "{\"type\":\"send\",\"id\":\"6f1c2a9e-0b5d-4c61-9a55-5f6d0d3f6a10\",\"text\":\" \"}",
            ErrorCode::InvalidMessage,
        ),
    ] {
        ws.send(Message::text(frame)).await.unwrap();
        expect_error(&mut ws, code).await;
    }
    ws.send(Message::binary(vec![1, 2, 3])).await.unwrap();
    expect_error(&mut ws, ErrorCode::BinaryNotSupported).await;

    assert_round_trip(&mut ws, "still here").await;
    server.shutdown().await;
}

/// JSON mode refuses control characters (bar line breaks and tabs): nothing
/// is stored or delivered. Raw mode stays byte-exact.
#[tokio::test]
async fn control_characters_are_refused_in_json_mode_and_kept_among_raw_members() {
    let server = start_default().await;
    let addr = server.local_addr();
    let mut reader = connect_raw(addr, "controls").await;
    let mut ws = connect_json(addr, "controls").await;
    for text in ["\u{1b}[2J wipe the screen", "nul\u{0}", "bell\u{7}"] {
        let id = send_text(&mut ws, text).await;
        match next_event(&mut ws).await {
            ServerEvent::Error { code: ErrorCode::InvalidMessage, id: Some(refused), .. } => assert_eq!(refused, id),
            other => panic!("expected invalid_message for {text:?}, got {other:?}"),
        }
    }
    assert_round_trip(&mut ws, "two\nlines\tand a tab").await;
    assert_eq!(next_text(&mut reader).await, "two\nlines\tand a tab", "only the valid message reached the group");
    // Raw mode stays byte-exact between raw members; JSON members never get
    // control characters (nor is such a text stored).
    let mut raw = connect_raw(addr, "controls").await;
    raw.send(Message::text("raw \u{7} stays")).await.unwrap();
    assert_eq!(next_text(&mut reader).await, "raw \u{7} stays");
    // A blank text is no message either (as a JSON `send` of one is not).
    raw.send(Message::text("   ")).await.unwrap();
    assert_eq!(next_text(&mut reader).await, "   ");
    raw.send(Message::text("plain")).await.unwrap();
    assert_eq!(next_text(&mut reader).await, "plain");
    assert!(matches!(next_event(&mut ws).await, ServerEvent::Ack { .. }), "the round trip's ack");
    assert_eq!(next_chat(&mut ws).await.text, "plain", "the control and blank texts never reached the JSON member");
    assert_eq!(stored_history(addr, "controls").await.len(), 2);
    server.shutdown().await;
}

#[tokio::test]
async fn an_oversized_message_closes_with_1009() {
    let server = start_with_limit(1024).await;
    let addr = server.local_addr();
    let mut bystander = connect_json(addr, "big").await;
    let mut ws = connect_json(addr, "big").await;
    ws.send(Message::text("x".repeat(1025))).await.unwrap();
    assert_eq!(close_code(&mut ws).await, close::MESSAGE_TOO_BIG);

    assert_round_trip(&mut bystander, "unaffected").await;
    server.shutdown().await;
}

/// The server stops reading at the header of a frame over the limit, while
/// the peer is still sending its payload: the close frame must still reach
/// the peer (a socket closed with unread input is reset, and the reset can
/// destroy the close frame: the peer sees 1006 and cannot tell which message
/// was refused).
#[tokio::test]
async fn a_frame_far_over_the_limit_still_gets_its_1009() {
    let server = start_with_limit(1024).await;
    for _ in 0..10 {
        let mut ws = connect_json(server.local_addr(), "far-too-big").await;
        ws.send(Message::text("x".repeat(256 * 1024))).await.unwrap();
        assert_eq!(close_code(&mut ws).await, close::MESSAGE_TOO_BIG);
    }
    server.shutdown().await;
}

/// A raw frame within the limit whose text JSON doubles (quotes, line
/// breaks) would reach every JSON member at up to twice the advertised size.
#[tokio::test]
async fn a_raw_text_over_the_limit_once_json_escaped_closes_with_1009() {
    let server = start_with_limit(1024).await;
    let addr = server.local_addr();
    let mut member = connect_json(addr, "escaped").await;
    let mut raw = connect_raw(addr, "escaped").await;
    raw.send(Message::text("\"\n".repeat(300))).await.unwrap();
    assert_eq!(close_code(&mut raw).await, close::MESSAGE_TOO_BIG);
    assert_round_trip(&mut member, "nothing oversized came before this").await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_message_at_the_limit_is_accepted() {
    let server = start_with_limit(1024).await;
    let mut raw = connect_raw(server.local_addr(), "edge").await;
    raw.send(Message::text("y".repeat(1024))).await.unwrap();
    assert_eq!(next_text(&mut raw).await.len(), 1024);
    server.shutdown().await;
}

#[tokio::test]
async fn invalid_utf8_closes_with_1007() {
    let server = start_default().await;
    for mut ws in [connect_raw(server.local_addr(), "utf8").await, connect_json(server.local_addr(), "utf8").await] {
        let frame = Frame::message(Bytes::from_static(&[0x68, 0xff, 0xfe]), OpCode::Data(Data::Text), true);
        ws.send(Message::Frame(frame)).await.unwrap();
        assert_eq!(close_code(&mut ws).await, close::INVALID_PAYLOAD);
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_flood_of_garbage_is_answered_in_order_without_growing_the_group() {
    let server = start_default().await;
    let mut ws = connect_json(server.local_addr(), "flood").await;
    for i in 0..200 {
        ws.feed(Message::text(format!("garbage {i}"))).await.unwrap();
    }
    ws.flush().await.unwrap();
    for _ in 0..200 {
        expect_error(&mut ws, ErrorCode::BadJson).await;
    }
    assert_eq!(server.registry().stats().connections, 1);
    server.shutdown().await;
}

/// Few messages but large ones: the byte rate refuses what the message
/// rate lets through (64 KiB at 50 a second would fill a group's retention
/// in minutes).
#[tokio::test]
async fn large_messages_are_limited_by_their_bytes() {
    let mut config = test_config();
    (config.publish_rate, config.publish_burst) = (50, 200);
    (config.publish_bytes_rate, config.publish_bytes_burst) = (64 * 1024, 1024 * 1024);
    let server = start(config).await;
    let addr = server.local_addr();
    let mut ws = connect_json(addr, "heavy").await;
    let text = "h".repeat(60 * 1024);
    for _ in 0..40 {
        send_text(&mut ws, &text).await;
    }
    let (mut acked, mut limited) = (0, 0);
    while acked + limited < 40 {
        match next_event(&mut ws).await {
            ServerEvent::Ack { .. } => acked += 1,
            ServerEvent::Error { code: ErrorCode::RateLimited, .. } => limited += 1,
            _ => {}
        }
    }
    // 1 MiB of burst is 17 such messages, and a little refills meanwhile.
    assert!((17..=20).contains(&acked), "{acked} of 40 messages of 60 KiB acknowledged");
    server.shutdown().await;
}

#[tokio::test]
async fn a_publishing_flood_is_rate_limited() {
    let mut config = test_config();
    config.publish_rate = 1;
    config.publish_burst = 5;
    let server = start(config).await;
    let addr = server.local_addr();

    // JSON: the burst goes through, the rest is refused with its id, and the
    // connection stays open.
    let mut ws = connect_json(addr, "flood").await;
    let mut sent = Vec::new();
    for i in 0..20 {
        sent.push(send_text(&mut ws, &format!("flood {i}")).await);
    }
    let (mut acked, mut limited) = (Vec::new(), Vec::new());
    while acked.len() + limited.len() < sent.len() {
        match next_event(&mut ws).await {
            ServerEvent::Ack { id, .. } => acked.push(id),
            ServerEvent::Error { code: ErrorCode::RateLimited, id: Some(id), .. } => limited.push(id),
            ServerEvent::Message(_) | ServerEvent::Reset { .. } | ServerEvent::Synced { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!((5..=6).contains(&acked.len()), "{} acknowledged", acked.len());
    assert_eq!(acked.len() + limited.len(), 20);
    assert_eq!(stored_history(addr, "flood").await.len(), acked.len(), "refused messages are not stored");

    // Raw: cannot be told per message, so it is closed with 1008; empty and
    // binary frames count too (they are relayed, not stored).
    let floods: [fn(usize) -> Message; 3] =
        [|i| Message::text(format!("raw flood {i}")), |_| Message::text(""), |i| Message::binary(vec![i as u8; 3])];
    for flood in floods {
        let mut raw = connect_raw(addr, "flood-raw").await;
        for i in 0..20 {
            raw.feed(flood(i)).await.unwrap();
        }
        raw.flush().await.unwrap();
        assert_eq!(close_code(&mut raw).await, close::POLICY_VIOLATION);
    }
    server.shutdown().await;
}

/// With room for a single publish at the history writer, three publishers
/// that send everything at once keep finding its queue full: their
/// connections hold the publish and stop reading until there is room. Every
/// message is still stored once, acknowledged with its number and delivered
/// in order, and nobody is disconnected.
#[tokio::test]
async fn a_flood_past_the_writers_queue_is_held_back_not_lost() {
    let (publishers, each) = (3, 300);
    let mut config = test_config();
    config.publish_queue = 1;
    // Unlimited publishers always outrun a reader sharing their thread
    // sooner or later; that eviction has tests of its own (CI once closed the
    // subscriber here, 256 frames behind). Room for the whole flood keeps
    // this test about the writer's queue.
    config.outbound_queue = publishers * each + 16;
    let server = start(config).await;
    let addr = server.local_addr();
    let total = (publishers * each) as u64;

    let mut subscriber = connect_json(addr, "backlog").await;
    let reader = tokio::spawn(async move {
        let mut seqs = Vec::new();
        while seqs.len() < total as usize {
            seqs.push(next_chat(&mut subscriber).await.seq);
        }
        seqs
    });
    let mut floods = Vec::new();
    for p in 0..publishers {
        let mut ws = connect_json(addr, "backlog").await;
        let texts: Vec<String> = (0..each).map(|i| format!("p{p}-{i}")).collect();
        floods.push(tokio::spawn(async move { publish_all(&mut ws, &texts, each).await }));
    }
    let mut acked = Vec::new();
    for flood in floods {
        acked.extend(flood.await.unwrap().into_iter().map(|(_, seq)| seq));
    }
    acked.sort_unstable();
    assert_eq!(acked, (1..=total).collect::<Vec<_>>(), "each message acknowledged once, with its own number");
    assert_eq!(reader.await.unwrap(), (1..=total).collect::<Vec<_>>(), "delivered in order, none missing");
    assert_eq!(stored_history(addr, "backlog").await.len(), total as usize);
    server.shutdown().await;
}

/// The allowance belongs to the identity and the address, not to the
/// connection: reconnecting, under the same identity or as new anonymous
/// ones from the same address, does not refill it.
#[tokio::test]
async fn reconnect_churn_does_not_refill_the_publish_limit() {
    let mut config = test_config();
    config.auth = roomcast_backend::config::AuthMode::Open;
    config.publish_rate = 1;
    config.publish_burst = 5;
    config.publish_rate_per_ip = 2; // a burst of 10 per address
    let server = start(config).await;
    let addr = server.local_addr();
    // One identity: five, then refused, on every new connection too.
    let alice = Uuid::new_v4();
    let mut accepted = 0;
    for _ in 0..4 {
        let mut ws = connect_json_as(addr, "churn", alice, None).await;
        for _ in 0..3 {
            send_text(&mut ws, "again").await;
            accepted += usize::from(matches!(next_answer(&mut ws).await, ServerEvent::Ack { .. }));
        }
    }
    assert!((5..=6).contains(&accepted), "{accepted} accepted over 4 connections");
    // Anonymous clients from one address: new ids each time, one allowance.
    let mut anonymous = 0;
    for _ in 0..8 {
        let url = format!("ws://{addr}/ws/churn/{}", Uuid::new_v4());
        let mut ws = connect_json_url(&url, "churn").await;
        for _ in 0..3 {
            send_text(&mut ws, "anon").await;
            anonymous += usize::from(matches!(next_answer(&mut ws).await, ServerEvent::Ack { .. }));
        }
    }
    // Alice's took 5 or 6 of the address's 10.
    assert!(anonymous <= 6, "{anonymous} accepted from fresh anonymous ids");
    server.shutdown().await;
}
