//! The admin surface: served on `--admin-listen` only, never on the public
//! port, every request behind `--admin-key` (`Authorization: Bearer …`):
//!
//! - `GET /metrics`: Prometheus text (`prometheus-client`), read when
//!   scraped from what the server counts anyway (no per-label series: no
//!   group or identity names, so no cardinality to run away);
//! - `POST /drain`: the node drains for a rolling restart and stops
//!   (as SIGTERM does with `--drain-period`).

use std::fmt::Write as _;
use std::sync::atomic::AtomicI64;
use std::sync::Arc;

use http::StatusCode;
use prometheus_client::encoding::prometheus_text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry as Exposition;
use tokio_util::sync::CancellationToken;

use crate::drain::Drain;
use crate::http_error::HttpError;
use crate::locks::lock;
use crate::metrics::Metrics;
use crate::registry::{Registry, Totals};
use crate::rooms::RoomsHub;

/// Why an admin request was refused.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("the admin key is required: Authorization: Bearer {{--admin-key}}")]
    NoKey,
}

impl warp::reject::Reject for AdminError {}

impl HttpError for AdminError {
    fn status(&self) -> StatusCode {
        StatusCode::UNAUTHORIZED
    }
}

/// What the admin surface reads and acts on.
#[derive(Debug, Clone)]
pub struct Admin {
    key: Arc<str>,
    scrape: Arc<Scrape>,
    /// Cancelled by `POST /drain`: the process drains, then stops.
    pub drain_requested: CancellationToken,
}

/// The gauges, set from the server's own counts at each scrape.
#[derive(Debug)]
struct Scrape {
    metrics: std::sync::Mutex<Exposition>,
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

impl Admin {
    pub fn new(key: &str, registry: Arc<Registry>, rooms: Arc<RoomsHub>, drain: Drain, counted: &Metrics) -> Self {
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
        let scrape = Scrape { metrics: std::sync::Mutex::new(metrics), gauges, registry, rooms, drain, deliveries };
        Self { key: Arc::from(key), scrape: Arc::new(scrape), drain_requested: CancellationToken::new() }
    }

    /// Checks the request's key (in constant time).
    pub fn check(&self, authorization: Option<&str>) -> Result<(), AdminError> {
        let presented = authorization.and_then(|value| value.strip_prefix("Bearer ")).map(str::trim);
        match presented {
            Some(presented) if crate::publish_api::keys_match(presented, &self.key) => Ok(()),
            _ => Err(AdminError::NoKey),
        }
    }

    /// The metrics as Prometheus text, read now.
    pub fn metrics(&self) -> String {
        let scrape = &self.scrape;
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
