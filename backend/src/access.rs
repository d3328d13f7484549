//! Which hosts and origins the server answers: the `Host` check defeats DNS
//! rebinding (a page whose own DNS name is pointed at this server, so that
//! the browser calls it same-origin), the `Origin` check cross-site
//! WebSocket hijacking (a page elsewhere opening sockets or API calls with
//! its visitor's browser).
//!
//! # Rules
//! - `Host` (any port) must be one of: the `--public-url` host,
//!   `--allowed-hosts`, the listen address itself, or a loopback name
//!   (`localhost`, `127.0.0.1`, `[::1]`; IPv4-mapped loopback counts).
//!   On a wildcard listen address (`0.0.0.0`, `[::]`) "the listen address"
//!   is every address of the machine, so any IP literal is answered. A
//!   rebinding page needs a DNS name, so without either flag a wildcard
//!   listener answers no DNS name but `localhost` (it says so once at
//!   start). `--allowed-hosts '*'` answers any host. Refused: `421`.
//! - On `/ws/…` and `/api/…`, an `Origin` header must be the request's own
//!   origin (its host and port equal `Host`, default ports normalized), one
//!   of `--allowed-origins` (`*`: any), or, in debug builds, a `trunk serve`
//!   origin. `null` is refused; no `Origin` (a non-browser client) is
//!   allowed. Refused: `403`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use http::StatusCode;

use crate::http_error::HttpError;
use crate::net::client_ip::canonical;

/// The `trunk serve` origins of the development loop (debug builds only).
const DEV_ORIGINS: [&str; 2] = ["http://127.0.0.1:8080", "http://localhost:8080"];

/// Hosts every listener answers: they reach this machine whatever DNS says.
const LOOPBACK_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "[::1]"];

/// Why a request was refused before anything else was looked at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    #[error("this server does not answer for that host name; name it with --public-url or --allowed-hosts")]
    Host,
    #[error("requests from that origin are not allowed (see --allowed-origins)")]
    Origin,
}

impl warp::reject::Reject for AccessError {}

impl HttpError for AccessError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Host => StatusCode::MISDIRECTED_REQUEST,
            Self::Origin => StatusCode::FORBIDDEN,
        }
    }
}

/// A flag value that is not a usable origin or host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessConfigError {
    #[error("{0:?} is not an origin like https://chat.example.com")]
    BadOrigin(String),
    #[error("{0:?} is not a host name")]
    BadHost(String),
}

/// `scheme://host[:port]`, lowercase, the port explicit.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

impl Origin {
    fn parse(text: &str) -> Option<Self> {
        let (scheme, rest) = text.trim().split_once("://")?;
        let scheme = scheme.to_ascii_lowercase();
        let default = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => return None,
        };
        let (host, port) = split_host(rest.strip_suffix('/').unwrap_or(rest))?;
        Some(Self { scheme, host, port: port.unwrap_or(default) })
    }

    fn default_port(&self) -> u16 {
        if self.scheme == "https" {
            443
        } else {
            80
        }
    }
}

/// `host[:port]` (IPv6 in brackets) → lowercase host and the port, if any.
fn split_host(text: &str) -> Option<(String, Option<u16>)> {
    if text.is_empty() || text.contains(['/', '?', '#', '@', ' ']) {
        return None;
    }
    let (host, port) = match text.rfind(':') {
        Some(colon) if !text[colon..].contains(']') => (&text[..colon], Some(text[colon + 1..].parse().ok()?)),
        _ => (text, None),
    };
    (!host.is_empty()).then(|| (host.to_ascii_lowercase(), port))
}

