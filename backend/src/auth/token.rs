//! HS256 JSON Web Tokens: what they claim, and checking them.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use roomcast_shared::{ClientId, DisplayName, GroupName};
use serde::{Deserialize, Serialize};

use super::secret::Secret;
use super::ticket::TicketScope;

/// Seconds of clock difference tolerated on `exp`, `nbf` and `iat`.
pub const LEEWAY_SECONDS: u64 = 5;

/// What a token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The client id this token is for.
    pub sub: ClientId,
    /// The display name, which wins over the connection's `?name=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<DisplayName>,
    /// The groups this token may join, read and publish to; absent means
    /// every group, empty none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<GroupPattern>>,
    /// Expiry, in Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<u64>,
    /// Issued at, in Unix seconds: a revocation refuses tokens issued
    /// before it (and tokens without `iat`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// Not valid before, in Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// A session ticket's scope ([`super::ticket`]): a ticket is good for
    /// one event stream's URL, and is refused as a token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tkt: Option<TicketScope>,
}

impl Claims {
    /// Claims for `client` alone: no name, every group, no expiry (what a
    /// self-service identity gets).
    pub fn for_client(client: ClientId) -> Self {
        Self { sub: client, name: None, groups: None, exp: None, iat: None, nbf: None, tkt: None }
    }

    /// These claims issued at `now` (Unix seconds), expiring `lifetime`
    /// seconds later.
    pub fn issued(self, now: u64, lifetime: u64) -> Self {
        Self { iat: Some(now), exp: Some(now.saturating_add(lifetime)), nbf: None, ..self }
    }

    /// Whether the token allows the group named `group` (raw, as in a path).
    pub fn allows(&self, group: &str) -> bool {
        self.groups.as_ref().is_none_or(|patterns| patterns.iter().any(|pattern| pattern.matches(group)))
    }
}

/// One entry of `groups`: an exact group name, or `prefix*`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum GroupPattern {
    Exact(GroupName),
    /// Every group whose name starts with this (`*` alone: every group).
    Prefix(String),
}

impl GroupPattern {
    pub fn matches(&self, group: &str) -> bool {
        match self {
            Self::Exact(name) => name.as_str() == group,
            Self::Prefix(prefix) => group.starts_with(prefix.as_str()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a group pattern is a group name or a prefix of one followed by `*`")]
pub struct BadPattern;

impl TryFrom<String> for GroupPattern {
    type Error = BadPattern;

    fn try_from(value: String) -> Result<Self, BadPattern> {
        match value.strip_suffix('*') {
            Some("") => Ok(Self::Prefix(String::new())),
            // A prefix is made of a group name's characters (`dm-*`, the
            // direct messages, although `dm-` alone is no group's name).
            Some(prefix) if GroupName::in_alphabet(prefix) => Ok(Self::Prefix(prefix.to_owned())),
            Some(_) => Err(BadPattern),
            None => value.parse().map(Self::Exact).map_err(|_| BadPattern),
        }
    }
}

impl FromStr for GroupPattern {
    type Err = BadPattern;

    fn from_str(s: &str) -> Result<Self, BadPattern> {
        Self::try_from(s.to_owned())
    }
}

impl From<GroupPattern> for String {
    fn from(pattern: GroupPattern) -> Self {
        pattern.to_string()
    }
}

impl fmt::Display for GroupPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(name) => f.write_str(name.as_str()),
            Self::Prefix(prefix) => write!(f, "{prefix}*"),
        }
    }
}

/// Why a token was not accepted. The text is safe to send back: it never
/// repeats the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("expired")]
    Expired,
    #[error("not valid yet (nbf or iat in the future)")]
    NotYetValid,
    #[error("revoked")]
    Revoked,
    #[error("bad signature")]
    BadSignature,
    #[error("malformed (a JWT signed with HS256, with a `sub` claim that is a UUID)")]
    Malformed,
    /// A session ticket where a token is wanted.
    #[error("a session ticket, good only in its event stream's URL")]
    Ticket,
}

/// Issues and checks tokens with one secret.
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Tokens")
    }
}

impl Tokens {
    pub fn new(secret: &Secret) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECONDS;
        // `exp` is optional (the app's identities do not expire), but
        // checked when present.
        validation.required_spec_claims = HashSet::from(["sub".to_owned()]);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = false;
        Self {
            encoding: EncodingKey::from_secret(secret.bytes()),
            decoding: DecodingKey::from_secret(secret.bytes()),
            validation,
        }
    }

    /// A token for `claims`.
    pub fn issue(&self, claims: &Claims) -> String {
        // Serializing plain claims with a valid HMAC key cannot fail.
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding).expect("claims encode")
    }

    /// The claims of `token`, if it is signed with this secret, well formed
    /// and not expired.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|err| match err.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                ErrorKind::ImmatureSignature => TokenError::NotYetValid,
                ErrorKind::InvalidSignature => TokenError::BadSignature,
                _ => TokenError::Malformed,
            })?;
        // A token "issued" in the future would outlive a revocation made
        // before that time.
        if claims.iat.is_some_and(|iat| iat > unix_seconds() + LEEWAY_SECONDS) {
            return Err(TokenError::NotYetValid);
        }
        Ok(claims)
    }
}

