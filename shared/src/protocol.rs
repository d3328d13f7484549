//! The `roomcast.v1` JSON protocol: one JSON object per WebSocket text frame,
//! tagged by its `"type"` field. See `docs/PROTOCOL.md` for the prose version.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use crate::message::MessageId;
use crate::message::{ChatMessage, Sender};
use crate::names::{ClientId, GroupName};
use crate::presence::{PresenceCount, PresentMember};
use crate::rooms::{LastMessage, RoomEntry};
use crate::seen::Reader;

/// Client → server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientCommand {
    /// Publish `text` to the connection's group.
    Send { id: MessageId, text: String },
    /// Application-level heartbeat; the server answers `pong`. Browsers can
    /// neither send nor observe WebSocket Ping frames, hence this.
    Ping,
    /// A newer token for the same identity, before the connection's own
    /// expires: the server answers `refreshed` (and keeps the connection
    /// open past the old expiry) or an `error` with `token_refused`.
    /// Optional: a client that never sends it is closed with
    /// [`TOKEN_EXPIRED`](crate::close::TOKEN_EXPIRED) at expiry and
    /// reconnects with a new token.
    Refresh { token: String },
    /// The user is typing in this group: the group's other members see a
    /// [`ServerEvent::Typing`]. Never stored; the server passes on at most
    /// one per identity every [`TYPING_EVERY_MS`](crate::limits::TYPING_EVERY_MS)
    /// and drops the rest without a word. A client shows a typer until
    /// [`TYPING_SHOWN_MS`](crate::limits::TYPING_SHOWN_MS) pass or that
    /// identity's message arrives.
    Typing,
    /// This verified identity has read the group's messages up to `seq` of
    /// history `epoch` (its read cursor). Optional and unanswered: the
    /// server keeps the highest (a lower one is ignored; another epoch than
    /// the group's is ignored; a number past the group's last is taken as
    /// the last) and tells every connection of the identity to the group,
    /// on every node, with a [`ServerEvent::Cursor`]. An unverified
    /// (tokenless) connection gets an `error` (`invalid_message`).
    Read { epoch: String, seq: u64 },
    /// On the rooms stream only: take `group` off this identity's room
    /// list (its read cursor is forgotten) on every device; the stream
    /// answers `forgotten`. A room comes back when it is opened again (a
    /// direct message: when the other side opens it again).
    Forget { group: GroupName },
}

/// Longest `epoch` a `read` may carry (the server's are 16 hex digits).
pub const MAX_EPOCH_LEN: usize = 64;

/// The `type` tags of [`ClientCommand`], for telling an unknown command from a
/// malformed known one.
const COMMAND_TYPES: [&str; 6] = ["send", "ping", "refresh", "typing", "read", "forget"];

/// Why a text frame was not a usable command. The connection stays open; the
/// server answers with an `error` event built from this.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("malformed command: {0}")]
    Malformed(String),
    #[error("unknown command type {0:?}")]
    UnknownType(String),
    #[error("{reason}")]
    Invalid { id: MessageId, reason: &'static str },
}

impl ErrorCode {
    /// Whether a message refused with this code may be sent again later
    /// (with the same id), as opposed to refused for good.
    pub fn is_retryable(self) -> bool {
        matches!(self, Self::Unavailable | Self::RateLimited)
    }
}

impl CommandError {
    /// The machine-readable code for the `error` event.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Malformed(_) => ErrorCode::BadJson,
            Self::UnknownType(_) => ErrorCode::UnknownType,
            Self::Invalid { .. } => ErrorCode::InvalidMessage,
        }
    }

    /// The message id the error refers to, when the frame carried a valid one.
    pub fn message_id(&self) -> Option<MessageId> {
        match self {
            Self::Invalid { id, .. } => Some(*id),
            _ => None,
        }
    }
}

/// Longest detail copied from a parser error into an `error` event.
const MAX_ERROR_DETAIL: usize = 160;

