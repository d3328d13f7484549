//! `idle`: N connections held open; connect rate and server memory.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use tokio::sync::Semaphore;

use crate::client::{connect, server_connections, source_address, Mode};
use crate::procfs::{cpu_seconds, resident_kib};

pub struct Idle {
    pub addr: SocketAddr,
    pub connections: usize,
    pub mode: Mode,
    pub group: String,
    pub concurrency: usize,
    pub server_pid: Option<u32>,
    pub hold: Duration,
}

pub async fn run(idle: Idle) -> anyhow::Result<()> {
    let rss_before = idle.server_pid.map(resident_kib).transpose()?;
    let permits = Arc::new(Semaphore::new(idle.concurrency));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(idle.connections);
    for index in 0..idle.connections {
        let permits = permits.clone();
        let (addr, group, mode) = (idle.addr, idle.group.clone(), idle.mode);
        tasks.push(tokio::spawn(async move {
            let _permit = permits.acquire_owned().await;
            connect(addr, source_address(index), &group, mode).await
        }));
    }
    let mut open = Vec::with_capacity(idle.connections);
    let (mut failures, mut first_error) = (0usize, None);
    for task in tasks {
        match task.await? {
            Ok(socket) => open.push(socket),
            Err(err) => {
                failures += 1;
                first_error.get_or_insert(err);
            }
        }
    }
    let elapsed = started.elapsed();
    println!("connections: {} open, {failures} failed", open.len());
    println!(
        "connect rate: {:.0} connects+handshakes/s ({:.2} s)",
        open.len() as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64()
    );
    if let Some(err) = first_error {
        println!("first failure: {err:#}");
    }
    let mut per_connection_kib = None;
    if let (Some(pid), Some(before)) = (idle.server_pid, rss_before) {
        // The server finishes its side of the handshakes, joins and replays
        // after the client's: read its memory once it counts every
        // connection and its CPU time has stopped moving.
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut last_cpu = -1.0;
        loop {
            let counted = server_connections(idle.addr).await? >= open.len() as u64;
            let cpu = cpu_seconds(pid)?;
            if counted && cpu == last_cpu {
                break;
            }
            if Instant::now() > deadline {
                bail!("the server did not settle with {} connections", open.len());
            }
            last_cpu = cpu;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let after = resident_kib(pid)?;
        let per = after.saturating_sub(before) as f64 * 1024.0 / open.len().max(1) as f64;
        println!(
            "server RSS: {before} KiB before, {after} KiB after: {per:.0} bytes ({:.2} KiB) per connection",
            per / 1024.0
        );
        per_connection_kib = Some(per / 1024.0);
    }
    println!(
        "result open={} failed={failures} connects_per_s={:.0} kib_per_connection={}",
        open.len(),
        open.len() as f64 / elapsed.as_secs_f64(),
        per_connection_kib.map_or("-".to_owned(), |kib| format!("{kib:.2}"))
    );
    tokio::time::sleep(idle.hold).await;
    drop(open);
    if failures > 0 {
        bail!("{failures} connections failed");
    }
    Ok(())
}
