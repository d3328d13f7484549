//! Validated identifiers. Each type can only hold a valid value: parsing (from
//! a URL segment or from JSON) is the only way to make one.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::limits::{MAX_DISPLAY_NAME_CHARS, MAX_GROUP_NAME_LEN};

/// The name the server's own messages (the publish API's) carry unless the
/// API gives one; no client may choose it.
pub const SERVER_NAME: &str = "server";

/// What every direct message group's name starts with, and no other group's
/// may (in any case): see [`GroupName::direct`].
pub const DIRECT_PREFIX: &str = "dm-";

/// The path segment of an identity's rooms stream (`/ws/_me/{client_id}`):
/// no group may be called so (see [`GroupName::rooms_stream`]).
pub const ROOMS_STREAM: &str = "_me";

/// Hex characters after [`DIRECT_PREFIX`] in a direct message group's name
/// (the first 16 bytes of a SHA-256).
pub const DIRECT_HASH_CHARS: usize = 32;

/// Why an identifier was refused. The messages are shown to users as-is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("group name must be 1 to {MAX_GROUP_NAME_LEN} characters of A-Z, a-z, 0-9, '_' or '-'")]
    InvalidGroup,
    #[error(
        "group names starting with \"{DIRECT_PREFIX}\" are direct messages': \"{DIRECT_PREFIX}\" and \
         {DIRECT_HASH_CHARS} lowercase hex characters"
    )]
    InvalidDirect,
    #[error("\"{ROOMS_STREAM}\" is reserved (the rooms stream); choose another group name")]
    ReservedGroup,
    #[error("client id must be a UUID")]
    InvalidClientId,
    #[error(
        "display name must be 1 to {MAX_DISPLAY_NAME_CHARS} characters without control, zero-width or \
         bidi-control characters"
    )]
    InvalidDisplayName,
    #[error("display name \"{SERVER_NAME}\" is the server's own; choose another")]
    ReservedDisplayName,
}

/// The accessors every validated string newtype shares; validation itself is
/// the type's `TryFrom<String>` (and `FromStr`), the only ways in.
macro_rules! validated_string {
    ($name:ident) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
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

/// A group (room) name: 1–64 characters of `[A-Za-z0-9_-]`. A name that
/// starts with [`DIRECT_PREFIX`] (in any case, so that no room looks like a
/// direct message) must be a direct message group's, as
/// [`GroupName::direct`] makes them.
///
/// The alphabet is URL-safe, so a group name never needs escaping in a path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct GroupName(String);

impl TryFrom<String> for GroupName {
    type Error = NameError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        if !Self::in_alphabet(&value) {
            return Err(NameError::InvalidGroup);
        }
        let reserved = value.get(..DIRECT_PREFIX.len()).is_some_and(|start| start.eq_ignore_ascii_case(DIRECT_PREFIX));
        if reserved && !is_direct_name(&value) {
            return Err(NameError::InvalidDirect);
        }
        Ok(Self(value))
    }
}

impl GroupName {
    /// The name an identity's rooms stream has among the groups of a node
    /// (its connections' group, which nobody can join or publish to: a
    /// name someone gives is never it).
    pub fn rooms_stream() -> Self {
        Self(ROOMS_STREAM.to_owned())
    }

    /// Whether `text` is 1–64 characters of the group alphabet: what a
    /// group name is made of, before the [`DIRECT_PREFIX`] rule (a token's
    /// `prefix*` patterns are held to this, so `dm-*` is one).
    pub fn in_alphabet(text: &str) -> bool {
        (1..=MAX_GROUP_NAME_LEN).contains(&text.len())
            && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    }

