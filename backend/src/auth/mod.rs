//! Who may connect: identities the server signs, checked at the handshake
//! and on the history API.
//!
//! - [`secret`]: the signing secret, from `--secret` or a file kept beside
//!   the database (created once, mode 0600), so tokens survive restarts.
//! - [`token`]: HS256 JWTs and their claims (`sub`, `name`, `groups`,
//!   `exp`), through `jsonwebtoken`.
//! - [`limiter`]: self-service identities per IP address.
//! - [`revocations`]: identities whose earlier tokens are refused.
//! - [`bans`]: identities, addresses and networks refused until a time.
//! - [`direct`]: direct message groups, for their two participants only.
//! - [`ticket`]: session tickets, the token's stand-in in a plain
//!   `EventSource`'s URL.
//!
//! # Invariants
//! - A connection is `verified` only with a valid token whose `sub` is the
//!   client id in its path; under `--auth required` every connection is.
//! - A token's `groups` bound every group it joins, reads or publishes to.
//! - A direct message group admits its two verified participants only
//!   ([`direct::admit`], on every entry).
//! - A banned identity is refused wherever its token is checked, with 403
//!   and a JSON body saying until when; a banned address or network at
//!   every handshake and where identities are made or shown.
//! - A ticket opens one event stream (its group, client id and address)
//!   and nothing else; it is refused as a token.
//! - Tokens are never logged (nor are query strings, which carry tickets).

pub(crate) mod bans;
pub(crate) mod direct;
pub(crate) mod limiter;
pub(crate) mod revocations;
pub(crate) mod secret;
pub(crate) mod ticket;
pub(crate) mod token;

use std::net::IpAddr;

use http::StatusCode;
use roomcast_shared::{ClientId, DisplayName, GroupName, ROOMS_STREAM};
use warp::reply::Response;
use warp::Reply;

use crate::ban::Ban;
use crate::http_error::{plain_response, HttpError};
use crate::queue::Removal;

pub use bans::{Bans, MAX_BANS};
pub use direct::DirectError;
pub use revocations::Revocations;
pub use secret::{Secret, SecretError};
pub use ticket::{TicketError, TicketScope, Tickets};
pub use token::{Claims, GroupPattern, TokenError, Tokens};

/// Whether connections must present a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthMode {
    /// A valid token for the path's client id (the default).
    Required,
    /// Anyone may connect; only connections with a valid token are
    /// verified (the seeds' tutorial pages, local experiments).
    Open,
}

/// Why a request was not admitted (HTTP 401 or 403).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("a token is required (the `token` query parameter, or `Authorization: Bearer` on the API)")]
    Missing,
    #[error("the token is not valid: {0}")]
    Invalid(TokenError),
    #[error("the token is for another client id")]
    OtherClient,
    #[error("the token does not allow this group")]
    GroupNotAllowed,
    #[error(transparent)]
    Direct(#[from] DirectError),
    /// The identity, or the address it comes from, is banned.
    #[error("removed from this server until {until_ms} (Unix ms)")]
    Banned { until_ms: u64, reason: String },
    #[error(transparent)]
    Ticket(#[from] TicketError),
}

impl AuthError {
    fn banned(ban: Ban) -> Self {
        Self::Banned { until_ms: ban.until_ms, reason: ban.reason }
    }
}

impl warp::reject::Reject for AuthError {}

impl HttpError for AuthError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Missing | Self::Invalid(_) => StatusCode::UNAUTHORIZED,
            Self::OtherClient | Self::GroupNotAllowed | Self::Banned { .. } => StatusCode::FORBIDDEN,
            Self::Direct(err) => err.status(),
            Self::Ticket(TicketError::NotATicket | TicketError::Used | TicketError::Late) => StatusCode::UNAUTHORIZED,
            Self::Ticket(TicketError::OtherStream) => StatusCode::FORBIDDEN,
            Self::Ticket(TicketError::Busy) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// A ban answers in JSON, for the app to say until when.
    fn response(&self) -> Response {
        match self {
            Self::Banned { until_ms, reason } => {
                let body = serde_json::json!({ "error": "banned", "until_ms": until_ms, "reason": reason });
                warp::reply::with_status(warp::reply::json(&body), self.status()).into_response()
            }
            _ => plain_response(self),
        }
    }
}

/// What a request proved about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    /// The token's claims; `None` for a tokenless request under
    /// [`AuthMode::Open`].
    pub claims: Option<Claims>,
}

impl Admitted {
    pub fn verified(&self) -> bool {
        self.claims.is_some()
    }

    /// The display name the token sets, which wins over `?name=`.
    pub fn name(&self) -> Option<&DisplayName> {
        self.claims.as_ref().and_then(|claims| claims.name.as_ref())
    }
}

