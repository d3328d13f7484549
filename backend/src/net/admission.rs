//! Which accepted sockets are served: caps on connections, in total and
//! per IP address, and on how often one address may connect.
//!
//! Every accepted socket holds a [`Ticket`] for as long as it is open,
//! handshaking or upgraded; dropping it gives its place back. A socket past
//! a cap is still taken, if there is room to say so, and answered `503` (or
//! `429` when its address connects too often) once its request head
//! arrives: the handshake timeout bounds how long that takes. Past even that
//! room, it is closed at once.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use http::header::{self, HeaderName, HeaderValue};
use http::StatusCode;
use tokio::time::Instant;

use crate::http_error::HttpError;
use crate::locks::lock;
use crate::metrics::SocketRefusal;
use crate::rate::Buckets;

/// Sockets beyond `max_connections` kept just long enough to be told why.
pub const REFUSALS_TOTAL: usize = 256;
/// Sockets beyond the per-address cap kept to be told why, per address.
const REFUSALS_PER_IP: usize = 8;
/// How long a refused client should wait before trying again, in seconds.
pub const RETRY_AFTER_SECONDS: u32 = 5;

/// The caps; 0 in `per_ip` lifts every per-address limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    pub total: usize,
    pub per_ip: usize,
}

/// Why a socket is refused, as its client will be told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the server is at its connection limit; try again shortly")]
    Full,
    #[error("too many connections from your address; close some and try again")]
    TooManyFromAddress,
    #[error("connecting too often from your address; try again shortly")]
    TooOften,
    #[error("this node cannot reach its message store; try again shortly")]
    StoreUnavailable,
}

impl warp::reject::Reject for Refusal {}

impl HttpError for Refusal {
    fn status(&self) -> StatusCode {
        match self {
            Self::Full | Self::TooManyFromAddress | Self::StoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::TooOften => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    /// When to try again; and the socket closes after the answer.
    fn headers(&self) -> Vec<(HeaderName, HeaderValue)> {
        vec![
            (header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS)),
            (header::CONNECTION, HeaderValue::from_static("close")),
        ]
    }
}

impl Refusal {
    /// How the metrics count it at accept.
    pub fn counted_as(self) -> SocketRefusal {
        match self {
            Self::Full | Self::StoreUnavailable => SocketRefusal::Full,
            Self::TooManyFromAddress => SocketRefusal::Address,
            Self::TooOften => SocketRefusal::TooOften,
        }
    }
}

/// What to do with an accepted socket.
#[derive(Debug)]
pub enum Decision {
    Serve(Ticket),
    /// Answer the request head with the refusal, then close.
    Refuse(Refusal, Ticket),
    /// Close at once: not even a refusal fits.
    Close,
}

/// The counts. Shared by the accept loop and every open socket's ticket.
#[derive(Debug)]
pub struct Admission {
    caps: Caps,
    total: AtomicUsize,
    per_ip: Mutex<AddressCounts>,
}

/// Per address: its open sockets and its recent connection attempts.
#[derive(Debug)]
struct AddressCounts {
    open: HashMap<IpAddr, usize>,
    /// Connection attempts: a burst of twice the cap, then the cap per
    /// second.
    attempts: Buckets<IpAddr>,
}

/// One open socket's place; given back on drop.
#[derive(Debug)]
pub struct Ticket {
    admission: Arc<Admission>,
    /// Counted in the total.
    total: bool,
    /// The address it counts against, if any.
    ip: Option<IpAddr>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.admission.release(self.ip, self.total);
    }
}

impl Admission {
    pub fn new(caps: Caps) -> Arc<Self> {
        let rate = caps.per_ip as f64;
        let burst = u32::try_from(caps.per_ip.saturating_mul(2)).unwrap_or(u32::MAX);
        Arc::new(Self {
            caps,
            total: AtomicUsize::new(0),
            per_ip: Mutex::new(AddressCounts { open: HashMap::new(), attempts: Buckets::new(rate, burst) }),
        })
    }

    /// Sockets open now.
    pub fn open(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }

    /// Decides about a socket accepted from `ip`. `counted`: whether it
    /// counts against its address (not for a trusted proxy's sockets, whose
    /// clients are counted by [`admit_forwarded`](Self::admit_forwarded)).
    pub fn admit(self: &Arc<Self>, ip: IpAddr, counted: bool) -> Decision {
        let total = self.total.fetch_add(1, Ordering::Relaxed);
        let ticket = Ticket { admission: self.clone(), total: true, ip: None };
        if total >= self.caps.total + REFUSALS_TOTAL {
            return Decision::Close;
        }
        let total_refusal = (total >= self.caps.total).then_some(Refusal::Full);
        if !counted || self.caps.per_ip == 0 {
            return match total_refusal {
                Some(refusal) => Decision::Refuse(refusal, ticket),
                None => Decision::Serve(ticket),
            };
        }
        match self.count_address(ip, ticket) {
            Ok(ticket) => match total_refusal {
                Some(refusal) => Decision::Refuse(refusal, ticket),
                None => Decision::Serve(ticket),
            },
            Err((refusal, Some(ticket))) => Decision::Refuse(total_refusal.unwrap_or(refusal), ticket),
            Err((_, None)) => Decision::Close,
        }
    }

