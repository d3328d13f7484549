//! What the operator types, checked before it is sent: a client id to look
//! up, a disconnect's reason, a ban (whom, for how long, why).

use std::net::IpAddr;

use serde::Serialize;
use uuid::Uuid;

/// The ban lengths offered, in seconds.
pub const DURATIONS: [(&str, u64); 4] =
    [("10 minutes", 600), ("1 hour", 3_600), ("1 day", 86_400), ("7 days", 7 * 86_400)];

/// A client id as typed (a UUID; spaces around it are ignored).
pub fn client_id(text: &str) -> Result<Uuid, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("enter a client id".into());
    }
    Uuid::parse_str(text).map_err(|_| format!("not a client id (a UUID such as {}): {text}", Uuid::nil()))
}

/// `POST /admin/api/identities/{sub}/disconnect`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DisconnectRequest {
    pub reason: String,
}

impl DisconnectRequest {
    pub fn new(reason: &str) -> Self {
        Self { reason: reason.trim().to_owned() }
    }
}

/// `POST /admin/api/bans`: an identity, an address or network, or both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BanRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    pub duration_s: u64,
    pub reason: String,
}

impl BanRequest {
    /// A ban of `sub` and/or the address or network typed (`network`,
    /// empty for none) for `duration_s`, for `reason`.
    pub fn new(sub: Option<Uuid>, network: &str, duration_s: u64, reason: &str) -> Result<Self, String> {
        let network = self::network(network)?;
        if sub.is_none() && network.is_none() {
            return Err("look up a client to ban it, or enter an address or network".into());
        }
        if duration_s == 0 {
            return Err("choose how long the ban lasts".into());
        }
        Ok(Self { sub, network, duration_s, reason: reason.trim().to_owned() })
    }
}

/// An address (`203.0.113.7`, `2001:db8::1`) or network in CIDR form
/// (`203.0.113.0/24`), as typed; `None` when nothing was typed.
pub fn network(text: &str) -> Result<Option<String>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let wrong = || format!("not an address or network (such as 203.0.113.7 or 203.0.113.0/24): {text}");
    let (address, prefix) = match text.split_once('/') {
        Some((address, prefix)) => (address, Some(prefix)),
        None => (text, None),
    };
    let address: IpAddr = address.parse().map_err(|_| wrong())?;
    let most = if address.is_ipv4() { 32 } else { 128 };
    match prefix.map(str::parse::<u8>) {
        None => Ok(Some(address.to_string())),
        Some(Ok(bits)) if bits <= most => Ok(Some(format!("{address}/{bits}"))),
        Some(_) => Err(wrong()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_id_is_a_uuid() {
        let id = "5b0e6c1e-8a3f-4f4e-9b1a-1d2c3e4f5a6b";
        assert_eq!(client_id(&format!("  {id}\n")), Ok(id.parse().unwrap()));
        assert_eq!(client_id(" "), Err("enter a client id".into()));
        assert!(client_id("alice").unwrap_err().contains("not a client id"));
    }

    #[test]
    fn addresses_and_networks_are_checked_and_written_plainly() {
        assert_eq!(network(""), Ok(None));
        assert_eq!(network(" 203.0.113.7 "), Ok(Some("203.0.113.7".into())));
        assert_eq!(network("203.0.113.0/24"), Ok(Some("203.0.113.0/24".into())));
        assert_eq!(network("2001:DB8::/32"), Ok(Some("2001:db8::/32".into())));
        for wrong in ["203.0.113", "203.0.113.0/33", "2001:db8::/129", "example.com", "10.0.0.0/", "10.0.0.0/x"] {
            assert!(network(wrong).is_err(), "{wrong}");
        }
    }

    #[test]
    fn a_ban_names_an_identity_or_a_network() {
        let sub = Uuid::from_u128(1);
        let ban = BanRequest::new(Some(sub), "", 3_600, " spam ").unwrap();
        let json = serde_json::to_value(&ban).unwrap();
        assert_eq!(json, serde_json::json!({"sub": sub, "duration_s": 3600, "reason": "spam"}), "no network key");
        let ban = BanRequest::new(None, "203.0.113.0/24", 600, "").unwrap();
        let json = serde_json::to_value(&ban).unwrap();
        assert_eq!(json, serde_json::json!({"network": "203.0.113.0/24", "duration_s": 600, "reason": ""}));
        assert!(BanRequest::new(None, " ", 600, "x").is_err(), "nobody to ban");
        assert!(BanRequest::new(Some(sub), "nonsense", 600, "x").is_err());
        assert!(BanRequest::new(Some(sub), "", 0, "x").is_err());
    }

    #[test]
    fn the_durations_offered_run_from_minutes_to_a_week() {
        let seconds: Vec<u64> = DURATIONS.iter().map(|(_, s)| *s).collect();
        assert_eq!(seconds, [600, 3_600, 86_400, 604_800]);
    }

    #[test]
    fn a_disconnects_reason_is_trimmed() {
        let json = serde_json::to_value(DisconnectRequest::new(" go ")).unwrap();
        assert_eq!(json, serde_json::json!({"reason": "go"}));
    }
}