/// An IP literal as a `Host` names it (`127.0.0.1`, `[::1]`), IPv4-mapped
/// addresses as IPv4 (so `[::ffff:127.0.0.1]` is loopback); `None` for a
/// DNS name.
fn ip_literal(host: &str) -> Option<IpAddr> {
    let ip = match host.strip_prefix('[').and_then(|host| host.strip_suffix(']')) {
        Some(v6) => IpAddr::V6(v6.parse::<Ipv6Addr>().ok()?),
        None => IpAddr::V4(host.parse::<Ipv4Addr>().ok()?),
    };
    Some(canonical(ip))
}

/// The hosts answered.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Hosts {
    /// `--allowed-hosts '*'`.
    Any,
    /// These DNS names and addresses; with `any_ip`, every IP literal.
    Only { names: Vec<String>, ips: Vec<IpAddr>, any_ip: bool },
}

impl Hosts {
    /// The loopback names, the listen address and the flags' hosts.
    fn new(listen: SocketAddr, allowed_hosts: &[String], public_host: Option<&str>) -> Result<Self, AccessConfigError> {
        let allowed: Vec<&str> = allowed_hosts.iter().map(|text| text.trim()).filter(|text| !text.is_empty()).collect();
        if allowed.contains(&"*") {
            return Ok(Self::Any);
        }
        let mut hosts = LOOPBACK_HOSTS.map(str::to_owned).to_vec();
        for text in &allowed {
            let (host, _) = split_host(text).ok_or_else(|| AccessConfigError::BadHost((*text).to_owned()))?;
            hosts.push(host);
        }
        hosts.extend(public_host.map(str::to_owned));
        let (mut names, mut ips) = (Vec::new(), Vec::new());
        for host in hosts {
            match ip_literal(&host) {
                Some(ip) => ips.push(ip),
                None => names.push(host),
            }
        }
        let listen_ip = canonical(listen.ip());
        // A wildcard listener is reached at any address of the machine, and
        // an IP literal cannot be rebound: only DNS names need the list.
        let any_ip = listen_ip.is_unspecified();
        if !any_ip {
            ips.push(listen_ip);
        } else if allowed.is_empty() && public_host.is_none() {
            tracing::warn!(
                %listen,
                "listening on a wildcard address without --public-url or --allowed-hosts: only IP addresses and \
                 localhost are answered as Host, a DNS name gets 421 (a DNS rebinding page needs one)"
            );
        }
        Ok(Self::Only { names, ips, any_ip })
    }

    /// Whether `host` (lowercase, without its port) is answered.
    fn answer(&self, host: Option<&str>) -> bool {
        let Self::Only { names, ips, any_ip } = self else { return true };
        host.is_some_and(|host| match ip_literal(host) {
            Some(ip) => *any_ip || ips.contains(&ip),
            None => names.iter().any(|name| name == host),
        })
    }
}

/// The Host and Origin policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    hosts: Hosts,
    any_origin: bool,
    origins: Vec<Origin>,
}

impl Access {
    /// The policy for a server on `listen` with the given flags (empty
    /// lists: the defaults). `public_url` adds its origin and its host.
    pub fn new(
        listen: SocketAddr,
        allowed_origins: &[String],
        allowed_hosts: &[String],
        public_url: Option<&str>,
    ) -> Result<Self, AccessConfigError> {
        let mut origins = Vec::new();
        let mut any_origin = false;
        for text in allowed_origins.iter().map(|t| t.trim()).filter(|t| !t.is_empty()) {
            if text == "*" {
                any_origin = true;
            } else {
                origins.push(Origin::parse(text).ok_or_else(|| AccessConfigError::BadOrigin(text.to_owned()))?);
            }
        }
        if cfg!(debug_assertions) {
            origins.extend(DEV_ORIGINS.iter().filter_map(|origin| Origin::parse(origin)));
        }
        let public = public_url
            .map(|url| Origin::parse(url).ok_or_else(|| AccessConfigError::BadOrigin(url.to_owned())))
            .transpose()?;
        let hosts = Hosts::new(listen, allowed_hosts, public.as_ref().map(|origin| origin.host.as_str()))?;
        origins.extend(public);
        Ok(Self { hosts, any_origin, origins })
    }

