//! `GET /metrics`: Prometheus text (`prometheus-client`), read when
//! scraped: the server's [`Metrics`], the registry's delivery counts carried
//! into counters, and gauges set from the server's own counts. No label
//! names a group or an identity, so no cardinality to run away.

use std::fmt::Write as _;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::prometheus_text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry as Exposition;

use crate::drain::Drain;
use crate::locks::lock;
use crate::metrics::Metrics;
use crate::registry::{Registry, Totals};
use crate::rooms::RoomsHub;

/// The gauges, set from the server's own counts at each scrape.
#[derive(Debug)]
pub struct Scrape {
    metrics: Mutex<Exposition>,
    gauges: Gauges,
    registry: Arc<Registry>,
    rooms: Arc<RoomsHub>,
    drain: Drain,
    deliveries: Deliveries,
}

/// Deliveries, counted per group by the registry and carried into these
/// counters at each scrape (they only grow).
#[derive(Debug, Default)]
struct Deliveries {
    messages: Counter,
    by_mode: Family<Mode, Counter>,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Mode {
    mode: &'static str,
}

impl Deliveries {
    fn catch_up(&self, totals: Totals) {
        let raise = |counter: &Counter, total: u64| {
            let seen = counter.get();
            if total > seen {
                counter.inc_by(total - seen);
            }
        };
        raise(&self.messages, totals.messages);
        for (mode, total) in [("json", totals.json), ("raw", totals.raw), ("activity", totals.activity)] {
            raise(&self.by_mode.get_or_create(&Mode { mode }), total);
        }
    }
}

#[derive(Debug, Default)]
struct Gauges {
    connections: Gauge<i64, AtomicI64>,
    groups: Gauge<i64, AtomicI64>,
    rooms_streams: Gauge<i64, AtomicI64>,
    draining: Gauge<i64, AtomicI64>,
    resident: Gauge<i64, AtomicI64>,
    open_fds: Gauge<i64, AtomicI64>,
}

impl Scrape {
    pub fn new(registry: Arc<Registry>, rooms: Arc<RoomsHub>, drain: Drain, counted: &Metrics) -> Self {
        let gauges = Gauges::default();
        let deliveries = Deliveries::default();
        let mut metrics = Exposition::default();
        counted.register(&mut metrics);
        let roomcast = metrics.sub_registry_with_prefix("roomcast");
        roomcast.register(
            "messages_delivered",
            "Messages delivered to a group with members here",
            deliveries.messages.clone(),
        );
        roomcast.register(
            "deliveries",
            "Frames queued to members, one per member per message, by what the member takes",
            deliveries.by_mode.clone(),
        );
        roomcast.register("connections", "Open connections (sockets of members)", gauges.connections.clone());
        roomcast.register("groups", "Groups with members on this node", gauges.groups.clone());
        roomcast.register("rooms_streams", "Open rooms streams", gauges.rooms_streams.clone());
        roomcast.register("draining", "1 while the node drains for a restart", gauges.draining.clone());
        let process = metrics.sub_registry_with_prefix("process");
        process.register("resident_memory_bytes", "Resident memory", gauges.resident.clone());
        process.register("open_fds", "Open file descriptors", gauges.open_fds.clone());
        Self { metrics: Mutex::new(metrics), gauges, registry, rooms, drain, deliveries }
    }

    /// The metrics as Prometheus text, read now.
    pub fn text(&self) -> String {
        let scrape = self;
        let stats = scrape.registry.stats();
        let gauges = &scrape.gauges;
        gauges.connections.set(i64::try_from(stats.connections).unwrap_or(i64::MAX));
        gauges.groups.set(i64::try_from(stats.groups).unwrap_or(i64::MAX));
        gauges.rooms_streams.set(i64::try_from(scrape.rooms.open_streams()).unwrap_or(i64::MAX));
        gauges.draining.set(i64::from(scrape.drain.is_draining()));
        gauges.resident.set(resident_bytes().unwrap_or(0));
        gauges.open_fds.set(open_fds().unwrap_or(0));
        // Under the lock: two scrapes at once would raise the counters twice.
        let exposition = lock(&scrape.metrics);
        scrape.deliveries.catch_up(scrape.registry.totals());
        let mut text = String::new();
        if encode(&mut text, &exposition).is_err() {
            let _ = writeln!(text, "# the metrics could not be encoded");
        }
        text
    }
}

/// This process's resident memory, from `/proc/self/statm` (Linux).
fn resident_bytes() -> Option<i64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: i64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // The kernel's page size on every architecture this runs on.
    Some(pages * 4096)
}

/// This process's open file descriptors (Linux).
fn open_fds() -> Option<i64> {
    Some(i64::try_from(std::fs::read_dir("/proc/self/fd").ok()?.count()).unwrap_or(i64::MAX))
}
