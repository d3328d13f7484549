//! What is refused before the upgrade, and the plain HTTP routes.

mod support;

use futures_util::StreamExt;
use roomcast_shared::{ClientCommand, MessageId, ServerEvent, SUBPROTOCOL};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use uuid::Uuid;

const CLIENT: &str = "3f2504e0-4f89-4d3a-9a0c-0305e82c3301";

/// The request's own validity is checked after the token (a server under
/// `--auth open` shows it without one).
#[tokio::test]
async fn bad_group_or_client_id_is_refused_with_400_and_a_reason() {
    let server = start_open().await;
    let addr = server.local_addr();
    for (path, reason) in [
        (format!("/ws/has.dot/{CLIENT}"), "group name"),
        (format!("/ws/{}/{CLIENT}", "x".repeat(65)), "group name"),
        (format!("/ws/caf%C3%A9/{CLIENT}"), "group name"),
        ("/ws/lobby/not-a-uuid".to_owned(), "client id must be a UUID"),
        (format!("/ws/lobby/{CLIENT}?name=%20"), "display name"),
        (format!("/ws/lobby/{CLIENT}?name=%E2%80%8B%E2%80%AE"), "display name"),
    ] {
        let (status, body) = http_request(addr, &path, &UPGRADE_HEADERS).await;
        assert_eq!(status, 400, "{path}");
        assert!(body.contains(reason), "{path}: {body}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn malformed_upgrades_are_refused() {
    let server = start_default().await;
    let addr = server.local_addr();
    let path = format!("/ws/lobby/{CLIENT}?token={}", token_for(CLIENT.parse().unwrap()));

    let (status, body) = http_request(addr, &path, &[]).await;
    assert_eq!(status, 400);
    assert!(body.contains("expected a WebSocket upgrade"), "{body}");

    let mut old_version = UPGRADE_HEADERS;
    old_version[2] = ("Sec-WebSocket-Version", "8");
    assert_eq!(http_request(addr, &path, &old_version).await.0, 426);

    let mut headers = UPGRADE_HEADERS.to_vec();
    headers.push(("Sec-WebSocket-Protocol", "mqtt"));
    let (status, body) = http_request(addr, &path, &headers).await;
    assert_eq!(status, 400);
    assert!(body.contains("roomcast.v1"), "{body}");

    let short_client =
        format!("/ws/lobby/{}?token={}", &CLIENT[..CLIENT.len() - 1], token_for(CLIENT.parse().unwrap()));
    assert_eq!(http_request(addr, &short_client, &UPGRADE_HEADERS).await.0, 403, "not the token's client");
    server.shutdown().await;
}

#[tokio::test]
async fn a_valid_upgrade_switches_protocols() {
    let server = start_default().await;
    let url = ws_url(server.local_addr(), "lobby", Uuid::new_v4());
    let (_ws, response) = tokio_tungstenite::connect_async(url).await.unwrap();
    assert_eq!(response.status(), 101);
    assert!(response.headers().get("sec-websocket-protocol").is_none(), "raw mode has no subprotocol");
    server.shutdown().await;
}

/// A client may send its first frame in the same packet as the upgrade
/// request. hyper keeps those bytes in the buffer the server releases right
/// after the upgrade; they must still be read, not dropped with it.
#[tokio::test]
async fn a_frame_sent_with_the_upgrade_request_is_read() {
    let server = start_default().await;
    let addr = server.local_addr();
    let token = token_for(CLIENT.parse().unwrap());
    let mut request = format!(
        "GET /ws/early/{CLIENT}?token={token} HTTP/1.1\r\nHost: {addr}\r\nSec-WebSocket-Protocol: {SUBPROTOCOL}\r\n"
    );
    for (name, value) in UPGRADE_HEADERS {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    let id = MessageId(Uuid::new_v4());
    let command = ClientCommand::Send { id, text: "sent with the upgrade".into() }.encode();
    let mut bytes = request.into_bytes();
    bytes.extend(masked_text_frame(command.as_bytes()));
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(&bytes).await.unwrap();

    // The 101 response, byte by byte so as not to read into the frames.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(stream.read_u8().await.unwrap());
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head));
    let mut ws = WebSocketStream::from_raw_socket(stream, Role::Client, None).await;
    loop {
        let frame = tokio::time::timeout(PATIENCE, ws.next()).await.expect("an ack in time");
        let Some(Ok(Message::Text(text))) = frame else { panic!("connection ended: {frame:?}") };
        if let ServerEvent::Ack { id: acked, seq } = ServerEvent::decode(&text).unwrap() {
            assert_eq!((acked, seq), (id, 1));
            break;
        }
    }
    server.shutdown().await;
}

/// A client-to-server text frame (clients must mask) of under 126 bytes.
fn masked_text_frame(payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mask = [0x12, 0x34, 0x56, 0x78];
    let mut frame = vec![0x81, 0x80 | payload.len() as u8];
    frame.extend(mask);
    frame.extend(payload.iter().zip(mask.iter().cycle()).map(|(byte, key)| byte ^ key));
    frame
}

#[tokio::test]
async fn healthz_reports_connections() {
    let server = start_default().await;
    let addr = server.local_addr();
    let _ws = connect_json(addr, "health").await;
    let (status, body) = http_request(addr, "/healthz", &[]).await;
    assert_eq!(status, 200);
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["connections"], 1);
    assert_eq!(health["groups"], 1);
    server.shutdown().await;
}

