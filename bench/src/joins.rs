//! `joins`: N members join one group at a steady rate, each reading
//! everything it is sent; what presence costs: the server's CPU time over
//! the joins, and the presence frames and bytes each member received
//! (`presence`, `join`, `leave`) until none has come for a while.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;

use crate::client::{connect, source_address, Mode};
use crate::procfs::cpu_seconds;

pub struct Joins {
    pub addr: SocketAddr,
    pub members: usize,
    /// Joins per second.
    pub rate: u64,
    pub group: String,
    pub server_pid: Option<u32>,
}

/// What one member received.
#[derive(Default)]
struct Tally {
    frames: AtomicU64,
    bytes: AtomicU64,
    /// When the last presence frame came, in ms since the start.
    last_ms: AtomicU64,
}

/// The quiet that ends the run: no presence frame for this long.
const QUIET: Duration = Duration::from_secs(3);

pub async fn run(joins: Joins) -> anyhow::Result<()> {
    let cpu_before = joins.server_pid.map(cpu_seconds).transpose()?;
    let started = Instant::now();
    let tallies: Arc<Vec<Tally>> = Arc::new((0..joins.members).map(|_| Tally::default()).collect());
    let permits = Arc::new(Semaphore::new(256));
    let every = Duration::from_secs_f64(1.0 / joins.rate.max(1) as f64);
    let mut readers = Vec::with_capacity(joins.members);
    for index in 0..joins.members {
        tokio::time::sleep_until((started + every * index as u32).into()).await;
        let (tallies, permits, group, addr) = (tallies.clone(), permits.clone(), joins.group.clone(), joins.addr);
        readers.push(tokio::spawn(async move {
            let socket = {
                let _permit = permits.acquire_owned().await?;
                connect(addr, source_address(index), &group, Mode::Json).await?
            };
            read(socket, &tallies[index], started).await;
            anyhow::Ok(())
        }));
    }
    let joined_in = started.elapsed();
    // Until every member has heard nothing of presence for QUIET.
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let last = tallies.iter().map(|tally| tally.last_ms.load(Ordering::Relaxed)).max().unwrap_or(0);
        if started.elapsed() > Duration::from_millis(last) + QUIET && started.elapsed() > joined_in + QUIET {
            break;
        }
    }
    let cpu = match (joins.server_pid, cpu_before) {
        (Some(pid), Some(before)) => Some(cpu_seconds(pid)? - before),
        _ => None,
    };
    let frames: Vec<u64> = tallies.iter().map(|tally| tally.frames.load(Ordering::Relaxed)).collect();
    let bytes: u64 = tallies.iter().map(|tally| tally.bytes.load(Ordering::Relaxed)).sum();
    let total: u64 = frames.iter().sum();
    let max = frames.iter().max().copied().unwrap_or(0);
    let members = joins.members.max(1) as f64;
    println!("{} members joined in {:.1} s", joins.members, joined_in.as_secs_f64());
    println!(
        "presence per member: {:.1} frames ({max} at most), {:.0} bytes; {total} frames, {:.1} MiB in all",
        total as f64 / members,
        bytes as f64 / members,
        bytes as f64 / 1_048_576.0
    );
    if let Some(cpu) = cpu {
        println!("server CPU over the joins and the quiet after: {cpu:.2} s ({:.0} µs per join)", cpu * 1e6 / members);
    }
    println!(
        "result members={} joined_s={:.1} presence_frames_per_member={:.1} presence_bytes_per_member={:.0} server_cpu_s={}",
        joins.members,
        joined_in.as_secs_f64(),
        total as f64 / members,
        bytes as f64 / members,
        cpu.map_or("-".to_owned(), |cpu| format!("{cpu:.2}"))
    );
    for reader in readers {
        reader.abort();
    }
    Ok(())
}

/// Reads everything `socket` gets, counting the presence frames.
async fn read(mut socket: crate::client::Socket, tally: &Tally, started: Instant) {
    while let Some(Ok(frame)) = socket.next().await {
        let Message::Text(text) = frame else { continue };
        let presence = ["presence", "join", "leave"]
            .iter()
            .any(|kind| text.as_str().starts_with(&format!("{{\"type\":\"{kind}\"")));
        if presence {
            tally.frames.fetch_add(1, Ordering::Relaxed);
            tally.bytes.fetch_add(text.len() as u64, Ordering::Relaxed);
            tally.last_ms.store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
        }
    }
}
