//! Whose request it is: the socket's address, or for a socket from a
//! trusted proxy, the client address it forwards in `X-Forwarded-For`; and
//! whether a trusted proxy forgot to forward one.

use std::net::IpAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};

/// An address, or a network in CIDR notation (`10.0.0.0/8`, `fd00::/8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    address: IpAddr,
    prefix: u8,
}

/// Not an address or a network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an IP address or a network like 10.0.0.0/8")]
pub struct BadNetwork(String);

impl FromStr for Network {
    type Err = BadNetwork;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || BadNetwork(text.to_owned());
        let (address, prefix) = match text.trim().split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text.trim(), None),
        };
        let address: IpAddr = address.parse().map_err(|_| bad())?;
        let bits = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(prefix) => prefix.parse::<u8>().ok().filter(|prefix| *prefix <= bits).ok_or_else(bad)?,
            None => bits,
        };
        Ok(Self { address, prefix })
    }
}

impl Network {
    /// Whether `ip` is in this network; an IPv4 address and its IPv4-mapped
    /// form are one address (a network written either way holds both).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.address, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                masked(u128::from(u32::from(net)), u128::from(u32::from(ip)), self.prefix, 32)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => masked(u128::from(net), u128::from(ip), self.prefix, 128),
            (IpAddr::V6(net), IpAddr::V4(ip)) => {
                masked(u128::from(net), u128::from(ip.to_ipv6_mapped()), self.prefix, 128)
            }
            (IpAddr::V4(_), IpAddr::V6(_)) => false,
        }
    }
}

fn masked(net: u128, ip: u128, prefix: u8, bits: u8) -> bool {
    let shift = u32::from(bits - prefix);
    shift >= 128 || (net >> shift) == (ip >> shift)
}

/// IPv4 clients of a dual-stack socket appear as `::ffff:a.b.c.d`.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Default)]
pub struct TrustedProxies {
    networks: Vec<Network>,
    /// A request came from one of them without `X-Forwarded-For`.
    unforwarded: AtomicBool,
}

impl TrustedProxies {
    pub fn new(networks: Vec<Network>) -> Self {
        Self { networks, unforwarded: AtomicBool::new(false) }
    }

    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.networks.iter().any(|network| network.contains(ip))
    }

    /// Notes a request from `socket`, `forwarded` when it has an
    /// `X-Forwarded-For`. A trusted proxy that sends none names no client:
    /// every visitor behind it counts as the proxy's one address, and shares
    /// each per-address limit with all the others. That is a proxy set up
    /// wrong (or one that passes the client's own header on, which is
    /// worse and looks the same from here), so the first one is warned.
    pub fn note_request(&self, socket: IpAddr, forwarded: bool) {
        if forwarded || !self.trusts(socket) || self.unforwarded.swap(true, Ordering::Relaxed) {
            return;
        }
        tracing::warn!(
            proxy = %socket,
            "a request from a trusted proxy came without X-Forwarded-For: its clients all count as the proxy; \
             make it set the header (nginx: proxy_set_header X-Forwarded-For $remote_addr;)"
        );
    }

    /// Whether a trusted proxy sent a request without `X-Forwarded-For`.
    pub fn unforwarded_seen(&self) -> bool {
        self.unforwarded.load(Ordering::Relaxed)
    }

    /// The client's address for a request from `socket` with `headers`:
    /// the socket's own, unless a trusted proxy forwards one; then the last
    /// address in `X-Forwarded-For` (all its lines, in order: a proxy may
    /// add its own line after the client's) that is not itself a trusted
    /// proxy. The ones before it are whatever the client claimed.
    pub fn client_ip(&self, socket: IpAddr, headers: &http::HeaderMap) -> IpAddr {
        let socket = canonical(socket);
        if !self.trusts(socket) {
            return socket;
        }
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .map(|line| line.to_str().unwrap_or("not an address"))
            .flat_map(|line| line.split(','))
            .filter(|hop| !hop.trim().is_empty())
            .map(|hop| hop.trim().parse::<IpAddr>().map(canonical))
            .collect::<Vec<_>>();
        let mut client = socket;
        for hop in forwarded.into_iter().rev() {
            match hop {
                Ok(hop) if self.trusts(hop) => client = hop,
                Ok(hop) => return hop,
                // A hop that is not an address: nothing before it is
                // believable.
                Err(_) => return client,
            }
        }
        client
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, HeaderValue};

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn forwarded(lines: &[&'static str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for line in lines {
            headers.append("x-forwarded-for", HeaderValue::from_static(line));
        }
        headers
    }

    #[test]
    fn networks_parse_and_match() {
        let net: Network = "10.1.0.0/16".parse().unwrap();
        assert!(net.contains(ip("10.1.200.3")) && !net.contains(ip("10.2.0.1")));
        assert!(net.contains(ip("::ffff:10.1.0.9")), "IPv4-mapped");
        let one: Network = "192.0.2.7".parse().unwrap();
        assert!(one.contains(ip("192.0.2.7")) && !one.contains(ip("192.0.2.8")));
        assert!("fd00::/8".parse::<Network>().unwrap().contains(ip("fd12::1")));
        assert!("0.0.0.0/0".parse::<Network>().unwrap().contains(ip("8.8.8.8")));
        for bad in ["10.0.0.0/33", "proxy", "10.0.0/8", ""] {
            assert!(bad.parse::<Network>().is_err(), "{bad}");
        }
    }

    #[test]
    fn only_a_trusted_proxy_is_believed() {
        let proxies = TrustedProxies::new(vec!["10.0.0.0/8".parse().unwrap()]);
        let headers = forwarded(&["6.6.6.6, 203.0.113.9, 10.0.0.3"]);
        assert_eq!(proxies.client_ip(ip("10.0.0.2"), &headers), ip("203.0.113.9"), "the last untrusted hop");
        assert_eq!(proxies.client_ip(ip("198.51.100.1"), &headers), ip("198.51.100.1"), "an untrusted socket");
        assert_eq!(proxies.client_ip(ip("10.0.0.2"), &HeaderMap::new()), ip("10.0.0.2"), "no header");
        assert_eq!(proxies.client_ip(ip("10.0.0.2"), &forwarded(&["garbage, 10.0.0.5"])), ip("10.0.0.5"));
        assert_eq!(TrustedProxies::default().client_ip(ip("10.0.0.2"), &headers), ip("10.0.0.2"));
        // A forged line first, the proxy's own line after it.
        let two_lines = forwarded(&["1.2.3.4", "203.0.113.50"]);
        assert_eq!(proxies.client_ip(ip("10.0.0.2"), &two_lines), ip("203.0.113.50"));
    }

    #[test]
    fn a_trusted_proxy_without_the_header_is_noted() {
        let proxies = TrustedProxies::new(vec!["10.0.0.0/8".parse().unwrap()]);
        proxies.note_request(ip("198.51.100.1"), false);
        proxies.note_request(ip("10.0.0.2"), true);
        assert!(!proxies.unforwarded_seen(), "a client's own request, and a forwarded one");
        proxies.note_request(ip("::ffff:10.0.0.2"), false);
        assert!(proxies.unforwarded_seen());
    }
}
