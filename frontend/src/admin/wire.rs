//! The admin API's answers, as the page reads them. Numbers missing from an
//! answer read as zero (a newer or older server may add or drop one): the
//! page still shows the rest.

use serde::Deserialize;
use uuid::Uuid;

/// `GET /admin/api/overview`: the cluster at a glance.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Overview {
    /// The node that answered.
    pub this_node: String,
    /// Live nodes that did not answer in time (their rows are missing).
    pub missing_nodes: u32,
    pub nodes: Vec<Node>,
    pub groups_by_members: Vec<GroupLoad>,
    pub groups_by_rate: Vec<GroupLoad>,
    pub series: Series,
}

/// One node of the cluster.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Node {
    pub node: String,
    /// The node that answered.
    pub this: bool,
    /// When it started (Unix ms).
    pub started_ms: u64,
    pub connections: u64,
    pub groups: u64,
    pub rooms_streams: u64,
    pub draining: bool,
    pub messages_per_s: f64,
    pub deliveries_per_s: f64,
}

/// A group among the busiest.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct GroupLoad {
    pub group: String,
    pub members: u64,
    pub messages_per_s: f64,
}

/// The last minutes, one point every `every_ms`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Series {
    pub every_ms: u64,
    pub points: Vec<Point>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Point {
    pub t_ms: u64,
    pub connections: u64,
    pub deliveries_per_s: f64,
}

/// `GET /admin/api/identities/{sub}`: an identity's live connections and
/// bans.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct IdentityReport {
    pub sub: Uuid,
    #[serde(default)]
    pub connections: Vec<LiveConnection>,
    /// Live nodes that did not answer in time (their connections are not
    /// listed).
    #[serde(default)]
    pub missing_nodes: u32,
    #[serde(default)]
    pub bans: Vec<BanRecord>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct LiveConnection {
    pub node: String,
    pub group: String,
    /// `json` or `raw`.
    pub mode: String,
}

/// A ban: of an identity (`sub`), of an address or network, or both.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BanRecord {
    pub id: Uuid,
    #[serde(default)]
    pub sub: Option<Uuid>,
    #[serde(default)]
    pub network: Option<String>,
    /// Lifted by itself then (Unix ms).
    pub until_ms: u64,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub created_ms: u64,
}

/// `GET /admin/api/bans`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BanList {
    pub bans: Vec<BanRecord>,
}

/// `POST /admin/api/identities/{sub}/disconnect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Disconnected {
    pub sub: Uuid,
    /// Connections closed. (`closed_here`: what a server that counts only
    /// the node that answered calls it.)
    #[serde(alias = "closed_here")]
    pub closed: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODE: &str = "5b0e6c1e-8a3f-4f4e-9b1a-1d2c3e4f5a6b";

    #[test]
    fn the_overview_reads_as_the_server_writes_it() {
        let json = format!(
            r#"{{"this_node":"{NODE}","missing_nodes":1,
            "nodes":[{{"node":"{NODE}","this":true,"started_ms":1700000000000,"connections":3,"groups":2,
                       "rooms_streams":1,"draining":false,"messages_per_s":0.5,"deliveries_per_s":1.0}}],
            "groups_by_members":[{{"group":"lobby","members":3,"messages_per_s":0.5}}],
            "groups_by_rate":[{{"group":"lobby","members":3,"messages_per_s":0.5}}],
            "series":{{"every_ms":2000,"points":[{{"t_ms":1700000000000,"connections":3,"deliveries_per_s":1.0}}]}}}}"#
        );
        let overview: Overview = serde_json::from_str(&json).unwrap();
        assert_eq!(overview.missing_nodes, 1);
        let node = &overview.nodes[0];
        assert!(node.this && !node.draining);
        assert_eq!((node.node.as_str(), node.connections, node.groups, node.rooms_streams), (NODE, 3, 2, 1));
        assert_eq!((node.messages_per_s, node.deliveries_per_s), (0.5, 1.0));
        assert_eq!(overview.groups_by_members[0], GroupLoad { group: "lobby".into(), members: 3, messages_per_s: 0.5 });
        assert_eq!(overview.series.every_ms, 2000);
        let point = Point { t_ms: 1_700_000_000_000, connections: 3, deliveries_per_s: 1.0 };
        assert_eq!(overview.series.points, [point]);
    }

    #[test]
    fn what_an_overview_leaves_out_reads_as_nothing() {
        let overview: Overview = serde_json::from_str(r#"{"nodes":[{"node":"a"}]}"#).unwrap();
        assert_eq!(overview.nodes[0], Node { node: "a".into(), ..Node::default() });
        assert!(overview.series.points.is_empty());
    }

    #[test]
    fn an_identity_report_lists_connections_and_bans() {
        let json = r#"{"sub":"00000000-0000-0000-0000-000000000001","missing_nodes":1,
            "connections":[{"node":"n1","group":"lobby","mode":"json"}],
            "bans":[{"id":"00000000-0000-0000-0000-0000000000b1","sub":"00000000-0000-0000-0000-000000000001",
                     "network":null,"until_ms":1700000360000,"reason":"spam","created_ms":1700000000000}]}"#;
        let report: IdentityReport = serde_json::from_str(json).unwrap();
        assert_eq!((report.sub, report.missing_nodes), (Uuid::from_u128(1), 1));
        assert_eq!(report.connections[0].mode, "json");
        let ban = &report.bans[0];
        assert_eq!((ban.id, ban.sub, ban.network.as_deref()), (Uuid::from_u128(0xb1), Some(Uuid::from_u128(1)), None));
        assert_eq!((ban.until_ms, ban.reason.as_str()), (1_700_000_360_000, "spam"));
    }

    #[test]
    fn a_network_ban_has_no_identity() {
        let json = r#"{"bans":[{"id":"00000000-0000-0000-0000-0000000000b2","sub":null,
            "network":"203.0.113.0/24","until_ms":5,"reason":"","created_ms":1}]}"#;
        let list: BanList = serde_json::from_str(json).unwrap();
        assert_eq!((list.bans[0].sub, list.bans[0].network.as_deref()), (None, Some("203.0.113.0/24")));
    }

    #[test]
    fn a_disconnect_says_how_many_connections_closed() {
        let json = r#"{"sub":"00000000-0000-0000-0000-000000000001","closed":2}"#;
        assert_eq!(serde_json::from_str::<Disconnected>(json).unwrap().closed, 2);
        let json = r#"{"sub":"00000000-0000-0000-0000-000000000001","closed_here":1}"#;
        assert_eq!(serde_json::from_str::<Disconnected>(json).unwrap().closed, 1);
    }
}
