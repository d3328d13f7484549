//! `Tokens::verify` (`backend/src/auth/token.rs`): every `?token=` and
//! `Authorization: Bearer` a client sends.
//!
//! The input is read three ways: as a token; as the payload (claims JSON)
//! of a token signed with the test secret; and as claims to issue.
//!
//! Properties:
//! - a token verifies only if the secret signed it: its signature is the
//!   HMAC-SHA256 of its header and payload under the secret;
//! - a signed token verifies to exactly the claims its payload decodes to,
//!   never fails as a bad signature, and fails as expired only when its
//!   `exp` is past (give or take the leeway);
//! - an issued token verifies to the claims it was issued with, unless
//!   expired; one issued with another secret fails as a bad signature.

use std::collections::HashSet;
use std::fmt;
use std::sync::LazyLock;
use std::time::{SystemTime, UNIX_EPOCH};

use arbitrary::Unstructured;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::hmac;
use roomcast_backend::auth::{Claims, GroupPattern, Secret, TokenError, Tokens};
use roomcast_shared::{ClientId, DisplayName};
use serde::de::{self, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use uuid::Uuid;

use super::JSON_TOKENS;
use crate::fixtures::{TEST_SECRET, TOKENS};
use crate::harness::Target;
use crate::input::{one_in, one_of, text};

pub const TARGET: Target = Target { name: "token", check, dictionary: JSON_TOKENS, max_len: 2048 };

/// More than any leeway the server allows on `exp` (it is a few seconds).
const SLACK_SECONDS: u64 = 60;

/// The header of the tokens this target signs itself.
const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

static OTHER: LazyLock<Tokens> =
    LazyLock::new(|| Tokens::new(&Secret::from_text("another-secret-of-at-least-32-bytes!!").expect("long enough")));
static KEY: LazyLock<hmac::Key> = LazyLock::new(|| hmac::Key::new(hmac::HMAC_SHA256, TEST_SECRET.as_bytes()));

pub fn check(data: &[u8]) {
    given(&text(data));
    signed(data);
    issued(&mut Unstructured::new(data));
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_secs()
}

/// The signature the secret makes for `message` (header.payload).
fn sign(message: &str) -> String {
    URL_SAFE_NO_PAD.encode(hmac::sign(&KEY, message.as_bytes()).as_ref())
}

fn given(token: &str) {
    if let Ok(claims) = TOKENS.verify(token) {
        let (message, signature) = token.rsplit_once('.').expect("a verified token has parts");
        assert_eq!(signature, sign(message), "{token} verified without the secret's signature");
        let payload = message.split_once('.').map_or("", |(_, payload)| payload);
        let payload = URL_SAFE_NO_PAD.decode(payload).expect("a verified payload is base64");
        assert_eq!(serde_json::from_slice::<Claims>(&payload).ok(), Some(claims), "{token}");
    }
}

fn signed(payload: &[u8]) {
    let message = format!("{}.{}", URL_SAFE_NO_PAD.encode(HEADER), URL_SAFE_NO_PAD.encode(payload));
    let token = format!("{message}.{}", sign(&message));
    let before = now();
    let verified = TOKENS.verify(&token);
    let after = now();
    let claims = serde_json::from_slice::<Claims>(payload).ok();
    let exp = claims.as_ref().and_then(|claims| claims.exp);
    match &verified {
        Ok(verified) => {
            assert_eq!(claims.as_ref(), Some(verified), "the payload's claims");
            assert!(exp.is_none_or(|exp| exp.saturating_add(SLACK_SECONDS) >= before), "accepted, expired at {exp:?}");
        }
        Err(TokenError::BadSignature) => panic!("a token the secret signed has a bad signature: {token}"),
        Err(TokenError::Expired) => {
            // jsonwebtoken checks `exp` before the claims are decoded whole
            // (and skips the other fields as loosely as this does).
            let exp = serde_json::from_slice::<Expiry>(payload).ok().and_then(|expiry| expiry.exp);
            assert!(exp.is_some_and(|exp| exp < after), "refused as expired, exp {exp:?}");
        }
        Err(TokenError::NotYetValid) => {
            // `nbf` (jsonwebtoken's own reading) or `iat` (ours) ahead.
            let times = serde_json::from_slice::<Times>(payload).ok();
            let ahead = |at: Option<u64>| at.is_some_and(|at| at > before);
            assert!(times.is_some_and(|times| ahead(times.nbf) || ahead(times.iat)), "refused as not valid yet");
        }
        Err(TokenError::Revoked) => panic!("tokens alone never revoke: {token}"),
        Err(TokenError::Ticket) => panic!("tokens alone take tickets (the server refuses them as tokens): {token}"),
        Err(TokenError::Malformed) => {}
    }
    // Claims that decode, with no `exp` or one far ahead, verify, when the
    // payload is a plain object: jsonwebtoken reads the registered claims
    // (`iss`, `aud`, `nbf`…) itself and refuses one of a type it does not
    // expect, or a repeated key, even where `Claims` ignores them.
    let far = |exp: Option<u64>| exp.is_none_or(|exp| exp > after + SLACK_SECONDS);
    let past = |at: Option<u64>| at.is_none_or(|at| at < before);
    let plain = serde_json::from_slice::<PlainObject>(payload).is_ok();
    if let Some(claims) = claims.filter(|claims| far(exp) && past(claims.nbf) && past(claims.iat) && plain) {
        assert_eq!(verified, Ok(claims), "{}", String::from_utf8_lossy(payload));
    }
}

fn issued(u: &mut Unstructured<'_>) {
    let sub = ClientId(Uuid::from_u128(u.arbitrary().unwrap_or(0)));
    let name = one_in(u, 2).then(|| DisplayName::try_from(one_of(u, &["Ann", "server", "李雷"])).ok()).flatten();
    let groups = one_in(u, 2).then(|| {
        (0..u.choose_index(4).unwrap_or(0))
            .filter_map(|_| one_of(u, &["lobby", "team-*", "*"]).parse::<GroupPattern>().ok())
            .collect()
    });
    let exp = match u.choose_index(4).unwrap_or(0) {
        0 => Some(u.arbitrary().unwrap_or(0)),
        1 => Some(now() + 3600),
        2 => Some(now().saturating_sub(3600)),
        _ => None,
    };
    let claims = Claims { sub, name, groups, exp, iat: None, nbf: None, tkt: None };
    let now = now();
    match TOKENS.verify(&TOKENS.issue(&claims)) {
        Ok(verified) => {
            assert_eq!(verified, claims);
            assert!(exp.is_none_or(|exp| exp.saturating_add(SLACK_SECONDS) >= now), "accepted, expired at {exp:?}");
        }
        Err(TokenError::Expired) => assert!(exp.is_some_and(|exp| exp <= now + SLACK_SECONDS), "{claims:?}"),
        Err(err) => panic!("issued claims {claims:?} refused: {err}"),
    }
    assert_eq!(TOKENS.verify(&OTHER.issue(&claims)), Err(TokenError::BadSignature));
}

/// Just the `exp` of a payload.
#[derive(Deserialize)]
struct Expiry {
    exp: Option<u64>,
}

/// Just the `nbf` and `iat` of a payload.
#[derive(Deserialize)]
struct Times {
    nbf: Option<u64>,
    iat: Option<u64>,
}

/// Claims jsonwebtoken reads itself, beside `sub` and `exp`.
const REGISTERED: [&str; 5] = ["iss", "aud", "nbf", "iat", "jti"];

/// A JSON object whose keys are all different and none of [`REGISTERED`]
/// (its values are not looked at).
struct PlainObject;

impl<'de> Deserialize<'de> for PlainObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Keys;
        impl<'de> Visitor<'de> for Keys {
            type Value = PlainObject;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object without repeated or registered keys")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PlainObject, A::Error> {
                let mut seen = HashSet::new();
                while let Some(key) = map.next_key::<String>()? {
                    if REGISTERED.contains(&key.as_str()) || !seen.insert(key) {
                        return Err(de::Error::custom("a repeated or registered key"));
                    }
                    map.next_value::<IgnoredAny>()?;
                }
                Ok(PlainObject)
            }
        }
        deserializer.deserialize_map(Keys)
    }
}