impl ClientCommand {
    /// Parses and validates one text frame.
    pub fn decode(frame: &str) -> Result<Self, CommandError> {
        let command: Self = serde_json::from_str(frame).map_err(|err| classify(frame, err))?;
        match &command {
            Self::Send { id, text } => check_text(text).map_err(|reason| CommandError::Invalid { id: *id, reason })?,
            Self::Read { epoch, .. } if epoch.is_empty() || epoch.len() > MAX_EPOCH_LEN => {
                return Err(CommandError::Malformed(format!("read: epoch must be 1 to {MAX_EPOCH_LEN} bytes")));
            }
            _ => {}
        }
        Ok(command)
    }

    /// Its `type` tag.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Send { .. } => "send",
            Self::Ping => "ping",
            Self::Refresh { .. } => "refresh",
            Self::Typing => "typing",
            Self::Read { .. } => "read",
            Self::Forget { .. } => "forget",
        }
    }

    /// The message a `send` carries.
    pub fn message_id(&self) -> Option<MessageId> {
        match self {
            Self::Send { id, .. } => Some(*id),
            _ => None,
        }
    }

    /// Encodes the command as one text frame.
    pub fn encode(&self) -> String {
        // Serializing a type made only of strings, UUIDs and derived impls
        // cannot fail.
        serde_json::to_string(self).expect("ClientCommand serializes")
    }

    /// Bytes of the `send` frame that carries `text`: what the server's
    /// `max_message_bytes` limits. Ids are fixed-width, so any id will do.
    pub fn send_frame_len(text: &str) -> usize {
        Self::Send { id: MessageId(Uuid::nil()), text: text.to_owned() }.encode().len()
    }
}

/// Whether `text` may be a message's text (whoever sends it); if not, why.
pub fn check_text(text: &str) -> Result<(), &'static str> {
    if text.trim().is_empty() {
        return Err("text must not be empty");
    }
    if has_control_characters(text) {
        return Err("text must not contain control characters other than line breaks and tabs");
    }
    Ok(())
}

/// Bytes of `text` once JSON-escaped (without the quotes), as every JSON
/// member receives it; counted without encoding.
pub fn json_escaped_len(text: &str) -> usize {
    text.chars()
        .map(|c| match c {
            '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
            c if u32::from(c) < 0x20 => 6,
            c => c.len_utf8(),
        })
        .sum()
}

/// Whether `text` may be a message's text under `max_message_bytes`: the
/// one size rule for every text, however it arrives. A raw frame within the
/// limit can hold twice the limit once JSON-escaped (quotes, backslashes,
/// line breaks), and every JSON member would get that.
pub fn fits_the_limit(text: &str, max_message_bytes: usize) -> bool {
    json_escaped_len(text) <= max_message_bytes
}

/// Whether `text` holds control characters other than line breaks and tabs.
/// They render as nothing or as garbage, and grow six-fold when encoded as
/// JSON for every member, so message texts may not hold them.
pub fn has_control_characters(text: &str) -> bool {
    text.chars().any(|c| c.is_control() && c != '\n' && c != '\t')
}

/// Turns a serde failure into a precise error: not JSON, no `type`, an unknown
/// `type`, or a known `type` with bad fields. Only runs on the error path.
fn classify(frame: &str, err: serde_json::Error) -> CommandError {
    #[derive(Deserialize)]
    struct TypeProbe {
        #[serde(rename = "type")]
        kind: Option<String>,
    }
    match serde_json::from_str::<TypeProbe>(frame) {
        Ok(TypeProbe { kind: Some(kind) }) if !COMMAND_TYPES.contains(&kind.as_str()) => {
            CommandError::UnknownType(truncate(kind))
        }
        Ok(TypeProbe { kind: None }) => CommandError::Malformed("missing \"type\"".into()),
        _ => CommandError::Malformed(truncate(err.to_string())),
    }
}

