//! An identity's rooms stream through a real server and real sockets: the
//! list after `welcome` (every room with a read cursor, newest first, with
//! exact unread counts and the latest message), `activity` as messages
//! arrive, `room` when a cursor moves on another connection, `forget`, a
//! direct message that someone writes in joining the other side's list,
//! and what the stream refuses.
//!
//! Ordering used as proof of absence: a rooms stream gets its rooms'
//! deliveries in the order the sequencer commits them, so once it has the
//! `activity` of a later message, an earlier one would have come first.

mod support;

use roomcast_shared::{ClientCommand, ClientId, ErrorCode, GroupName, RoomEntry, ServerEvent};
use support::*;
use uuid::Uuid;

fn group(name: &str) -> GroupName {
    name.parse().unwrap()
}

/// `sub`'s rooms stream, after its `welcome`, and the list that follows.
async fn open_rooms(addr: std::net::SocketAddr, sub: Uuid) -> (Client, Vec<RoomEntry>) {
    let mut ws = open_json(&ws_url(addr, "_me", sub)).await.unwrap();
    match next_event(&mut ws).await {
        ServerEvent::Welcome(welcome) => assert_eq!(welcome.group, GroupName::rooms_stream()),
        other => panic!("expected welcome, got {other:?}"),
    }
    match next_event(&mut ws).await {
        ServerEvent::Rooms { rooms } => (ws, rooms),
        other => panic!("expected rooms, got {other:?}"),
    }
}

/// A member of `name` as `sub` that has read it up to its latest message:
/// the room is in `sub`'s list.
async fn reader_of(addr: std::net::SocketAddr, name: &str, sub: Uuid) -> (Client, String) {
    let (mut ws, welcome, before) = connect_json_welcomed_as(addr, name, sub, "").await;
    let last = before.iter().filter_map(|event| match event {
        ServerEvent::Message(message) => Some(message.seq),
        _ => None,
    });
    read(&mut ws, &welcome.epoch, last.max().unwrap_or(0)).await;
    next_cursor(&mut ws).await;
    (ws, welcome.epoch)
}

#[tokio::test]
async fn the_list_has_every_read_room_with_exact_unread_counts_and_stays_live() {
    let server = start_default().await;
    let addr = server.local_addr();
    let (ann, bob) = (Uuid::new_v4(), Uuid::new_v4());
    let mut bob_in_a = connect_json_as(addr, "a", bob, Some("Bob")).await;
    let mut bob_in_b = connect_json_as(addr, "b", bob, Some("Bob")).await;
    publish(&mut bob_in_a, 1).await;
    publish(&mut bob_in_b, 1).await;
    let (mut ann_in_a, epoch_a) = reader_of(addr, "a", ann).await;
    let (_ann_in_b, _) = reader_of(addr, "b", ann).await;
    // Three more in `a`, two of them Bob's: two unread for Ann.
    publish(&mut bob_in_a, 2).await;
    publish(&mut ann_in_a, 1).await;

    let (mut stream, rooms) = open_rooms(addr, ann).await;
    let listed: Vec<_> = rooms.iter().map(|room| (room.group.as_str(), room.read, room.unread)).collect();
    assert_eq!(listed, [("a", 1, 2), ("b", 1, 0)], "newest activity first, exact unread, one's own not counted");
    let last = rooms[0].last.as_ref().unwrap();
    assert_eq!((last.seq, last.from.client_id, last.preview.as_str()), (4, ClientId(ann), "m0"));

    // Live: a message in a room of the list.
    publish(&mut bob_in_b, 1).await;
    match next_event(&mut stream).await {
        ServerEvent::Activity { group: name, last, .. } => {
            assert_eq!((name, last.seq, last.from.client_id), (group("b"), 2, ClientId(bob)))
        }
        other => panic!("expected activity, got {other:?}"),
    }
    // Another connection of Ann's reads `a`: the list hears it, counted.
    read(&mut ann_in_a, &epoch_a, 4).await;
    match next_event(&mut stream).await {
        ServerEvent::Room { room } => assert_eq!((room.group.as_str(), room.read, room.unread), ("a", 4, 0)),
        other => panic!("expected the room, got {other:?}"),
    }

    // Forgotten: off the list, and no more of its activity.
    send_command(&mut stream, &ClientCommand::Forget { group: group("b") }).await;
    assert_eq!(next_event(&mut stream).await, ServerEvent::Forgotten { group: group("b") });
    publish(&mut bob_in_b, 1).await;
    publish(&mut bob_in_a, 1).await;
    match next_event(&mut stream).await {
        ServerEvent::Activity { group: name, .. } => assert_eq!(name, group("a"), "nothing of b any more"),
        other => panic!("expected activity, got {other:?}"),
    }
    let (_again, rooms) = open_rooms(addr, ann).await;
    assert_eq!(rooms.iter().map(|room| room.group.as_str()).collect::<Vec<_>>(), ["a"], "forgotten for good");
    server.shutdown().await;
}

