//! The public parsers of a request's headers, before any route runs:
//! `Access` (the `Host` and `Origin` policy, built from the flags),
//! `Network` (`--trusted-proxies`) and `TrustedProxies::client_ip`
//! (`X-Forwarded-For`).
//!
//! The first input byte picks the part (its value modulo 3: `0`, `1` and `2`
//! as ASCII digits pick the policy, networks and forwarding); the rest
//! chooses values, near-valid ones mostly.
//!
//! Properties:
//! - a policy that builds answers the loopback names, refuses the `null`
//!   origin, answers a host whatever its case and port, and allows the
//!   request's own origin wherever it answers its host; a policy that does
//!   not build names the flag value it refuses;
//! - a network contains its own address, every address that differs only
//!   in the bits past its prefix, and none that differs in the last bit
//!   of it;
//! - the client address is the socket's unless a trusted proxy forwards
//!   one, is always the socket's or one of the forwarded addresses, and a
//!   header made only of addresses names the last one that is not a trusted
//!   proxy.

use std::net::{IpAddr, SocketAddr};

use arbitrary::Unstructured;
use http::{HeaderMap, HeaderValue};
use roomcast_backend::access::{Access, AccessConfigError, AccessError};
use roomcast_backend::net::client_ip::{canonical, Network, TrustedProxies};

use crate::harness::Target;
use crate::input::{one_in, one_of, some_bytes};

pub const TARGET: Target = Target {
    name: "access_headers",
    check,
    dictionary: &[
        "localhost",
        "127.0.0.1",
        "[::1]",
        "::ffff:",
        "[::ffff:127.0.0.1]",
        "http://",
        "https://",
        ":8000",
        "/8",
        "/0",
        "/128",
        "null",
        "*",
    ],
    max_len: 512,
};

pub fn check(data: &[u8]) {
    let Some((part, rest)) = data.split_first() else { return };
    let mut u = Unstructured::new(rest);
    match part % 3 {
        0 => policy(&mut u),
        1 => network(&mut u),
        _ => forwarding(&mut u),
    }
}

fn list(u: &mut Unstructured<'_>, known: &[&str]) -> Vec<String> {
    (0..u.choose_index(4).unwrap_or(0)).map(|_| one_of(u, known)).collect()
}

fn policy(u: &mut Unstructured<'_>) {
    let listen =
        one_of(u, &["127.0.0.1:8000", "0.0.0.0:8000", "[::]:8000", "192.168.1.20:80", "[::ffff:127.0.0.1]:8000"]);
    let listen: SocketAddr = listen.parse().unwrap_or_else(|_| "127.0.0.1:8000".parse().expect("an address"));
    let origins = list(u, &["https://app.example", "*", "http://localhost:8080", "chat.example", "ftp://x"]);
    let hosts = list(u, &["chat.example", "*", "10.9.8.7", "[2001:db8::1]:443", "bad/host", "CHAT.example:8000"]);
    let public = one_in(u, 2).then(|| one_of(u, &["https://chat.example.com", "http://[::1]:8000/", "nope"]));
    let access = match Access::new(listen, &origins, &hosts, public.as_deref()) {
        Ok(access) => access,
        Err(AccessConfigError::BadOrigin(text)) => {
            let given = origins.iter().chain(&public).any(|origin| origin.trim() == text || *origin == text);
            return assert!(given, "refused an origin {text:?} not given");
        }
        Err(AccessConfigError::BadHost(text)) => {
            return assert!(hosts.iter().any(|host| host.trim() == text), "refused a host {text:?} not given");
        }
    };
    for host in ["localhost", "127.0.0.1:8000", "[::1]:1", "LocalHost:65535", "[::ffff:7f00:1]"] {
        assert_eq!(access.check(Some(host), None), Ok(()), "{host} with {access:?}");
    }
    let host =
        one_of(u, &["localhost", "chat.example", "chat.example.com", "10.9.8.7", "192.168.1.21", "evil.example"]);
    let origin = one_in(u, 2).then(|| one_of(u, &["http://localhost:8000", "https://app.example", "null"]));
    let answered = access.check(Some(&host), None);
    assert_eq!(access.check(Some(&host.to_ascii_uppercase()), None), answered, "{host} in capitals");
    let _ = access.check(Some(&host), origin.as_deref());
    assert!(access.check(Some(&host), Some("null")).is_err(), "the null origin from {host}");
    // A plain name (no port, no brackets): its port does not matter, and its
    // own origin is allowed wherever it is answered.
    if host.is_empty() || !host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-') {
        return;
    }
    let port: u16 = u.arbitrary().unwrap_or(8000);
    let with_port = format!("{host}:{port}");
    assert_eq!(access.check(Some(&with_port), None), answered, "{with_port}");
    if answered.is_ok() {
        for origin in [format!("http://{with_port}"), format!("https://{host}")] {
            let own = if origin.starts_with("https") { host.clone() } else { with_port.clone() };
            assert_eq!(access.check(Some(&own), Some(&origin)), Ok(()), "{origin} from {own}");
        }
    } else {
        assert_eq!(answered, Err(AccessError::Host));
    }
}

