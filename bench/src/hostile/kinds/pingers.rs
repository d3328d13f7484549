//! Pingers: raw members of the quiet group with a 4 KiB receive buffer,
//! which never read and send ping frames, each of which asks the server
//! for a pong. Even slots write them as fast as their socket takes them
//! (past 100 control frames a second the server closes with 1008); odd
//! slots send 50 a second, within that rate, so that the pongs they never
//! read fill their socket and the stall clock has to close them (1013).

use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};
use uuid::Uuid;

use super::{open, ticker, Arena, RECEIVE_BUFFER};
use crate::client::{Join, Mode};
use crate::hostile::fate::{ping_frames, read_fate, Fate};

/// Twice the server's idle timeout (45 s) and a quarter of it (its checks
/// run four times per timeout), after which its stall clock must have
/// closed a socket that stopped taking bytes: a pinger still open then was
/// kept by the server.
const HOLD: Duration = Duration::from_secs(120);
/// Pings per write of a fast pinger.
const FAST_BURST: usize = 200;
/// A slow pinger's interval: 50 pings a second.
const SLOW_INTERVAL: Duration = Duration::from_millis(20);
/// How long the client reads, at its end, for the server's last words.
const LAST_WORDS: Duration = Duration::from_secs(5);

pub async fn life(arena: &Arena, slot: usize, source: IpAddr, opened: &OnceLock<Instant>) -> Fate {
    let join = Join { group: &arena.quiet, client: Uuid::new_v4(), mode: Mode::Raw, resume: None };
    let mut socket = match open(arena, source, Some(RECEIVE_BUFFER), &join, opened).await {
        Ok(socket) => socket,
        Err(fate) => return fate,
    };
    let fast = fast(slot);
    let pings = ping_frames(if fast { FAST_BURST } else { 1 });
    // Until a write fails (the server reset or closed the socket) or the
    // hold is over; a write the server does not take just waits.
    match timeout_at(Instant::now() + HOLD, ping(socket.get_mut(), &pings, fast)).await {
        Err(_held) => read_fate(&mut socket, LAST_WORDS).await.unwrap_or(Fate::KeptPastHold),
        Ok(err) => read_fate(&mut socket, LAST_WORDS).await.unwrap_or_else(|| Fate::of_io(&err)),
    }
}

/// Writes `pings` over and over (every 20 ms unless `fast`) until a write
/// fails.
async fn ping(stream: &mut TcpStream, pings: &[u8], fast: bool) -> std::io::Error {
    let mut ticker = ticker(SLOW_INTERVAL);
    loop {
        if !fast {
            ticker.tick().await;
        }
        if let Err(err) = stream.write_all(pings).await {
            return err;
        }
    }
}

/// Even slots ping as fast as they can, odd ones 50 times a second.
pub fn fast(slot: usize) -> bool {
    slot % 2 == 0
}
