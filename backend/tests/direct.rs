//! Direct messages: a `dm-…` group that only its two verified participants
//! may join, read or post to, opened from either side with `with` naming
//! the other; a third identity, a tokenless socket, a token whose `groups`
//! leave direct messages out and the publish API are refused; the API key
//! reads the history.

mod support;

use std::net::SocketAddr;

use roomcast_backend::identities::Issued;
use roomcast_shared::{ClientId, GroupName, MessagePage, ServerEvent};
use support::*;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

const KEY: &str = "direct-messages-test-api-key-0123456789";

/// A server with the API key [`KEY`].
async fn start_with_key() -> roomcast_backend::Server {
    let mut config = test_config();
    config.api_key = Some(KEY.to_owned());
    start(config).await
}

/// A new self-service identity named `name`.
async fn identity(addr: SocketAddr, name: &str) -> Issued {
    let (status, body) = raw_request(addr, "POST", "/api/identities", &[], &format!(r#"{{"name":"{name}"}}"#)).await;
    assert_eq!(status, 201, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// The socket path of `client` (with `token`) in `group`, `with` the other.
fn dm_path(group: &GroupName, client: ClientId, token: &str, with: &str) -> String {
    format!("/ws/{group}/{client}?token={token}&with={with}")
}

/// A handshake that must be refused: its status and reason.
async fn refused_handshake(addr: SocketAddr, path: &str) -> (u16, String) {
    let (status, body) = raw_request(addr, "GET", path, &UPGRADE_HEADERS, "").await;
    assert_ne!(status, 101, "{path} was accepted");
    (status, body)
}

/// `group`'s history page with `query` (`?` included) and `Authorization:
/// Bearer {bearer}` (none when `None`).
async fn history(addr: SocketAddr, group: &GroupName, query: &str, bearer: Option<&str>) -> (u16, String) {
    let authorization = bearer.map(|bearer| format!("Bearer {bearer}"));
    let headers: Vec<(&str, &str)> = authorization.iter().map(|value| ("Authorization", value.as_str())).collect();
    raw_request(addr, "GET", &format!("/api/groups/{group}/messages{query}"), &headers, "").await
}

fn texts(body: &str) -> Vec<String> {
    let page: MessagePage = serde_json::from_str(body).unwrap();
    page.messages.into_iter().map(|message| message.text).collect()
}

#[tokio::test]
async fn two_identities_chat_from_either_side_and_a_third_is_refused() {
    let server = start_with_key().await;
    let addr = server.local_addr();
    let (alice, bob, eve) = (identity(addr, "Alice").await, identity(addr, "Bob").await, identity(addr, "Eve").await);
    let group = GroupName::direct(alice.client_id, bob.client_id);
    assert_eq!(group, GroupName::direct(bob.client_id, alice.client_id));

    // Either side opens it, naming the other (in any UUID form).
    let alice_url = dm_path(&group, alice.client_id, &alice.token, &bob.client_id.to_string());
    let mut alice_ws = connect_json_url(&format!("ws://{addr}{alice_url}"), group.as_str()).await;
    let upper = alice.client_id.to_string().to_uppercase();
    let bob_url = dm_path(&group, bob.client_id, &bob.token, &upper);
    let mut bob_ws = connect_json_url(&format!("ws://{addr}{bob_url}"), group.as_str()).await;
    // Raw mode is a wire mode, not an identity: Bob's raw socket is his.
    let (mut bob_raw, _) = tokio_tungstenite::connect_async(format!("ws://{addr}{bob_url}")).await.unwrap();

    send_text(&mut alice_ws, "hi Bob").await;
    let heard = next_chat(&mut bob_ws).await;
    assert_eq!((heard.text.as_str(), heard.from.client_id, heard.from.verified), ("hi Bob", alice.client_id, true));
    assert_eq!(next_message(&mut bob_raw).await, Message::text("hi Bob"));
    send_text(&mut bob_ws, "hi Alice").await;
    assert!(matches!(next_answer(&mut bob_ws).await, ServerEvent::Ack { .. }), "stored");
    assert!(matches!(next_answer(&mut alice_ws).await, ServerEvent::Ack { .. }), "her own, first");
    assert_eq!(next_chat(&mut alice_ws).await.text, "hi Alice");

    // Its history: each participant with `with`, and the API key.
    let with_alice = format!("?with={}", alice.client_id);
    let (status, body) = history(addr, &group, &with_alice, Some(&bob.token)).await;
    assert_eq!((status, texts(&body)), (200, vec!["hi Bob".to_owned(), "hi Alice".to_owned()]), "{body}");
    let (status, body) = history(addr, &group, "", Some(KEY)).await;
    assert_eq!((status, texts(&body).len()), (200, 2), "{body}");
    let (status, body) = history(addr, &group, "", Some(&bob.token)).await;
    assert_eq!(status, 400, "a participant without `with`: {body}");
    assert!(body.contains("needs `with`"), "{body}");

    // A third identity, whichever participant it names: 403 on the socket
    // and on the history API.
    for with in [alice.client_id, bob.client_id] {
        let (status, body) =
            refused_handshake(addr, &dm_path(&group, eve.client_id, &eve.token, &with.to_string())).await;
        assert_eq!(status, 403, "{body}");
        assert!(body.contains("only its two participants"), "{body}");
        let (status, body) = history(addr, &group, &format!("?with={with}"), Some(&eve.token)).await;
        assert_eq!(status, 403, "{body}");
    }
    let (status, body) = refused_handshake(addr, &dm_path(&group, eve.client_id, &eve.token, "bob")).await;
    assert_eq!(status, 400, "`with` is a UUID: {body}");

    // The publish API posts to rooms, never into a conversation of two.
    let (status, body) = post_message(addr, group.as_str(), Some(KEY), None, r#"{"text":"x"}"#).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("direct message"), "{body}");
    assert_round_trip(&mut bob_ws, "still just us").await;
    server.shutdown().await;
}

#[tokio::test]
async fn tokenless_open_mode_requests_cannot_use_direct_messages() {
    let server = start_open().await;
    let addr = server.local_addr();
    let (me, other) = (ClientId(Uuid::new_v4()), ClientId(Uuid::new_v4()));
    let group = GroupName::direct(me, other);
    let (status, body) = refused_handshake(addr, &format!("/ws/{group}/{me}?with={other}")).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("verified identities"), "{body}");
    let (status, body) = history(addr, &group, &format!("?with={other}"), None).await;
    assert_eq!(status, 403, "{body}");
    // The same server lets tokenless members into rooms, and a verified one
    // into its direct messages.
    connect_json_url(&format!("ws://{addr}/ws/lobby/{me}"), "lobby").await;
    let url = format!("ws://{addr}{}", dm_path(&group, me, &token_for(me.0), &other.to_string()));
    connect_json_url(&url, group.as_str()).await;
    server.shutdown().await;
}

#[tokio::test]
async fn malformed_direct_message_names_are_refused_with_400() {
    let server = start_with_key().await;
    let addr = server.local_addr();
    let client = Uuid::new_v4();
    let hex = "0123456789abcdef".repeat(2);
    let bad =
        ["dm-chat".to_owned(), format!("DM-{hex}"), format!("dm-{}", &hex[1..]), format!("dm-{}", hex.to_uppercase())];
    for name in &bad {
        let (status, body) = refused_handshake(addr, &format!("/ws/{name}/{client}?token={}", token_for(client))).await;
        assert_eq!(status, 400, "{name}: {body}");
        assert!(body.contains("direct messages'"), "{name}: {body}");
        let (status, body) = http_request(addr, &format!("/api/groups/{name}/messages"), &[]).await;
        assert_eq!(status, 400, "{name}: {body}");
        let (status, body) = post_message(addr, name, Some(KEY), None, r#"{"text":"x"}"#).await;
        assert_eq!(status, 400, "{name}: {body}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_groups_claim_allows_direct_messages_only_with_a_matching_pattern() {
    let server = start_default().await;
    let addr = server.local_addr();
    let (me, other) = (Uuid::new_v4(), Uuid::new_v4());
    let group = GroupName::direct(ClientId(me), ClientId(other));
    let lobby_only = token_with(me, |claims| claims.groups = Some(vec!["lobby".parse().unwrap()]));
    let (status, body) = refused_handshake(addr, &dm_path(&group, ClientId(me), &lobby_only, &other.to_string())).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("do not allow direct messages"), "{body}");
    let (status, _) = history(addr, &group, &format!("?with={other}"), Some(&lobby_only)).await;
    assert_eq!(status, 403);

    let with_dms =
        token_with(me, |claims| claims.groups = Some(vec!["lobby".parse().unwrap(), "dm-*".parse().unwrap()]));
    let url = format!("ws://{addr}{}", dm_path(&group, ClientId(me), &with_dms, &other.to_string()));
    let mut ws = connect_json_url(&url, group.as_str()).await;
    assert_round_trip(&mut ws, "noted").await;
    let (status, body) = history(addr, &group, &format!("?with={other}"), Some(&with_dms)).await;
    assert_eq!((status, texts(&body)), (200, vec!["noted".to_owned()]), "{body}");

    // A direct message with oneself is a notes room of one's own.
    let notes = GroupName::direct(ClientId(me), ClientId(me));
    let url = format!("ws://{addr}{}", dm_path(&notes, ClientId(me), &with_dms, &me.to_string()));
    connect_json_url(&url, notes.as_str()).await;
    server.shutdown().await;
}
