//! Draining a node for a rolling restart, through real servers and
//! sockets: `/readyz` answers 503 and new sockets are refused at once; the
//! connections close spread over the drain period, with 1012 and (JSON) a
//! last `draining` event; the node stops within the period and the close
//! grace; the binary drains on SIGTERM with `--drain-period`.

mod support;

use std::time::Duration;

use futures_util::StreamExt;
use roomcast_shared::ServerEvent;
use support::*;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

const PERIOD: Duration = Duration::from_secs(2);

/// Reads `ws` to its close: the close code, when it came, and whether a
/// `draining` event came just before it.
async fn closed(mut ws: Client) -> (u16, Instant, Option<u64>) {
    let mut draining = None;
    loop {
        let next = tokio::time::timeout(PATIENCE, ws.next()).await.expect("closed in time");
        match next {
            Some(Ok(Message::Text(text))) => {
                if let Ok(ServerEvent::Draining { retry_after_ms }) = ServerEvent::decode(&text) {
                    draining = Some(retry_after_ms);
                }
            }
            Some(Ok(Message::Close(frame))) => {
                return (frame.map_or(1005, |frame| frame.code.into()), Instant::now(), draining)
            }
            Some(Ok(_)) => {}
            other => panic!("no close frame: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_refuses_new_sockets_and_spreads_the_closes_over_its_period() {
    let server = start_default().await;
    let addr = server.local_addr();
    let mut members = Vec::new();
    for _ in 0..20 {
        members.push(connect_json(addr, "lobby").await);
    }
    let raw = connect_raw(addr, "lobby").await;
    assert_eq!(http_request(addr, "/readyz", &[]).await.0, 200);

    let began = Instant::now();
    let readers: Vec<_> = members.into_iter().map(|ws| tokio::spawn(closed(ws))).collect();
    let raw_reader = tokio::spawn(closed(raw));
    let draining = tokio::spawn(server.drain_then_stop(PERIOD));
    // At once: not ready, no new socket.
    let (status, body) = http_request(addr, "/readyz", &[]).await;
    assert_eq!((status, body.contains("draining")), (503, true), "{body}");
    let refused = open_json(&ws_url(addr, "lobby", Uuid::new_v4())).await;
    assert!(refused.is_err(), "no socket is taken while draining");

    let mut at = Vec::new();
    for reader in readers {
        let (code, when, told) = reader.await.unwrap();
        assert_eq!((code, told), (1012, Some(2_000)), "1012, after `draining`");
        at.push(when - began);
    }
    let (code, _, told) = raw_reader.await.unwrap();
    assert_eq!((code, told), (1012, None), "raw members get the close alone");
    let (first, last) = (at.iter().min().unwrap(), at.iter().max().unwrap());
    assert!(*last <= PERIOD + Duration::from_secs(1), "all within the period: {at:?}");
    assert!(*last - *first >= PERIOD / 4, "spread over the period, not at once: {at:?}");
    draining.await.unwrap().unwrap();
    assert!(began.elapsed() <= PERIOD + Duration::from_secs(2), "stopped within the period and the grace");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_with_a_drain_period_and_exits_0() {
    let database = std::env::temp_dir().join(format!("roomcast-drain-{}.sqlite3", Uuid::new_v4()));
    let args = ["--drain-period", "2s", "--history", "memory"];
    let node = ServerProcess::start(free_addr(), &database, &args).await;
    let mut members = Vec::new();
    for _ in 0..5 {
        members.push(connect_json(node.addr, "lobby").await);
    }
    let began = Instant::now();
    let readers: Vec<_> = members.into_iter().map(|ws| tokio::spawn(closed(ws))).collect();
    let exit = tokio::spawn(node.terminate(PERIOD + Duration::from_secs(3)));
    for reader in readers {
        let (code, _, told) = reader.await.unwrap();
        assert_eq!((code, told), (1012, Some(2_000)));
    }
    assert_eq!(exit.await.unwrap(), Some(0));
    assert!(began.elapsed() <= PERIOD + Duration::from_secs(3));
}

/// `POST /drain` on the admin surface drains the node and stops it, exit 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_surfaces_drain_stops_the_node_after_draining_it() {
    const ADMIN_KEY: &str = "drain-test-admin-key-0123456789abcdefgh";
    let database = std::env::temp_dir().join(format!("roomcast-drain-{}.sqlite3", Uuid::new_v4()));
    let admin = free_addr().to_string();
    let args = ["--drain-period", "1s", "--history", "memory", "--admin-listen", &admin, "--admin-key", ADMIN_KEY];
    let node = ServerProcess::start(free_addr(), &database, &args).await;
    let members = [connect_json(node.addr, "lobby").await, connect_json(node.addr, "lobby").await];
    let readers: Vec<_> = members.into_iter().map(|ws| tokio::spawn(closed(ws))).collect();
    let bearer = format!("Bearer {ADMIN_KEY}");
    let admin: std::net::SocketAddr = admin.parse().unwrap();
    assert_eq!(raw_request(admin, "POST", "/drain", &[("authorization", &bearer)], "").await.0, 202);
    for reader in readers {
        let (code, _, told) = reader.await.unwrap();
        assert_eq!((code, told), (1012, Some(2_000)));
    }
    assert_eq!(node.exit_within(PERIOD + Duration::from_secs(3)).await, Some(0));
}
