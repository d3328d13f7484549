//! What a node tells the admin surface of any node about itself: its
//! counts, its busiest groups and its recent series, and one identity's
//! connections on it. Only types: `admin` makes and reads them, the nodes
//! carry them over the control channel (`Control::Answer`).

use roomcast_shared::GroupName;
use serde::{Deserialize, Serialize};

use crate::registry::MemberReport;

/// A node's answer to `Question::Report`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeReport {
    pub started_ms: u64,
    pub connections: usize,
    pub groups: usize,
    pub rooms_streams: usize,
    pub draining: bool,
    /// Over the last sampling period (about 2 s).
    pub messages_per_s: f64,
    pub deliveries_per_s: f64,
    /// At most [`TOP_GROUPS`] each.
    pub groups_by_members: Vec<GroupStat>,
    pub groups_by_rate: Vec<GroupStat>,
    /// Its samples, oldest first, one per sampling period, the last few
    /// minutes.
    pub series: Vec<Point>,
}

/// How many groups each list names.
pub const TOP_GROUPS: usize = 20;

/// One group, on one node or summed over nodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupStat {
    pub group: GroupName,
    pub members: usize,
    pub messages_per_s: f64,
}

/// One sample of a node (or the sum of nodes' samples in one period).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub t_ms: u64,
    pub connections: usize,
    pub deliveries_per_s: f64,
}

/// What the admin surface asks every node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "question", rename_all = "snake_case")]
pub enum Question {
    Report,
    /// The connections of this identity (its verified `sub`).
    Connections {
        sub: roomcast_shared::ClientId,
    },
}

/// A node's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum Answer {
    Report { report: Box<NodeReport> },
    Connections { connections: Vec<MemberReport> },
}