    /// Checks the `Host` header and, where cross-origin use matters (the
    /// socket and the API), the `Origin` header.
    pub fn check(&self, host: Option<&str>, origin: Option<&str>) -> Result<(), AccessError> {
        let host = host.and_then(split_host);
        if !self.hosts.answer(host.as_ref().map(|(name, _)| name.as_str())) {
            return Err(AccessError::Host);
        }
        let Some(origin) = origin else { return Ok(()) };
        if self.any_origin && origin != "null" {
            return Ok(());
        }
        let origin = Origin::parse(origin).ok_or(AccessError::Origin)?;
        let same_origin = host
            .is_some_and(|(name, port)| name == origin.host && port.unwrap_or(origin.default_port()) == origin.port);
        if same_origin || self.origins.contains(&origin) {
            Ok(())
        } else {
            Err(AccessError::Origin)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback() -> SocketAddr {
        "127.0.0.1:8000".parse().unwrap()
    }

    /// A request's headers as the route hands them over.
    struct Request<'a> {
        host: Option<&'a str>,
        origin: Option<&'a str>,
    }

    fn request<'a>(host: &'a str, origin: Option<&'a str>) -> Request<'a> {
        Request { host: Some(host), origin }
    }

    impl Access {
        /// `cross_origin_matters`: the socket and API paths.
        fn check_request(&self, request: &Request<'_>, cross_origin_matters: bool) -> Result<(), AccessError> {
            self.check(request.host, request.origin.filter(|_| cross_origin_matters))
        }
    }

    #[test]
    fn a_loopback_server_answers_loopback_names_only() {
        let access = Access::new(loopback(), &[], &[], None).unwrap();
        for host in ["localhost:8000", "127.0.0.1:8000", "[::1]:8000", "LOCALHOST", "127.0.0.1"] {
            assert_eq!(access.check_request(&request(host, None), true), Ok(()), "{host}");
        }
        for host in ["evil.example", "evil.example:8000", "127.0.0.2:8000"] {
            assert_eq!(access.check_request(&request(host, None), false), Err(AccessError::Host), "{host}");
        }
        assert_eq!(access.check(None, None), Err(AccessError::Host), "no Host at all");
        let mapped = Access::new("[::ffff:127.0.0.1]:8000".parse().unwrap(), &[], &[], None).unwrap();
        assert_eq!(mapped, access, "IPv4-mapped loopback is loopback");
        assert_eq!(access.check(Some("[::ffff:127.0.0.1]:8000"), None), Ok(()));
        assert_eq!(access.check(Some("[::ffff:7f00:1]:8000"), None), Ok(()), "as a browser writes it");
    }

    #[test]
    fn a_wildcard_listener_without_flags_answers_ip_literals_and_localhost_only() {
        for listen in ["0.0.0.0:8000", "[::]:8000"] {
            let access = Access::new(listen.parse().unwrap(), &[], &[], None).unwrap();
            for host in ["192.168.1.20:8000", "10.0.0.1", "[2001:db8::1]:8000", "localhost:8000", "127.0.0.1"] {
                assert_eq!(access.check(Some(host), None), Ok(()), "{listen} {host}");
            }
            for host in ["rebind.evil.example:8000", "chat.example", "192.168.1.20.nip.io", "localhost.evil.example"] {
                assert_eq!(access.check(Some(host), None), Err(AccessError::Host), "{listen} {host}");
            }
        }
    }

    #[test]
    fn the_flags_add_names_and_the_wildcard_answers_any() {
        let hosts = ["chat.example".to_owned(), "10.9.8.7".to_owned()];
        let lan = Access::new("192.168.1.20:8000".parse().unwrap(), &[], &hosts, None).unwrap();
        for host in ["192.168.1.20:8000", "chat.example", "CHAT.example:443", "10.9.8.7", "localhost"] {
            assert_eq!(lan.check(Some(host), None), Ok(()), "{host}");
        }
        for host in ["192.168.1.21:8000", "evil.example"] {
            assert_eq!(lan.check(Some(host), None), Err(AccessError::Host), "{host}");
        }
        let wildcard = Access::new("0.0.0.0:8000".parse().unwrap(), &[], &hosts, None).unwrap();
        assert_eq!(wildcard.check(Some("192.168.1.21"), None), Ok(()), "any address of the machine");
        assert_eq!(wildcard.check(Some("evil.example"), None), Err(AccessError::Host));
        let any = Access::new(loopback(), &[], &["*".to_owned()], None).unwrap();
        assert_eq!(any.check(Some("evil.example"), None), Ok(()));
        assert_eq!(any.check(None, None), Ok(()));
    }

    #[test]
    fn the_requests_own_origin_is_allowed_with_ports_normalized() {
        let access = Access::new("0.0.0.0:80".parse().unwrap(), &[], &["chat.example".to_owned()], None).unwrap();
        assert_eq!(access.check_request(&request("chat.example", Some("http://chat.example")), true), Ok(()));
        assert_eq!(access.check_request(&request("chat.example:80", Some("http://chat.example")), true), Ok(()));
        assert_eq!(access.check_request(&request("chat.example", Some("https://chat.example:443")), true), Ok(()));
        assert_eq!(
            access.check_request(&request("chat.example:8000", Some("http://chat.example")), true),
            Err(AccessError::Origin)
        );
        assert_eq!(
            access.check_request(&request("chat.example", Some("http://evil.example")), true),
            Err(AccessError::Origin)
        );
        assert_eq!(access.check_request(&request("chat.example", Some("null")), true), Err(AccessError::Origin));
        assert_eq!(access.check_request(&request("chat.example", None), true), Ok(()), "no Origin: not a browser");
        assert_eq!(
            access.check_request(&request("chat.example", Some("http://evil.example")), false),
            Ok(()),
            "static files"
        );
    }

    #[test]
    fn listed_origins_and_the_wildcard() {
        let listed = ["https://app.example".to_owned()];
        let access = Access::new("0.0.0.0:8000".parse().unwrap(), &listed, &["api.example".to_owned()], None).unwrap();
        assert_eq!(access.check_request(&request("api.example", Some("https://app.example")), true), Ok(()));
        assert_eq!(access.check_request(&request("api.example", Some("https://APP.example:443/")), true), Ok(()));
        assert_eq!(
            access.check_request(&request("api.example", Some("http://app.example")), true),
            Err(AccessError::Origin)
        );
        let any = Access::new(loopback(), &["*".to_owned()], &[], None).unwrap();
        assert_eq!(any.check_request(&request("localhost", Some("http://anywhere.example")), true), Ok(()));
        assert_eq!(any.check_request(&request("localhost", Some("null")), true), Err(AccessError::Origin));
    }

    #[test]
    fn a_public_url_behind_a_proxy_sets_both() {
        let access = Access::new(loopback(), &[], &[], Some("https://chat.example.com")).unwrap();
        let proxied = request("chat.example.com", Some("https://chat.example.com"));
        assert_eq!(access.check_request(&proxied, true), Ok(()));
        assert_eq!(access.check_request(&request("localhost:8000", None), true), Ok(()), "still reachable locally");
        assert_eq!(access.check_request(&request("evil.example", None), true), Err(AccessError::Host));
    }

    #[test]
    fn bad_flag_values_are_refused() {
        assert!(Access::new(loopback(), &["chat.example".to_owned()], &[], None).is_err());
        assert!(Access::new(loopback(), &["ftp://chat.example".to_owned()], &[], None).is_err());
        assert!(Access::new(loopback(), &[], &["bad/host".to_owned()], None).is_err());
        assert!(Access::new(loopback(), &[], &[], Some("nope")).is_err());
    }
}
