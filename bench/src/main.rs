//! Roomcast's load generator. Scenarios:
//!
//! - `idle`: N connections held open; connect rate and the server's
//!   resident memory per connection.
//! - `fanout`: S subscribers and P publishers in one group; deliveries per
//!   second, send → receive latency, lost and duplicated messages, and the
//!   server's and the generator's CPU time.
//!
//! - `churn`: connect/disconnect cycles; the server's connection count and
//!   memory must return to their baseline.
//! - `hostile`: a soak: members of one group must get every message while
//!   hostile clients of every kind come from ten other addresses; the
//!   server's memory over time, and how each hostile socket ended.
//! - `joins`: N members join one group at a steady rate; the server's CPU
//!   and the presence traffic each member received.
//! - `baseline-server`: NOT Roomcast: the minimal tokio-tungstenite
//!   broadcast server Roomcast is compared with (raw mode only).
//!
//! Give `--server-pid` to read the server's memory and CPU from /proc.

mod baseline;
mod churn;
mod client;
mod event_stream;
mod fanout;
mod hostile;
mod idle;
mod joins;
mod lean_socket;
mod procfs;

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use client::Mode;

#[derive(Parser)]
#[command(about = "Roomcast load generator")]
struct Cli {
    /// Server address.
    #[arg(long, global = true, default_value = "127.0.0.1:8000")]
    addr: SocketAddr,
    /// The server's pid, to read its memory and CPU time from /proc.
    #[arg(long, global = true)]
    server_pid: Option<u32>,
    /// The server's secret: every client connects with a token signed with
    /// it (the server's default `--auth required` refuses tokenless ones).
    #[arg(long, global = true, env = "ROOMCAST_SECRET", hide_env_values = true)]
    secret: Option<String>,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// Open N idle connections; report connect rate and server memory.
    Idle {
        #[arg(long, default_value_t = 5_000)]
        connections: usize,
        #[arg(long, value_enum, default_value_t = Mode::Json)]
        mode: Mode,
        #[arg(long, default_value = "bench-idle")]
        group: String,
        /// Handshakes in flight at once.
        #[arg(long, default_value_t = 256)]
        concurrency: usize,
        /// Keep the connections open this many seconds after the report.
        #[arg(long, default_value_t = 0)]
        hold: u64,
    },
    /// Subscribers and publishers in one group; throughput, latency, loss.
    Fanout {
        #[arg(long, default_value_t = 100)]
        subscribers: usize,
        #[arg(long, default_value_t = 10)]
        publishers: usize,
        /// Messages per publisher.
        #[arg(long, default_value_t = 1_000)]
        messages: usize,
        /// Message text size in bytes.
        #[arg(long, default_value_t = 64)]
        size: usize,
        /// Unacknowledged messages each publisher may have in flight.
        #[arg(long, default_value_t = 16)]
        window: usize,
        /// Total messages per second over all publishers (0: as fast as the
        /// window allows).
        #[arg(long, default_value_t = 0)]
        rate: u64,
        /// How everyone connects. Raw publishers pace themselves on their own
        /// messages coming back (there are no acks in raw mode).
        #[arg(long, value_enum, default_value_t = Mode::Json)]
        mode: Mode,
        /// The group's name (default: a new one), for several processes.
        #[arg(long)]
        group: Option<String>,
        /// Where the publishers connect, if not to `--addr` (another node).
        #[arg(long)]
        publish_addr: Option<std::net::SocketAddr>,
        /// Subscribers only, for at most this many seconds: the publishers
        /// are another process's (give the same --publishers and --messages).
        #[arg(long)]
        listen_for: Option<u64>,
        /// How the subscribers are members: WebSocket, or the HTTP
        /// fallback's event stream (with --mode json).
        #[arg(long, value_enum, default_value_t = fanout::Over::Websocket)]
        over: fanout::Over,
    },
    /// Connect and disconnect N connections, C times; report the server's
    /// connections and memory after each cycle.
    Churn {
        #[arg(long, default_value_t = 2_000)]
        connections: usize,
        #[arg(long, default_value_t = 5)]
        cycles: usize,
        #[arg(long, value_enum, default_value_t = Mode::Json)]
        mode: Mode,
    },
    /// Members who must lose nothing, beside hostile clients of every kind
    /// from 127.0.0.2–127.0.0.11, for a bounded time.
    Hostile {
        /// Seconds of hostile load (a short drain follows).
        #[arg(long, default_value_t = 300)]
        duration: u64,
        /// Well-behaved JSON members of the busy group (from 127.0.0.12 on,
        /// 50 per address).
        #[arg(long, default_value_t = 100)]
        members: usize,
        #[arg(long, default_value_t = 2)]
        publishers: usize,
        /// Messages per second over all publishers.
        #[arg(long, default_value_t = 20)]
        rate: u64,
        /// Hostile sockets at once, a tenth from each address (100 each is
        /// the server's default per-address cap).
        #[arg(long, default_value_t = 1_000)]
        hostile: usize,
        /// Fail if the server's RSS goes past this (with --server-pid).
        #[arg(long, default_value_t = 256)]
        max_rss_mib: u64,
        /// Only these hostile kinds (comma-separated; default: all), to see
        /// what each costs.
        #[arg(long, value_enum, value_delimiter = ',')]
        kinds: Vec<hostile::Kind>,
    },
    /// N members join one group at a steady rate, each reading what it is
    /// sent; the server's CPU and the presence traffic per member.
    Joins {
        #[arg(long, default_value_t = 10_000)]
        members: usize,
        /// Joins per second.
        #[arg(long, default_value_t = 1_000)]
        rate: u64,
        #[arg(long, default_value = "bench-joins")]
        group: String,
    },
    /// Run the BASELINE broadcast server (not Roomcast) for comparison.
    BaselineServer {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        /// Speak `roomcast.v1` to JSON members (numbered `message` events
        /// and acks), to compare JSON like with like.
        #[arg(long)]
        json: bool,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(secret) = &cli.secret {
        client::sign_with(secret)?;
    }
    match cli.scenario {
        Scenario::Idle { connections, mode, group, concurrency, hold } => {
            idle::run(idle::Idle {
                addr: cli.addr,
                connections,
                mode,
                group,
                concurrency,
                server_pid: cli.server_pid,
                hold: Duration::from_secs(hold),
            })
            .await
        }
        Scenario::Churn { connections, cycles, mode } => {
            churn::run(cli.addr, connections, cycles, mode, cli.server_pid).await
        }
        Scenario::BaselineServer { listen, json } => baseline::run(listen, json).await,
        Scenario::Joins { members, rate, group } => {
            joins::run(joins::Joins { addr: cli.addr, members, rate, group, server_pid: cli.server_pid }).await
        }
        Scenario::Hostile { duration, members, publishers, rate, hostile, max_rss_mib, kinds } => {
            hostile::run(hostile::Hostile {
                addr: cli.addr,
                server_pid: cli.server_pid,
                duration: Duration::from_secs(duration),
                members,
                publishers,
                rate,
                hostile,
                max_rss_mib,
                kinds: if kinds.is_empty() { hostile::Kind::value_variants().to_vec() } else { kinds },
            })
            .await
        }
        Scenario::Fanout {
            subscribers,
            publishers,
            messages,
            size,
            window,
            rate,
            mode,
            group,
            publish_addr,
            listen_for,
            over,
        } => {
            fanout::run(fanout::Fanout {
                addr: cli.addr,
                subscribers,
                publishers,
                messages,
                size,
                window,
                rate,
                mode,
                server_pid: cli.server_pid,
                group,
                publish_addr,
                listen_for: listen_for.map(std::time::Duration::from_secs),
                over,
            })
            .await
        }
    }
}
