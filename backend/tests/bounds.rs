//! The socket layer under hostile clients: sockets that never finish a
//! request, heads too large, connection caps per server and per address,
//! connection attempts too often, slow bodies, idle keep-alive, and
//! trusted proxies.

mod support;

use std::time::Duration;

use futures_util::SinkExt;
use roomcast_shared::ServerEvent;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(1);
/// Time allowed past the handshake timeout for a close to arrive.
const SLACK: Duration = Duration::from_millis(1500);

fn bounded_config() -> roomcast_backend::Config {
    let mut config = test_config();
    config.handshake_timeout = HANDSHAKE_TIMEOUT;
    config
}

/// Reads until the server closes the socket; returns how long that took
/// from `since`.
async fn closed_after(stream: &mut TcpStream, since: Instant) -> Duration {
    let mut sink = [0u8; 1024];
    let reading = async {
        loop {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => return since.elapsed(),
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(PATIENCE, reading).await.expect("the server never closed the socket")
}

/// Reads a whole response (the server closes after it) and returns its head.
async fn response_head(stream: &mut TcpStream) -> String {
    let mut response = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut response)).await.expect("no response").unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    text.split("\r\n\r\n").next().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn silent_and_dribbling_sockets_are_closed_by_the_handshake_timeout_while_others_chat() {
    let config = bounded_config();
    let server = start(config).await;
    let addr = server.local_addr();
    let opened = Instant::now();
    let mut silent = Vec::new();
    for _ in 0..100 {
        silent.push(TcpStream::connect(addr).await.unwrap());
    }
    let mut dribblers = Vec::new();
    for _ in 0..100 {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        dribblers.push(tokio::spawn(async move {
            // One header byte every 100 ms: never a complete head.
            let mut sink = [0u8; 256];
            loop {
                tokio::select! {
                    read = stream.read(&mut sink) => if matches!(read, Ok(0) | Err(_)) { return opened.elapsed() },
                    () = tokio::time::sleep(Duration::from_millis(100)) => {
                        if stream.write_all(b"X").await.is_err() {
                            return opened.elapsed();
                        }
                    }
                }
            }
        }));
    }
    assert!(server.sockets_open() >= 200);

    // Meanwhile a normal client chats.
    let mut alice = connect_json(addr, "meanwhile").await;
    let mut bob = connect_json(addr, "meanwhile").await;
    assert_round_trip(&mut alice, "still here").await;
    assert!(matches!(next_event(&mut alice).await, ServerEvent::Ack { .. }));
    assert_eq!(next_chat(&mut bob).await.text, "still here");

    for mut stream in silent {
        let took = closed_after(&mut stream, opened).await;
        assert!(took < HANDSHAKE_TIMEOUT + SLACK, "a silent socket closed after {took:?}");
    }
    for dribbler in dribblers {
        let took = dribbler.await.unwrap();
        assert!(took < HANDSHAKE_TIMEOUT + SLACK, "a dribbling socket closed after {took:?}");
    }
    send_text(&mut bob, "and after").await;
    assert_eq!(next_chat(&mut alice).await.text, "and after");
    server.shutdown().await;
}

#[tokio::test]
async fn a_request_head_over_16_kib_gets_431() {
    let server = start(bounded_config()).await;
    let addr = server.local_addr();
    let big = "a".repeat(20 * 1024);
    let (status, _) = raw_request(addr, "GET", "/healthz", &[("X-Padding", &big)], "").await;
    assert_eq!(status, 431);
    let (status, _) = raw_request(addr, "GET", "/healthz", &[("X-Padding", &big[..8 * 1024])], "").await;
    assert_eq!(status, 200, "8 KiB of headers is fine");
    server.shutdown().await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let server = start(bounded_config()).await;
    let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
    stream
        .write_all(format!("GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n", server.local_addr()).as_bytes())
        .await
        .unwrap();
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    let answered = Instant::now();
    let took = closed_after(&mut stream, answered).await;
    assert!(took < HANDSHAKE_TIMEOUT + SLACK, "idle for {took:?}");
    server.shutdown().await;
}

/// A response the client does not read must still make progress: big
/// pages from clients that read nothing would otherwise hold their memory
/// and sockets for as long as the clients like.
#[tokio::test]
async fn a_response_nobody_reads_is_dropped_at_the_handshake_timeout() {
    let dir = std::env::temp_dir().join(format!("roomcast-static-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("index.html"), "<!doctype html>").unwrap();
    // Far more than the kernel buffers of both ends take.
    std::fs::write(dir.join("big.bin"), vec![b'b'; 64 << 20]).unwrap();
    let mut config = bounded_config();
    config.static_dir = dir.clone();
    let server = start(config).await;
    let addr = server.local_addr();
    let mut stream = tcp_from([127, 0, 0, 1], addr, Some(4096)).await;
    stream.write_all(format!("GET /big.bin HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes()).await.unwrap();
    let asked = Instant::now();
    let mut status = [0u8; 12];
    stream.read_exact(&mut status).await.unwrap();
    assert_eq!(&status, b"HTTP/1.1 200", "the page is being sent");
    assert_eq!(server.sockets_open(), 1);
    // The server has written what the sockets take long before this.
    let deadline = asked + HANDSHAKE_TIMEOUT + SLACK + HANDSHAKE_TIMEOUT;
    while server.sockets_open() > 0 {
        assert!(Instant::now() < deadline, "a response nobody reads held its socket for {:?}", asked.elapsed());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(stream);
    server.shutdown().await;
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn a_request_body_that_never_arrives_gets_408() {
    let server = start(bounded_config()).await;
    let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
    let head = format!(
        "POST /api/identities HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{{\"name\"",
        server.local_addr()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let sent = Instant::now();
    let head = response_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 408"), "{head}");
    assert!(sent.elapsed() < HANDSHAKE_TIMEOUT + SLACK);
    server.shutdown().await;
}

#[tokio::test]
async fn the_per_address_cap_answers_503_and_serves_other_addresses() {
    let mut config = bounded_config();
    config.max_connections_per_ip = 3;
    let server = start(config).await;
    let addr = server.local_addr();
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(connect_json(addr, "capped").await);
    }
    // A fourth socket from the same address: a WebSocket or anything else.
    let url = ws_url(addr, "capped", Uuid::new_v4());
    let refused = upgrade_over(tcp_from([127, 0, 0, 1], addr, None).await, &url, &[]).await;
    assert_eq!(refused.err(), Some(503));
    let mut plain = tcp_from([127, 0, 0, 1], addr, None).await;
    plain.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes()).await.unwrap();
    let head = response_head(&mut plain).await;
    assert!(head.starts_with("HTTP/1.1 503"), "{head}");
    assert!(head.to_ascii_lowercase().contains("retry-after: 5"), "{head}");

    // Another address is served, and the group still works.
    let other = upgrade_over(tcp_from([127, 0, 0, 2], addr, None).await, &url, &[]).await;
    assert!(other.is_ok(), "another address is served");
    send_text(&mut held[0], "capped, not broken").await;
    assert_eq!(next_chat(&mut held[1]).await.text, "capped, not broken");

    // A place freed is a place to take.
    drop(held.pop());
    eventually(|| server.sockets_open() <= 3).await;
    assert!(upgrade_over(tcp_from([127, 0, 0, 1], addr, None).await, &url, &[]).await.is_ok());
    server.shutdown().await;
}

#[tokio::test]
async fn the_total_cap_answers_503() {
    let mut config = bounded_config();
    config.max_connections = Some(3);
    let server = start(config).await;
    let addr = server.local_addr();
    let mut held = Vec::new();
    for n in 1..=3 {
        let url = ws_url(addr, "full", Uuid::new_v4());
        held.push(upgrade_over(tcp_from([127, 0, 0, n], addr, None).await, &url, &[]).await.unwrap());
    }
    let url = ws_url(addr, "full", Uuid::new_v4());
    let refused = upgrade_over(tcp_from([127, 0, 0, 9], addr, None).await, &url, &[]).await;
    assert_eq!(refused.err(), Some(503));
    drop(held.pop());
    eventually(|| server.sockets_open() < 3).await;
    assert!(upgrade_over(tcp_from([127, 0, 0, 9], addr, None).await, &url, &[]).await.is_ok());
    server.shutdown().await;
}

#[tokio::test]
async fn connecting_too_often_gets_429() {
    let mut config = bounded_config();
    // A burst of 10 connections, then 5 per second.
    config.max_connections_per_ip = 5;
    let server = start(config).await;
    let addr = server.local_addr();
    let mut statuses = Vec::new();
    for _ in 0..20 {
        statuses.push(raw_request(addr, "GET", "/healthz", &[], "").await.0);
    }
    assert!(statuses[..10].iter().all(|&status| status == 200), "{statuses:?}");
    assert!(statuses[10..].contains(&429), "{statuses:?}");
    let other = tcp_from([127, 0, 0, 3], addr, None).await;
    let url = ws_url(addr, "often", Uuid::new_v4());
    assert!(upgrade_over(other, &url, &[]).await.is_ok(), "other addresses are not affected");
    server.shutdown().await;
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_address_has_its_own_cap() {
    let mut config = bounded_config();
    config.max_connections_per_ip = 2;
    config.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    let server = start(config).await;
    let addr = server.local_addr();
    let via_proxy = |client: &'static str| async move {
        let url = ws_url(addr, "proxied", Uuid::new_v4());
        upgrade_over(tcp_from([127, 0, 0, 1], addr, None).await, &url, &[("x-forwarded-for", client)]).await
    };
    // The proxy's own address is not capped: four sockets from it.
    let first = via_proxy("203.0.113.7").await.unwrap();
    let second = via_proxy("203.0.113.7").await.unwrap();
    assert_eq!(via_proxy("203.0.113.7").await.err(), Some(503), "that client's cap");
    let other = via_proxy("203.0.113.8").await.unwrap();
    // An untrusted socket's X-Forwarded-For is ignored: it counts as itself.
    let url = ws_url(addr, "proxied", Uuid::new_v4());
    let forged = [("x-forwarded-for", "198.51.100.1")];
    let mut untrusted = Vec::new();
    for _ in 0..2 {
        untrusted.push(upgrade_over(tcp_from([127, 0, 0, 4], addr, None).await, &url, &forged).await.unwrap());
    }
    assert_eq!(upgrade_over(tcp_from([127, 0, 0, 4], addr, None).await, &url, &forged).await.err(), Some(503));
    drop((first, second, other, untrusted));
    server.shutdown().await;
}

/// The README's nginx recipe (`proxy_set_header X-Forwarded-For
/// $remote_addr;`): the proxy sends exactly one `X-Forwarded-For` line with
/// one address, its client's, and each such address has its own caps
/// (sockets, identities). A request from the proxy without the header (a
/// recipe that forgot it) shows in `/readyz` and is warned once.
#[tokio::test]
async fn the_readme_proxy_recipe_caps_each_client_and_a_missing_header_is_reported() {
    let database = TempDatabase::new();
    let args = [
        ["--secret", TEST_SECRET],
        ["--trusted-proxies", "127.0.0.1"],
        ["--max-connections-per-ip", "2"],
        ["--identities-per-minute", "2"],
    ];
    let server = ServerProcess::start_logged(free_addr(), &database.0, &args.concat()).await;
    let addr = server.addr;
    for client in ["203.0.113.7", "203.0.113.8"] {
        let forwarded = [("X-Forwarded-For", client)];
        for _ in 0..2 {
            assert_eq!(raw_request(addr, "POST", "/api/identities", &forwarded, "{}").await.0, 201, "{client}");
        }
        let (status, _) = raw_request(addr, "POST", "/api/identities", &forwarded, "{}").await;
        assert_eq!(status, 429, "{client}'s own identity limit");
    }
    let socket = |client: &'static str| async move {
        let url = ws_url(addr, "proxied", Uuid::new_v4());
        upgrade_over(tcp_from([127, 0, 0, 1], addr, None).await, &url, &[("x-forwarded-for", client)]).await
    };
    let sockets = [socket("203.0.113.7").await.unwrap(), socket("203.0.113.7").await.unwrap()];
    assert_eq!(socket("203.0.113.7").await.err(), Some(503), "that client's socket cap");
    let other = socket("203.0.113.8").await.unwrap();
    let missing = move || async move {
        let (status, body) = raw_request(addr, "GET", "/readyz", &[], "").await;
        assert_eq!(status, 200, "a warning, still ready: {body}");
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["x_forwarded_for_missing"].clone()
    };
    assert_eq!(missing().await, false, "the probe itself, from the proxy without the header, does not count");
    for _ in 0..3 {
        raw_request(addr, "GET", "/room/lobby", &[], "").await;
    }
    assert_eq!(missing().await, true);
    drop((sockets, other));
    let log = server.stop_for_log().await;
    assert_eq!(log.matches("came without X-Forwarded-For").count(), 1, "warned once: {log}");
}

/// A member's queue is bounded in bytes, not only in messages: a member
/// that does not read is evicted once its queue holds the byte bound, long
/// before the message bound.
#[tokio::test]
async fn a_member_past_its_queue_bytes_is_evicted() {
    let mut config = bounded_config();
    config.outbound_queue = 100_000;
    config.outbound_queue_bytes = 256 * 1024;
    let server = start(config).await;
    let addr = server.local_addr();
    let url = ws_url(addr, "bytes", Uuid::new_v4());
    let mut stalled = upgrade_over(tcp_from([127, 0, 0, 1], addr, Some(4096)).await, &url, &[]).await.unwrap();
    assert!(matches!(next_event(&mut stalled).await, ServerEvent::Welcome(_)));
    assert!(matches!(next_event(&mut stalled).await, ServerEvent::Synced { .. }));
    let mut publisher = connect_json(addr, "bytes").await;
    let group = "bytes".parse().unwrap();
    let text = "b".repeat(8 * 1024);
    let mut evicted_at = None;
    for i in 0..2_000 {
        assert_round_trip(&mut publisher, &text).await;
        assert!(matches!(next_event(&mut publisher).await, ServerEvent::Ack { .. }));
        if server.registry().members(&group) == 1 {
            evicted_at = Some(i);
            break;
        }
    }
    let evicted_at = evicted_at.expect("never evicted");
    // 256 KiB of queue plus what the socket buffers took; far below the
    // 100,000 messages the count would allow.
    assert!(evicted_at < 1_000, "evicted after {evicted_at} messages of 8 KiB");
    server.shutdown().await;
}

/// HTTP/2 is not spoken, neither by prior knowledge nor by `h2c` upgrade.
#[tokio::test]
async fn http2_is_not_spoken() {
    let server = start(bounded_config()).await;
    let addr = server.local_addr();
    let mut prior = TcpStream::connect(addr).await.unwrap();
    prior.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await.unwrap();
    let head = response_head(&mut prior).await;
    assert!(!head.starts_with("HTTP/2") && !head.contains("200"), "{head:?}");
    let (status, _) =
        raw_request(addr, "GET", "/healthz", &[("Connection", "Upgrade, HTTP2-Settings"), ("Upgrade", "h2c")], "")
            .await;
    assert_eq!(status, 200, "answered over HTTP/1.1, not upgraded");
    server.shutdown().await;
}

/// Opening rooms: one identity, then one address, runs out of new ones
/// for the hour (`429`), while joining a room that exists never counts;
/// so no client can fill `--max-groups` for everyone.
#[tokio::test]
async fn new_rooms_are_limited_per_identity_and_per_address() {
    let mut config = bounded_config();
    (config.new_groups_per_hour, config.new_groups_per_hour_per_ip) = (3, 5);
    let server = start(config).await;
    let addr = server.local_addr();
    let status = |group: String, client: Uuid| async move {
        match open_json(&ws_url(addr, &group, client)).await {
            Ok(_) => 101,
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
            Err(err) => panic!("{err}"),
        }
    };
    let (mallory, eve) = (Uuid::new_v4(), Uuid::new_v4());
    let mut kept = Vec::new();
    for n in 0..3 {
        assert_eq!(status(format!("junk-{n}"), mallory).await, 101, "room {n}");
    }
    assert_eq!(status("junk-3".into(), mallory).await, 429, "the identity's three are spent");
    // Coming back to a room it opened (alone, nothing written yet) is no
    // new room: a lone member's reconnects never lock it out.
    assert_eq!(status("junk-0".into(), mallory).await, 101);
    // A room someone is in, or one with history, is no new room.
    let mut member = connect_json(addr, "busy").await;
    send_text(&mut member, "history").await;
    kept.push(member);
    assert_eq!(status("busy".into(), mallory).await, 101);
    assert_eq!(status("junk-4".into(), eve).await, 101, "the address had one left");
    assert_eq!(status("junk-5".into(), eve).await, 429, "the address's five are spent");
    let (code, body) =
        http_request(addr, &format!("/ws/junk-6/{eve}?token={}", token_for(eve)), &UPGRADE_HEADERS).await;
    assert_eq!(code, 429, "{body}");
    assert!(body.contains("new rooms"), "{body}");
    server.shutdown().await;
}

/// Pings slow enough for the control-frame rate, never reading, in a group
/// whose messages fill its socket: the server stops reading it while its
/// writes wait, and the stall clock closes it although it keeps "talking".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_reader_pinging_within_the_rate_is_closed_by_the_stall_clock() {
    let server = start_pinging_every_second().await;
    let addr = server.local_addr();
    let group = "pinged".parse().unwrap();
    let attacker = pinging_non_reader(addr).await;
    // 3 MiB for the attacker: more than its socket takes, less than its
    // queue holds (so it is the stall clock that closes it, not eviction).
    let mut publisher = connect_raw(addr, "pinged").await;
    let payload = "m".repeat(16 * 1024);
    for _ in 0..192 {
        publisher.send(Message::text(payload.clone())).await.unwrap();
        next_text(&mut publisher).await;
    }
    let published = Instant::now();
    let ping = ping_frames(1, 125);
    // Frames not yet taken by the socket; once the server stops reading,
    // they pile up here, whole, instead of being cut mid-frame.
    let mut unsent = Vec::new();
    let mut ticker = tokio::time::interval(Duration::from_millis(20));
    while server.registry().members(&group) > 1 {
        assert!(published.elapsed() < QUICK_IDLE_TIMEOUT * 3, "a non-reader that pings kept its socket");
        ticker.tick().await;
        unsent.extend_from_slice(&ping);
        if let Ok(written) = attacker.try_write(&unsent) {
            unsent.drain(..written);
        }
    }
    drop(attacker);
    server.shutdown().await;
}