fn truncate(mut text: String) -> String {
    if text.len() > MAX_ERROR_DETAIL {
        let mut end = MAX_ERROR_DETAIL;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

/// Heartbeat timings in force on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatSettings {
    /// How often the client should send `ping` (and the server pings).
    pub ping_interval_ms: u64,
    /// Silence after which either side may consider the link dead.
    pub idle_timeout_ms: u64,
}

/// The first event on every JSON connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    /// Server-assigned id of this connection (one client may have several).
    pub connection_id: Uuid,
    pub client_id: ClientId,
    pub group: GroupName,
    pub heartbeat: HeartbeatSettings,
    /// Largest frame the server accepts, in bytes.
    pub max_message_bytes: usize,
    /// The group history's epoch: sequence numbers are only comparable
    /// within one epoch. Reconnect with `?since=N&epoch=E`. Empty while the
    /// group holds nothing yet (it gets its epoch with its first message).
    #[serde(default)]
    pub epoch: String,
    /// When the connection's token expires, in Unix seconds (absent: it
    /// does not). Send `refresh` with a newer token before then, or be
    /// closed with 4001 and reconnect with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_expires_at: Option<u64>,
}

/// A page of a group's history, oldest first (`GET /api/groups/{group}/messages`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessagePage {
    pub messages: Vec<ChatMessage>,
    /// Whether more messages exist beyond this page, in the direction it was
    /// asked for: for a `before` page (or one with neither `before` nor
    /// `after`), older messages before its first one; for an `after` page,
    /// newer messages after its last one. Always false for an empty page.
    pub has_more: bool,
}

/// Machine-readable error codes of the `error` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame was not JSON or lacked required fields.
    BadJson,
    /// The `type` is not one this server knows.
    UnknownType,
    /// A well-formed command was refused (e.g. an empty text).
    InvalidMessage,
    /// Binary frames carry nothing in the JSON protocol.
    BinaryNotSupported,
    /// The message could not be stored right now; it was not published.
    /// Send it again later (with the same id).
    Unavailable,
    /// The connection sent more messages than its rate limit allows; this
    /// one was not published. Send it again later (with the same id).
    RateLimited,
    /// The message would exceed a storage quota (e.g. it would create a
    /// group past the server's `--max-groups`): refused for good.
    Quota,
    /// The token of a `refresh` was not accepted (expired, revoked, for
    /// another identity or group, or not signed by this server); the
    /// connection keeps its old token and expiry.
    TokenRefused,
    /// A code this client does not know (added by a newer server): treat it
    /// as a refusal for good.
    #[serde(other)]
    Unknown,
}

