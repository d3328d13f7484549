//! A group's message as every member gets it, who sent it, and its id.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::names::{ClientId, DisplayName, GroupName};

/// A client-generated message id (a UUID), echoed in the `ack` and in the
/// broadcast `message` so that the sender can match them to what it sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MessageId(pub Uuid);

/// Who sent a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sender {
    pub client_id: ClientId,
    /// Absent for clients that connected without a display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<DisplayName>,
    /// The sender's connection presented a valid token for `client_id`
    /// (always, under `--auth required`). An unverified sender's id and
    /// name are whatever its URL said: anyone may claim them. Messages
    /// stored before identities existed read as unverified.
    #[serde(default)]
    pub verified: bool,
}

/// A message as delivered to the group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub group: GroupName,
    /// Position in the group's sequence: strictly increasing per group.
    pub seq: u64,
    pub id: MessageId,
    pub from: Sender,
    pub text: String,
    /// Server time when the message was sequenced, in Unix milliseconds.
    pub ts: u64,
}
