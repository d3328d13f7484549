//! An identity's rooms, as its rooms stream (`/ws/_me/{client_id}`) tells
//! them: the types of the `rooms`, `room`, `activity` and `forgotten`
//! events.

use serde::{Deserialize, Serialize};

use crate::message::Sender;
use crate::names::{ClientId, GroupName};

/// Characters of a message's text a room list shows.
pub const PREVIEW_CHARS: usize = 100;

/// One room of an identity's list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomEntry {
    pub group: GroupName,
    /// For a direct message group, the other participant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub with: Option<ClientId>,
    /// The group's history epoch (empty before its first message).
    #[serde(default)]
    pub epoch: String,
    /// The identity's read cursor (0: none in this epoch).
    pub read: u64,
    /// Messages after `read` not sent by this identity, up to
    /// [`MAX_UNREAD`](crate::limits::MAX_UNREAD) ("99+" from there).
    pub unread: u64,
    /// The group's latest message, if it holds one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<LastMessage>,
    /// When the room last moved for this identity (its latest message, or
    /// its cursor when newer), Unix milliseconds: the list is newest first.
    pub active_ms: u64,
}

/// A group's latest message, as a room list shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastMessage {
    pub seq: u64,
    pub from: Sender,
    /// The start of its text, at most [`PREVIEW_CHARS`] characters.
    pub preview: String,
    pub ts: u64,
}

impl LastMessage {
    /// The start of `text` a list shows.
    pub fn preview_of(text: &str) -> String {
        text.chars().take(PREVIEW_CHARS).collect()
    }
}
