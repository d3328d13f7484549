//! Self-service identities per IP address: a token bucket each, bounded as
//! [`Buckets`](crate::rate::Buckets) are.

use std::net::IpAddr;

use tokio::time::Instant;

use crate::rate::SharedBuckets;

/// Self-service identities issued to each address, a bucket each.
#[derive(Debug)]
pub struct NewIdentitiesPerIp(Option<SharedBuckets<IpAddr>>);

impl NewIdentitiesPerIp {
    /// `per_minute` per address, all of them at once at first; 0: no limit.
    pub fn new(per_minute: u32) -> Self {
        Self((per_minute > 0).then(|| SharedBuckets::new(f64::from(per_minute) / 60.0, per_minute)))
    }

    /// Takes one for `ip`; `false` when it has none left for now.
    pub fn try_take(&self, ip: IpAddr, now: Instant) -> bool {
        self.0.as_ref().is_none_or(|buckets| buckets.try_take(crate::rate::address_key(ip), now))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn each_address_has_its_own_allowance() {
        let limiter = NewIdentitiesPerIp::new(2);
        let now = Instant::now();
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        assert!(limiter.try_take(a, now) && limiter.try_take(a, now));
        assert!(!limiter.try_take(a, now));
        assert!(limiter.try_take(b, now));
        assert!(limiter.try_take(a, now + Duration::from_secs(30)), "one more after half a minute");
    }

    #[test]
    fn zero_means_no_limit() {
        let limiter = NewIdentitiesPerIp::new(0);
        assert!((0..1000).all(|_| limiter.try_take("10.0.0.1".parse().unwrap(), Instant::now())));
    }
}
