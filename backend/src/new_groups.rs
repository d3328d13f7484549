//! How many rooms an identity and an address may open per hour: joining a
//! group the store does not hold yet (and nobody here is in) counts as
//! opening it. Without it, one client could create junk groups until
//! `--max-groups` refused everyone else's new rooms.
//!
//! Counted per node: in a cluster of N nodes a client spreading its joins
//! gets N times the allowance (still far from `--max-groups` by default).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use http::StatusCode;
use roomcast_shared::{ClientId, GroupName};
use tokio::time::Instant;

use crate::http_error::HttpError;
use crate::locks::lock;
use crate::metrics::Limited;
use crate::rate::{address_key, Buckets};

/// Opening a room was refused (HTTP 429, `Retry-After: 60`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many new rooms opened from this identity or address; join an existing one or try again later")]
pub struct TooManyNewGroups;

impl warp::reject::Reject for TooManyNewGroups {}

impl HttpError for TooManyNewGroups {
    fn status(&self) -> StatusCode {
        StatusCode::TOO_MANY_REQUESTS
    }

    fn limited(&self) -> Option<Limited> {
        Some(Limited::NewGroups)
    }
}

/// The allowances, per identity and per address; `None`: no limit.
#[derive(Debug)]
pub struct NewGroupLimits(Option<std::sync::Mutex<Allowances>>);

#[derive(Debug)]
struct Allowances {
    identities: Buckets<ClientId>,
    addresses: Buckets<IpAddr>,
    /// Groups counted within the hour, and when: opening one again (a
    /// lone member reconnecting to a room nobody has written to yet)
    /// takes nothing more.
    opened: HashMap<GroupName, Instant>,
    /// `opened` is swept of entries an hour old once it grows to this.
    sweep_at: usize,
}

/// How long an opened group is remembered.
const HOUR: Duration = Duration::from_secs(3600);
/// Groups remembered before the first sweep.
const SWEEP_AT: usize = 4096;

impl NewGroupLimits {
    /// `per_identity` and `per_address` new groups an hour (also the
    /// burst); zero for either means no limit at all.
    pub fn per_hour(per_identity: u32, per_address: u32) -> Self {
        if per_identity == 0 || per_address == 0 {
            return Self(None);
        }
        Self(Some(std::sync::Mutex::new(Allowances {
            identities: Buckets::new(f64::from(per_identity) / 3600.0, per_identity),
            addresses: Buckets::new(f64::from(per_address) / 3600.0, per_address),
            opened: HashMap::new(),
            sweep_at: SWEEP_AT,
        })))
    }

    /// Takes one new group from the identity's (if verified) and the
    /// address's allowances, from both or from neither; a group counted
    /// within the hour is not counted again.
    pub fn try_open(&self, identity: Option<ClientId>, ip: IpAddr, group: &GroupName) -> Result<(), TooManyNewGroups> {
        let Some(allowances) = &self.0 else { return Ok(()) };
        let (ip, now) = (address_key(ip), Instant::now());
        let mut allowances = lock(allowances);
        if allowances.opened.get(group).is_some_and(|at| now.duration_since(*at) < HOUR) {
            return Ok(());
        }
        let identity_has = identity.is_none_or(|identity| allowances.identities.has_token(identity, now));
        if !(identity_has && allowances.addresses.has_token(ip, now)) {
            return Err(TooManyNewGroups);
        }
        if let Some(identity) = identity {
            allowances.identities.try_take(identity, now);
        }
        allowances.addresses.try_take(ip, now);
        if allowances.opened.len() >= allowances.sweep_at {
            allowances.opened.retain(|_, at| now.duration_since(*at) < HOUR);
            allowances.sweep_at = (allowances.opened.len() * 2).max(SWEEP_AT);
        }
        allowances.opened.insert(group.clone(), now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    #[test]
    fn an_identity_and_an_address_each_have_an_hourly_allowance() {
        let limits = NewGroupLimits::per_hour(2, 3);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let (ann, bob) = (ClientId(Uuid::new_v4()), ClientId(Uuid::new_v4()));
        let room = |n: u32| format!("room-{n}").parse::<GroupName>().unwrap();
        assert!(limits.try_open(Some(ann), ip, &room(1)).is_ok() && limits.try_open(Some(ann), ip, &room(2)).is_ok());
        assert_eq!(limits.try_open(Some(ann), ip, &room(3)), Err(TooManyNewGroups), "Ann's two are spent");
        assert!(limits.try_open(Some(ann), ip, &room(1)).is_ok(), "a room she opened is not new again");
        assert!(limits.try_open(Some(bob), ip, &room(4)).is_ok(), "the address's third");
        assert_eq!(limits.try_open(Some(bob), ip, &room(5)), Err(TooManyNewGroups), "the address's are spent");
        assert!(limits.try_open(None, "10.0.0.2".parse().unwrap(), &room(6)).is_ok(), "another address");
        assert!(NewGroupLimits::per_hour(0, 3).try_open(Some(ann), ip, &room(7)).is_ok(), "zero: no limit");
    }
}
