//! Validated identifiers. Each type can only hold a valid value: parsing (from
//! a URL segment or from JSON) is the only way to make one.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::limits::{MAX_DISPLAY_NAME_CHARS, MAX_GROUP_NAME_LEN};

/// Why an identifier was refused. The messages are shown to users as-is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("group name must be 1 to {MAX_GROUP_NAME_LEN} characters of A-Z, a-z, 0-9, '_' or '-'")]
    InvalidGroup,
    #[error("client id must be a UUID")]
    InvalidClientId,
    #[error("display name must be 1 to {MAX_DISPLAY_NAME_CHARS} characters without control characters")]
    InvalidDisplayName,
}

/// The accessors every validated string newtype shares; validation itself is
/// the type's `TryFrom<String>`, the only way in.
macro_rules! validated_string {
    ($name:ident) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = NameError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::try_from(s.to_owned())
            }
        }

        impl From<$name> for String {
            fn from(name: $name) -> Self {
                name.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

/// A group (room) name: 1–64 characters of `[A-Za-z0-9_-]`.
///
/// The alphabet is URL-safe, so a group name never needs escaping in a path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct GroupName(String);

impl TryFrom<String> for GroupName {
    type Error = NameError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        let valid = (1..=MAX_GROUP_NAME_LEN).contains(&value.len())
            && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if valid {
            Ok(Self(value))
        } else {
            Err(NameError::InvalidGroup)
        }
    }
}

validated_string!(GroupName);

/// The id a client gives itself (a UUID kept in the browser). Several
/// connections may share one client id, e.g. one per tab.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClientId(pub Uuid);

impl FromStr for ClientId {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Self).map_err(|_| NameError::InvalidClientId)
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A display name: trimmed, 1–32 characters, no control characters, and
/// something visible (not only zero-width or bidi-control characters, which
/// would show as nobody, or reorder the text around them).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DisplayName(String);

impl TryFrom<String> for DisplayName {
    type Error = NameError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        let trimmed = value.trim();
        let chars = trimmed.chars().count();
        let visible = trimmed.chars().any(|c| !is_invisible(c));
        if (1..=MAX_DISPLAY_NAME_CHARS).contains(&chars) && !trimmed.chars().any(char::is_control) && visible {
            Ok(Self(trimmed.to_owned()))
        } else {
            Err(NameError::InvalidDisplayName)
        }
    }
}

validated_string!(DisplayName);

/// Format characters that render as nothing: zero-width spaces and joiners,
/// word joiners, bidi marks, embeddings, overrides and isolates, and the
/// byte order mark.
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}' | '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{180E}')
        // Fillers and blanks that render as nothing: Hangul fillers, the
        // blank Braille pattern, variation selectors and tag characters.
        || matches!(c, '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}' | '\u{2800}' | '\u{FE00}'..='\u{FE0F}' | '\u{E0000}'..='\u{E007F}' | '\u{E0100}'..='\u{E01EF}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_names_accept_the_url_safe_alphabet() {
        for ok in ["a", "lobby", "Team_42-b", &"x".repeat(64)] {
            assert_eq!(ok.parse::<GroupName>().unwrap().as_str(), ok);
        }
    }

    #[test]
    fn group_names_refuse_everything_else() {
        for bad in ["", "with space", "slash/y", "dot.", "é", "%41", &"x".repeat(65)] {
            assert_eq!(bad.parse::<GroupName>(), Err(NameError::InvalidGroup), "{bad:?}");
        }
    }

    #[test]
    fn group_names_are_validated_when_deserialized() {
        assert!(serde_json::from_str::<GroupName>("\"ok\"").is_ok());
        assert!(serde_json::from_str::<GroupName>("\"not ok\"").is_err());
    }

    #[test]
    fn client_ids_are_uuids() {
        let id = "3f2504e0-4f89-4d3a-9a0c-0305e82c3301";
        assert_eq!(id.parse::<ClientId>().unwrap().to_string(), id);
        assert_eq!("nope".parse::<ClientId>(), Err(NameError::InvalidClientId));
        assert_eq!("".parse::<ClientId>(), Err(NameError::InvalidClientId));
    }

    #[test]
    fn display_names_are_trimmed_and_bounded() {
        assert_eq!(" Alice ".parse::<DisplayName>().unwrap().as_str(), "Alice");
        assert_eq!("李雷".parse::<DisplayName>().unwrap().as_str(), "李雷");
        assert!(" ".parse::<DisplayName>().is_err());
        assert!("a\u{0007}b".parse::<DisplayName>().is_err());
        assert!("x".repeat(33).parse::<DisplayName>().is_err());
        assert!("é".repeat(32).parse::<DisplayName>().is_ok());
    }

    #[test]
    fn display_names_made_only_of_invisible_characters_are_refused() {
        for bad in [
            "\u{200B}",
            "\u{202E}\u{202E}",
            "\u{2066}\u{2069}",
            "\u{FEFF}\u{200D}",
            "\u{3164}",
            "\u{2800}\u{2800}",
            "\u{FE0F}",
            "\u{E0041}",
            "\u{115F}\u{FFA0}",
        ] {
            assert_eq!(bad.parse::<DisplayName>(), Err(NameError::InvalidDisplayName), "{bad:?}");
        }
        assert!("A\u{200D}B".parse::<DisplayName>().is_ok(), "visible text with a joiner is fine");
    }
}