/// The admission policy: the mode, the keys to check tokens with, and
/// the revoked identities.
#[derive(Debug)]
pub struct Auth {
    mode: AuthMode,
    tokens: Tokens,
    revocations: std::sync::Arc<Revocations>,
    bans: std::sync::Arc<Bans>,
    tickets: Tickets,
}

impl Auth {
    pub fn new(
        mode: AuthMode,
        tokens: Tokens,
        revocations: std::sync::Arc<Revocations>,
        bans: std::sync::Arc<Bans>,
    ) -> Self {
        Self { mode, tokens, revocations, bans, tickets: Tickets::default() }
    }

    /// Refuses an address (or network) that is banned now: checked at
    /// every handshake and wherever identities are made or shown.
    pub fn check_address(&self, ip: IpAddr) -> Result<(), AuthError> {
        self.bans.refusing(None, Some(ip)).map_or(Ok(()), |ban| Err(AuthError::banned(ban)))
    }

    /// How a member of `sub` (when verified) from `ip` is removed now, if
    /// a ban refuses it.
    pub fn removal_of(&self, sub: Option<ClientId>, ip: IpAddr) -> Option<Removal> {
        let ban = self.bans.refusing(sub, Some(ip))?;
        Some(Removal::Banned { until_ms: ban.until_ms, reason: ban.reason.into() })
    }

    /// Refuses `claims` whose identity is banned now.
    fn check_identity(&self, claims: &Claims) -> Result<(), AuthError> {
        self.bans.refusing(Some(claims.sub), None).map_or(Ok(()), |ban| Err(AuthError::banned(ban)))
    }

    pub fn tokens(&self) -> &Tokens {
        &self.tokens
    }

    pub fn revocations(&self) -> &Revocations {
        &self.revocations
    }

    /// The claims of `token`: signed by this server, within its times, and
    /// not revoked.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let claims = self.signed(token)?;
        if claims.tkt.is_some() {
            return Err(TokenError::Ticket);
        }
        Ok(claims)
    }

    /// The claims of `token` or ticket, signed by this server, within its
    /// times, and not revoked.
    fn signed(&self, token: &str) -> Result<Claims, TokenError> {
        let claims = self.tokens.verify(token)?;
        if self.revocations.refuses(&claims) {
            return Err(TokenError::Revoked);
        }
        Ok(claims)
    }

    /// A ticket for the event stream of `group` (raw, as in its path), for
    /// the holder of `claims` (checked by [`Auth::admit_member`] or
    /// [`Auth::admit_stream`]) asking from `ip`.
    pub fn issue_ticket(&self, claims: &Claims, group: &str, ip: IpAddr) -> (String, Claims) {
        let ticket = ticket_claims(claims, group, ip, token::unix_seconds());
        (self.tokens.issue(&ticket), ticket)
    }

    /// An event stream opened with a ticket instead of a token: the
    /// ticket's own group, client id and address; a first open once and in
    /// time, a reconnect (`resuming`: it names its `Last-Event-ID`) while
    /// the ticket lasts; and whatever a token would be refused for.
    pub fn admit_ticket(
        &self,
        ticket: &str,
        client_id: &str,
        group: &str,
        ip: IpAddr,
        resuming: bool,
    ) -> Result<Admitted, AuthError> {
        let claims = self.signed(ticket).map_err(AuthError::Invalid)?;
        let scope = claims.tkt.as_ref().ok_or(TicketError::NotATicket)?;
        if client_id.parse::<ClientId>().ok() != Some(claims.sub) {
            return Err(AuthError::OtherClient);
        }
        self.tickets.admit(scope, group, ip, resuming, token::unix_seconds())?;
        self.check_identity(&claims)?;
        Ok(Admitted { claims: Some(claims) })
    }

    /// A socket handshake for the raw path segments `client_id` and `group`
    /// (checked before the path itself is validated, as the order of
    /// refusals is Host, Origin, token, then the request's own validity);
    /// `with` names the other participant of a direct message group.
    pub fn admit_member(
        &self,
        token: Option<&str>,
        client_id: &str,
        group: &str,
        with: Option<&str>,
    ) -> Result<Admitted, AuthError> {
        let admitted = self.admit_reader(token, group, with)?;
        if let Some(claims) = &admitted.claims {
            if client_id.parse::<ClientId>().ok() != Some(claims.sub) {
                return Err(AuthError::OtherClient);
            }
        }
        Ok(admitted)
    }

    /// A reader of `group` (the history API): any identity the token's
    /// `groups` allow; of a direct message group, one of its participants
    /// (`with` the other).
    pub fn admit_reader(&self, token: Option<&str>, group: &str, with: Option<&str>) -> Result<Admitted, AuthError> {
        let claims = match (token.filter(|token| !token.is_empty()), self.mode) {
            (Some(token), _) => Some(self.verify(token).map_err(AuthError::Invalid)?),
            (None, AuthMode::Required) => return Err(AuthError::Missing),
            (None, AuthMode::Open) => None,
        };
        if let Some(claims) = &claims {
            self.check_identity(claims)?;
        }
        // A name that does not parse is refused later, as the request's
        // own fault (400).
        match group.parse::<GroupName>().ok().filter(GroupName::is_direct) {
            Some(direct) => direct::admit(&direct, claims.as_ref(), with)?,
            None if claims.as_ref().is_some_and(|claims| !claims.allows(group)) => {
                return Err(AuthError::GroupNotAllowed)
            }
            None => {}
        }
        Ok(Admitted { claims })
    }

    /// A connection to `group` (raw, as in its path) as `client_id`: the
    /// identity's rooms stream ([`ROOMS_STREAM`]) or a member of a group.
    pub fn admit_connection(
        &self,
        token: Option<&str>,
        client_id: &str,
        group: &str,
        with: Option<&str>,
    ) -> Result<Admitted, AuthError> {
        if group == ROOMS_STREAM {
            self.admit_stream(token, client_id)
        } else {
            self.admit_member(token, client_id, group, with)
        }
    }

    /// An identity's rooms stream (`/ws/_me/{client_id}`): a valid token
    /// for that client id, whatever the mode (it lists the identity's own
    /// rooms, each of which it was admitted to).
    pub fn admit_stream(&self, token: Option<&str>, client_id: &str) -> Result<Admitted, AuthError> {
        let claims = self.identify(token)?;
        if client_id.parse::<ClientId>().ok() != Some(claims.sub) {
            return Err(AuthError::OtherClient);
        }
        Ok(Admitted { claims: Some(claims) })
    }

    /// Any valid token (`GET /api/identities/me`), whatever the mode.
    pub fn identify(&self, token: Option<&str>) -> Result<Claims, AuthError> {
        let token = token.filter(|token| !token.is_empty()).ok_or(AuthError::Missing)?;
        let claims = self.verify(token).map_err(AuthError::Invalid)?;
        self.check_identity(&claims)?;
        Ok(claims)
    }
}