/// Server → client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerEvent {
    Welcome(Welcome),
    Message(ChatMessage),
    /// The message with this id is stored and sequenced as `seq`.
    Ack {
        id: MessageId,
        seq: u64,
    },
    /// Messages `from..=to` cannot be recovered. What follows depends on why:
    /// - retention removed them (the client's `since` is older than the
    ///   oldest message kept): everything kept after them, from `to + 1` on,
    ///   so the client's timeline is whole except for exactly `from..=to`;
    /// - the group never reached these numbers (`since` is beyond the group's
    ///   latest: the server's data was reset): nothing the client holds can
    ///   be trusted, and the messages that follow are the group's latest
    ///   page; older ones remain available from the HTTP API.
    Gap {
        from: u64,
        to: u64,
    },
    /// The history this client holds is not the group's any more: its
    /// `epoch` differs from the group's (the group was recreated, or the
    /// server started over), or its `since` is beyond the group's last
    /// number (the store went back, e.g. to a backup). Drop what is shown;
    /// what follows is what a fresh join gets, then `synced`.
    Reset {
        epoch: String,
    },
    /// The replay that follows `welcome` is complete: the client holds the
    /// group's messages up to `seq` (0 for an empty group) and everything
    /// after arrives live.
    Synced {
        seq: u64,
    },
    Pong,
    /// Another member of the group is typing (see [`ClientCommand::Typing`]).
    Typing {
        from: Sender,
    },
    /// Who is in the group, replacing what the client holds: sent once the
    /// replay after `welcome` is done, and again whenever the client's view
    /// may be stale (above the listing threshold: at most once a second,
    /// counts only). At most [`PRESENCE_LISTED`](crate::limits::PRESENCE_LISTED)
    /// members, in [`PresentMember::listing_order`]; `count` has the totals.
    Presence {
        members: Vec<PresentMember>,
        count: PresenceCount,
    },
    /// People who came, or whose number of connections changed: each
    /// replaces the client's entry with its `client_id`.
    Join {
        members: Vec<PresentMember>,
        count: PresenceCount,
    },
    /// People gone: none of their connections has been back for the grace.
    Leave {
        ids: Vec<ClientId>,
        count: PresenceCount,
    },
    /// This identity's read cursor in the group: it has read up to `seq` of
    /// history `epoch`. Sent to a verified member right after `welcome`
    /// when it has one in the group's current epoch, and to every
    /// connection of the identity to the group (on every node) whenever a
    /// `read` moves it (see [`ClientCommand::Read`]).
    Cursor {
        epoch: String,
        seq: u64,
    },
    /// In a small group (no more identities with a read cursor in it than
    /// the server's `--seen-max`), how far its readers have read history
    /// `epoch`: every one of them right after `welcome` (before the
    /// replay), then each one whose cursor moves, to every JSON member of
    /// the group on every node. Each reader replaces what the client holds
    /// for its `client_id`. Best-effort, outside the sequence; none in a
    /// larger group.
    Seen {
        epoch: String,
        readers: Vec<Reader>,
    },
    /// On the rooms stream, after `welcome`: the identity's rooms, newest
    /// activity first (at most 200, and as many as fit one frame within
    /// the server's write buffer: the longest quiet are left out).
    Rooms {
        rooms: Vec<RoomEntry>,
    },
    /// On the rooms stream: a room of the list as it now is (its cursor
    /// moved, on any device), or a room new to the list (opened on another
    /// device, or a direct message someone started).
    Room {
        room: RoomEntry,
    },
    /// On the rooms stream: a message in one of the rooms, as it is
    /// delivered. Count it as unread when it is not this identity's own
    /// and its `seq` is past the room's `read` (and past the `last` already
    /// known: one may also be in the `rooms` that follow it).
    Activity {
        group: GroupName,
        epoch: String,
        last: LastMessage,
    },
    /// On the rooms stream: the room left the list (a `forget`, on any
    /// device).
    Forgotten {
        group: GroupName,
    },
    /// The node is draining for a restart: this connection closes next
    /// (1012). Reconnect after a uniform random wait of at most
    /// `retry_after_ms`, so that the other nodes see a ramp.
    Draining {
        retry_after_ms: u64,
    },
    /// An operator removed this connection: it closes next, with 4010
    /// (disconnected: reconnect with backoff) or 4403 (banned: refused
    /// until `until_ms`, Unix milliseconds; do not reconnect). `reason` is
    /// the operator's, for the user (may be empty).
    Removed {
        reason: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until_ms: Option<u64>,
    },
    /// A `refresh` was taken: the connection's token now expires at
    /// `token_expires_at` (Unix seconds; absent: never).
    Refreshed {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token_expires_at: Option<u64>,
    },
    Error {
        code: ErrorCode,
        message: String,
        /// The `send` this error refers to, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<MessageId>,
    },
    /// An event this client does not know (added by a newer server within
    /// `roomcast.v1`): ignored. Never sent.
    #[serde(other, skip_serializing)]
    Unknown,
}

impl ServerEvent {
    /// Encodes the event as one text frame.
    pub fn encode(&self) -> String {
        // Only strings, integers, UUIDs and derived impls: cannot fail.
        serde_json::to_string(self).expect("ServerEvent serializes")
    }

    /// Parses one text frame from the server.
    pub fn decode(frame: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(frame)
    }

