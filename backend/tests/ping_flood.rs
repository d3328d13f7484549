//! A peer that sends pings and reads nothing must not make the server hold
//! their answers: every ping asks for a pong. In a test binary of its own,
//! so that the process's memory reflects this test alone.

mod support;

use std::time::Duration;

use futures_util::SinkExt;
use support::*;
use tokio::io::AsyncWriteExt;
use tokio::time::{timeout, Instant};
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

const IDLE_TIMEOUT: Duration = Duration::from_secs(2);

/// A server that pings every second and counts a peer stalled after
/// [`IDLE_TIMEOUT`].
async fn start_quick() -> roomcast_backend::Server {
    let mut config = test_config();
    config.ping_interval = Duration::from_secs(1);
    config.idle_timeout = IDLE_TIMEOUT;
    start(config).await
}

/// A raw member of `pinged` with a 4 KiB receive buffer, to write frames on
/// and never read.
async fn non_reader(addr: std::net::SocketAddr) -> tokio::net::TcpStream {
    raw_upgrade(tcp_from([127, 0, 0, 1], addr, Some(4096)).await, "pinged", Uuid::new_v4()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinging_non_reader_keeps_memory_flat_and_is_closed() {
    let server = start_quick().await;
    let addr = server.local_addr();
    let group = "pinged".parse().unwrap();
    // 1 MiB of 125-byte pings, written over and over.
    let flood = ping_frames(1 << 20 >> 7, 125);
    let before = resident_bytes();

    let mut attacker = non_reader(addr).await;
    let started = Instant::now();
    // Up to 256 MiB, for at most 10 s: it stops once the server stops
    // taking them (the write waits) or has closed the socket (it fails).
    let mut sent = 0usize;
    while sent < 256 << 20 && started.elapsed() < Duration::from_secs(10) {
        match timeout(Duration::from_secs(1), attacker.write_all(&flood)).await {
            Ok(Ok(())) => sent += flood.len(),
            Ok(Err(_)) | Err(_) => break,
        }
    }
    let growth = resident_bytes().saturating_sub(before);
    assert!(growth < 8 << 20, "resident memory grew by {growth} bytes after {sent} bytes of pings");
    eventually(|| server.registry().members(&group) == 0).await;
    let gone_after = started.elapsed();
    assert!(gone_after < IDLE_TIMEOUT + Duration::from_secs(1), "still a member {gone_after:?} after the flood began");
    drop(attacker);
    server.shutdown().await;
}

/// Pings slow enough for the control-frame rate, never reading, in a group
/// whose messages fill its socket: the server stops reading it while its
/// writes wait, and the stall clock closes it although it keeps "talking".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_reader_pinging_within_the_rate_is_closed_by_the_stall_clock() {
    let server = start_quick().await;
    let addr = server.local_addr();
    let group = "pinged".parse().unwrap();
    let attacker = non_reader(addr).await;
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
        assert!(published.elapsed() < IDLE_TIMEOUT * 3, "a non-reader that pings kept its socket");
        ticker.tick().await;
        unsent.extend_from_slice(&ping);
        if let Ok(written) = attacker.try_write(&unsent) {
            unsent.drain(..written);
        }
    }
    drop(attacker);
    server.shutdown().await;
}
