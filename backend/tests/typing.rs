//! Typing indicators through a real server and real sockets: who hears a
//! `typing`, who does not, that none is stored, and the rate per identity.
//!
//! Ordering used as proof of absence: every `typing` that passes goes
//! through one queue and one thread to the registry, in order, and each
//! reaches a whole group at once. So once a member has heard a later
//! typist, whatever an earlier `typing` would have put in any member's
//! queue is there before it.

mod support;

use std::time::Duration;

use roomcast_shared::limits::TYPING_EVERY_MS;
use roomcast_shared::{ClientCommand, Sender, ServerEvent};
use support::*;
use uuid::Uuid;

/// Sends `times` `typing`s, then waits until they are acted on.
async fn typed(ws: &mut Client, times: usize) -> Vec<ServerEvent> {
    for _ in 0..times {
        send_command(ws, &ClientCommand::Typing).await;
    }
    settled(ws).await
}

/// The next `typing` event, passing over the group's messages and what
/// comes with them.
async fn next_typing(ws: &mut Client) -> Sender {
    loop {
        match next_event(ws).await {
            ServerEvent::Typing { from } => return from,
            ServerEvent::Message(_)
            | ServerEvent::Ack { .. }
            | ServerEvent::Reset { .. }
            | ServerEvent::Synced { .. } => {}
            other => panic!("expected typing, got {other:?}"),
        }
    }
}

fn verified(client_id: Uuid, name: Option<&str>) -> Sender {
    Sender { client_id: roomcast_shared::ClientId(client_id), name: name.map(|n| n.parse().unwrap()), verified: true }
}

#[tokio::test]
async fn typing_reaches_the_groups_other_json_members_only_once_per_interval_and_is_not_stored() {
    let server = start_default().await;
    let addr = server.local_addr();
    let (ann, cat, dan) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let mut ann_tab = connect_json_as(addr, "lobby", ann, Some("Ann")).await;
    let mut ann_other_tab = connect_json_as(addr, "lobby", ann, Some("Ann")).await;
    let mut bob = connect_json(addr, "lobby").await;
    let mut cat_ws = connect_json_as(addr, "lobby", cat, None).await;
    let mut raw = connect_raw(addr, "lobby").await;
    let mut elsewhere = connect_json(addr, "elsewhere").await;
    let mut dan_ws = connect_json_as(addr, "elsewhere", dan, None).await;

    // Five at once from one tab, one from the other (reconnecting or
    // another tab does not refill the identity's allowance).
    assert_eq!(typed(&mut ann_tab, 5).await, []);
    assert_eq!(typed(&mut ann_other_tab, 1).await, [], "not even her first, on her other tab");
    // Cat may hear Ann before its own is acted on.
    let mut cat_heard = typed(&mut cat_ws, 1).await;
    assert_eq!(typed(&mut dan_ws, 1).await, []);

    let (ann_sender, cat_sender) = (verified(ann, Some("Ann")), verified(cat, None));
    assert_eq!(next_event(&mut bob).await, ServerEvent::Typing { from: ann_sender.clone() });
    assert_eq!(next_event(&mut bob).await, ServerEvent::Typing { from: cat_sender.clone() }, "one of Ann's passed");
    for tab in [&mut ann_tab, &mut ann_other_tab] {
        assert_eq!(next_event(tab).await, ServerEvent::Typing { from: cat_sender.clone() }, "none of her own");
    }
    if cat_heard.is_empty() {
        cat_heard.push(next_event(&mut cat_ws).await);
    }
    assert_eq!(cat_heard, [ServerEvent::Typing { from: ann_sender.clone() }]);
    assert_eq!(
        next_event(&mut elsewhere).await,
        ServerEvent::Typing { from: verified(dan, None) },
        "the other group hears its own typist only"
    );

    // Raw members hear nothing: a message after it all is their next frame.
    let id = send_text(&mut bob, "marker").await;
    assert_eq!(next_text(&mut raw).await, "marker");
    let marker = next_chat(&mut bob).await;
    assert_eq!(marker.id, id);
    let stored = stored_history(addr, "lobby").await;
    assert_eq!(stored.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(), ["marker"], "typing is never stored");
    assert_eq!(marker.seq, 1, "nor numbered");

    // After the interval, Ann's next one passes.
    tokio::time::sleep(Duration::from_millis(TYPING_EVERY_MS + 100)).await;
    typed(&mut ann_other_tab, 1).await;
    assert_eq!(next_typing(&mut cat_ws).await, ann_sender);
    server.shutdown().await;
}

#[tokio::test]
async fn an_unnamed_unverified_typist_is_named_as_its_messages_are() {
    let server = start_open().await;
    let addr = server.local_addr();
    let anonymous = Uuid::new_v4();
    let mut typist = connect_json_url(&format!("ws://{addr}/ws/open/{anonymous}"), "open").await;
    let mut reader = connect_json(addr, "open").await;
    typed(&mut typist, 1).await;
    assert_eq!(
        next_typing(&mut reader).await,
        Sender { client_id: roomcast_shared::ClientId(anonymous), name: None, verified: false }
    );
    server.shutdown().await;
}
