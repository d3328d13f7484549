//! Self-service identities: `POST /api/identities` mints a client id and a
//! token for it (no accounts: open a link and talk),
//! `POST /api/identities/renew` gives a token's holder a new one before it
//! expires, and `GET /api/identities/me` tells a client whether its token
//! still holds (a browser sees only 1006 when a handshake is refused).

use std::net::IpAddr;

use http::StatusCode;
use roomcast_shared::{ClientId, DisplayName, NameError};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use uuid::Uuid;

use crate::auth::limiter::NewIdentitiesPerIp;
use crate::auth::token::unix_seconds;
use crate::auth::{AuthError, Claims, GroupPattern, Tokens};
use crate::http_error::{plain_response, HttpError};
use crate::metrics::Limited;

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

impl HttpError for IdentityError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Off => StatusCode::FORBIDDEN,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::BadBody | Self::BadName(_) => StatusCode::BAD_REQUEST,
            Self::Auth(err) => err.status(),
        }
    }

    fn limited(&self) -> Option<Limited> {
        matches!(self, Self::RateLimited).then_some(Limited::Identities)
    }

    /// An identity's own refusal answers as it would anywhere (a ban in
    /// JSON).
    fn response(&self) -> warp::reply::Response {
        match self {
            Self::Auth(err) => err.response(),
            _ => plain_response(self),
        }
    }
}

#[derive(Debug, Deserialize)]
struct NewIdentity {
    #[serde(default)]
    name: Option<String>,
}

/// A token issued: for a new identity (the server picked the client id),
/// or renewed for one.
#[derive(Debug, Serialize, Deserialize)]
pub struct Issued {
    pub client_id: ClientId,
    pub token: String,
    /// When the token expires, in Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
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
    per_ip: NewIdentitiesPerIp,
    policy: Policy,
}

/// What a self-service token says beyond its identity.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// How long it lasts, in seconds (`--identity-lifetime`).
    pub lifetime_seconds: u64,
    /// The groups it allows (`--identity-groups`; `None`: every group).
    pub groups: Option<Vec<GroupPattern>>,
}

impl Issuer {
    pub fn new(mode: IdentitiesMode, per_minute: u32, policy: Policy) -> Self {
        Self { mode, per_ip: NewIdentitiesPerIp::new(per_minute), policy }
    }

    /// `POST /api/identities` from `ip` with `body`: a token for a new
    /// client id, with the policy's lifetime and groups.
    pub fn create(&self, body: &[u8], ip: Option<IpAddr>, tokens: &Tokens) -> Result<Issued, IdentityError> {
        self.check_on()?;
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
        // A bad request does not count against the address's allowance.
        self.take_allowance(ip)?;
        let client_id = ClientId(Uuid::new_v4());
        Ok(self.issue(Claims { name, groups: self.policy.groups.clone(), ..Claims::for_client(client_id) }, tokens))
    }

    /// `POST /api/identities/renew` from `ip` by the holder of `current`
    /// (checked): a new token for the same identity, name and groups, a
    /// whole lifetime from now. A token from before `--identity-groups`
    /// gets the policy's groups; one with groups of its own keeps them.
    pub fn renew(&self, current: Claims, ip: Option<IpAddr>, tokens: &Tokens) -> Result<Issued, IdentityError> {
        self.check_on()?;
        self.take_allowance(ip)?;
        let groups = current.groups.or_else(|| self.policy.groups.clone());
        Ok(self.issue(Claims { name: current.name, groups, ..Claims::for_client(current.sub) }, tokens))
    }

    fn check_on(&self) -> Result<(), IdentityError> {
        match self.mode {
            IdentitiesMode::On => Ok(()),
            IdentitiesMode::Off => Err(IdentityError::Off),
        }
    }

    /// One token for `ip`, within its limit. Without an address (not over
    /// TCP) there is nothing to count by.
    fn take_allowance(&self, ip: Option<IpAddr>) -> Result<(), IdentityError> {
        match ip {
            Some(ip) if !self.per_ip.try_take(ip, Instant::now()) => Err(IdentityError::RateLimited),
            _ => Ok(()),
        }
    }

