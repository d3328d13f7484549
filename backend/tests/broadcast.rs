//! Group delivery through a real server and real WebSocket clients.

mod support;

use futures_util::SinkExt;
use roomcast_shared::{ClientCommand, MessageId, ServerEvent};
use support::*;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

#[tokio::test]
async fn a_message_reaches_every_member_of_its_group_and_no_other() {
    let server = start_default().await;
    let addr = server.local_addr();
    let mut alice = connect_json_as(addr, "lobby", Uuid::new_v4(), Some("Alice")).await;
    let mut bob = connect_json(addr, "lobby").await;
    let mut other = connect_json(addr, "elsewhere").await;

    let id = send_text(&mut alice, "hello <b>lobby</b>").await;
    for member in [&mut alice, &mut bob] {
        let message = next_chat(member).await;
        assert_eq!(message.id, id);
        assert_eq!(message.text, "hello <b>lobby</b>");
        assert_eq!(message.group.as_str(), "lobby");
        assert_eq!(message.from.name.as_ref().map(|n| n.as_str()), Some("Alice"));
        assert!(message.ts > 0);
    }
    assert_eq!(next_event(&mut alice).await, ServerEvent::Ack { id, seq: 1 });

    // The other group hears nothing; its own traffic proves the socket works.
    let own = send_text(&mut other, "mine").await;
    let message = next_chat(&mut other).await;
    assert_eq!(message.id, own, "the other group got only its own message");
    server.shutdown().await;
}

#[tokio::test]
async fn sequence_numbers_strictly_increase_across_publishers() {
    let server = start_default().await;
    let addr = server.local_addr();
    let mut listener = connect_json(addr, "seq").await;
    let mut publishers = Vec::new();
    for _ in 0..4 {
        publishers.push(connect_json(addr, "seq").await);
    }
    for round in 0..25 {
        for publisher in &mut publishers {
            send_text(publisher, &format!("m{round}")).await;
        }
    }
    let mut last = 0;
    for _ in 0..100 {
        let message = next_chat(&mut listener).await;
        assert!(message.seq > last, "{} after {last}", message.seq);
        last = message.seq;
    }
    assert_eq!(last, 100);
    server.shutdown().await;
}

#[tokio::test]
async fn raw_and_json_members_share_a_group() {
    let server = start_default().await;
    let addr = server.local_addr();
    let mut json = connect_json(addr, "mixed").await;
    let mut raw = connect_raw(addr, "mixed").await;

    raw.send(Message::text("from raw")).await.unwrap();
    assert_eq!(next_text(&mut raw).await, "from raw", "raw members get bare text, the sender too");
    let message = next_chat(&mut json).await;
    assert_eq!((message.text.as_str(), message.seq), ("from raw", 1));

    send_text(&mut json, "from json").await;
    assert_eq!(next_text(&mut raw).await, "from json");

    // Binary and empty text are relayed to raw members only, unsequenced.
    raw.send(Message::binary(vec![0, 159, 255])).await.unwrap();
    assert_eq!(next_message(&mut raw).await, Message::binary(vec![0, 159, 255]));
    raw.send(Message::text("")).await.unwrap();
    assert_eq!(next_text(&mut raw).await, "");
    raw.send(Message::text("after")).await.unwrap();
    assert_eq!(next_text(&mut raw).await, "after");
    let mut seen = Vec::new();
    while seen.len() < 2 {
        if let ServerEvent::Message(message) = next_event(&mut json).await {
            seen.push((message.text, message.seq));
        }
    }
    assert_eq!(seen, [("from json".to_owned(), 2), ("after".to_owned(), 3)]);
    server.shutdown().await;
}

#[tokio::test]
async fn connections_sharing_a_client_id_are_separate_members() {
    let server = start_default().await;
    let addr = server.local_addr();
    let client = Uuid::new_v4();
    let mut tab1 = connect_json_as(addr, "tabs", client, None).await;
    let mut tab2 = connect_json_as(addr, "tabs", client, None).await;
    assert_eq!(server.registry().members(&"tabs".parse().unwrap()), 2);
    send_text(&mut tab1, "to both tabs").await;
    let message = next_chat(&mut tab2).await;
    assert_eq!(message.from.client_id.0, client);
    server.shutdown().await;
}

