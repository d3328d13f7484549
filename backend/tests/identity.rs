//! Who may connect: tokens at the handshake and on the API, group claims,
//! `--auth open`, Origin and Host checks, self-service identities, the
//! secret file, and tokens kept out of the logs.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;

use roomcast_backend::identities::{IdentitiesMode, Issued};
use support::*;
use tokio::io::AsyncReadExt;
use uuid::Uuid;

/// The status of an upgrade request for `client` in `group` with `query`
/// (e.g. `token=…`) and extra `headers`.
async fn handshake(
    addr: std::net::SocketAddr,
    group: &str,
    client: &str,
    query: &str,
    headers: &[(&str, &str)],
) -> (u16, String) {
    let mut all = UPGRADE_HEADERS.to_vec();
    all.extend_from_slice(headers);
    raw_request(addr, "GET", &format!("/ws/{group}/{client}?{query}"), &all, "").await
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

#[tokio::test]
async fn a_missing_malformed_tampered_or_expired_token_is_refused_with_401() {
    let server = start_default().await;
    let addr = server.local_addr();
    let client = Uuid::new_v4();
    let valid = token_for(client);
    let mut parts: Vec<String> = valid.split('.').map(str::to_owned).collect();
    let other = token_with(client, |claims| claims.name = Some("Mallory".parse().unwrap()));
    parts[1] = other.split('.').nth(1).unwrap().to_owned();
    let tampered = parts.join(".");
    let expired = token_with(client, |claims| claims.exp = Some(now() - 60));
    let foreign = roomcast_backend::auth::Tokens::new(&roomcast_backend::auth::Secret::generate())
        .issue(&roomcast_backend::auth::Claims::for_client(roomcast_shared::ClientId(client)));
    for (what, query) in [
        ("missing", String::new()),
        ("empty", "token=".to_owned()),
        ("malformed", "token=not.a.token".to_owned()),
        ("tampered", format!("token={tampered}")),
        ("expired", format!("token={expired}")),
        ("another secret", format!("token={foreign}")),
    ] {
        let (status, body) = handshake(addr, "lobby", &client.to_string(), &query, &[]).await;
        assert_eq!(status, 401, "{what}: {body}");
    }
    // The API applies the same rules.
    let (status, _) = http_request(addr, "/api/groups/lobby/messages", &[("Authorization", "Bearer x.y.z")]).await;
    assert_eq!(status, 401);
    let (status, _) = raw_request(addr, "GET", "/api/groups/lobby/messages", &[], "").await;
    assert_eq!(status, 401, "no token");
    let (status, body) = handshake(addr, "lobby", &client.to_string(), &format!("token={valid}"), &[]).await;
    assert_eq!(status, 101, "{body}");
    server.shutdown().await;
}

#[tokio::test]
async fn a_token_for_another_client_id_is_refused_with_403() {
    let server = start_default().await;
    let (alice, mallory) = (Uuid::new_v4(), Uuid::new_v4());
    let (status, body) =
        handshake(server.local_addr(), "lobby", &alice.to_string(), &format!("token={}", token_for(mallory)), &[])
            .await;
    assert_eq!((status, body.trim()), (403, "the token is for another client id"));
    server.shutdown().await;
}

#[tokio::test]
async fn group_claims_bound_sockets_and_the_api() {
    let server = start_default().await;
    let addr = server.local_addr();
    let client = Uuid::new_v4();
    let team = token_with(client, |claims| claims.groups = Some(vec!["team-*".parse().unwrap()]));
    let (status, _) = handshake(addr, "team-a", &client.to_string(), &format!("token={team}"), &[]).await;
    assert_eq!(status, 101);
    let (status, body) = handshake(addr, "other", &client.to_string(), &format!("token={team}"), &[]).await;
    assert_eq!((status, body.trim()), (403, "the token does not allow this group"));
    let bearer = format!("Bearer {team}");
    assert_eq!(http_request(addr, "/api/groups/team-a/messages", &[("Authorization", &bearer)]).await.0, 200);
    assert_eq!(http_request(addr, "/api/groups/other/messages", &[("Authorization", &bearer)]).await.0, 403);
    let none = format!("Bearer {}", token_with(client, |claims| claims.groups = Some(vec![])));
    assert_eq!(http_request(addr, "/api/groups/team-a/messages", &[("Authorization", &none)]).await.0, 403);
    server.shutdown().await;
}

#[tokio::test]
async fn the_tokens_name_is_the_senders_name_and_it_is_verified() {
    let server = start_default().await;
    let addr = server.local_addr();
    let client = Uuid::new_v4();
    let token = token_with(client, |claims| claims.name = Some("Alice".parse().unwrap()));
    let mut ws = connect_json_url(&format!("ws://{addr}/ws/named/{client}?name=Mallory&token={token}"), "named").await;
    send_text(&mut ws, "signed").await;
    let message = next_chat(&mut ws).await;
    assert_eq!(message.from.name.as_ref().map(|name| name.as_str()), Some("Alice"), "the token's name wins");
    assert!(message.from.verified);
    let stored = stored_history(addr, "named").await;
    assert!(stored[0].from.verified, "kept with the history");
    server.shutdown().await;
}

#[tokio::test]
async fn open_mode_accepts_tokenless_connections_as_unverified() {
    let server = start_open().await;
    let addr = server.local_addr();
    let anonymous = Uuid::new_v4();
    let mut ws = connect_json_url(&format!("ws://{addr}/ws/open/{anonymous}?name=Anon"), "open").await;
    send_text(&mut ws, "who knows").await;
    let message = next_chat(&mut ws).await;
    assert!(!message.from.verified, "no token: unverified");
    let mut verified = connect_json(addr, "open").await;
    send_text(&mut verified, "signed").await;
    assert!(next_chat(&mut verified).await.from.verified);
    assert_eq!(raw_request(addr, "GET", "/api/groups/open/messages", &[], "").await.0, 200, "the API too");
    server.shutdown().await;
}

#[tokio::test]
async fn origins_other_than_the_servers_own_are_refused_on_sockets_and_the_api() {
    let server = start_default().await;
    let addr = server.local_addr();
    let client = Uuid::new_v4();
    let token = format!("token={}", token_for(client));
    let own = format!("http://{addr}");
    for (origin, expected) in [
        (Some("http://evil.example"), 403),
        (Some("null"), 403),
        (Some(own.as_str()), 101),
        (Some("http://localhost:1"), 403),
        (None, 101),
    ] {
        let headers: Vec<(&str, &str)> = origin.iter().map(|origin| ("Origin", *origin)).collect();
        let (status, body) = handshake(addr, "lobby", &client.to_string(), &token, &headers).await;
        assert_eq!(status, expected, "socket, Origin {origin:?}: {body}");
        let (status, _) = http_request(addr, "/api/groups/lobby/messages", &headers).await;
        assert_eq!(status, if expected == 101 { 200 } else { 403 }, "API, Origin {origin:?}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn listed_origins_are_allowed() {
    let mut config = test_config();
    config.allowed_origins = vec!["https://chat.example.com".to_owned()];
    let server = start(config).await;
    let headers = [("Origin", "https://chat.example.com")];
    assert_eq!(http_request(server.local_addr(), "/api/groups/lobby/messages", &headers).await.0, 200);
    server.shutdown().await;
}

#[tokio::test]
async fn a_foreign_host_on_a_loopback_listener_is_refused() {
    let server = start_default().await;
    let addr = server.local_addr();
    for path in ["/healthz", "/api/groups/lobby/messages", "/"] {
        let (status, _) = http_request(addr, path, &[("Host", "evil.example")]).await;
        assert_eq!(status, 421, "{path}");
    }
    let (status, _) = http_request(addr, "/healthz", &[("Host", &format!("localhost:{}", addr.port()))]).await;
    assert_eq!(status, 200);
    server.shutdown().await;
}

#[tokio::test]
async fn self_service_identities() {
    let mut config = test_config();
    config.identities_per_minute = 2;
    let server = start(config).await;
    let addr = server.local_addr();
    let (status, body) = raw_request(addr, "POST", "/api/identities", &[], r#"{"name":"Ann"}"#).await;
    assert_eq!(status, 201, "{body}");
    let issued: Issued = serde_json::from_str(&body).unwrap();
    let claims = tokens().verify(&issued.token).unwrap();
    assert_eq!((claims.sub, claims.name.unwrap().as_str()), (issued.client_id, "Ann"));
    assert!(claims.exp.is_some() && claims.exp == issued.expires_at, "a self-service token expires");
    let bearer = format!("Bearer {}", issued.token);
    let (status, me) = http_request(addr, "/api/identities/me", &[("Authorization", &bearer)]).await;
    assert_eq!(status, 200);
    assert!(me.contains(&issued.client_id.to_string()), "{me}");
    assert_eq!(raw_request(addr, "GET", "/api/identities/me", &[], "").await.0, 401);
    assert_eq!(raw_request(addr, "POST", "/api/identities", &[], "{").await.0, 400);
    assert_eq!(raw_request(addr, "POST", "/api/identities", &[], "").await.0, 201, "the body is optional");
    let (status, _) = raw_request(addr, "POST", "/api/identities", &[], "{}").await;
    assert_eq!(status, 429, "two a minute from one address");
    server.shutdown().await;

    let mut config = test_config();
    config.identities = IdentitiesMode::Off;
    let server = start(config).await;
    assert_eq!(raw_request(server.local_addr(), "POST", "/api/identities", &[], "{}").await.0, 403);
    server.shutdown().await;
}

/// The real binary: a secret it generates is kept owner-only and reused
/// after a restart (tokens stay valid), and tokens never reach its logs,
/// even at `RUST_LOG=trace`.
#[tokio::test]
async fn the_secret_file_survives_restarts_and_tokens_stay_out_of_the_logs() {
    let dir = std::env::temp_dir().join(format!("roomcast-secret-it-{}", Uuid::new_v4()));
    let database = dir.join("history.sqlite3");
    let run = |port: u16| {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_roomcast"))
            .args(["--listen", &format!("127.0.0.1:{port}"), "--static-dir", "/nonexistent", "--database"])
            .arg(&database)
            .env("RUST_LOG", "trace")
            .env_remove("ROOMCAST_SECRET")
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    };
    let port = free_port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut first = run(port);
    wait_until_listening(addr).await;
    let (status, body) = raw_request(addr, "POST", "/api/identities", &[], "{}").await;
    assert_eq!(status, 201, "{body}");
    let issued: Issued = serde_json::from_str(&body).unwrap();
    let (status, _) =
        handshake(addr, "logs", &issued.client_id.to_string(), &format!("token={}", issued.token), &[]).await;
    assert_eq!(status, 101);
    let bearer = format!("Bearer {}", issued.token);
    assert_eq!(http_request(addr, "/api/identities/me", &[("Authorization", &bearer)]).await.0, 200);
    let mode = std::fs::metadata(dir.join("roomcast.secret")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    first.start_kill().unwrap();
    let mut logs = String::new();
    first.stderr.take().unwrap().read_to_string(&mut logs).await.unwrap();
    first.wait().await.unwrap();
    assert!(logs.contains("TRACE") || logs.contains("DEBUG"), "trace logging was on");
    let signature = issued.token.rsplit('.').next().unwrap();
    assert!(!logs.contains(signature), "a token reached the logs");

    let second = run(port);
    wait_until_listening(addr).await;
    assert_eq!(http_request(addr, "/api/identities/me", &[("Authorization", &bearer)]).await.0, 200, "still valid");
    drop(second);
    std::fs::remove_dir_all(dir).unwrap();
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}
