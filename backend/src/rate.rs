//! Rate limits: a token bucket ([`TokenBucket`]), buckets by key that
//! outlive a connection ([`Buckets`]), and the publish limits every
//! connection shares ([`PublishLimits`]).
//!
//! Keys are remembered while their bucket is not full: a full bucket is the
//! same as a new one, so it is forgotten once the map grows, and the map
//! stays bounded by the keys that were busy recently. A client cannot refill
//! its allowance by reconnecting: the bucket is the identity's (and the
//! address's), not the connection's.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;

use crate::locks::lock;
use roomcast_shared::ClientId;
use tokio::time::Instant;

#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    refilled: Instant,
}

impl TokenBucket {
    /// A full bucket refilled at `rate` tokens per second (fractions too),
    /// holding at most `burst`.
    pub fn new(rate: f64, burst: u32, now: Instant) -> Self {
        let burst = f64::from(burst.max(1));
        Self { rate, burst, tokens: burst, refilled: now }
    }

    /// Whether the bucket would be full at `now` (it may be forgotten).
    pub fn is_full(&self, now: Instant) -> bool {
        self.tokens_at(now) >= self.burst
    }

    /// Whether `count` tokens are there at `now`.
    pub fn has_tokens(&self, count: f64, now: Instant) -> bool {
        self.tokens_at(now) >= count
    }

    /// Takes `count` tokens if they are all there.
    pub fn try_take_many(&mut self, count: f64, now: Instant) -> bool {
        self.tokens = self.tokens_at(now);
        self.refilled = now;
        if self.tokens >= count {
            self.tokens -= count;
            true
        } else {
            false
        }
    }

    fn tokens_at(&self, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        (self.tokens + elapsed * self.rate).min(self.burst)
    }
}

/// Keys remembered before full buckets are swept out.
const SWEEP_AT: usize = 4_096;

/// One bucket per key, each `burst` deep and refilled at `rate` per second.
#[derive(Debug)]
pub struct Buckets<K> {
    rate: f64,
    burst: u32,
    buckets: HashMap<K, TokenBucket>,
    /// The next sweep waits until the map has grown to this.
    sweep_at: usize,
}

impl<K: Hash + Eq + Copy> Buckets<K> {
    pub fn new(rate: f64, burst: u32) -> Self {
        Self { rate, burst, buckets: HashMap::new(), sweep_at: SWEEP_AT }
    }

    pub fn at(rate: Rate) -> Self {
        Self::new(f64::from(rate.per_second), rate.burst)
    }

    pub fn has_token(&self, key: K, now: Instant) -> bool {
        self.has_tokens(key, 1.0, now)
    }

    pub fn has_tokens(&self, key: K, count: f64, now: Instant) -> bool {
        self.buckets.get(&key).map_or(count <= f64::from(self.burst.max(1)), |bucket| bucket.has_tokens(count, now))
    }

    pub fn try_take(&mut self, key: K, now: Instant) -> bool {
        self.try_take_many(key, 1.0, now)
    }

    pub fn try_take_many(&mut self, key: K, count: f64, now: Instant) -> bool {
        if self.buckets.len() >= self.sweep_at {
            self.buckets.retain(|_, bucket| !bucket.is_full(now));
            // Keys that are all busy are not swept again on every call:
            // only once the map has doubled.
            self.sweep_at = (self.buckets.len() * 2).max(SWEEP_AT);
        }
        let (rate, burst) = (self.rate, self.burst);
        self.buckets.entry(key).or_insert_with(|| TokenBucket::new(rate, burst, now)).try_take_many(count, now)
    }
}

/// [`Buckets`] behind a lock, for limits shared across tasks.
#[derive(Debug)]
pub struct SharedBuckets<K>(Mutex<Buckets<K>>);

impl<K: Hash + Eq + Copy> SharedBuckets<K> {
    pub fn new(rate: f64, burst: u32) -> Self {
        Self(Mutex::new(Buckets::new(rate, burst)))
    }

    pub fn try_take(&self, key: K, now: Instant) -> bool {
        lock(&self.0).try_take(key, now)
    }
}

/// Publishes per second and burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub per_second: u32,
    pub burst: u32,
}

/// The publish limits, in messages and in bytes: per identity (a verified
/// client id; an unverified one is whatever its URL says, so it is limited
/// by address alone) and per IP address, kept across reconnects. `None`: no
/// limit. The bytes matter where the count does not: 50 messages a second
/// of 64 KiB fill a group's retention in minutes, and in Redis mode its
/// memory.
#[derive(Debug)]
pub struct PublishLimits(Option<Mutex<Limits>>);

#[derive(Debug)]
struct Limits {
    clients: Buckets<ClientId>,
    addresses: Buckets<IpAddr>,
    /// `None`: no byte limit.
    bytes: Option<ByteLimits>,
}

#[derive(Debug)]
struct ByteLimits {
    clients: Buckets<ClientId>,
    addresses: Buckets<IpAddr>,
}

impl PublishLimits {
    /// Message limits per client and per address, and optionally byte
    /// limits (per client, per address).
    pub fn new(per_client: Rate, per_ip: Rate, bytes: Option<(Rate, Rate)>) -> Self {
        Self(Some(Mutex::new(Limits {
            clients: Buckets::at(per_client),
            addresses: Buckets::at(per_ip),
            bytes: bytes.map(|(per_client, per_ip)| ByteLimits {
                clients: Buckets::at(per_client),
                addresses: Buckets::at(per_ip),
            }),
        })))
    }

