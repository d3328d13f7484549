//! The validated names of `roomcast_shared::names` (`GroupName`,
//! `DisplayName`, `ClientId`) and the token claims' `GroupPattern`: every
//! path segment and query value a handshake carries goes through them.
//!
//! Properties:
//! - a name that parses displays as the text it came from (a display name:
//!   that text trimmed), parses again to itself, and survives JSON;
//! - JSON decoding accepts exactly what parsing accepts (for a display name:
//!   the looser rules of a name already given);
//! - a chosen display name is also a valid given one; `server` in any case
//!   is refused as reserved, and only it;
//! - errors are the typed ones: `InvalidGroup`, `InvalidClientId`,
//!   `InvalidDisplayName` or `ReservedDisplayName`;
//! - a group pattern displays as its text, and matches what it says: its
//!   group exactly, or every group its prefix starts.

use roomcast_backend::auth::GroupPattern;
use roomcast_shared::limits::MAX_DISPLAY_NAME_CHARS;
use roomcast_shared::{ClientId, DisplayName, GroupName, NameError, DIRECT_PREFIX, SERVER_NAME};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::harness::Target;
use crate::input::text;

pub const TARGET: Target = Target {
    name: "names",
    check,
    dictionary: &["lobby", "team-", "server", "SERVER", "*", "6f1c2a9e-0b5d-4c61-9a55-5f6d0d3f6a10", "{", "urn:uuid:"],
    max_len: 256,
};

pub fn check(data: &[u8]) {
    let text = text(data);
    group(&text);
    client_id(&text);
    display_name(&text);
    pattern(&text);
}

/// `value` encoded as JSON decodes back to itself.
fn survives_json<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(value: &T) {
    let json = serde_json::to_string(value).expect("names serialize");
    assert_eq!(serde_json::from_str::<T>(&json).ok().as_ref(), Some(value), "{json}");
}

fn from_json<T: DeserializeOwned>(text: &str) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(text.to_owned())).ok()
}

fn group(text: &str) {
    match text.parse::<GroupName>() {
        Ok(name) => {
            assert_eq!((name.as_str(), name.to_string()), (text, text.to_owned()));
            assert_eq!(String::from(name.clone()), text);
            survives_json(&name);
            assert_eq!(from_json::<GroupName>(text), Some(name));
        }
        Err(err) => {
            // A name of the group alphabet is refused only for the direct
            // message prefix.
            let expected = if GroupName::in_alphabet(text) {
                assert!(text.to_ascii_lowercase().starts_with(DIRECT_PREFIX), "{text:?} refused");
                NameError::InvalidDirect
            } else {
                NameError::InvalidGroup
            };
            assert_eq!(err, expected, "{text:?}");
            assert!(from_json::<GroupName>(text).is_none(), "JSON accepts the group {text:?}");
        }
    }
}

fn client_id(text: &str) {
    match text.parse::<ClientId>() {
        Ok(id) => {
            let shown = id.to_string();
            assert_eq!(shown.parse::<ClientId>(), Ok(id), "{shown}");
            assert_eq!((shown.len(), shown.to_ascii_lowercase()), (36, shown.clone()), "the canonical form");
            survives_json(&id);
        }
        Err(err) => assert_eq!(err, NameError::InvalidClientId),
    }
}

fn display_name(text: &str) {
    let given = DisplayName::try_from(text.to_owned());
    match &given {
        Ok(name) => {
            assert_eq!(name.as_str(), text.trim(), "a given name is its text, trimmed");
            assert!((1..=MAX_DISPLAY_NAME_CHARS).contains(&name.as_str().chars().count()));
            assert!(!name.as_str().chars().any(char::is_control));
            assert_eq!(DisplayName::try_from(name.to_string()).as_ref(), Ok(name), "given again");
            survives_json(name);
        }
        Err(err) => assert_eq!(*err, NameError::InvalidDisplayName),
    }
    assert_eq!(from_json::<DisplayName>(text), given.clone().ok(), "JSON reads a given name");
    match text.parse::<DisplayName>() {
        Ok(name) => {
            assert_eq!(given.as_ref(), Ok(&name), "a chosen name is a valid given one");
            assert_eq!(name.as_str().parse::<DisplayName>().as_ref(), Ok(&name), "chosen again");
            assert!(!name.as_str().eq_ignore_ascii_case(SERVER_NAME));
        }
        Err(NameError::ReservedDisplayName) => {
            assert!(text.trim().eq_ignore_ascii_case(SERVER_NAME), "{text:?} refused as reserved");
            assert!(given.is_ok(), "the server's name is a valid given name");
        }
        Err(err) => {
            assert_eq!(err, NameError::InvalidDisplayName);
            assert!(!text.trim().eq_ignore_ascii_case(SERVER_NAME));
        }
    }
}

fn pattern(text: &str) {
    let Ok(pattern) = text.parse::<GroupPattern>() else {
        assert!(text.parse::<GroupName>().is_err(), "a group name is a pattern: {text:?}");
        return;
    };
    assert_eq!(pattern.to_string(), text);
    survives_json(&pattern);
    match &pattern {
        GroupPattern::Exact(name) => {
            assert_eq!(name.as_str(), text);
            assert!(pattern.matches(text) && !pattern.matches(&format!("{text}x")));
        }
        GroupPattern::Prefix(prefix) => {
            assert_eq!(format!("{prefix}*"), text);
            assert!(pattern.matches(prefix) && pattern.matches(&format!("{prefix}-x")));
            // Prefixes are ASCII group names: a shorter text does not match.
            assert!(prefix.is_empty() || !pattern.matches(&prefix[1..]));
        }
    }
}
