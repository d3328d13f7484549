//! What the presence store is, apart from where it keeps things: the
//! [`PresenceStore`] trait
//! both implementations keep (modelled on centrifuge's `PresenceManager`),
//! and its errors.

use std::fmt;

use roomcast_shared::GroupName;

use crate::signals::{NodeId, NodePart};

/// Why presence could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum PresenceError {
    #[error("the presence store is unavailable: {0}")]
    Unavailable(Box<dyn std::error::Error + Send + Sync>),
}

/// Where the nodes keep who is where, for a node that starts following a
/// group (and for the API) to read. Every method may wait on the network
/// (Redis): call it off the async threads.
pub trait PresenceStore: Send + Sync + fmt::Debug {
    /// Applies `node`'s `changes`: in each group, each person replaces
    /// that identity's entry for `node` (no connections: removes it), and
    /// `anonymous`, when given, replaces `node`'s anonymous count.
    fn write(&self, node: NodeId, changes: &[(GroupName, NodePart)]) -> Result<(), PresenceError>;
    /// Everyone in `group`, by node, whether or not the node is still
    /// live (the caller knows which are).
    fn load(&self, group: &GroupName) -> Result<Vec<(NodeId, NodePart)>, PresenceError>;
    /// Removes what `nodes`, found dead, left in `group`.
    fn forget(&self, group: &GroupName, nodes: &[NodeId]) -> Result<(), PresenceError>;
}