#[tokio::test]
async fn a_direct_message_joins_the_other_sides_list_once_written_to() {
    let server = start_default().await;
    let addr = server.local_addr();
    let (ann, bob) = (Uuid::new_v4(), Uuid::new_v4());
    let (mut ann_stream, rooms) = open_rooms(addr, ann).await;
    assert_eq!(rooms, []);
    let dm = GroupName::direct(ClientId(ann), ClientId(bob));
    let url = format!("{}&with={ann}", ws_url(addr, dm.as_str(), bob));
    let mut bob_ws = connect_json_url(&url, dm.as_str()).await;
    publish(&mut bob_ws, 2).await;
    let room = loop {
        match next_event(&mut ann_stream).await {
            ServerEvent::Room { room } => break room,
            ServerEvent::Activity { .. } => {}
            other => panic!("expected the new room, got {other:?}"),
        }
    };
    assert_eq!((room.group, room.with, room.read), (dm.clone(), Some(ClientId(bob)), 0));
    assert!(room.unread >= 1, "unread: {}", room.unread);
    let (_again, rooms) = open_rooms(addr, ann).await;
    assert_eq!((rooms.len(), rooms[0].unread, rooms[0].with), (1, 2, Some(ClientId(bob))));
    server.shutdown().await;
}

#[tokio::test]
async fn the_stream_takes_ping_refresh_and_forget_only_and_needs_a_token_and_json() {
    let server = start_default().await;
    let addr = server.local_addr();
    let ann = Uuid::new_v4();
    let (mut stream, _) = open_rooms(addr, ann).await;
    for command in [ClientCommand::Typing, ClientCommand::Read { epoch: "e".into(), seq: 1 }] {
        send_command(&mut stream, &command).await;
        assert!(
            matches!(next_event(&mut stream).await, ServerEvent::Error { code: ErrorCode::InvalidMessage, .. }),
            "{command:?}"
        );
    }
    let id = send_text(&mut stream, "not here").await;
    assert!(matches!(next_event(&mut stream).await, ServerEvent::Error { id: Some(refused), .. } if refused == id));
    let mut member = connect_json_as(addr, "lobby", ann, None).await;
    send_command(&mut member, &ClientCommand::Forget { group: group("lobby") }).await;
    assert!(matches!(next_event(&mut member).await, ServerEvent::Error { code: ErrorCode::InvalidMessage, .. }));

    let me = format!("/ws/_me/{ann}");
    let other = format!("/ws/_me/{}?token={}", Uuid::new_v4(), token_for(ann));
    for (path, expected) in [(me.as_str(), 401), (other.as_str(), 403)] {
        let upgrade = [("connection", "Upgrade"), ("upgrade", "websocket"), ("sec-websocket-version", "13")];
        let (status, _) = http_request(
            addr,
            path,
            &[upgrade[0], upgrade[1], upgrade[2], ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")],
        )
        .await;
        assert_eq!(status, expected, "{path}");
    }
    let raw = tokio_tungstenite::connect_async(ws_url(addr, "_me", ann)).await;
    assert!(raw.is_err(), "the stream speaks roomcast.v1 only");
    let room_named_so = open_json(&ws_url(addr, "_me2", ann)).await;
    assert!(room_named_so.is_ok(), "only the exact name is reserved");
    server.shutdown().await;
}
