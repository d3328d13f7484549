//! What the admin API answers in JSON, put together from the nodes'
//! answers: the whole deployment at a glance ([`Overview`]) and one
//! identity ([`IdentityView`]). Plain data and arithmetic, tested here.

use std::collections::{BTreeMap, HashMap};

use roomcast_shared::{ClientId, GroupName};
use serde::Serialize;

use super::cluster::Answers;
use super::sampler::{top, EVERY};
use crate::ban::Ban;
use crate::node_report::{Answer, GroupStat, NodeReport, Point};
use crate::signals::NodeId;

/// `GET /admin/api/overview`.
#[derive(Debug, Serialize)]
pub struct Overview {
    pub this_node: NodeId,
    /// Live nodes that did not answer in time.
    pub missing_nodes: usize,
    pub nodes: Vec<NodeRow>,
    pub groups_by_members: Vec<GroupStat>,
    pub groups_by_rate: Vec<GroupStat>,
    pub series: Series,
}

/// One node in the overview.
#[derive(Debug, Serialize)]
pub struct NodeRow {
    pub node: NodeId,
    pub this: bool,
    pub started_ms: u64,
    pub connections: usize,
    pub groups: usize,
    pub rooms_streams: usize,
    pub draining: bool,
    pub messages_per_s: f64,
    pub deliveries_per_s: f64,
}

/// The deployment's samples: each period's sum over the nodes.
#[derive(Debug, Serialize)]
pub struct Series {
    pub every_ms: u64,
    pub points: Vec<Point>,
}

impl Overview {
    /// The nodes' reports in `answers`, asked by `this_node`.
    pub fn of(this_node: NodeId, answers: Answers) -> Self {
        let reports: Vec<(NodeId, NodeReport)> = answers
            .from
            .into_iter()
            .filter_map(|(node, answer)| match answer {
                Answer::Report { report } => Some((node, *report)),
                Answer::Connections { .. } => None,
            })
            .collect();
        let mut nodes: Vec<NodeRow> = reports
            .iter()
            .map(|(node, report)| NodeRow {
                node: *node,
                this: *node == this_node,
                started_ms: report.started_ms,
                connections: report.connections,
                groups: report.groups,
                rooms_streams: report.rooms_streams,
                draining: report.draining,
                messages_per_s: report.messages_per_s,
                deliveries_per_s: report.deliveries_per_s,
            })
            .collect();
        nodes.sort_by_key(|row| (!row.this, row.started_ms, row.node));
        let mut groups = merged_groups(reports.iter().map(|(_, report)| report));
        let groups_by_members = top(&mut groups, |a, b| b.members.cmp(&a.members));
        let groups_by_rate = top(&mut groups, |a, b| b.messages_per_s.total_cmp(&a.messages_per_s));
        let series = merged_series(reports.iter().map(|(_, report)| report.series.as_slice()));
        Self { this_node, missing_nodes: answers.missing, nodes, groups_by_members, groups_by_rate, series }
    }
}

/// Each group named in any node's lists, its members and rate summed over
/// the nodes that name it. (A group busy on many nodes but in none's top
/// list is missed: the lists are each node's top [`TOP_GROUPS`].)
///
/// [`TOP_GROUPS`]: crate::node_report::TOP_GROUPS
fn merged_groups<'a>(reports: impl Iterator<Item = &'a NodeReport>) -> Vec<GroupStat> {
    let mut groups: HashMap<GroupName, GroupStat> = HashMap::new();
    for report in reports {
        // A group in both of a node's lists counts once for that node.
        let mut seen: HashMap<&GroupName, &GroupStat> = HashMap::new();
        for stat in report.groups_by_members.iter().chain(&report.groups_by_rate) {
            seen.entry(&stat.group).or_insert(stat);
        }
        for stat in seen.into_values() {
            let merged = groups.entry(stat.group.clone()).or_insert_with(|| GroupStat {
                group: stat.group.clone(),
                members: 0,
                messages_per_s: 0.0,
            });
            merged.members += stat.members;
            // Every node delivers each message of a group it has members
            // in: the group's rate is the highest any node saw, not a sum.
            merged.messages_per_s = merged.messages_per_s.max(stat.messages_per_s);
        }
    }
    groups.into_values().collect()
}