/// The time now, in Unix seconds.
pub fn unix_seconds() -> u64 {
    crate::clock::unix_millis() / 1000
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    fn claims() -> Claims {
        Claims { name: Some("Ann".parse().unwrap()), ..Claims::for_client(ClientId(Uuid::new_v4())) }
    }

    fn now() -> u64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
    }

    #[test]
    fn a_token_round_trips() {
        let tokens = Tokens::new(&Secret::generate());
        let claims = Claims { groups: Some(vec!["team-*".parse().unwrap(), "lobby".parse().unwrap()]), ..claims() };
        assert_eq!(tokens.verify(&tokens.issue(&claims)), Ok(claims));
    }

    #[test]
    fn another_secret_or_a_tampered_token_is_refused() {
        let (ours, theirs) = (Tokens::new(&Secret::generate()), Tokens::new(&Secret::generate()));
        let token = theirs.issue(&claims());
        assert_eq!(ours.verify(&token), Err(TokenError::BadSignature));
        let token = ours.issue(&claims());
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = ours.issue(&Claims { name: Some("Mallory".parse().unwrap()), ..claims() });
        parts[1] = forged.split('.').nth(1).unwrap();
        assert_eq!(ours.verify(&parts.join(".")), Err(TokenError::BadSignature));
        assert_eq!(ours.verify("not a token"), Err(TokenError::Malformed));
    }

    #[test]
    fn expiry_is_checked_with_a_little_leeway() {
        let tokens = Tokens::new(&Secret::generate());
        let past = Claims { exp: Some(now() - 60), ..claims() };
        assert_eq!(tokens.verify(&tokens.issue(&past)), Err(TokenError::Expired));
        let just = Claims { exp: Some(now() - 2), ..claims() };
        assert!(tokens.verify(&tokens.issue(&just)).is_ok(), "within the leeway");
        let future = Claims { exp: Some(now() + 60), ..claims() };
        assert!(tokens.verify(&tokens.issue(&future)).is_ok());
    }

    #[test]
    fn not_before_and_issued_at_are_honoured() {
        let tokens = Tokens::new(&Secret::generate());
        let later = Claims { nbf: Some(now() + 60), ..claims() };
        assert_eq!(tokens.verify(&tokens.issue(&later)), Err(TokenError::NotYetValid));
        let from_the_future = Claims { iat: Some(now() + 60), ..claims() };
        assert_eq!(tokens.verify(&tokens.issue(&from_the_future)), Err(TokenError::NotYetValid));
        let issued = claims().issued(now(), 3600);
        assert_eq!(tokens.verify(&tokens.issue(&issued)), Ok(issued.clone()));
        assert_eq!(issued.exp, Some(issued.iat.unwrap() + 3600));
    }

    #[test]
    fn the_algorithm_is_fixed() {
        let tokens = Tokens::new(&Secret::generate());
        let header = Header::new(Algorithm::HS512);
        let key = EncodingKey::from_secret(b"0123456789abcdef0123456789abcdef");
        let token = jsonwebtoken::encode(&header, &claims(), &key).unwrap();
        assert!(tokens.verify(&token).is_err());
        // `alg: none` is not accepted either.
        let none = format!("eyJhbGciOiJub25lIn0.{}.", token.split('.').nth(1).unwrap());
        assert!(tokens.verify(&none).is_err());
    }

    #[test]
    fn group_patterns() {
        let team: GroupPattern = "team-*".parse().unwrap();
        assert!(team.matches("team-a") && team.matches("team-") && !team.matches("other"));
        let exact: GroupPattern = "lobby".parse().unwrap();
        assert!(exact.matches("lobby") && !exact.matches("lobby2"));
        assert!("*".parse::<GroupPattern>().unwrap().matches("anything"));
        let direct: GroupPattern = "dm-*".parse().unwrap();
        assert!(direct.matches(&format!("dm-{}", "a".repeat(32))) && !direct.matches("lobby"));
        assert!("dm-chat".parse::<GroupPattern>().is_err(), "an exact pattern is a valid group name");
        assert!("bad name*".parse::<GroupPattern>().is_err());
        assert!("a*b".parse::<GroupPattern>().is_err());
        assert_eq!(serde_json::to_string(&team).unwrap(), r#""team-*""#);
        let claims: Claims = serde_json::from_str(&format!(r#"{{"sub":"{}","groups":[]}}"#, Uuid::nil())).unwrap();
        assert!(!claims.allows("lobby"), "an empty list allows nothing");
    }
}