    /// Counts a client that reached a WebSocket upgrade through a trusted
    /// proxy against its own address.
    /// The proxy's socket already counts in the total.
    pub fn admit_forwarded(self: &Arc<Self>, ip: IpAddr) -> Result<Ticket, Refusal> {
        let ticket = Ticket { admission: self.clone(), total: false, ip: None };
        if self.caps.per_ip == 0 {
            return Ok(ticket);
        }
        self.count_address(ip, ticket).map_err(|(refusal, _)| refusal)
    }

    /// Counts `ticket` against `ip`, or says why not (with the ticket back
    /// if a refusal still fits).
    fn count_address(&self, ip: IpAddr, mut ticket: Ticket) -> Result<Ticket, (Refusal, Option<Ticket>)> {
        let ip = crate::rate::address_key(ip);
        let mut per_ip = self.lock();
        let open = per_ip.open.get(&ip).copied().unwrap_or(0);
        if open >= self.caps.per_ip + REFUSALS_PER_IP {
            return Err((Refusal::TooManyFromAddress, None));
        }
        *per_ip.open.entry(ip).or_insert(0) += 1;
        ticket.ip = Some(ip);
        if open >= self.caps.per_ip {
            return Err((Refusal::TooManyFromAddress, Some(ticket)));
        }
        if !per_ip.attempts.try_take(ip, Instant::now()) {
            return Err((Refusal::TooOften, Some(ticket)));
        }
        Ok(ticket)
    }

    fn lock(&self) -> MutexGuard<'_, AddressCounts> {
        // Each operation leaves the counts consistent before it can panic.
        lock(&self.per_ip)
    }

    fn release(&self, ip: Option<IpAddr>, total: bool) {
        if total {
            self.total.fetch_sub(1, Ordering::Relaxed);
        }
        if let Some(ip) = ip {
            let mut per_ip = self.lock();
            if let Some(open) = per_ip.open.get_mut(&ip) {
                *open -= 1;
                if *open == 0 {
                    per_ip.open.remove(&ip);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    fn refusal(decision: &Decision) -> Option<Refusal> {
        match decision {
            Decision::Serve(_) => None,
            Decision::Refuse(refusal, _) => Some(*refusal),
            Decision::Close => panic!("closed at once"),
        }
    }

    #[test]
    fn the_per_address_cap_refuses_then_drops_and_frees_on_close() {
        let admission = Admission::new(Caps { total: 1000, per_ip: 2 });
        let served: Vec<_> = (0..2).map(|_| admission.admit(ip(1), true)).collect();
        assert!(served.iter().all(|d| refusal(d).is_none()));
        let refused: Vec<_> = (0..REFUSALS_PER_IP).map(|_| admission.admit(ip(1), true)).collect();
        assert!(refused.iter().all(|d| refusal(d) == Some(Refusal::TooManyFromAddress)));
        assert!(matches!(admission.admit(ip(1), true), Decision::Close), "past the room for refusals");
        assert!(refusal(&admission.admit(ip(2), true)).is_none(), "other addresses are served");
        drop(refused);
        drop(served);
        assert_eq!(admission.open(), 0);
        assert!(refusal(&admission.admit(ip(1), true)).is_none(), "places come back");
    }

    #[test]
    fn the_total_cap_refuses_everyone_then_drops() {
        let admission = Admission::new(Caps { total: 2, per_ip: 0 });
        let held: Vec<_> = (0..2).map(|n| admission.admit(ip(n), true)).collect();
        let refused: Vec<_> = (0..REFUSALS_TOTAL).map(|n| admission.admit(ip(n as u8), true)).collect();
        assert!(refused.iter().all(|d| refusal(d) == Some(Refusal::Full)));
        assert!(matches!(admission.admit(ip(9), true), Decision::Close));
        drop((held, refused));
        assert_eq!(admission.open(), 0);
    }

    #[test]
    fn connecting_too_often_is_refused() {
        let admission = Admission::new(Caps { total: 10_000, per_ip: 3 });
        // A burst of twice the cap, each closed at once.
        for _ in 0..6 {
            assert!(refusal(&admission.admit(ip(1), true)).is_none());
        }
        assert_eq!(refusal(&admission.admit(ip(1), true)), Some(Refusal::TooOften));
        assert!(refusal(&admission.admit(ip(1), false)).is_none(), "a trusted proxy is not counted");
    }

    #[test]
    fn forwarded_clients_count_against_their_own_address() {
        let admission = Admission::new(Caps { total: 10, per_ip: 1 });
        let proxy = admission.admit(ip(1), false);
        let first = admission.admit_forwarded(ip(7)).unwrap();
        assert_eq!(admission.admit_forwarded(ip(7)).unwrap_err(), Refusal::TooManyFromAddress);
        assert!(admission.admit_forwarded(ip(8)).is_ok());
        assert_eq!(admission.open(), 1, "only the proxy's socket is in the total");
        drop((first, proxy));
        assert!(admission.admit_forwarded(ip(7)).is_ok());
    }
}
