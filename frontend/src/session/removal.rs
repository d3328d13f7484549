//! An operator's removal of this browser's connections (the admin API), as
//! the server tells it:
//!
//! - on an open connection, a `removed` event, then the close: 4010 (the
//!   identity was disconnected: the link reconnects with its backoff) or
//!   4403 after a `removed` with `until_ms` (a ban: the link stops);
//! - to a browser that comes back while banned, whose handshake the server
//!   refuses with 403 (which a browser cannot see): the answer to
//!   `GET /api/identities/me`, or to `POST /api/identities` from a banned
//!   address, is a 403 with `{"error":"banned","until_ms":…,"reason":…}`.
//!
//! A ban keeps the identity: the server refuses it only until then, and a
//! new identity would be refused as well when the ban is on the address.

use roomcast_shared::close;
use serde::Deserialize;

/// A close without a close frame, as the browser reports it.
const ABNORMAL: u16 = 1006;

/// What a `removed` event said, kept until the close that follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    /// The operator's reason (may be empty).
    pub reason: String,
    /// Refused until then (Unix ms): a ban. `None`: a disconnect.
    pub until_ms: Option<u64>,
}

impl Removal {
    /// The ban this removal is: a `removed` with an end, whatever close
    /// followed it (`code`: 4403, or the connection lost before its close
    /// frame came, which the browser reports as 1006; the server sends such
    /// a `removed` only when it bans). A 4403 alone is a revocation.
    pub fn ban(&self, code: u16) -> Option<Ban> {
        let until_ms = self.until_ms.filter(|_| code == close::IDENTITY_REVOKED || code == ABNORMAL)?;
        Some(Ban { until_ms, reason: self.reason.clone() })
    }

    /// Whether the close with `code` was this operator's disconnect.
    pub fn disconnected(&self, code: u16) -> bool {
        self.until_ms.is_none() && code == close::DISCONNECTED
    }
}

/// This identity (or its address) is banned: the server refuses it until
/// `until_ms` (Unix ms), for `reason` (may be empty).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Ban {
    pub until_ms: u64,
    #[serde(default)]
    pub reason: String,
}

/// The body of a refusal that is a ban.
#[derive(Deserialize)]
struct Refusal {
    error: String,
    #[serde(flatten)]
    ban: Ban,
}

impl Ban {
    /// The ban a 403's body describes (`{"error":"banned","until_ms":…,
    /// "reason":…}`); `None` for any other body (another 403, such as a
    /// server without self-service identities).
    pub fn of_body(body: &str) -> Option<Self> {
        serde_json::from_str::<Refusal>(body).ok().filter(|refusal| refusal.error == "banned").map(|r| r.ban)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn removal(reason: &str, until_ms: Option<u64>) -> Removal {
        Removal { reason: reason.into(), until_ms }
    }

    #[test]
    fn a_removal_with_an_end_then_4403_is_a_ban() {
        let banned = removal("spam", Some(1_700_000_000_000));
        let ban = Ban { until_ms: 1_700_000_000_000, reason: "spam".into() };
        assert_eq!(banned.ban(close::IDENTITY_REVOKED), Some(ban.clone()));
        assert_eq!(banned.ban(1006), Some(ban.clone()), "its close frame lost: the ban was told all the same");
        assert_eq!(banned.ban(1000), None, "a close of its own: not the operator's");
        assert!(!banned.disconnected(close::DISCONNECTED));
    }

    #[test]
    fn a_removal_without_an_end_is_a_disconnect() {
        let disconnected = removal("", None);
        assert!(disconnected.disconnected(close::DISCONNECTED));
        assert!(!disconnected.disconnected(1006));
        assert_eq!(disconnected.ban(close::IDENTITY_REVOKED), None, "a 4403 without an end is a revocation");
    }

    #[test]
    fn a_banned_refusal_is_read_from_its_body() {
        let body = r#"{"error":"banned","until_ms":1700000000000,"reason":"flooding"}"#;
        assert_eq!(Ban::of_body(body), Some(Ban { until_ms: 1_700_000_000_000, reason: "flooding".into() }));
        let no_reason = r#"{"error":"banned","until_ms":5}"#;
        assert_eq!(Ban::of_body(no_reason), Some(Ban { until_ms: 5, reason: String::new() }));
    }

    #[test]
    fn other_refusals_are_not_bans() {
        for body in [
            "",
            "self-service identities are off",
            r#"{"error":"forbidden","until_ms":5}"#,
            r#"{"error":"banned"}"#,
            r#"{"error":"banned","until_ms":"soon"}"#,
        ] {
            assert_eq!(Ban::of_body(body), None, "{body}");
        }
    }
}