/// The claims of a ticket for `group` asked for with `claims` from `ip` at
/// `now` (Unix seconds).
fn ticket_claims(claims: &Claims, group: &str, ip: IpAddr, now: u64) -> Claims {
    let lifetime = now.saturating_add(ticket::LIFETIME_SECONDS);
    let scope = TicketScope {
        id: uuid::Uuid::new_v4(),
        group: group.to_owned(),
        ip,
        open_by: now + ticket::OPEN_WITHIN_SECONDS,
    };
    Claims {
        iat: Some(now),
        exp: Some(claims.exp.map_or(lifetime, |exp| exp.min(lifetime))),
        nbf: None,
        tkt: Some(scope),
        ..claims.clone()
    }
}

/// The token of an `Authorization: Bearer …` header, if any.
pub fn bearer(headers: &http::HeaderMap) -> Option<&str> {
    headers.get(http::header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ").map(str::trim)
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    const NOW: u64 = 1_800_000_000;

    #[test]
    fn a_ticket_never_outlives_its_token() {
        let claims = Claims { exp: Some(NOW + 60), ..Claims::for_client(ClientId(Uuid::new_v4())) };
        assert_eq!(ticket_claims(&claims, "lobby", [10, 0, 0, 1].into(), NOW).exp, Some(NOW + 60));
        let lasting = Claims::for_client(ClientId(Uuid::new_v4()));
        assert_eq!(
            ticket_claims(&lasting, "lobby", [10, 0, 0, 1].into(), NOW).exp,
            Some(NOW + ticket::LIFETIME_SECONDS)
        );
    }

    fn auth(mode: AuthMode) -> Auth {
        Auth::new(mode, Tokens::new(&Secret::generate()), Default::default(), Default::default())
    }

    fn token(auth: &Auth, sub: Uuid, groups: Option<&[&str]>) -> String {
        let groups = groups.map(|groups| groups.iter().map(|g| g.parse().unwrap()).collect());
        auth.tokens().issue(&Claims { groups, ..Claims::for_client(ClientId(sub)) })
    }

    #[test]
    fn required_mode_wants_a_valid_token_for_the_paths_client() {
        let auth = auth(AuthMode::Required);
        let (me, other) = (Uuid::new_v4(), Uuid::new_v4());
        let mine = token(&auth, me, None);
        assert!(auth.admit_member(Some(&mine), &me.to_string(), "lobby", None).unwrap().verified());
        assert_eq!(auth.admit_member(None, &me.to_string(), "lobby", None), Err(AuthError::Missing));
        assert_eq!(auth.admit_member(Some(""), &me.to_string(), "lobby", None), Err(AuthError::Missing));
        assert_eq!(auth.admit_member(Some(&mine), &other.to_string(), "lobby", None), Err(AuthError::OtherClient));
        assert_eq!(auth.admit_member(Some(&mine), "not-a-uuid", "lobby", None), Err(AuthError::OtherClient));
        assert!(matches!(auth.admit_member(Some("x.y.z"), &me.to_string(), "lobby", None), Err(AuthError::Invalid(_))));
    }

    #[test]
    fn groups_bound_members_and_readers() {
        let auth = auth(AuthMode::Required);
        let me = Uuid::new_v4();
        let team = token(&auth, me, Some(&["team-*", "lobby"]));
        assert!(auth.admit_member(Some(&team), &me.to_string(), "team-a", None).is_ok());
        assert!(auth.admit_member(Some(&team), &me.to_string(), "lobby", None).is_ok());
        assert_eq!(auth.admit_member(Some(&team), &me.to_string(), "other", None), Err(AuthError::GroupNotAllowed));
        assert_eq!(auth.admit_reader(Some(&team), "lobby2", None), Err(AuthError::GroupNotAllowed));
        let none = token(&auth, me, Some(&[]));
        assert_eq!(auth.admit_reader(Some(&none), "lobby", None), Err(AuthError::GroupNotAllowed));
    }

    #[test]
    fn open_mode_admits_anyone_but_verifies_only_tokens() {
        let auth = auth(AuthMode::Open);
        let me = Uuid::new_v4();
        assert!(!auth.admit_member(None, &me.to_string(), "lobby", None).unwrap().verified());
        let mine = token(&auth, me, None);
        assert!(auth.admit_member(Some(&mine), &me.to_string(), "lobby", None).unwrap().verified());
        assert!(auth.admit_member(Some("garbage"), &me.to_string(), "lobby", None).is_err(), "a bad token is refused");
    }

    #[test]
    fn direct_message_groups_admit_their_participants_only() {
        let auth = auth(AuthMode::Open);
        let (me, other) = (Uuid::new_v4(), Uuid::new_v4());
        let group = GroupName::direct(ClientId(me), ClientId(other));
        let (mine, with) = (token(&auth, me, None), other.to_string());
        assert!(auth.admit_member(Some(&mine), &me.to_string(), group.as_str(), Some(&with)).unwrap().verified());
        assert!(auth.admit_reader(Some(&mine), group.as_str(), Some(&with)).is_ok());
        let stranger = token(&auth, Uuid::new_v4(), None);
        let refused = Err(AuthError::Direct(DirectError::NotAParticipant));
        assert_eq!(auth.admit_reader(Some(&stranger), group.as_str(), Some(&with)), refused);
        let tokenless = Err(AuthError::Direct(DirectError::Unverified));
        assert_eq!(auth.admit_member(None, &me.to_string(), group.as_str(), Some(&with)), tokenless);
        assert!(auth.admit_member(None, &me.to_string(), "dm-chat", None).is_ok(), "the name's own fault comes later");
        assert_eq!(AuthError::Direct(DirectError::WithMissing).status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn a_revoked_identity_is_refused_everywhere() {
        let auth = auth(AuthMode::Open);
        let me = Uuid::new_v4();
        let old = token(&auth, me, None);
        auth.revocations().note(ClientId(me), token::unix_seconds() + 1);
        let refused = AuthError::Invalid(TokenError::Revoked);
        assert_eq!(auth.admit_member(Some(&old), &me.to_string(), "lobby", None), Err(refused.clone()));
        assert_eq!(auth.admit_reader(Some(&old), "lobby", None), Err(refused.clone()));
        assert_eq!(auth.identify(Some(&old)), Err(refused));
        let newer = Claims::for_client(ClientId(me)).issued(token::unix_seconds() + 2, 60);
        assert!(auth.identify(Some(&auth.tokens().issue(&newer))).is_ok(), "a token issued after it holds");
    }

    #[test]
    fn statuses() {
        assert_eq!(AuthError::Missing.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(AuthError::Invalid(TokenError::Expired).status(), StatusCode::UNAUTHORIZED);
        assert_eq!(AuthError::OtherClient.status(), StatusCode::FORBIDDEN);
        assert_eq!(AuthError::GroupNotAllowed.status(), StatusCode::FORBIDDEN);
    }

    #[test]
    fn bearer_tokens_are_read_from_the_header() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(bearer(&headers), None);
        headers.insert(http::header::AUTHORIZATION, "Bearer abc.def.ghi".parse().unwrap());
        assert_eq!(bearer(&headers), Some("abc.def.ghi"));
        headers.insert(http::header::AUTHORIZATION, "Basic xyz".parse().unwrap());
        assert_eq!(bearer(&headers), None);
    }
}