#[tokio::test]
async fn a_resent_message_is_acknowledged_again_but_delivered_once() {
    let server = start_default().await;
    let addr = server.local_addr();
    let mut sender = connect_json(addr, "dedup").await;
    let mut listener = connect_json(addr, "dedup").await;
    let id = MessageId(Uuid::new_v4());
    let send = ClientCommand::Send { id, text: "once".into() };
    send_command(&mut sender, &send).await;
    let first = next_chat(&mut sender).await;
    assert_eq!(next_event(&mut sender).await, ServerEvent::Ack { id, seq: first.seq });

    // As after a reconnect: the same id again, on a new connection.
    drop(sender);
    let mut sender = connect_json(addr, "dedup").await;
    send_command(&mut sender, &send).await;
    assert_eq!(next_event(&mut sender).await, ServerEvent::Ack { id, seq: first.seq });

    let marker = send_text(&mut sender, "marker").await;
    let m = next_chat(&mut listener).await;
    assert_eq!(m.id, id);
    let m = next_chat(&mut listener).await;
    assert_eq!(m.id, marker, "the resend was not delivered a second time");
    server.shutdown().await;
}

#[tokio::test]
async fn app_level_ping_gets_pong() {
    let server = start_default().await;
    let mut ws = connect_json(server.local_addr(), "ping").await;
    send_command(&mut ws, &ClientCommand::Ping).await;
    assert_eq!(next_event(&mut ws).await, ServerEvent::Pong);
    server.shutdown().await;
}

/// Members whose sockets take less than a frame at a time (4 KiB receive
/// buffers, nothing read while the group publishes about 1 MiB) still get
/// every message whole and in order, however the server writes to them:
/// each task writing its own (`--fanout-threads 0`), one lane writing to
/// the sockets of waiting members (the default), or a delivery split over
/// two lanes. Direct writes the sockets do not take whole go back to the
/// tasks mid-frame.
async fn members_with_full_sockets_get_every_message_whole_and_in_order(fanout_threads: usize) {
    let mut config = test_config();
    config.fanout_threads = fanout_threads;
    let server = start(config).await;
    let addr = server.local_addr();
    let mut members = Vec::new();
    for _ in 0..6 {
        let tcp = tcp_from([127, 0, 0, 1], addr, Some(4096)).await;
        let mut member = upgrade_over(tcp, &ws_url(addr, "full-sockets", Uuid::new_v4()), &[]).await.unwrap();
        skip_replay(&mut member).await;
        members.push(member);
    }
    let mut raw = {
        let tcp = tcp_from([127, 0, 0, 1], addr, Some(4096)).await;
        let url = ws_url(addr, "full-sockets", Uuid::new_v4());
        tokio_tungstenite::client_async(url, tokio_tungstenite::MaybeTlsStream::Plain(tcp)).await.unwrap().0
    };
    let mut publisher = connect_json(addr, "full-sockets").await;
    // 120 messages of 6 to 9 KiB: within a member's outbound queue (256
    // messages, 4 MiB), far past what its socket takes.
    let texts: Vec<String> = (0..120).map(|i| format!("{i:04}{}", "x".repeat(6_000 + i * 37 % 3_000))).collect();
    let acked = publish_all(&mut publisher, &texts, 16).await;
    let numbers: Vec<u64> = acked.iter().map(|(_, seq)| *seq).collect();
    for member in &mut members {
        let got = collect_chats(member, texts.len()).await;
        assert_eq!(got.iter().map(|chat| chat.seq).collect::<Vec<_>>(), numbers, "in order, none missing");
        assert!(got.iter().zip(&texts).all(|(chat, text)| &chat.text == text), "every message whole");
    }
    for text in &texts {
        assert_eq!(&next_text(&mut raw).await, text, "a raw member too");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn full_sockets_get_every_message_when_each_task_writes_its_own() {
    members_with_full_sockets_get_every_message_whole_and_in_order(0).await;
}

#[tokio::test]
async fn full_sockets_get_every_message_when_a_lane_writes_to_waiting_members() {
    members_with_full_sockets_get_every_message_whole_and_in_order(1).await;
}

#[tokio::test]
async fn full_sockets_get_every_message_when_deliveries_are_split_over_lanes() {
    members_with_full_sockets_get_every_message_whole_and_in_order(2).await;
}
