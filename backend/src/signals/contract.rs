//! What the signal half is, apart from how it is carried: the messages
//! ([`Control`], [`Signal`]), the [`Signals`] trait both implementations
//! keep, and their errors.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use roomcast_shared::{ClientId, GroupName, PresentMember, RoomEntry, Sender};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ban::Ban;
use crate::node_report::{Answer, Question};

/// What one node tells every node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Control {
    /// An identity (or an address) revoked, disconnected, banned or let
    /// back: every node's sockets of it close, and its copy of the
    /// revocations and bans follows (see `crate::identity_control`).
    Identity(Sanction),
    /// `from` is typing in `group`: each node tells its JSON members of
    /// `group` but `from`'s own. Best-effort: never stored, and lost with
    /// the channel.
    Typing { group: GroupName, from: Sender },
    /// `node`'s presence changed in each group of `parts` (already
    /// stored): each node puts it into its views of those groups.
    Presence { node: NodeId, parts: Vec<(GroupName, NodePart)> },
    /// `sub`'s read cursor in `group` is now `seq` of history `epoch`
    /// (stored already): each node tells `sub`'s JSON members of `group`,
    /// and when `seen` (the group is small: see `crate::seen`) every JSON
    /// member of it. Lost with the channel; the next `welcome` says it
    /// again.
    Cursor {
        sub: ClientId,
        group: GroupName,
        epoch: String,
        seq: u64,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        seen: bool,
    },
    /// `sub`'s room is now `room` (its cursor moved, or a direct message
    /// began): each node's rooms streams of `sub` watch it and are told.
    Room { sub: ClientId, room: RoomEntry },
    /// `sub` forgot `group` (already stored): each node's rooms streams of
    /// `sub` stop watching it and are told.
    Forgotten { sub: ClientId, group: GroupName },
    /// The admin surface of a node asks every node (`query` ties the
    /// answers to the question); each answers with [`Control::Answer`].
    Ask { query: Uuid, question: Question },
    /// `node`'s answer to the question `query`; only the node that asked
    /// listens for it.
    Answer { query: Uuid, node: NodeId, answer: Answer },
}

/// What an operator (or the API) did to an identity, an address or a
/// network: one signal for all of it, so that every node acts alike.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Sanction {
    /// Tokens of `sub` issued before `issued_before` (Unix seconds) are
    /// refused from now on (stored), and its sockets close (4403).
    Revoke { sub: ClientId, issued_before: u64 },
    /// `sub`'s sockets close (4010) on every node but `by`, which closed
    /// its own already; it may connect again. Not stored.
    Disconnect { sub: ClientId, reason: String, by: NodeId },
    /// `ban` is in force (stored): whatever it names closes (4403) and is
    /// refused until it ends.
    Ban { ban: Ban },
    /// The ban `id` is lifted (removed from the store).
    Lift { id: Uuid },
}

/// What one node says about one group's presence: the people it has connections of
/// (each with how many; 0: gone from this node) and, when given, how many
/// anonymous connections it has. Both as a change (only what moved) and as
/// a whole (a store's `load`, a node's periodic rewrite).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodePart {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub people: Vec<PresentMember>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anonymous: Option<u32>,
}

impl NodePart {
    pub fn is_empty(&self) -> bool {
        self.people.is_empty() && self.anonymous.is_none()
    }
}

/// What a node's handler hears.
#[derive(Debug, Clone, PartialEq)]
pub enum Signal {
    /// The node listens to the control channel, first or again after the
    /// channel was lost: whatever was broadcast before may not have reached
    /// it, so state that matters is read again from where it is stored.
    Listening,
    Control(Control),
}

/// A handler could not act on a signal now. After [`Signal::Listening`],
/// the node listens again a moment later (and hears `Listening` again).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NotHandled(pub Box<dyn std::error::Error + Send + Sync>);

/// Where a node's signals go; called from a thread of the signals (Redis)
/// or the broadcaster's (memory), so it must not wait long.
pub type Handler = Arc<dyn Fn(Signal) -> Result<(), NotHandled> + Send + Sync>;

/// Why a signal could not be sent or a list read.
#[derive(Debug, thiserror::Error)]
pub enum SignalError {
    #[error("the control channel is unavailable: {0}")]
    Unavailable(Box<dyn std::error::Error + Send + Sync>),
}

/// One node of a deployment, new at each start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodeId(Uuid);

impl NodeId {
    pub fn random() -> Self {
        Self(Uuid::new_v4())
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for NodeId {
    type Err = uuid::Error;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        text.parse().map(Self)
    }
}

/// The signals of one node. Every method may wait on the network (Redis):
/// call it off the async threads.
pub trait Signals: Send + Sync + fmt::Debug {
    /// Sends `control` to every node listening now, this one too, once
    /// each.
    fn broadcast(&self, control: &Control) -> Result<(), SignalError>;
    /// Puts `node` on the list of live nodes for `ttl` from now.
    fn refresh(&self, node: NodeId, ttl: Duration) -> Result<(), SignalError>;
    /// Takes `node` off the list at once (a clean stop).
    fn leave(&self, node: NodeId) -> Result<(), SignalError>;
    /// The nodes whose time to live has not run out.
    fn live_nodes(&self) -> Result<Vec<NodeId>, SignalError>;
}
