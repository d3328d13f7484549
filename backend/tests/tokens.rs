//! Token lifetime: a socket ends with its token (4001) unless `refresh`
//! brings a newer one; `nbf` and `iat` are honoured; self-service tokens
//! expire and are renewed; revocation refuses an identity's tokens and
//! closes its sockets (4403) on every node, after restarts too; the token
//! may ride as a subprotocol instead of in the URL.

mod support;

use std::time::Duration;

use futures_util::SinkExt;
use roomcast_backend::identities::Issued;
use roomcast_backend::Config;
use roomcast_shared::{close, ClientCommand, ErrorCode, ServerEvent, SUBPROTOCOL, TOKEN_SUBPROTOCOL_PREFIX};
use support::*;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

const KEY: &str = "revocation-test-api-key-0123456789abcdef";
/// The leeway tokens get on their times.
const LEEWAY: Duration = Duration::from_secs(5);

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// Heartbeat ticks every second, so that an expiry is noticed within one;
/// clients that wait on another one for a few seconds stay.
fn quick_config() -> Config {
    let mut config = test_config();
    config.ping_interval = Duration::from_secs(1);
    config.idle_timeout = Duration::from_secs(10);
    config.api_key = Some(KEY.to_owned());
    config
}

/// The answer to a `refresh`: `refreshed` or an `error` (group events
/// are passed over).
async fn refresh_answer(ws: &mut Client, token: String) -> ServerEvent {
    send_command(ws, &ClientCommand::Refresh { token }).await;
    loop {
        if let event @ (ServerEvent::Refreshed { .. } | ServerEvent::Error { .. }) = next_event(ws).await {
            return event;
        }
    }
}

/// A JSON client of `group` with `token` (for `client`), after its replay.
async fn connect_with(addr: std::net::SocketAddr, group: &str, client: Uuid, token: &str) -> Client {
    connect_json_url(&format!("ws://{addr}/ws/{group}/{client}?token={token}"), group).await
}

#[tokio::test]
async fn a_socket_ends_with_its_token_unless_refreshed() {
    let server = start(quick_config()).await;
    let addr = server.local_addr();
    let (short, refreshed) = (Uuid::new_v4(), Uuid::new_v4());
    let exp = now() + 1;
    let mut expiring = connect_with(addr, "expiry", short, &token_with(short, |c| c.exp = Some(exp))).await;
    let mut renewing = connect_with(addr, "expiry", refreshed, &token_with(refreshed, |c| c.exp = Some(exp))).await;
    assert_round_trip(&mut expiring, "before expiry").await;
    let later = token_with(refreshed, |c| c.exp = Some(exp + 3600));
    let answer = refresh_answer(&mut renewing, later.clone()).await;
    assert_eq!(answer, ServerEvent::Refreshed { token_expires_at: Some(exp + 3600) });
    let refused = |event: ServerEvent| matches!(event, ServerEvent::Error { code: ErrorCode::TokenRefused, .. });
    let someone_elses = token_with(Uuid::new_v4(), |c| c.exp = Some(exp + 3600));
    assert!(refused(refresh_answer(&mut renewing, someone_elses).await), "another identity's");
    assert!(refused(refresh_answer(&mut renewing, format!("{later}x")).await), "a tampered one");

    let started = Instant::now();
    assert_eq!(close_code(&mut expiring).await, close::TOKEN_EXPIRED);
    let closed_after = started.elapsed();
    assert!(closed_after < Duration::from_secs(1) + LEEWAY + Duration::from_secs(2), "closed after {closed_after:?}");
    // The refreshed one outlives the old expiry, and still publishes.
    assert_round_trip(&mut renewing, "after the old expiry").await;
    server.shutdown().await;
}