fn network(u: &mut Unstructured<'_>) {
    let text =
        one_of(u, &["10.0.0.0/8", "192.0.2.7", "fd00::/8", "0.0.0.0/0", "::/0", "10.1.2.3/32", "2001:db8::1/128"]);
    let Ok(network) = text.parse::<Network>() else { return };
    let trimmed = text.trim();
    let (address, prefix) = trimmed.split_once('/').map_or((trimmed, None), |(a, p)| (a, Some(p)));
    let address: IpAddr = address.parse().expect("a network's address parses");
    let bits: u32 = if address.is_ipv4() { 32 } else { 128 };
    let prefix = prefix.map_or(bits, |prefix| prefix.parse().expect("a network's prefix parses"));
    assert!(prefix <= bits);
    assert!(network.contains(address), "{text} does not contain its own address");
    let noise: u128 = u.arbitrary().unwrap_or(0);
    let host_bits = bits - prefix;
    let host_mask = if host_bits == 0 { 0 } else { u128::MAX >> (128 - host_bits) };
    let (inside, outside) = match address {
        IpAddr::V4(v4) => {
            let base = u128::from(u32::from(v4));
            let at = |value: u128| IpAddr::from((value as u32).to_be_bytes());
            (at(base ^ (noise & host_mask)), (prefix > 0).then(|| at(base ^ (1 << host_bits))))
        }
        IpAddr::V6(v6) => {
            let base = u128::from(v6);
            let at = |value: u128| IpAddr::from(value.to_be_bytes());
            (at(base ^ (noise & host_mask)), (prefix > 0).then(|| at(base ^ (1 << host_bits))))
        }
    };
    // A v6 address that is IPv4-mapped is read as IPv4: not in a v6 network.
    if canonical(inside) == inside {
        assert!(network.contains(inside), "{text} does not contain {inside}");
    }
    if let Some(outside) = outside {
        assert!(!network.contains(outside), "{text} contains {outside}");
    }
}

fn forwarding(u: &mut Unstructured<'_>) {
    let socket = one_of(u, &["10.0.0.2", "198.51.100.1", "::ffff:10.0.0.2", "127.0.0.1", "::1", "fd00::7"]);
    let socket: IpAddr = socket.parse().unwrap_or(IpAddr::from([10, 0, 0, 2]));
    let trusted: Vec<Network> =
        list(u, &["10.0.0.0/8", "127.0.0.1", "fd00::/8", "0.0.0.0/0", "::/0", "203.0.113.0/24"])
            .iter()
            .filter_map(|text| text.parse().ok())
            .collect();
    let proxies = TrustedProxies::new(trusted);
    let mut headers = HeaderMap::new();
    for _ in 0..u.choose_index(4).unwrap_or(0) {
        let line = if one_in(u, 8) {
            HeaderValue::from_bytes(&some_bytes(u, 16))
        } else {
            HeaderValue::from_str(&one_of(u, &["203.0.113.9", "6.6.6.6, 10.0.0.3", "garbage, 10.0.0.5", "::1", " , "]))
        };
        if let Ok(line) = line {
            headers.append("x-forwarded-for", line);
        }
    }
    let client = proxies.client_ip(socket, &headers);
    if !proxies.trusts(socket) {
        return assert_eq!(client, canonical(socket));
    }
    // Each line's hops; a line that is not text is one hop that is not an
    // address.
    let hops: Vec<Option<IpAddr>> = headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|line| match line.to_str() {
            Ok(line) => {
                line.split(',').filter(|hop| !hop.trim().is_empty()).map(|hop| hop.trim().parse().ok()).collect()
            }
            Err(_) => vec![None],
        })
        .map(|hop| hop.map(canonical))
        .collect();
    assert!(
        client == canonical(socket) || hops.contains(&Some(client)),
        "{client} is neither the socket nor a forwarded address: {headers:?}"
    );
    // A header that is all addresses: the last one that is not a trusted
    // proxy, else the first (every hop a trusted proxy), else the socket.
    let Some(hops) = hops.into_iter().collect::<Option<Vec<IpAddr>>>() else { return };
    let expected = hops.iter().rev().find(|hop| !proxies.trusts(**hop)).or(hops.first()).copied();
    assert_eq!(client, expected.unwrap_or(canonical(socket)), "{headers:?}");
}
