//! Self-service identities per IP address: a token bucket each, in a map
//! whose full buckets are forgotten once it grows, so that it stays bounded
//! by the addresses that asked recently.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use tokio::time::Instant;

use crate::rate::TokenBucket;

/// Addresses remembered before full buckets are swept out.
const SWEEP_AT: usize = 4_096;

#[derive(Debug)]
pub struct PerIp {
    per_minute: u32,
    buckets: Mutex<HashMap<IpAddr, TokenBucket>>,
}

impl PerIp {
    /// `per_minute` per address, all of them at once at first; 0: no limit.
    pub fn new(per_minute: u32) -> Self {
        Self { per_minute, buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes one for `ip`; `false` when it has none left for now.
    pub fn try_take(&self, ip: IpAddr, now: Instant) -> bool {
        if self.per_minute == 0 {
            return true;
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if buckets.len() >= SWEEP_AT {
            buckets.retain(|_, bucket| !bucket.is_full(now));
        }
        let rate = f64::from(self.per_minute) / 60.0;
        buckets.entry(ip).or_insert_with(|| TokenBucket::with_rate(rate, self.per_minute, now)).try_take(now)
    }

    #[cfg(test)]
    fn remembered(&self) -> usize {
        self.buckets.lock().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn each_address_has_its_own_allowance() {
        let limiter = PerIp::new(2);
        let now = Instant::now();
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        assert!(limiter.try_take(a, now) && limiter.try_take(a, now));
        assert!(!limiter.try_take(a, now));
        assert!(limiter.try_take(b, now));
        assert!(limiter.try_take(a, now + Duration::from_secs(30)), "one more after half a minute");
    }

    #[test]
    fn the_map_stays_bounded() {
        let limiter = PerIp::new(1);
        let now = Instant::now();
        for n in 0..(SWEEP_AT as u32 + 10) {
            limiter.try_take(IpAddr::from(n.to_be_bytes()), now);
        }
        let later = now + Duration::from_secs(120);
        limiter.try_take("10.9.9.9".parse().unwrap(), later);
        assert!(limiter.remembered() < 20, "full buckets were forgotten");
    }

    #[test]
    fn zero_means_no_limit() {
        let limiter = PerIp::new(0);
        assert!((0..1000).all(|_| limiter.try_take("10.0.0.1".parse().unwrap(), Instant::now())));
    }
}