/// A client that keeps publishing past its token's expiry: nothing it
/// sends after the expiry (and the leeway) is taken.
#[tokio::test]
async fn nothing_is_published_on_an_expired_token() {
    let mut config = quick_config();
    // The heartbeat alone would notice late: the publish itself is checked.
    (config.ping_interval, config.idle_timeout) = (Duration::from_secs(20), Duration::from_secs(60));
    let server = start(config).await;
    let addr = server.local_addr();
    let client = Uuid::new_v4();
    let exp = now() + 1;
    let mut ws = connect_with(addr, "late", client, &token_with(client, |c| c.exp = Some(exp))).await;
    let deadline = Instant::now() + Duration::from_secs(1) + LEEWAY + Duration::from_secs(5);
    let code = loop {
        assert!(Instant::now() < deadline, "still open long after its token expired");
        let send = ClientCommand::Send { id: roomcast_shared::MessageId(Uuid::new_v4()), text: "tick".into() };
        if ws.send(Message::text(send.encode())).await.is_err() {
            break close_code(&mut ws).await;
        }
        // Everything that came meanwhile (acks, the messages), or the close.
        let mut closed = None;
        while let Ok(Some(frame)) =
            tokio::time::timeout(Duration::from_millis(50), futures_util::StreamExt::next(&mut ws)).await
        {
            if let Ok(Message::Close(Some(frame))) = frame {
                closed = Some(u16::from(frame.code));
                break;
            }
        }
        if let Some(code) = closed {
            break code;
        }
    };
    assert_eq!(code, close::TOKEN_EXPIRED);
    let last = stored_history(addr, "late").await.iter().map(|message| message.ts).max().expect("some were taken");
    let expired_at_ms = (exp + LEEWAY.as_secs()) * 1000;
    assert!(last < expired_at_ms + 100, "stored {} ms after the expiry", last.saturating_sub(expired_at_ms));
    server.shutdown().await;
}

#[tokio::test]
async fn a_token_not_valid_yet_is_refused() {
    let server = start(quick_config()).await;
    let addr = server.local_addr();
    let client = Uuid::new_v4();
    for (what, token) in [
        ("nbf ahead", token_with(client, |c| c.nbf = Some(now() + 60))),
        ("iat ahead", token_with(client, |c| c.iat = Some(now() + 60))),
    ] {
        let url = format!("ws://{addr}/ws/lobby/{client}?token={token}");
        let refused = open_json(&url).await.expect_err(what);
        assert!(refused.to_string().contains("401"), "{what}: {refused}");
    }
    server.shutdown().await;
}

/// `POST /api/identities/renew`: a token's holder gets a new one that
/// expires a lifetime from now; a revoked or foreign token gets none.
#[tokio::test]
async fn self_service_tokens_expire_and_are_renewed() {
    let server = start(quick_config()).await;
    let addr = server.local_addr();
    let post = |path: &'static str, bearer: Option<String>| async move {
        let bearer = bearer.map(|token| format!("Bearer {token}"));
        let headers: Vec<(&str, &str)> = bearer.iter().map(|value| ("Authorization", value.as_str())).collect();
        raw_request(addr, "POST", path, &headers, "{}").await
    };
    let (status, body) = post("/api/identities", None).await;
    assert_eq!(status, 201, "{body}");
    let issued: Issued = serde_json::from_str(&body).unwrap();
    let lifetime = Config::defaults().identity_lifetime.as_secs();
    let expires_at = issued.expires_at.expect("a self-service token expires");
    assert!(expires_at.abs_diff(now() + lifetime) <= 2, "{expires_at}");

    // A token from before expiry existed (no exp, no iat) is renewed too.
    let legacy = token_for(issued.client_id.0);
    let (status, body) = post("/api/identities/renew", Some(legacy)).await;
    assert_eq!(status, 200, "{body}");
    let renewed: Issued = serde_json::from_str(&body).unwrap();
    assert_eq!(renewed.client_id, issued.client_id);
    assert!(renewed.expires_at.is_some());
    connect_with(addr, "renewed", issued.client_id.0, &renewed.token).await;

    assert_eq!(post("/api/identities/renew", None).await.0, 401, "no token");
    assert_eq!(post("/api/identities/renew", Some("x.y.z".into())).await.0, 401, "not a token");
    let revoke = format!("/api/identities/{}/revoke", issued.client_id);
    let (status, body) = raw_request(addr, "POST", &revoke, &[("Authorization", &format!("Bearer {KEY}"))], "").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(post("/api/identities/renew", Some(renewed.token)).await.0, 401, "revoked");
    server.shutdown().await;
}