/// The nodes' series summed per sampling period (nodes sample at their
/// own moments: each point counts in the period it falls in).
fn merged_series<'a>(series: impl Iterator<Item = &'a [Point]>) -> Series {
    let every_ms = EVERY.as_millis() as u64;
    let mut periods: BTreeMap<u64, Point> = BTreeMap::new();
    for points in series {
        for point in points {
            let t_ms = point.t_ms / every_ms * every_ms;
            let period = periods.entry(t_ms).or_insert(Point { t_ms, connections: 0, deliveries_per_s: 0.0 });
            period.connections += point.connections;
            period.deliveries_per_s += point.deliveries_per_s;
        }
    }
    Series { every_ms, points: periods.into_values().collect() }
}

/// `GET /admin/api/identities/{sub}`.
#[derive(Debug, Serialize)]
pub struct IdentityView {
    pub sub: ClientId,
    pub connections: Vec<ConnectionRow>,
    /// Live nodes that did not answer in time.
    pub missing_nodes: usize,
    /// The bans in force that name it.
    pub bans: Vec<Ban>,
}

/// One of its connections.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct ConnectionRow {
    pub node: NodeId,
    pub group: GroupName,
    pub mode: String,
}

impl IdentityView {
    pub fn of(sub: ClientId, answers: Answers, bans: Vec<Ban>) -> Self {
        let mut connections: Vec<ConnectionRow> = answers
            .from
            .into_iter()
            .flat_map(|(node, answer)| {
                match answer {
                    Answer::Connections { connections } => connections,
                    Answer::Report { .. } => Vec::new(),
                }
                .into_iter()
                .map(move |member| ConnectionRow { node, group: member.group, mode: member.mode })
            })
            .collect();
        connections.sort_by(|a, b| (a.node, &a.group).cmp(&(b.node, &b.group)));
        Self { sub, connections, missing_nodes: answers.missing, bans }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(group: &str, members: usize, messages_per_s: f64) -> GroupStat {
        GroupStat { group: group.parse().unwrap(), members, messages_per_s }
    }

    fn report(members: Vec<GroupStat>, rate: Vec<GroupStat>, series: Vec<Point>) -> Box<NodeReport> {
        Box::new(NodeReport {
            started_ms: 0,
            connections: 0,
            groups: 0,
            rooms_streams: 0,
            draining: false,
            messages_per_s: 0.0,
            deliveries_per_s: 0.0,
            groups_by_members: members,
            groups_by_rate: rate,
            series,
        })
    }

    #[test]
    fn groups_sum_their_members_over_nodes_and_series_sum_per_period() {
        let (a, b) = (NodeId::random(), NodeId::random());
        let point = |t_ms, connections| Point { t_ms, connections, deliveries_per_s: connections as f64 };
        let answers = Answers {
            from: vec![
                (
                    a,
                    Answer::Report {
                        report: report(
                            vec![stat("lobby", 3, 1.0), stat("quiet", 1, 0.0)],
                            vec![stat("lobby", 3, 1.0)],
                            vec![point(10_100, 4), point(12_100, 4)],
                        ),
                    },
                ),
                (
                    b,
                    Answer::Report {
                        report: report(vec![stat("lobby", 2, 1.0)], vec![], vec![point(11_900, 2), point(13_900, 3)]),
                    },
                ),
            ],
            missing: 1,
        };
        let overview = Overview::of(a, answers);
        assert_eq!(overview.missing_nodes, 1);
        assert!(overview.nodes[0].this && overview.nodes[0].node == a, "this node first");
        assert_eq!(overview.groups_by_members, [stat("lobby", 5, 1.0), stat("quiet", 1, 0.0)]);
        assert_eq!(overview.groups_by_rate[0], stat("lobby", 5, 1.0));
        let points: Vec<(u64, usize)> = overview.series.points.iter().map(|p| (p.t_ms, p.connections)).collect();
        assert_eq!(points, [(10_000, 6), (12_000, 7)]);
    }
}
