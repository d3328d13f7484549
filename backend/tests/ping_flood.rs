//! A peer that sends pings and reads nothing must not make the server hold
//! their answers: every ping asks for a pong. In a test binary of its own,
//! with no other test, so that the process's memory reflects this test
//! alone (the same peer within the control-frame rate is in `bounds.rs`).

mod support;

use std::time::Duration;

use support::*;
use tokio::io::AsyncWriteExt;
use tokio::time::{timeout, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinging_non_reader_keeps_memory_flat_and_is_closed() {
    let server = start_pinging_every_second().await;
    let addr = server.local_addr();
    let group = "pinged".parse().unwrap();
    // 1 MiB of 125-byte pings, written over and over.
    let flood = ping_frames(1 << 20 >> 7, 125);
    let before = resident_bytes();

    let mut attacker = pinging_non_reader(addr).await;
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
    assert!(
        gone_after < QUICK_IDLE_TIMEOUT + Duration::from_secs(1),
        "still a member {gone_after:?} after the flood began"
    );
    drop(attacker);
    server.shutdown().await;
}
