//! A ban: an identity, an address or a network refused until a time. The
//! type the store keeps, the nodes tell each other and the admin API
//! answers with; what acts on it is `identity_control`.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use roomcast_shared::ClientId;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Longest reason an operator may give (it is shown to the user).
pub const MAX_REASON_CHARS: usize = 200;

/// Who is refused, and until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ban {
    pub id: Uuid,
    /// The identity refused (its verified `sub`), if the ban names one.
    #[serde(default)]
    pub sub: Option<ClientId>,
    /// The address or network refused, if the ban names one.
    #[serde(default)]
    pub network: Option<Network>,
    /// Unix milliseconds; refused until then.
    pub until_ms: u64,
    /// The operator's reason, shown to whoever is refused.
    #[serde(default)]
    pub reason: String,
    pub created_ms: u64,
}

impl Ban {
    /// Whether it refuses `sub` (when known) or `ip` at `now_ms`.
    pub fn refuses(&self, sub: Option<ClientId>, ip: Option<IpAddr>, now_ms: u64) -> bool {
        now_ms < self.until_ms
            && (self.sub.is_some_and(|banned| Some(banned) == sub)
                || self.network.is_some_and(|network| ip.is_some_and(|ip| network.contains(ip))))
    }
}

/// An address and a prefix length: `203.0.113.7` (the whole address) or
/// `203.0.113.0/24`. IPv4 and IPv6; an IPv4-mapped IPv6 address matches
/// its IPv4 form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

/// Not an address or a network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an address or a network (like 203.0.113.7, 203.0.113.0/24 or 2001:db8::/32)")]
pub struct BadNetwork;

impl Network {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => prefix_matches(&net.octets(), &ip.octets(), self.prefix),
            (IpAddr::V6(net), IpAddr::V6(ip)) => prefix_matches(&net.octets(), &ip.octets(), self.prefix),
            _ => false,
        }
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

fn prefix_matches(net: &[u8], ip: &[u8], prefix: u8) -> bool {
    let (whole, rest) = (usize::from(prefix / 8), prefix % 8);
    net[..whole] == ip[..whole] && (rest == 0 || (net[whole] ^ ip[whole]) >> (8 - rest) == 0)
}

impl FromStr for Network {
    type Err = BadNetwork;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = match text.trim().split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix.parse::<u8>().map_err(|_| BadNetwork)?)),
            None => (text.trim(), None),
        };
        let addr = canonical(addr.parse::<IpAddr>().map_err(|_| BadNetwork)?);
        let bits = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(bits);
        if prefix > bits {
            return Err(BadNetwork);
        }
        Ok(Self { addr: masked(addr, prefix), prefix })
    }
}

/// `addr` with the bits past `prefix` cleared, so that equal networks are
/// equal values and print alike.
fn masked(addr: IpAddr, prefix: u8) -> IpAddr {
    fn clear<const N: usize>(mut octets: [u8; N], prefix: u8) -> [u8; N] {
        for (index, octet) in octets.iter_mut().enumerate() {
            let keep = usize::from(prefix).saturating_sub(index * 8).min(8);
            *octet &= if keep == 0 { 0 } else { 0xff << (8 - keep) };
        }
        octets
    }
    match addr {
        IpAddr::V4(v4) => IpAddr::from(clear(v4.octets(), prefix)),
        IpAddr::V6(v6) => IpAddr::from(clear(v6.octets(), prefix)),
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl Serialize for Network {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Network {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn networks_contain_their_addresses_and_no_others() {
        let net: Network = "203.0.113.77/24".parse().unwrap();
        assert_eq!(net.to_string(), "203.0.113.0/24", "masked");
        assert!(net.contains(ip("203.0.113.1")) && net.contains(ip("203.0.113.255")));
        assert!(!net.contains(ip("203.0.114.1")));
        assert!(net.contains(ip("::ffff:203.0.113.9")), "an IPv4-mapped address is its IPv4 form");
        let one: Network = "198.51.100.7".parse().unwrap();
        assert!(one.contains(ip("198.51.100.7")) && !one.contains(ip("198.51.100.8")));
        let odd: Network = "10.0.0.0/9".parse().unwrap();
        assert!(odd.contains(ip("10.127.255.255")) && !odd.contains(ip("10.128.0.0")));
        let v6: Network = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains(ip("2001:db8:ffff::1")) && !v6.contains(ip("2001:db9::1")));
        assert!(!v6.contains(ip("203.0.113.1")));
        let everyone: Network = "0.0.0.0/0".parse().unwrap();
        assert!(everyone.contains(ip("192.0.2.1")));
        for bad in ["", "203.0.113.0/33", "2001:db8::/129", "example.com", "1.2.3.4/x"] {
            assert_eq!(bad.parse::<Network>(), Err(BadNetwork), "{bad:?}");
        }
    }

    #[test]
    fn a_ban_refuses_its_identity_or_network_until_it_ends() {
        let sub = ClientId(Uuid::new_v4());
        let ban = Ban {
            id: Uuid::new_v4(),
            sub: Some(sub),
            network: Some("192.0.2.0/24".parse().unwrap()),
            until_ms: 1_000,
            reason: String::new(),
            created_ms: 0,
        };
        assert!(ban.refuses(Some(sub), None, 999));
        assert!(ban.refuses(None, Some(ip("192.0.2.9")), 999), "its network, whoever connects");
        assert!(!ban.refuses(Some(ClientId(Uuid::new_v4())), Some(ip("198.51.100.1")), 999));
        assert!(!ban.refuses(Some(sub), Some(ip("192.0.2.9")), 1_000), "over at until_ms");
        let json = serde_json::to_string(&ban).unwrap();
        assert!(json.contains(r#""network":"192.0.2.0/24""#), "{json}");
        assert_eq!(serde_json::from_str::<Ban>(&json).unwrap(), ban);
    }
}
