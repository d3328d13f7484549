//! Roomcast's load generator.
//!
//! `idle`: opens N connections to one group and holds them, reporting how
//! fast they connected, how many failed, and — given the server's pid — the
//! server's resident memory per connection (from /proc). Source addresses are
//! spread over 127.0.0.0/8 so that one generator can pass the ~28k ephemeral
//! ports of a single source address.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Parser, Subcommand, ValueEnum};
use tokio::net::TcpSocket;
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use uuid::Uuid;

#[derive(Parser)]
#[command(about = "Roomcast load generator")]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// Open N idle connections and report connect rate and server memory.
    Idle {
        /// Server address.
        #[arg(long, default_value = "127.0.0.1:8000")]
        addr: SocketAddr,
        #[arg(long, default_value_t = 5_000)]
        connections: usize,
        #[arg(long, value_enum, default_value_t = Mode::Json)]
        mode: Mode,
        #[arg(long, default_value = "bench-idle")]
        group: String,
        /// Handshakes in flight at once.
        #[arg(long, default_value_t = 256)]
        concurrency: usize,
        /// The server's pid, to read its resident memory from /proc.
        #[arg(long)]
        server_pid: Option<u32>,
        /// Keep the connections open this long after the report (seconds).
        #[arg(long, default_value_t = 0)]
        hold: u64,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    Json,
    Raw,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().scenario {
        Scenario::Idle { addr, connections, mode, group, concurrency, server_pid, hold } => {
            idle(addr, connections, mode, &group, concurrency, server_pid, hold).await
        }
    }
}

async fn idle(
    addr: SocketAddr,
    connections: usize,
    mode: Mode,
    group: &str,
    concurrency: usize,
    server_pid: Option<u32>,
    hold: u64,
) -> anyhow::Result<()> {
    let rss_before = server_pid.map(resident_kib).transpose()?;
    let permits = Arc::new(Semaphore::new(concurrency));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(connections);
    for index in 0..connections {
        let permits = permits.clone();
        let url = format!("ws://{addr}/ws/{group}/{}", Uuid::new_v4());
        tasks.push(tokio::spawn(async move {
            let _permit = permits.acquire_owned().await;
            connect(addr, source_address(index), &url, mode).await
        }));
    }
    let mut open = Vec::with_capacity(connections);
    let mut failures = 0usize;
    let mut first_error = None;
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
    println!("connect rate: {:.0} connects+handshakes/s ({:.2} s)", open.len() as f64 / elapsed.as_secs_f64(), elapsed.as_secs_f64());
    if let Some(err) = first_error {
        println!("first failure: {err:#}");
    }
    if let (Some(pid), Some(before)) = (server_pid, rss_before) {
        // Give the server a moment to finish its side of the last handshakes.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let after = resident_kib(pid)?;
        let per = (after.saturating_sub(before)) as f64 * 1024.0 / open.len().max(1) as f64;
        println!("server RSS: {before} KiB before, {after} KiB after: {:.0} bytes ({:.2} KiB) per connection", per, per / 1024.0);
    }
    tokio::time::sleep(Duration::from_secs(hold)).await;
    drop(open);
    if failures > 0 {
        bail!("{failures} connections failed");
    }
    Ok(())
}

type Socket = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

async fn connect(server: SocketAddr, source: IpAddr, url: &str, mode: Mode) -> anyhow::Result<Socket> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(source, 0))?;
    let stream = socket.connect(server).await.context("tcp connect")?;
    let mut request = url.into_client_request()?;
    if mode == Mode::Json {
        request
            .headers_mut()
            .insert("sec-websocket-protocol", HeaderValue::from_static(roomcast_shared::SUBPROTOCOL));
    }
    // Small buffers: the generator holds many sockets too.
    let config = WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0);
    let (socket, _) = tokio_tungstenite::client_async_with_config(request, stream, Some(config))
        .await
        .context("handshake")?;
    Ok(socket)
}

/// 127.0.0.1, 127.0.0.2, … one per 20,000 connections.
fn source_address(index: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + (index / 20_000) as u8))
}

fn resident_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).context("reading the server's /proc status")?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS line")
}