    fn issue(&self, claims: Claims, tokens: &Tokens) -> Issued {
        let claims = claims.issued(unix_seconds(), self.policy.lifetime_seconds);
        Issued { client_id: claims.sub, token: tokens.issue(&claims), expires_at: claims.exp }
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

    fn policy() -> Policy {
        Policy { lifetime_seconds: 30 * 86_400, groups: None }
    }

    #[test]
    fn an_identity_is_a_token_for_a_new_client_id() {
        let tokens = Tokens::new(&Secret::generate());
        let issuer = Issuer::new(IdentitiesMode::On, 10, policy());
        let issued = issuer.create(br#"{"name":"Ann"}"#, ip(), &tokens).unwrap();
        let claims = tokens.verify(&issued.token).unwrap();
        assert_eq!((claims.sub, claims.name.as_ref().unwrap().as_str()), (issued.client_id, "Ann"));
        assert_eq!(claims.groups, None);
        let iat = claims.iat.expect("issued at");
        assert_eq!((claims.exp, issued.expires_at), (Some(iat + 30 * 86_400), claims.exp), "it expires");
        let anonymous = issuer.create(b"", ip(), &tokens).unwrap();
        assert_ne!(anonymous.client_id, issued.client_id);
        assert_eq!(tokens.verify(&anonymous.token).unwrap().name, None);
    }

    #[test]
    fn bad_bodies_and_names_are_refused() {
        let tokens = Tokens::new(&Secret::generate());
        let issuer = Issuer::new(IdentitiesMode::On, 10, policy());
        assert!(matches!(issuer.create(b"{", ip(), &tokens), Err(IdentityError::BadBody)));
        let long = format!(r#"{{"name":"{}"}}"#, "x".repeat(40));
        assert!(matches!(issuer.create(long.as_bytes(), ip(), &tokens), Err(IdentityError::BadName(_))));
    }

    #[test]
    fn identities_can_be_off_and_are_limited_per_address() {
        let tokens = Tokens::new(&Secret::generate());
        let off = Issuer::new(IdentitiesMode::Off, 10, policy());
        assert!(matches!(off.create(b"{}", ip(), &tokens), Err(IdentityError::Off)));
        let mine = Claims::for_client(ClientId(Uuid::new_v4()));
        assert!(matches!(off.renew(mine, ip(), &tokens), Err(IdentityError::Off)));
        let issuer = Issuer::new(IdentitiesMode::On, 2, policy());
        assert!(issuer.create(b"{}", ip(), &tokens).is_ok() && issuer.create(b"{}", ip(), &tokens).is_ok());
        let refused = issuer.create(b"{}", ip(), &tokens).unwrap_err();
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    }

    #[test]
    fn a_renewal_keeps_the_identity_and_sets_a_new_lifetime() {
        let tokens = Tokens::new(&Secret::generate());
        let team: Vec<GroupPattern> = vec!["team-*".parse().unwrap()];
        let issuer = Issuer::new(IdentitiesMode::On, 10, Policy { groups: Some(team.clone()), ..policy() });
        let legacy = Claims { name: Some("Ann".parse().unwrap()), ..Claims::for_client(ClientId(Uuid::new_v4())) };
        let renewed = tokens.verify(&issuer.renew(legacy.clone(), ip(), &tokens).unwrap().token).unwrap();
        assert_eq!((renewed.sub, renewed.name.clone()), (legacy.sub, legacy.name));
        assert_eq!(renewed.groups, Some(team), "a token from before the policy gets its groups");
        assert!(renewed.exp.is_some() && renewed.iat.is_some());
        let narrow = Claims { groups: Some(vec!["lobby".parse().unwrap()]), ..renewed };
        let again = tokens.verify(&issuer.renew(narrow.clone(), ip(), &tokens).unwrap().token).unwrap();
        assert_eq!(again.groups, narrow.groups, "never widened");
    }
}
