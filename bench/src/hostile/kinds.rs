//! The hostile clients. Each kind holds a number of slots from its source
//! addresses; a slot opens one socket at a time, does what its kind does
//! until the server (or its hold) ends it, and opens the next, until the
//! run stops.

mod floods;
mod pages;
mod pingers;
mod slowloris;
mod spam;
mod stalled;
mod storms;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::{sleep_until, Instant, Interval, MissedTickBehavior};

use super::fate::Fate;
use super::outcomes::Outcomes;
use crate::client::{Join, Mode, Socket};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Kind {
    Pingers,
    Stalled,
    Slowloris,
    Floods,
    Storms,
    Spam,
    Pages,
}

/// Which kind each of the ten hostile addresses, 127.0.0.2 to 127.0.0.11,
/// carries: one kind per address, so that the server's per-address limits
/// (sockets, connects per second, new rooms per hour) meet one behaviour
/// each and what each kind gets is its own.
pub const PLAN: [Kind; 10] = [
    Kind::Pingers,
    Kind::Pingers,
    Kind::Stalled,
    Kind::Stalled,
    Kind::Slowloris,
    Kind::Floods,
    Kind::Floods,
    Kind::Storms,
    Kind::Spam,
    Kind::Pages,
];

impl Kind {
    /// The shortest time from one attempt of a slot to its next. Refused
    /// attempts come back this fast, ignoring `Retry-After` as an attacker
    /// would; without a floor, a slot refused at once would measure the
    /// generator's port table rather than the server.
    fn pace(self) -> Duration {
        match self {
            // Twice a second per slot: with 100 slots, twice the 100
            // connects a second an address is allowed.
            Self::Storms => Duration::from_millis(500),
            Self::Spam => Duration::from_secs(2),
            _ => Duration::from_secs(1),
        }
    }

    /// Which variant of the kind a slot runs, as the report names it.
    fn variant(self, slot: usize) -> &'static str {
        match self {
            Self::Pingers if pingers::fast(slot) => "as fast as they can",
            Self::Pingers => "50 a second",
            Self::Stalled | Self::Storms => match json_or_raw(slot) {
                Mode::Json => "JSON",
                Mode::Raw => "raw",
            },
            Self::Floods => floods::Flood::of(slot).name(),
            Self::Slowloris | Self::Spam | Self::Pages => "",
        }
    }
}

/// SO_RCVBUF of the clients that read nothing: their socket is full at
/// once (Linux doubles it, and loopback's window starts there), so that the
/// server's side fills after it.
const RECEIVE_BUFFER: u32 = 4096;

/// The status of an HTTP response, from its first line.
fn http_status(response: &[u8]) -> Option<u16> {
    let line = response.split(|&b| b == b'\r').next()?;
    std::str::from_utf8(line).ok()?.split(' ').nth(1)?.parse().ok()
}

/// Half the slots of a kind in each mode.
fn json_or_raw(slot: usize) -> Mode {
    if slot % 2 == 0 {
        Mode::Json
    } else {
        Mode::Raw
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pingers => "pingers (raw, 4 KiB receive buffer, never read)",
            Self::Stalled => "stalled readers (busy group, 4 KiB receive buffer, never read, a heartbeat every 15 s)",
            Self::Slowloris => "slowloris (a request head, a byte every 500 ms)",
            Self::Floods => "floods (in groups of their own)",
            Self::Storms => "reconnect storms (join the busy group and close, each slot twice a second)",
            Self::Spam => "group spam (a new room every 2 s per slot, one message in it)",
            Self::Pages => "history pages nobody reads (ten of limit=200 on one connection, 4 KiB receive buffer)",
        })
    }
}

/// What every hostile client shares: where the server is, the groups, and
/// the stop signal.
#[derive(Debug, Clone)]
pub struct Arena {
    pub server: SocketAddr,
    /// The members' group, where messages flow.
    pub busy: Arc<str>,
    /// A group that exists (one message) but where nobody publishes.
    pub quiet: Arc<str>,
    pub stop: watch::Receiver<bool>,
}

impl Arena {
    pub async fn stopped(&self) {
        let mut stop = self.stop.clone();
        // A dropped sender means stopped as well.
        let _ = stop.wait_for(|stopped| *stopped).await;
    }

    fn is_stopped(&self) -> bool {
        *self.stop.borrow()
    }
}

/// One slot: socket after socket of `kind` from `source` until the run
/// stops.
pub async fn run_slot(kind: Kind, arena: Arena, slot: usize, source: IpAddr, outcomes: Arc<Outcomes>) {
    while !arena.is_stopped() {
        let started = Instant::now();
        outcomes.attempted();
        let opened = OnceLock::new();
        let fate = tokio::select! {
            fate = live(kind, &arena, slot, source, &opened, &outcomes) => fate,
            () = arena.stopped() => if opened.get().is_some() { Fate::OpenAtEnd } else { Fate::ConnectingAtEnd },
        };
        outcomes.ended(kind.variant(slot), fate, opened.get().map(Instant::elapsed));
        tokio::select! {
            () = sleep_until(started + kind.pace()) => {}
            () = arena.stopped() => {}
        }
    }
}

/// One socket's life. `opened` is set once the socket is open (upgraded,
/// or connected for the HTTP kinds).
async fn live(
    kind: Kind,
    arena: &Arena,
    slot: usize,
    source: IpAddr,
    opened: &OnceLock<Instant>,
    outcomes: &Outcomes,
) -> Fate {
    match kind {
        Kind::Pingers => pingers::life(arena, slot, source, opened).await,
        Kind::Stalled => stalled::life(arena, slot, source, opened).await,
        Kind::Slowloris => slowloris::life(arena, source, opened).await,
        Kind::Floods => floods::life(arena, slot, source, opened, outcomes).await,
        Kind::Storms => storms::life(arena, slot, source, opened).await,
        Kind::Spam => spam::life(arena, source, opened, outcomes).await,
        Kind::Pages => pages::life(arena, source, opened, outcomes).await,
    }
}

/// A ticker for a kind's rate that never catches up in a burst: however
/// late the generator runs, it never sends faster than its kind says (a
/// burst of pings past 100 a second would be closed as a fast pinger).
fn ticker(period: Duration) -> Interval {
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ticker
}

/// [`fate::join`](super::fate::join) from the arena's server; marks
/// `opened` once upgraded.
async fn open(
    arena: &Arena,
    source: IpAddr,
    receive_buffer: Option<u32>,
    join: &Join<'_>,
    opened: &OnceLock<Instant>,
) -> Result<Socket, Fate> {
    let socket = super::fate::join(arena.server, source, receive_buffer, join).await?;
    let _ = opened.set(Instant::now());
    Ok(socket)
}
