//! Self-service identities: `POST /api/identities` mints a client id and a
//! token for it (no accounts: open a link and talk), and
//! `GET /api/identities/me` tells a client whether its token still holds
//! (a browser sees only 1006 when a handshake is refused).

use std::net::IpAddr;

use http::StatusCode;
use roomcast_shared::{ClientId, DisplayName, NameError};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use uuid::Uuid;

use crate::auth::limiter::PerIp;
use crate::auth::{AuthError, Claims, Tokens};

/// Whether anyone may mint an identity. An application that issues its own
/// tokens (with `groups`) turns this off, or anyone could mint a token
/// without `groups` and the claim would restrict nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum IdentitiesMode {
    On,
    Off,
}

/// Largest request body accepted (a name is at most 32 characters).
pub const MAX_BODY_BYTES: u64 = 4 * 1024;

/// Why no identity was issued.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("self-service identities are off on this server")]
    Off,
    #[error("too many new identities from this address; try again in a minute")]
    RateLimited,
    #[error("the body must be JSON like {{\"name\": \"Alice\"}} (name optional)")]
    BadBody,
    #[error("name: {0}")]
    BadName(NameError),
    #[error(transparent)]
    Auth(#[from] AuthError),
}

impl warp::reject::Reject for IdentityError {}

impl IdentityError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Off => StatusCode::FORBIDDEN,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::BadBody | Self::BadName(_) => StatusCode::BAD_REQUEST,
            Self::Auth(err) => err.status(),
        }
    }
}

#[derive(Debug, Deserialize)]
struct NewIdentity {
    #[serde(default)]
    name: Option<String>,
}

/// A new identity: the server picked the client id.
#[derive(Debug, Serialize, Deserialize)]
pub struct Issued {
    pub client_id: ClientId,
    pub token: String,
}

/// What a token says about its holder.
#[derive(Debug, Serialize, Deserialize)]
pub struct Me {
    pub client_id: ClientId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<DisplayName>,
}

/// Issues identities, within a limit per address.
#[derive(Debug)]
pub struct Issuer {
    mode: IdentitiesMode,
    per_ip: PerIp,
}

impl Issuer {
    pub fn new(mode: IdentitiesMode, per_minute: u32) -> Self {
        Self { mode, per_ip: PerIp::new(per_minute) }
    }

    /// `POST /api/identities` from `ip` with `body`: a token without `exp`
    /// or `groups` for a new client id.
    pub fn create(&self, body: &[u8], ip: Option<IpAddr>, tokens: &Tokens) -> Result<Issued, IdentityError> {
        if self.mode == IdentitiesMode::Off {
            return Err(IdentityError::Off);
        }
        let request: NewIdentity = if body.iter().all(u8::is_ascii_whitespace) {
            NewIdentity { name: None }
        } else {
            serde_json::from_slice(body).map_err(|_| IdentityError::BadBody)?
        };
        let name = request
            .name
            .filter(|name| !name.trim().is_empty())
            .map(|name| name.parse::<DisplayName>())
            .transpose()
            .map_err(IdentityError::BadName)?;
        // Without an address (not over TCP) there is nothing to count by.
        if let Some(ip) = ip {
            if !self.per_ip.try_take(ip, Instant::now()) {
                return Err(IdentityError::RateLimited);
            }
        }
        let client_id = ClientId(Uuid::new_v4());
        let token = tokens.issue(&Claims { name, ..Claims::for_client(client_id) });
        Ok(Issued { client_id, token })
    }
}

impl From<Claims> for Me {
    fn from(claims: Claims) -> Self {
        Self { client_id: claims.sub, name: claims.name }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Secret;

    fn ip() -> Option<IpAddr> {
        Some("10.1.2.3".parse().unwrap())
    }

    #[test]
    fn an_identity_is_a_token_for_a_new_client_id() {
        let tokens = Tokens::new(&Secret::generate());
        let issuer = Issuer::new(IdentitiesMode::On, 10);
        let issued = issuer.create(br#"{"name":"Ann"}"#, ip(), &tokens).unwrap();
        let claims = tokens.verify(&issued.token).unwrap();
        assert_eq!((claims.sub, claims.name.unwrap().as_str()), (issued.client_id, "Ann"));
        assert_eq!((claims.groups, claims.exp), (None, None));
        let anonymous = issuer.create(b"", ip(), &tokens).unwrap();
        assert_ne!(anonymous.client_id, issued.client_id);
        assert_eq!(tokens.verify(&anonymous.token).unwrap().name, None);
    }

    #[test]
    fn bad_bodies_and_names_are_refused() {
        let tokens = Tokens::new(&Secret::generate());
        let issuer = Issuer::new(IdentitiesMode::On, 10);
        assert!(matches!(issuer.create(b"{", ip(), &tokens), Err(IdentityError::BadBody)));
        let long = format!(r#"{{"name":"{}"}}"#, "x".repeat(40));
        assert!(matches!(issuer.create(long.as_bytes(), ip(), &tokens), Err(IdentityError::BadName(_))));
    }

    #[test]
    fn identities_can_be_off_and_are_limited_per_address() {
        let tokens = Tokens::new(&Secret::generate());
        let off = Issuer::new(IdentitiesMode::Off, 10);
        assert!(matches!(off.create(b"{}", ip(), &tokens), Err(IdentityError::Off)));
        let issuer = Issuer::new(IdentitiesMode::On, 2);
        assert!(issuer.create(b"{}", ip(), &tokens).is_ok() && issuer.create(b"{}", ip(), &tokens).is_ok());
        let refused = issuer.create(b"{}", ip(), &tokens).unwrap_err();
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    }
}