    pub fn unlimited() -> Self {
        Self(None)
    }

    /// Takes one publish of `bytes` from the client's and the address's
    /// allowances, from all of them or from none.
    pub fn try_take(&self, client: Option<ClientId>, ip: IpAddr, bytes: usize, now: Instant) -> bool {
        let Some(limits) = &self.0 else { return true };
        let ip = address_key(ip);
        let size = bytes as f64;
        let mut limits = lock(limits);
        let limits = &mut *limits;
        let client_has = client.is_none_or(|client| limits.clients.has_token(client, now));
        let bytes_there = limits.bytes.as_ref().is_none_or(|bytes| {
            client.is_none_or(|client| bytes.clients.has_tokens(client, size, now))
                && bytes.addresses.has_tokens(ip, size, now)
        });
        if !(client_has && bytes_there && limits.addresses.has_token(ip, now)) {
            return false;
        }
        if let Some(client) = client {
            limits.clients.try_take(client, now);
        }
        if let Some(bytes) = &mut limits.bytes {
            if let Some(client) = client {
                bytes.clients.try_take_many(client, size, now);
            }
            bytes.addresses.try_take_many(ip, size, now);
        }
        limits.addresses.try_take(ip, now)
    }
}

/// The key of an address for per-address limits: IPv4 addresses (mapped
/// ones too) as they are, IPv6 addresses by their /64, which one host
/// usually holds whole.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
        },
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use uuid::Uuid;

    #[test]
    fn a_burst_then_the_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(10.0, 3, start);
        assert!((0..3).all(|_| bucket.try_take_many(1.0, start)), "the burst");
        assert!(!bucket.try_take_many(1.0, start), "then empty");
        assert!(!bucket.try_take_many(1.0, start + Duration::from_millis(50)));
        assert!(bucket.try_take_many(1.0, start + Duration::from_millis(100)), "one token per 100 ms");
        assert!(!bucket.try_take_many(1.0, start + Duration::from_millis(100)));
    }

    #[test]
    fn a_quiet_key_refills_only_up_to_the_burst() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(10.0, 3, start);
        let later = start + Duration::from_secs(60);
        assert_eq!((0..10).filter(|_| bucket.try_take_many(1.0, later)).count(), 3);
    }

    #[test]
    fn each_key_has_its_own_allowance_and_the_map_stays_bounded() {
        let now = Instant::now();
        let mut buckets = Buckets::new(1.0 / 60.0, 1);
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        assert!(buckets.try_take(a, now) && !buckets.try_take(a, now));
        assert!(buckets.try_take(b, now));
        // Busy keys: all kept (a sweep finds nothing to forget, and the next
        // waits until the map has doubled).
        for n in 0..(SWEEP_AT as u32 * 2) {
            buckets.try_take(IpAddr::from(n.to_be_bytes()), now);
        }
        assert!(buckets.buckets.len() >= SWEEP_AT * 2);
        // Later, they are full again: the next sweep forgets them.
        let later = now + Duration::from_secs(120);
        for n in 0..(SWEEP_AT as u32 * 2 + 10) {
            buckets.try_take(IpAddr::from((u32::MAX - n).to_be_bytes()), later);
        }
        assert!(buckets.buckets.len() <= SWEEP_AT * 2 + 10, "{} remembered", buckets.buckets.len());
    }

    #[test]
    fn an_ipv6_host_is_one_address_per_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(other));
        assert_eq!(address_key("::ffff:10.0.0.1".parse().unwrap()), "10.0.0.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn publishes_take_from_the_client_and_the_address_or_from_neither() {
        let now = Instant::now();
        let limits = PublishLimits::new(Rate { per_second: 1, burst: 2 }, Rate { per_second: 1, burst: 3 }, None);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let (ann, bob) = (ClientId(Uuid::new_v4()), ClientId(Uuid::new_v4()));
        assert!(limits.try_take(Some(ann), ip, 10, now) && limits.try_take(Some(ann), ip, 10, now));
        assert!(!limits.try_take(Some(ann), ip, 10, now), "Ann's allowance is spent");
        assert!(limits.try_take(Some(bob), ip, 10, now), "the address had one left, Bob takes it");
        assert!(!limits.try_take(Some(bob), ip, 10, now), "the address's is spent");
        assert!(!limits.try_take(None, ip, 10, now));
        assert!(PublishLimits::unlimited().try_take(None, ip, 10, now));
    }

    #[test]
    fn bytes_are_limited_beside_the_count() {
        let now = Instant::now();
        let many = Rate { per_second: 1_000, burst: 1_000 };
        let bytes = (Rate { per_second: 1_000, burst: 4_000 }, Rate { per_second: 2_000, burst: 6_000 });
        let limits = PublishLimits::new(many, many, Some(bytes));
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let (ann, bob) = (ClientId(Uuid::new_v4()), ClientId(Uuid::new_v4()));
        assert!(limits.try_take(Some(ann), ip, 3_000, now));
        assert!(!limits.try_take(Some(ann), ip, 3_000, now), "Ann's bytes are spent, her count is not");
        assert!(limits.try_take(Some(ann), ip, 1_000, now), "what is left of them");
        assert!(limits.try_take(Some(bob), ip, 2_000, now), "the address's last 2,000");
        assert!(!limits.try_take(Some(bob), ip, 1, now), "the address's bytes are spent");
        assert!(limits.try_take(Some(bob), ip, 1_000, now + Duration::from_millis(500)), "refilled at its rate");
    }
}