    /// The direct message group of `a` and `b`, the same whichever comes
    /// first: [`DIRECT_PREFIX`] and the first 16 bytes, in lowercase hex, of
    /// the SHA-256 of both ids in their lowercase hyphenated form (36
    /// characters each), sorted, joined by one `\n` (73 bytes, no newline
    /// at the end). `docs/PROTOCOL.md` says the same for other clients.
    pub fn direct(a: ClientId, b: ClientId) -> GroupName {
        let (a, b) = (a.0.hyphenated().to_string(), b.0.hyphenated().to_string());
        let (first, second) = if a <= b { (a, b) } else { (b, a) };
        let digest = Sha256::digest(format!("{first}\n{second}").as_bytes());
        let mut name = String::with_capacity(DIRECT_PREFIX.len() + DIRECT_HASH_CHARS);
        name.push_str(DIRECT_PREFIX);
        for byte in &digest[..DIRECT_HASH_CHARS / 2] {
            name.push(char::from(HEX[usize::from(byte >> 4)]));
            name.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
        GroupName(name)
    }

    /// Whether this is a direct message group's name (only its two
    /// participants may use it).
    pub fn is_direct(&self) -> bool {
        self.0.starts_with(DIRECT_PREFIX)
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// [`DIRECT_PREFIX`] and exactly [`DIRECT_HASH_CHARS`] lowercase hex
/// characters.
fn is_direct_name(text: &str) -> bool {
    text.strip_prefix(DIRECT_PREFIX).is_some_and(|hash| {
        hash.len() == DIRECT_HASH_CHARS && hash.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

validated_string!(GroupName);

/// A name someone chooses (a URL path, a form): held to more than one
/// already given (serde), as [`ROOMS_STREAM`] is not a room.
impl FromStr for GroupName {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == ROOMS_STREAM {
            return Err(NameError::ReservedGroup);
        }
        Self::try_from(s.to_owned())
    }
}

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
///
/// Two ways in, for two kinds of name:
/// - [`FromStr`] (`"Alice".parse()`): a name someone chooses now (the
///   handshake's `?name=`, a new identity, the app's forms). It also
///   refuses bidi controls and zero-width characters anywhere in it (they
///   reorder or hide what is shown around the name; the app renders names
///   as text), and [`SERVER_NAME`] in any case (a client posing as the
///   server).
/// - `TryFrom<String>`, which serde uses: a name already given (signed in a
///   token, stored with a message, on the wire). Only the rules above, so
///   that the server's own messages decode, and so do names stored or
///   signed before the stricter rules.
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

impl FromStr for DisplayName {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = Self::try_from(s.to_owned())?;
        if name.0.chars().any(is_bidi_or_zero_width) {
            return Err(NameError::InvalidDisplayName);
        }
        if name.0.eq_ignore_ascii_case(SERVER_NAME) {
            return Err(NameError::ReservedDisplayName);
        }
        Ok(name)
    }
}

/// Characters a chosen name may not hold anywhere: bidi embeddings,
/// overrides and isolates (U+202A–202E, U+2066–2069) and the Arabic letter
/// mark, zero-width spaces, joiners and marks (U+200B–200F), the word
/// joiner and the byte order mark.
fn is_bidi_or_zero_width(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{2060}' | '\u{FEFF}')
}

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
    fn the_rooms_stream_name_is_reserved_for_it() {
        assert_eq!("_me".parse::<GroupName>(), Err(NameError::ReservedGroup));
        assert!("_me2".parse::<GroupName>().is_ok() && "me".parse::<GroupName>().is_ok());
        let stream = GroupName::rooms_stream();
        assert_eq!(serde_json::from_str::<GroupName>(r#""_me""#).unwrap(), stream, "given by the server, it reads");
    }

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
    fn the_direct_prefix_is_reserved_for_direct_message_names() {
        let well_formed = format!("dm-{}", "0123456789abcdef".repeat(2));
        let name = well_formed.parse::<GroupName>().unwrap();
        assert!(name.is_direct());
        assert!(!"lobby".parse::<GroupName>().unwrap().is_direct());
        assert!(!"dmx".parse::<GroupName>().unwrap().is_direct() && !"adm-1".parse::<GroupName>().unwrap().is_direct());
        let upper = format!("dm-{}", "0123456789ABCDEF".repeat(2));
        let long = format!("{well_formed}0");
        let short = &well_formed[..well_formed.len() - 1];
        let not_hex = format!("dm-{}", "g".repeat(32));
        let shouting = format!("DM-{}", "0123456789abcdef".repeat(2));
        for bad in ["dm-", "dm-chat", "Dm-chat", "DM-x", &upper, &long, short, &not_hex, &shouting] {
            assert_eq!(bad.parse::<GroupName>(), Err(NameError::InvalidDirect), "{bad:?}");
        }
        assert!(serde_json::from_str::<GroupName>("\"dm-chat\"").is_err());
        assert!(NameError::InvalidDirect.to_string().contains("\"dm-\" and 32 lowercase hex"));
    }

    #[test]
    fn a_direct_group_is_the_same_from_either_side_and_parses() {
        let id = |n: u128| ClientId(Uuid::from_u128(n));
        let (a, b) = (id(0x1111 << 64), id(0x2222));
        let name = GroupName::direct(a, b);
        assert_eq!(name, GroupName::direct(b, a));
        assert_ne!(name, GroupName::direct(a, id(0x3333)));
        assert_eq!(name.as_str().parse::<GroupName>().as_ref(), Ok(&name));
        assert!(name.is_direct() && name.as_str().len() == 35);
    }

    #[test]
    fn the_direct_group_name_follows_the_documented_derivation() {
        // docs/PROTOCOL.md: SHA-256 of "3f2504e0-4f89-4d3a-9a0c-0305e82c3301\n
        // 6f1c2a9e-0b5d-4c61-9a55-5f6d0d3f6a10" (computed apart, with
        // `printf '%s\n%s' … | sha256sum`), its first 32 hex characters.
        let a: ClientId = "6F1C2A9E-0B5D-4C61-9A55-5F6D0D3F6A10".parse().unwrap();
        let b: ClientId = "3f2504e0-4f89-4d3a-9a0c-0305e82c3301".parse().unwrap();
        assert_eq!(GroupName::direct(a, b).as_str(), "dm-35cddd3563a85eb7b486bea9dbbf1518");
        // Oneself: one id twice.
        assert_eq!(GroupName::direct(a, a).as_str(), "dm-ebaa1c0833b7da1eca25ef4b69d23de3");
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
    }

    #[test]
    fn chosen_names_hold_no_bidi_control_or_zero_width_character() {
        for bad in [
            "Alice\u{202E}gnp.exe",
            "\u{2067}Bob",
            "Mallory\u{2069}",
            "A\u{200B}lice",
            "A\u{200D}B",
            "Eve\u{200F}",
            "Zoe\u{2060}",
            "\u{FEFF}Ann",
            "Sam\u{061C}",
        ] {
            assert_eq!(bad.parse::<DisplayName>(), Err(NameError::InvalidDisplayName), "{bad:?}");
            assert!(DisplayName::try_from(bad.to_owned()).is_ok(), "given names still decode: {bad:?}");
        }
        assert!("Zoë 李雷 🙂".parse::<DisplayName>().is_ok());
    }

    #[test]
    fn no_client_may_choose_the_servers_name() {
        for reserved in ["server", "Server", " SERVER ", "sErVeR"] {
            assert_eq!(reserved.parse::<DisplayName>(), Err(NameError::ReservedDisplayName), "{reserved:?}");
        }
        assert!("servers".parse::<DisplayName>().is_ok());
        let given: DisplayName = serde_json::from_str("\"server\"").unwrap();
        assert_eq!(given.as_str(), SERVER_NAME, "the server's own messages decode");
    }
}
