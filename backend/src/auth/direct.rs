//! Direct messages: a group that only its two participants may join, read
//! or publish to (and so see who is in it), decided here for every entry
//! (the socket, the history API, the publish API).
//!
//! A direct message group's name is a hash of both ids
//! ([`GroupName::direct`]), which the server cannot invert: the request
//! names the other participant (`with`), and the name must be the one the
//! verified identity and `with` make. Finding another pair with the same
//! name takes a second preimage of 128 bits of SHA-256.
//!
//! # Decisions
//! - Only verified identities: a tokenless request (`--auth open`) is
//!   refused, whatever it claims in its path.
//! - A token's `groups` must allow the group, as for any group: `dm-*` (or
//!   `*`, or the exact name) allows direct messages; `["lobby"]` does not.
//!   Self-service tokens carry `--identity-groups` as their `groups`, so
//!   they have direct messages unless that flag is given without such a
//!   pattern.
//! - A direct message with oneself (`with` its own id) is allowed: a notes
//!   room nobody else can enter, as chat apps offer; refusing it would
//!   protect nothing.
//! - The API key reads a direct message group's history (the history route
//!   lets it by before these rules), but the publish API may not post to
//!   one: a conversation of two holds two voices.

use http::StatusCode;
use roomcast_shared::{ClientId, GroupName};

use super::token::Claims;
use crate::http_error::HttpError;

/// Why a request for a direct message group was refused (HTTP 400 or 403).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectError {
    #[error("direct messages are for verified identities: a token is required")]
    Unverified,
    #[error("the token's `groups` do not allow direct messages (they need a pattern such as `dm-*`)")]
    NotAllowed,
    #[error("a direct message group needs `with`: the other participant's client id")]
    WithMissing,
    #[error("`with` must be a client id (a UUID)")]
    BadWith,
    #[error("this direct message group is not this identity's with `with`: only its two participants may use it")]
    NotAParticipant,
    #[error("the publish API cannot post to a direct message group: only its two participants may")]
    ServerPublish,
}

impl HttpError for DirectError {
    fn status(&self) -> StatusCode {
        match self {
            Self::WithMissing | Self::BadWith => StatusCode::BAD_REQUEST,
            Self::Unverified | Self::NotAllowed | Self::NotAParticipant | Self::ServerPublish => StatusCode::FORBIDDEN,
        }
    }
}

/// Whether the holder of `claims` (`None`: no token) may use the direct
/// message group `group` with the other participant `with` (raw, from the
/// request).
pub fn admit(group: &GroupName, claims: Option<&Claims>, with: Option<&str>) -> Result<(), DirectError> {
    let claims = claims.ok_or(DirectError::Unverified)?;
    if !claims.allows(group.as_str()) {
        return Err(DirectError::NotAllowed);
    }
    let with: ClientId = with.ok_or(DirectError::WithMissing)?.parse().map_err(|_| DirectError::BadWith)?;
    if GroupName::direct(claims.sub, with) == *group {
        Ok(())
    } else {
        Err(DirectError::NotAParticipant)
    }
}

/// Whether the publish API may post to `group`: not to a direct message.
pub fn server_may_publish(group: &GroupName) -> Result<(), DirectError> {
    if group.is_direct() {
        Err(DirectError::ServerPublish)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    fn claims(sub: ClientId, groups: Option<&[&str]>) -> Claims {
        let groups = groups.map(|groups| groups.iter().map(|g| g.parse().unwrap()).collect());
        Claims { groups, ..Claims::for_client(sub) }
    }

    #[test]
    fn only_the_two_participants_are_admitted() {
        let (alice, bob, eve) = (ClientId(Uuid::new_v4()), ClientId(Uuid::new_v4()), ClientId(Uuid::new_v4()));
        let group = GroupName::direct(alice, bob);
        let (a, b) = (alice.to_string(), bob.to_string());
        assert_eq!(admit(&group, Some(&claims(alice, None)), Some(&b)), Ok(()));
        assert_eq!(admit(&group, Some(&claims(bob, None)), Some(&a.to_uppercase())), Ok(()), "any UUID form");
        assert_eq!(admit(&group, Some(&claims(eve, None)), Some(&a)), Err(DirectError::NotAParticipant));
        assert_eq!(admit(&group, Some(&claims(eve, None)), Some(&b)), Err(DirectError::NotAParticipant));
        assert_eq!(admit(&group, Some(&claims(alice, None)), Some(&a)), Err(DirectError::NotAParticipant));
        assert_eq!(admit(&group, None, Some(&b)), Err(DirectError::Unverified));
        assert_eq!(admit(&group, Some(&claims(alice, None)), None), Err(DirectError::WithMissing));
        assert_eq!(admit(&group, Some(&claims(alice, None)), Some("bob")), Err(DirectError::BadWith));
    }

    #[test]
    fn a_groups_claim_must_allow_direct_messages() {
        let (alice, bob) = (ClientId(Uuid::new_v4()), ClientId(Uuid::new_v4()));
        let group = GroupName::direct(alice, bob);
        let b = bob.to_string();
        let lobby = claims(alice, Some(&["lobby"]));
        assert_eq!(admit(&group, Some(&lobby), Some(&b)), Err(DirectError::NotAllowed));
        assert_eq!(admit(&group, Some(&claims(alice, Some(&[]))), Some(&b)), Err(DirectError::NotAllowed));
        for allowing in [&["dm-*"][..], &["lobby", "*"], &[group.as_str()]] {
            assert_eq!(admit(&group, Some(&claims(alice, Some(allowing))), Some(&b)), Ok(()), "{allowing:?}");
        }
    }

    #[test]
    fn a_direct_message_with_oneself_is_allowed() {
        let me = ClientId(Uuid::new_v4());
        assert_eq!(admit(&GroupName::direct(me, me), Some(&claims(me, None)), Some(&me.to_string())), Ok(()));
    }

    #[test]
    fn the_publish_api_stays_out_of_direct_messages() {
        let group = GroupName::direct(ClientId(Uuid::new_v4()), ClientId(Uuid::new_v4()));
        assert_eq!(server_may_publish(&group), Err(DirectError::ServerPublish));
        assert_eq!(server_may_publish(&"lobby".parse().unwrap()), Ok(()));
        assert_eq!(DirectError::ServerPublish.status(), StatusCode::FORBIDDEN);
        assert_eq!(DirectError::BadWith.status(), StatusCode::BAD_REQUEST);
    }
}