#[tokio::test]
async fn the_app_is_served_with_a_fallback_for_client_routes() {
    let dir = std::env::temp_dir().join(format!("roomcast-static-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("index.html"), "<!doctype html><title>app</title>").unwrap();
    std::fs::write(dir.join("app-1234.js"), "console.log(1)").unwrap();
    let mut config = test_config();
    config.static_dir = dir.clone();
    let server = start(config).await;
    let addr = server.local_addr();

    assert!(http_request(addr, "/", &[]).await.1.contains("<title>app</title>"));
    assert!(http_request(addr, "/room/lobby", &[]).await.1.contains("<title>app</title>"));
    assert_eq!(http_request(addr, "/app-1234.js", &[]).await.1, "console.log(1)");
    assert_eq!(http_request(addr, "/api/nothing", &[]).await.0, 404);
    server.shutdown().await;
    std::fs::remove_dir_all(dir).unwrap();
}

/// DNS rebinding against a server on a wildcard address: a page whose own
/// DNS name now points here calls the server "same-origin". Without
/// `--public-url` or `--allowed-hosts` such a server answers IP literals
/// and loopback names only, so the page can neither mint an identity nor
/// read a room nor open a socket; the refusal names the flags.
#[tokio::test]
async fn a_wildcard_listener_answers_no_dns_name_it_was_not_given() {
    let wildcard = |adjust: fn(&mut roomcast_backend::Config)| {
        let mut config = test_config();
        config.listen = "0.0.0.0:0".parse().unwrap();
        adjust(&mut config);
        start(config)
    };
    let server = wildcard(|_| {}).await;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], server.local_addr().port()));
    let port = addr.port();
    let rebound = format!("rebind.evil.example:{port}");
    let page = format!("http://{rebound}");
    let from_page = [("Host", rebound.as_str()), ("Origin", page.as_str())];
    let (status, body) = raw_request(addr, "POST", "/api/identities", &from_page, "{}").await;
    assert_eq!(status, 421, "{body}");
    assert!(body.contains("--public-url") && body.contains("--allowed-hosts"), "{body}");
    assert_eq!(http_request(addr, "/api/groups/lobby/messages", &from_page).await.0, 421);
    let mut upgrade = UPGRADE_HEADERS.to_vec();
    upgrade.extend_from_slice(&from_page);
    let client = Uuid::new_v4();
    let socket = format!("/ws/lobby/{client}?token={}", token_for(client));
    assert_eq!(raw_request(addr, "GET", &socket, &upgrade, "").await.0, 421);
    for host in [format!("192.0.2.10:{port}"), format!("localhost:{port}"), format!("[::ffff:127.0.0.1]:{port}")] {
        assert_eq!(http_request(addr, "/healthz", &[("Host", &host)]).await.0, 200, "{host}");
    }
    server.shutdown().await;

    let named = wildcard(|config| config.public_url = Some("https://chat.example.com".to_owned())).await;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], named.local_addr().port()));
    assert_eq!(http_request(addr, "/healthz", &[("Host", "chat.example.com")]).await.0, 200);
    assert_eq!(http_request(addr, "/healthz", &[("Host", &rebound)]).await.0, 421);
    named.shutdown().await;

    let any = wildcard(|config| config.allowed_hosts = vec!["*".to_owned()]).await;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], any.local_addr().port()));
    assert_eq!(http_request(addr, "/healthz", &[("Host", &rebound)]).await.0, 200, "'*': any host, as before");
    any.shutdown().await;
}

/// The server's own name is the publish API's: no client takes it, in any
/// case, at the handshake or for a new identity. Nor may a chosen name hold
/// bidi controls or zero-width characters, which reorder or hide what is
/// shown around it.
#[tokio::test]
async fn no_client_may_take_the_servers_name_or_hide_format_characters_in_its_own() {
    let mut config = test_config();
    config.auth = roomcast_backend::auth::AuthMode::Open;
    config.api_key = Some("publish-api-test-key-0123456789abcdef".to_owned());
    let server = start(config).await;
    let addr = server.local_addr();
    for name in ["server", "Server", "%20SERVER%20", "Al%E2%80%AEice", "A%E2%80%8Bnn", "Zo%E2%81%A6e", "%EF%BB%BFBo"] {
        let (status, body) = http_request(addr, &format!("/ws/lobby/{CLIENT}?name={name}"), &UPGRADE_HEADERS).await;
        assert_eq!(status, 400, "{name}: {body}");
        assert!(body.contains("display name"), "{name}: {body}");
    }
    for body in [r#"{"name":"Server"}"#, r#"{"name":"Al\u202eice"}"#, r#"{"name":"Ann\u200d"}"#] {
        assert_eq!(raw_request(addr, "POST", "/api/identities", &[], body).await.0, 400, "{body}");
    }
    let mut member = connect_json_url(&format!("ws://{addr}/ws/lobby/{CLIENT}?name=Servers"), "lobby").await;
    let key = [("Authorization", "Bearer publish-api-test-key-0123456789abcdef")];
    for body in [r#"{"text":"deployed"}"#, r#"{"text":"again","name":"Server"}"#] {
        assert_eq!(raw_request(addr, "POST", "/api/groups/lobby/messages", &key, body).await.0, 201, "{body}");
    }
    for name in ["server", "Server"] {
        let message = next_chat(&mut member).await;
        assert_eq!(message.from.name.as_ref().map(|name| name.as_str()), Some(name), "the API names itself");
    }
    server.shutdown().await;
}
