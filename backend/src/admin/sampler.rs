//! This node's numbers every [`EVERY`]: its connections, its messages and
//! deliveries per second, its busiest groups by members and by message
//! rate, and a series of the last [`SERIES_POINTS`] samples. Every node
//! samples (any node's admin surface may ask it for a report); reading the
//! registry's counts costs one lock per group each time, the same as a
//! scrape of `/metrics`.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use roomcast_shared::GroupName;
use tokio_util::sync::CancellationToken;

use crate::clock::unix_millis;
use crate::drain::Drain;
use crate::locks::lock;
use crate::node_report::{GroupStat, NodeReport, Point, TOP_GROUPS};
use crate::registry::{Registry, Totals};
use crate::rooms::RoomsHub;

/// How often a node samples itself.
pub const EVERY: Duration = Duration::from_secs(2);
/// Samples kept: five minutes' worth.
pub const SERIES_POINTS: usize = 150;

#[derive(Debug)]
pub struct Sampler {
    registry: Arc<Registry>,
    rooms: Arc<RoomsHub>,
    drain: Drain,
    started_ms: u64,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// When the last sample was taken, and what the counts were then.
    last_ms: u64,
    last_totals: Totals,
    last_messages: HashMap<GroupName, u64>,
    messages_per_s: f64,
    deliveries_per_s: f64,
    /// Each group's messages per second over the last period.
    rates: HashMap<GroupName, f64>,
    series: VecDeque<Point>,
}

impl Sampler {
    pub fn new(registry: Arc<Registry>, rooms: Arc<RoomsHub>, drain: Drain) -> Arc<Self> {
        let sampler = Arc::new(Self { registry, rooms, drain, started_ms: unix_millis(), state: Mutex::default() });
        // The first sample sets where the rates count from.
        sampler.sample(unix_millis());
        sampler
    }

    /// Samples every [`EVERY`] until `shutdown`.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut ticks = tokio::time::interval(EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = ticks.tick() => self.sample(unix_millis()),
            }
        }
    }

    /// Takes a sample at `now_ms`: rates since the previous one.
    pub fn sample(&self, now_ms: u64) {
        let totals = self.registry.totals();
        let groups = self.registry.group_reports();
        let connections = self.registry.stats().connections;
        let mut state = lock(&self.state);
        let seconds = now_ms.saturating_sub(state.last_ms) as f64 / 1_000.0;
        let per_second = |now: u64, before: u64| {
            if state.last_ms == 0 || seconds <= 0.0 {
                0.0
            } else {
                now.saturating_sub(before) as f64 / seconds
            }
        };
        let delivered = |totals: &Totals| totals.json + totals.raw + totals.activity;
        let messages_per_s = per_second(totals.messages, state.last_totals.messages);
        let deliveries_per_s = per_second(delivered(&totals), delivered(&state.last_totals));
        let rates = groups
            .iter()
            .map(|group| {
                let before = state.last_messages.get(&group.name).copied().unwrap_or(0);
                (group.name.clone(), per_second(group.messages, before))
            })
            .collect();
        state.rates = rates;
        state.last_messages = groups.into_iter().map(|group| (group.name, group.messages)).collect();
        state.last_ms = now_ms;
        state.last_totals = totals;
        state.messages_per_s = messages_per_s;
        state.deliveries_per_s = deliveries_per_s;
        if state.series.len() == SERIES_POINTS {
            state.series.pop_front();
        }
        state.series.push_back(Point { t_ms: now_ms, connections, deliveries_per_s });
    }

    /// This node now: its counts and groups as they are, its rates as the
    /// last sample saw them.
    pub fn report(&self) -> NodeReport {
        let stats = self.registry.stats();
        let groups = self.registry.group_reports();
        let state = lock(&self.state);
        let mut groups: Vec<GroupStat> = groups
            .into_iter()
            .map(|group| {
                let messages_per_s = state.rates.get(&group.name).copied().unwrap_or(0.0);
                GroupStat { group: group.name, members: group.members, messages_per_s }
            })
            .collect();
        NodeReport {
            started_ms: self.started_ms,
            connections: stats.connections,
            groups: stats.groups,
            rooms_streams: self.rooms.open_streams(),
            draining: self.drain.is_draining(),
            messages_per_s: state.messages_per_s,
            deliveries_per_s: state.deliveries_per_s,
            groups_by_members: top(&mut groups, |a, b| b.members.cmp(&a.members)),
            groups_by_rate: top(&mut groups, |a, b| b.messages_per_s.total_cmp(&a.messages_per_s)),
            series: state.series.iter().copied().collect(),
        }
    }
}

/// The first [`TOP_GROUPS`] of `stats` in `order` (ties by name).
pub fn top(stats: &mut [GroupStat], order: impl Fn(&GroupStat, &GroupStat) -> std::cmp::Ordering) -> Vec<GroupStat> {
    stats.sort_by(|a, b| order(a, b).then_with(|| a.group.cmp(&b.group)));
    stats.iter().take(TOP_GROUPS).cloned().collect()
}

#[cfg(test)]
mod tests {
    use roomcast_shared::{ChatMessage, ClientId, MessageId, Sender};
    use uuid::Uuid;

    use super::*;
    use crate::queue::Capacity;
    use crate::registry::WireMode;

    fn message(group: &str, seq: u64) -> ChatMessage {
        ChatMessage {
            id: MessageId(Uuid::new_v4()),
            group: group.parse().unwrap(),
            seq,
            from: Sender { client_id: ClientId(Uuid::new_v4()), name: None, verified: false },
            text: "hi".into(),
            ts: 0,
        }
    }

    #[test]
    fn rates_count_from_the_previous_sample_and_the_busiest_groups_come_first() {
        let registry = Registry::new(Capacity { messages: 64, bytes: 1 << 20 });
        let quiet: Vec<_> =
            (0..3).map(|_| registry.join(&"quiet".parse().unwrap(), WireMode::Raw, ClientId(Uuid::new_v4()))).collect();
        let busy = registry.join(&"busy".parse().unwrap(), WireMode::Raw, ClientId(Uuid::new_v4()));
        let sampler = Sampler::new(registry.clone(), RoomsHub::new(registry.clone()), Drain::default());
        let start = lock(&sampler.state).last_ms;
        for group in ["busy", "quiet"] {
            registry.restart(&group.parse().unwrap(), "e", 0);
        }
        for seq in 1..=8 {
            registry.deliver(message("busy", seq), "e");
        }
        registry.deliver(message("quiet", 1), "e");
        sampler.sample(start + 2_000);
        let report = sampler.report();
        assert_eq!(report.messages_per_s, 4.5, "9 messages in 2 s");
        assert_eq!(report.deliveries_per_s, 5.5, "8 to one member, 1 to three, in 2 s");
        assert_eq!(report.groups_by_members[0].group.as_str(), "quiet");
        assert_eq!((report.groups_by_rate[0].group.as_str(), report.groups_by_rate[0].messages_per_s), ("busy", 4.0));
        assert_eq!(report.connections, 4);
        sampler.sample(start + 4_000);
        assert_eq!(sampler.report().messages_per_s, 0.0, "nothing since");
        assert_eq!(sampler.report().series.len(), 3);
        drop((quiet, busy));
    }
}
