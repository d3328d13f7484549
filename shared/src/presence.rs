//! Who is in a group: the types of the `presence`, `join` and `leave`
//! events (see [`ServerEvent`](crate::ServerEvent)).
//!
//! Presence is per identity: a verified `sub` with any number of
//! connections (tabs, devices, nodes) is one person. Connections without a
//! verified identity (open mode, raw mode) are only counted, as anonymous.

use serde::{Deserialize, Serialize};

use crate::names::{ClientId, DisplayName};

/// One person in a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresentMember {
    pub client_id: ClientId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<DisplayName>,
    /// Their connections to the group, on every node.
    pub connections: u32,
}

/// How many are in a group, carried by every presence event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceCount {
    /// Verified identities with at least one connection (or within the
    /// grace after their last one closed).
    pub people: u32,
    /// Connections without a verified identity.
    pub anonymous: u32,
    /// Whether members are listed: above the server's threshold a group's
    /// presence is counts only (`presence` events with no members, at most
    /// one a second), and a client drops its list.
    pub listed: bool,
}

impl PresentMember {
    /// The order of a `presence` snapshot's members: by name (unnamed
    /// last), then id.
    pub fn listing_order(&self, other: &Self) -> std::cmp::Ordering {
        let key =
            |member: &Self| (member.name.is_none(), member.name.as_ref().map(|name| name.as_str().to_lowercase()));
        key(self).cmp(&key(other)).then_with(|| self.client_id.0.cmp(&other.client_id.0))
    }
}