    /// The `error` event for a refused command.
    pub fn from_command_error(err: &CommandError) -> Self {
        Self::Error { code: err.code(), message: err.to_string(), id: err.message_id() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "6f1c2a9e-0b5d-4c61-9a55-5f6d0d3f6a10";

    fn id() -> MessageId {
        MessageId(Uuid::parse_str(ID).unwrap())
    }

    #[test]
    fn commands_round_trip() {
        for command in
            [ClientCommand::Send { id: id(), text: "héllo <b>".into() }, ClientCommand::Ping, ClientCommand::Typing]
        {
            assert_eq!(ClientCommand::decode(&command.encode()), Ok(command));
        }
    }

    #[test]
    fn commands_have_the_documented_shape() {
        assert_eq!(ClientCommand::Ping.encode(), r#"{"type":"ping"}"#);
        assert_eq!(ClientCommand::Typing.encode(), r#"{"type":"typing"}"#);
        let send = format!(r#"{{"type":"send","id":"{ID}","text":"hi"}}"#);
        assert_eq!(ClientCommand::decode(&send), Ok(ClientCommand::Send { id: id(), text: "hi".into() }));
    }

    #[test]
    fn typing_has_the_documented_shape() {
        let from = Sender { client_id: ClientId(Uuid::parse_str(ID).unwrap()), name: None, verified: true };
        let event = ServerEvent::Typing { from };
        assert_eq!(event.encode(), format!(r#"{{"type":"typing","from":{{"client_id":"{ID}","verified":true}}}}"#));
        assert_eq!(ServerEvent::decode(&event.encode()).unwrap(), event);
    }

    #[test]
    fn presence_has_the_documented_shape() {
        let member = PresentMember { client_id: ClientId(Uuid::parse_str(ID).unwrap()), name: None, connections: 2 };
        let count = PresenceCount { people: 1, anonymous: 3, listed: true };
        let join = ServerEvent::Join { members: vec![member.clone()], count };
        assert_eq!(
            join.encode(),
            format!(
                r#"{{"type":"join","members":[{{"client_id":"{ID}","connections":2}}],"count":{{"people":1,"anonymous":3,"listed":true}}}}"#
            )
        );
        let leave = ServerEvent::Leave { ids: vec![member.client_id], count };
        assert_eq!(
            leave.encode(),
            format!(r#"{{"type":"leave","ids":["{ID}"],"count":{{"people":1,"anonymous":3,"listed":true}}}}"#)
        );
        for event in [join, leave, ServerEvent::Presence { members: vec![member], count }] {
            assert_eq!(ServerEvent::decode(&event.encode()).unwrap(), event);
        }
    }

    #[test]
    fn read_and_cursor_have_the_documented_shape() {
        let read = ClientCommand::Read { epoch: "9f2c41d07ab35e86".into(), seq: 42 };
        assert_eq!(read.encode(), r#"{"type":"read","epoch":"9f2c41d07ab35e86","seq":42}"#);
        assert_eq!(ClientCommand::decode(&read.encode()), Ok(read));
        let cursor = ServerEvent::Cursor { epoch: "9f2c41d07ab35e86".into(), seq: 42 };
        assert_eq!(cursor.encode(), r#"{"type":"cursor","epoch":"9f2c41d07ab35e86","seq":42}"#);
        assert_eq!(ServerEvent::decode(&cursor.encode()).unwrap(), cursor);
    }

    #[test]
    fn seen_has_the_documented_shape() {
        let seen = ServerEvent::Seen {
            epoch: "9f2c41d07ab35e86".into(),
            readers: vec![Reader { client_id: ID.parse().unwrap(), seq: 7 }],
        };
        assert_eq!(
            seen.encode(),
            format!(r#"{{"type":"seen","epoch":"9f2c41d07ab35e86","readers":[{{"client_id":"{ID}","seq":7}}]}}"#)
        );
        assert_eq!(ServerEvent::decode(&seen.encode()).unwrap(), seen);
    }

    #[test]
    fn a_read_needs_a_bounded_epoch_and_a_number() {
        let long = format!(r#"{{"type":"read","epoch":"{}","seq":1}}"#, "a".repeat(MAX_EPOCH_LEN + 1));
        for frame in [r#"{"type":"read","epoch":"","seq":1}"#, r#"{"type":"read","seq":1}"#, &long] {
            assert_eq!(ClientCommand::decode(frame).unwrap_err().code(), ErrorCode::BadJson, "{frame}");
        }
        for frame in [r#"{"type":"read","epoch":"e","seq":-1}"#, r#"{"type":"read","epoch":"e","seq":"1"}"#] {
            assert_eq!(ClientCommand::decode(frame).unwrap_err().code(), ErrorCode::BadJson, "{frame}");
        }
    }

    #[test]
    fn the_frame_length_counts_encoded_utf8_bytes() {
        let overhead = ClientCommand::send_frame_len("");
        assert_eq!(ClientCommand::send_frame_len("abc"), overhead + 3);
        assert_eq!(ClientCommand::send_frame_len("é"), overhead + 2, "UTF-8 bytes, not characters");
        assert_eq!(ClientCommand::send_frame_len("\""), overhead + 2, "escaped as JSON");
        assert_eq!(ClientCommand::send_frame_len("\u{1}"), overhead + 6, "control characters grow six-fold");
        let text = "你好 👋".repeat(50);
        assert_eq!(
            ClientCommand::send_frame_len(&text),
            ClientCommand::Send { id: id(), text: text.clone() }.encode().len()
        );
    }

    #[test]
    fn the_escaped_length_is_what_json_makes_of_a_text() {
        for text in
            ["plain", "\"quoted\"", "back\\slash", "lines\nand\ttabs\r", "\u{1}\u{8}\u{c}\u{1f}", "你好 👋", "\u{7f}"]
        {
            let encoded = serde_json::to_string(text).unwrap();
            assert_eq!(json_escaped_len(text), encoded.len() - 2, "{text:?}");
        }
        assert!(fits_the_limit(&"y".repeat(1024), 1024));
        assert!(!fits_the_limit(&"\"".repeat(513), 1024), "each quote takes two bytes");
    }

    #[test]
    fn unknown_fields_are_ignored_for_forward_compatibility() {
        let send = format!(r#"{{"type":"send","id":"{ID}","text":"hi","future":1}}"#);
        assert!(ClientCommand::decode(&send).is_ok());
    }

    #[test]
    fn garbage_is_malformed() {
        for frame in ["", "not json", "[]", "42", "{", "\"send\"", r#"{"type":7}"#] {
            let err = ClientCommand::decode(frame).unwrap_err();
            assert_eq!(err.code(), ErrorCode::BadJson, "{frame:?}: {err}");
        }
    }

    #[test]
    fn missing_type_is_malformed() {
        let err = ClientCommand::decode(r#"{"text":"hi"}"#).unwrap_err();
        assert_eq!(err, CommandError::Malformed("missing \"type\"".into()));
    }

    #[test]
    fn unknown_type_is_reported_by_name() {
        let err = ClientCommand::decode(r#"{"type":"subscribe"}"#).unwrap_err();
        assert_eq!(err, CommandError::UnknownType("subscribe".into()));
        assert_eq!(err.code(), ErrorCode::UnknownType);
    }

    #[test]
    fn known_type_with_bad_fields_is_malformed() {
        for frame in [
            r#"{"type":"send","text":"hi"}"#,
            r#"{"type":"send","id":"not-a-uuid","text":"hi"}"#,
            r#"{"type":"send","id":"6f1c2a9e-0b5d-4c61-9a55-5f6d0d3f6a10"}"#,
            r#"{"type":"send","id":"6f1c2a9e-0b5d-4c61-9a55-5f6d0d3f6a10","text":5}"#,
        ] {
            let err = ClientCommand::decode(frame).unwrap_err();
            assert_eq!(err.code(), ErrorCode::BadJson, "{frame}");
        }
    }

    #[test]
    fn blank_text_is_invalid_and_names_the_message() {
        for text in ["", "  \n\t"] {
            let frame = ClientCommand::Send { id: id(), text: text.into() }.encode();
            let err = ClientCommand::decode(&frame).unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidMessage);
            assert_eq!(err.message_id(), Some(id()));
        }
    }

    #[test]
    fn control_characters_are_refused_but_line_breaks_and_tabs_are_not() {
        for text in ["a\u{0}b", "bell\u{7}", "esc\u{1b}[31m", "cr\r\n", "del\u{7f}", "c1\u{85}"] {
            let frame = ClientCommand::Send { id: id(), text: text.into() }.encode();
            let err = ClientCommand::decode(&frame).unwrap_err();
            assert_eq!((err.code(), err.message_id()), (ErrorCode::InvalidMessage, Some(id())), "{text:?}");
        }
        for text in ["two\nlines", "a\tb", "émoji 👋 你好"] {
            let frame = ClientCommand::Send { id: id(), text: text.into() }.encode();
            assert!(ClientCommand::decode(&frame).is_ok(), "{text:?}");
        }
    }

    #[test]
    fn error_details_are_bounded() {
        let huge = format!(r#"{{"type":"{}"}}"#, "é".repeat(500));
        let err = ClientCommand::decode(&huge).unwrap_err();
        assert!(err.to_string().len() < 2 * MAX_ERROR_DETAIL);
    }

    #[test]
    fn events_round_trip() {
        let events = [
            ServerEvent::Welcome(Welcome {
                connection_id: Uuid::nil(),
                client_id: ClientId(Uuid::nil()),
                group: "lobby".parse().unwrap(),
                heartbeat: HeartbeatSettings { ping_interval_ms: 15_000, idle_timeout_ms: 45_000 },
                max_message_bytes: 65_536,
                epoch: "9f2c41d07ab35e86".into(),
                token_expires_at: Some(1_900_000_000),
            }),
            ServerEvent::Refreshed { token_expires_at: None },
            ServerEvent::Message(ChatMessage {
                group: "lobby".parse().unwrap(),
                seq: 7,
                id: id(),
                from: Sender { client_id: ClientId(Uuid::nil()), name: Some("Bob".parse().unwrap()), verified: true },
                text: "hi".into(),
                ts: 1_700_000_000_000,
            }),
            ServerEvent::Ack { id: id(), seq: 7 },
            ServerEvent::Gap { from: 3, to: 9 },
            ServerEvent::Synced { seq: 0 },
            ServerEvent::Reset { epoch: "9f2c41d07ab35e86".into() },
            ServerEvent::Pong,
            ServerEvent::Error { code: ErrorCode::BadJson, message: "x".into(), id: None },
        ];
        for event in events {
            assert_eq!(ServerEvent::decode(&event.encode()).unwrap(), event);
        }
    }

    #[test]
    fn events_have_the_documented_shape() {
        let ack = ServerEvent::Ack { id: id(), seq: 3 }.encode();
        assert_eq!(ack, format!(r#"{{"type":"ack","id":"{ID}","seq":3}}"#));
        assert_eq!(ServerEvent::Pong.encode(), r#"{"type":"pong"}"#);
        assert_eq!(ServerEvent::Gap { from: 3, to: 9 }.encode(), r#"{"type":"gap","from":3,"to":9}"#);
        assert_eq!(ServerEvent::Synced { seq: 12 }.encode(), r#"{"type":"synced","seq":12}"#);
        let err = ServerEvent::from_command_error(&CommandError::UnknownType("x".into())).encode();
        assert_eq!(err, r#"{"type":"error","code":"unknown_type","message":"unknown command type \"x\""}"#);
    }

    /// Compatible additions to `roomcast.v1`: a client ignores events and
    /// fields it does not know, and reads an error code it does not know as
    /// a refusal for good.
    #[test]
    fn unknown_events_fields_and_codes_are_tolerated() {
        assert_eq!(ServerEvent::decode(r#"{"type":"reaction","count":2}"#).unwrap(), ServerEvent::Unknown);
        assert_eq!(ServerEvent::decode(r#"{"type":"pong","epoch":"e2"}"#).unwrap(), ServerEvent::Pong);
        let error = r#"{"type":"error","code":"epoch_changed","message":"m"}"#;
        assert!(matches!(ServerEvent::decode(error).unwrap(), ServerEvent::Error { code: ErrorCode::Unknown, .. }));
        assert!(!ErrorCode::Unknown.is_retryable());
    }

    #[test]
    fn messages_stored_before_identities_read_as_unverified() {
        let old = r#"{"type":"message","group":"g","seq":1,"id":"6f1c2a9e-0b5d-4c61-9a55-5f6d0d3f6a10","from":{"client_id":"6f1c2a9e-0b5d-4c61-9a55-5f6d0d3f6a10"},"text":"x","ts":1}"#;
        let ServerEvent::Message(message) = ServerEvent::decode(old).unwrap() else { panic!("a message") };
        assert!(!message.from.verified);
    }

    #[test]
    fn events_refuse_invalid_names() {
        let bad = r#"{"type":"message","group":"no spaces","seq":1,"id":"6f1c2a9e-0b5d-4c61-9a55-5f6d0d3f6a10","from":{"client_id":"6f1c2a9e-0b5d-4c61-9a55-5f6d0d3f6a10"},"text":"x","ts":1}"#;
        assert!(ServerEvent::decode(bad).is_err());
    }
}