/// Revocation: the identity's sockets close with 4403, its tokens get 401
/// from then on, across a restart; a token issued later is accepted; the
/// API key is required; other identities are untouched.
#[tokio::test]
async fn a_revoked_identity_is_closed_and_refused_across_restarts() {
    let dir = std::env::temp_dir().join(format!("roomcast-revoke-{}", Uuid::new_v4()));
    let mut config = quick_config();
    config.history = roomcast_backend::config::HistoryKind::Sqlite;
    config.database = dir.join("history.sqlite3");
    let server = start(config.clone()).await;
    let addr = server.local_addr();
    let (mallory, alice) = (Uuid::new_v4(), Uuid::new_v4());
    let old = token_for(mallory);
    let mut first = connect_with(addr, "a", mallory, &old).await;
    let mut second = connect_with(addr, "b", mallory, &old).await;
    let mut bystander = connect_with(addr, "a", alice, &token_for(alice)).await;
    let revoke = format!("/api/identities/{mallory}/revoke");
    assert_eq!(raw_request(addr, "POST", &revoke, &[], "").await.0, 401, "the API key is required");
    let wrong = [("Authorization", "Bearer not-the-key")];
    assert_eq!(raw_request(addr, "POST", &revoke, &wrong, "").await.0, 401);
    let key = format!("Bearer {KEY}");
    let (status, body) = raw_request(addr, "POST", &revoke, &[("Authorization", &key)], "").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""closed_here":2"#), "{body}");
    assert_eq!(close_code(&mut first).await, close::IDENTITY_REVOKED);
    assert_eq!(close_code(&mut second).await, close::IDENTITY_REVOKED);
    assert_round_trip(&mut bystander, "still here").await;
    let bad = format!("/api/identities/{}/revoke", "not-a-uuid");
    assert_eq!(raw_request(addr, "POST", &bad, &[("Authorization", &key)], "").await.0, 400);

    let refused = |token: String| async move {
        open_json(&format!("ws://{addr}/ws/a/{mallory}?token={token}")).await.expect_err("refused").to_string()
    };
    assert!(refused(old.clone()).await.contains("401"));
    drop((bystander, server.shutdown().await));

    let server = start(config).await;
    let addr = server.local_addr();
    let refused_after_restart =
        open_json(&format!("ws://{addr}/ws/a/{mallory}?token={old}")).await.expect_err("still revoked");
    assert!(refused_after_restart.to_string().contains("401"), "{refused_after_restart}");
    // A token issued after the revocation (iat past it) is accepted.
    let fresh = token_with(mallory, |c| c.iat = Some(now() + 2));
    connect_with(addr, "a", mallory, &fresh).await;
    server.shutdown().await;
    std::fs::remove_dir_all(dir).unwrap();
}

/// The token as the second offered subprotocol, out of the URL: the `101`
/// names the mode's subprotocol only, never the token.
#[tokio::test]
async fn a_token_rides_as_a_subprotocol_and_is_never_echoed() {
    let server = start(quick_config()).await;
    let addr = server.local_addr();
    let client = Uuid::new_v4();
    let offered = format!("{SUBPROTOCOL}, {TOKEN_SUBPROTOCOL_PREFIX}{}", token_for(client));
    let mut request = format!("ws://{addr}/ws/lobby/{client}").into_client_request().unwrap();
    request.headers_mut().insert("sec-websocket-protocol", HeaderValue::from_str(&offered).unwrap());
    let (mut ws, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(response.headers().get_all("sec-websocket-protocol").iter().collect::<Vec<_>>(), [SUBPROTOCOL]);
    assert!(matches!(next_event(&mut ws).await, ServerEvent::Welcome(_)));

    // Alone, it means raw mode (whose `101` names no subprotocol).
    let (status, head) = raw_request(
        addr,
        "GET",
        &format!("/ws/lobby/{client}"),
        &[
            UPGRADE_HEADERS.as_slice(),
            &[("Sec-WebSocket-Protocol", &format!("{TOKEN_SUBPROTOCOL_PREFIX}{}", token_for(client)))],
        ]
        .concat(),
        "",
    )
    .await;
    assert_eq!(status, 101, "{head}");
    // A bad token there is refused like one in the URL.
    let bad = [("Sec-WebSocket-Protocol", "roomcast.v1, roomcast.token.x.y.z")];
    let (status, _) =
        raw_request(addr, "GET", &format!("/ws/lobby/{client}"), &[UPGRADE_HEADERS.as_slice(), &bad].concat(), "")
            .await;
    assert_eq!(status, 401);
    server.shutdown().await;
}

/// `--identity-groups`: self-service tokens allow only those groups.
#[tokio::test]
async fn self_service_tokens_can_be_limited_to_groups() {
    let mut config = quick_config();
    config.identity_groups = vec!["team-*".parse().unwrap()];
    let server = start(config).await;
    let addr = server.local_addr();
    let (status, body) = raw_request(addr, "POST", "/api/identities", &[], "{}").await;
    assert_eq!(status, 201, "{body}");
    let issued: Issued = serde_json::from_str(&body).unwrap();
    connect_with(addr, "team-a", issued.client_id.0, &issued.token).await;
    let url = format!("ws://{addr}/ws/lobby/{}?token={}", issued.client_id, issued.token);
    let refused = open_json(&url).await.expect_err("a group the token does not allow");
    assert!(refused.to_string().contains("403"), "{refused}");
    server.shutdown().await;
}
