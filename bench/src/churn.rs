//! `churn`: cycles of N connects then N disconnects. After each cycle the
//! server must be back to zero connections (its /healthz) and its memory
//! back near where the first cycle left it: nothing leaks per connection.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::bail;

use crate::client::{connect, server_connections, source_address, Mode};
use crate::procfs::resident_kib;

pub async fn run(
    addr: SocketAddr,
    connections: usize,
    cycles: usize,
    mode: Mode,
    server_pid: Option<u32>,
) -> anyhow::Result<()> {
    let start_kib = server_pid.map(resident_kib).transpose()?;
    let mut after_first = None;
    for cycle in 1..=cycles {
        let started = Instant::now();
        let mut open = Vec::with_capacity(connections);
        for index in 0..connections {
            open.push(connect(addr, source_address(index), "bench-churn", mode).await?);
        }
        let peak = server_connections(addr).await?;
        drop(open);
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut left = server_connections(addr).await?;
        while left > 0 {
            if Instant::now() > deadline {
                bail!("cycle {cycle}: {left} connections still open on the server");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            left = server_connections(addr).await?;
        }
        let rss = server_pid.map(resident_kib).transpose()?;
        println!(
            "cycle {cycle}: {connections} connected (server saw {peak}), all closed, server at 0 connections{} in {:.2} s",
            rss.map(|kib| format!(", RSS {kib} KiB")).unwrap_or_default(),
            started.elapsed().as_secs_f64()
        );
        if cycle == 1 {
            after_first = rss;
        }
    }
    if let (Some(start), Some(first), Some(pid)) = (start_kib, after_first, server_pid) {
        let last = resident_kib(pid)?;
        println!("server RSS: {start} KiB at start, {first} KiB after cycle 1, {last} KiB after cycle {cycles}");
        // Allocator noise aside, later cycles must reuse what the first grew.
        if last > first + first / 10 + 1024 {
            bail!("server memory grew from {first} KiB to {last} KiB over {cycles} cycles");
        }
    }
    Ok(())
}
