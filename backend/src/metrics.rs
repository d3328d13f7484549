//! What a node counts for its operator: one [`Metrics`] per server, handed
//! to the parts that see each event, and read by the admin surface's
//! `GET /metrics` (Prometheus text, `prometheus-client`).
//!
//! Rules, so that counting costs nothing a delivery would notice:
//! - Nothing here is written per delivery. Deliveries are counted per
//!   group, under the group's lock that fan-out takes anyway, and summed
//!   at scrape time ([`Registry::totals`](crate::registry::Registry::totals)).
//!   What is written here happens per connection, per request, per stored
//!   batch, per replay page or per Redis round, each a handful of relaxed
//!   atomic adds (a histogram: one short lock).
//! - No label names a group, an identity or an address: every label here
//!   takes a fixed, small set of values, so the series cannot run away.
//! - A counter's handle is looked up once (a [`Family`] entry cloned at
//!   start), never per event.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry as Exposition;

/// A label set of one fixed value.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reason {
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Kind {
    kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Source {
    source: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: &'static str,
}

/// An HTTP answer: which part of the surface, and its status.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Answer {
    path: &'static str,
    status: u16,
}

/// Which part of the HTTP surface a path is, for the `path` label.
pub fn path_class(path: &str) -> &'static str {
    if path.starts_with("/ws/") {
        "ws"
    } else if path.starts_with("/api/") {
        "api"
    } else {
        "other"
    }
}

/// Why a socket was refused at accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketRefusal {
    /// The server holds as many sockets as it may (`503`).
    Full,
    /// The address holds as many as it may (`503`).
    Address,
    /// The address connects too often (`429`).
    TooOften,
    /// Past every cap and the room to say so: closed at once.
    Dropped,
}

/// A limit that refused something, by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limited {
    /// A member published faster than `--publish-rate` (closed, 1008).
    Publish,
    /// A peer sent more control frames than allowed (closed, 1008).
    Control,
    /// Identities created per address (`429`).
    Identities,
    /// Rooms opened per identity or address (`429`).
    NewGroups,
}

/// How a replay ended, the worst of its pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum ReplayOutcome {
    /// Every message after the client's position.
    #[default]
    Gapless,
    /// Some were gone (retention): the client was told the gap.
    Gap,
    /// The group started over (another epoch): the client was told.
    Reset,
}

/// How a stored publish went, when it was not new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotNew {
    Duplicate,
    Conflict,
    Unavailable,
    OverQuota,
}

/// One server's counters and histograms.
#[derive(Debug, Clone)]
pub struct Metrics {
    accepted: Counter,
    refused: [Counter; 4],
    answers: Family<Answer, Counter>,
    closes: Family<Reason, Counter>,
    published_socket: Counter,
    published_api: Counter,
    not_new: [Counter; 4],
    limited: [Counter; 4],
    replays: [Counter; 3],
    replay_pages: Counter,
    store_append: Histogram,
    store_read: Histogram,
    commit_batch: Histogram,
    redis_resubscribes: Counter,
    redis_gaps_filled: Counter,
    redis_head_check: Histogram,
    /// The families and handles, as registered (see [`Metrics::register`]).
    refused_family: Family<Reason, Counter>,
    not_new_family: Family<Outcome, Counter>,
    limited_family: Family<Kind, Counter>,
    published_family: Family<Source, Counter>,
    replays_family: Family<Outcome, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let refused_family = Family::<Reason, Counter>::default();
        let refused = ["full", "address", "too_often", "dropped"]
            .map(|reason| refused_family.get_or_create_owned(&Reason { reason }));
        let not_new_family = Family::<Outcome, Counter>::default();
        let not_new = ["duplicate", "conflict", "unavailable", "over_quota"]
            .map(|outcome| not_new_family.get_or_create_owned(&Outcome { outcome }));
        let limited_family = Family::<Kind, Counter>::default();
        let limited = ["publish", "control", "identities", "new_groups"]
            .map(|kind| limited_family.get_or_create_owned(&Kind { kind }));
        let published_family = Family::<Source, Counter>::default();
        let published_socket = published_family.get_or_create_owned(&Source { source: "socket" });
        let published_api = published_family.get_or_create_owned(&Source { source: "api" });
        let replays_family = Family::<Outcome, Counter>::default();
        let replays =
            ["gapless", "gap", "reset"].map(|outcome| replays_family.get_or_create_owned(&Outcome { outcome }));
        Self {
            accepted: Counter::default(),
            refused,
            answers: Family::default(),
            closes: Family::default(),
            published_socket,
            published_api,
            not_new,
            limited,
            replays,
            replay_pages: Counter::default(),
            // 50 µs to about 6.5 s.
            store_append: Histogram::new(exponential_buckets(0.000_05, 2.0, 18)),
            store_read: Histogram::new(exponential_buckets(0.000_05, 2.0, 18)),
            // 1 to 512 messages (the sequencer's batch).
            commit_batch: Histogram::new(exponential_buckets(1.0, 2.0, 10)),
            redis_resubscribes: Counter::default(),
            redis_gaps_filled: Counter::default(),
            redis_head_check: Histogram::new(exponential_buckets(0.000_1, 2.0, 16)),
            refused_family,
            not_new_family,
            limited_family,
            published_family,
            replays_family,
        }
    }
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Puts every metric into `exposition` under `roomcast_`.
    pub fn register(&self, exposition: &mut Exposition) {
        let r = exposition.sub_registry_with_prefix("roomcast");
        r.register("sockets_accepted", "TCP connections accepted", self.accepted.clone());
        r.register("sockets_refused", "TCP connections refused at accept, by cap", self.refused_family.clone());
        r.register(
            "http_responses",
            "HTTP answers by part of the surface (path: ws = WebSocket handshakes, 101 when upgraded) and status",
            self.answers.clone(),
        );
        r.register("closes", "WebSocket connections ended, by reason", self.closes.clone());
        r.register("messages_published", "Messages stored new, by where they came from", self.published_family.clone());
        r.register("publishes_not_new", "Publishes not stored as new, by outcome", self.not_new_family.clone());
        r.register("rate_limited", "Refusals by a rate limit, by kind", self.limited_family.clone());
        r.register(
            "replays",
            "Catch-ups of joining members, by outcome (the worst of their pages)",
            self.replays_family.clone(),
        );
        r.register("replay_pages", "History pages read for catch-ups", self.replay_pages.clone());
        r.register(
            "store_append_seconds",
            "Time to store one batch (SQLite: a transaction; Redis: the publish scripts)",
            self.store_append.clone(),
        );
        r.register("store_read_seconds", "Time of one history read (Redis: the read script)", self.store_read.clone());
        r.register("commit_batch_messages", "Messages per stored batch", self.commit_batch.clone());
        r.register(
            "redis_resubscribes",
            "Times the Redis pub/sub connection was made again after it was lost",
            self.redis_resubscribes.clone(),
        );
        r.register(
            "redis_gaps_filled",
            "Messages delivered from the Redis stream because pub/sub lost them",
            self.redis_gaps_filled.clone(),
        );
        r.register(
            "redis_head_check_seconds",
            "Time of one check of the groups' heads against what was delivered (every 0.5 s)",
            self.redis_head_check.clone(),
        );
    }

    pub fn accepted(&self) {
        self.accepted.inc();
    }

    pub fn refused(&self, why: SocketRefusal) {
        self.refused[why as usize].inc();
    }

    /// An HTTP answer to a request for `path` (see [`path_class`]).
    pub fn answered(&self, path: &'static str, status: u16) {
        self.answers.get_or_create(&Answer { path, status }).inc();
    }

    /// A WebSocket connection ended for `reason` (a fixed name).
    pub fn closed(&self, reason: &'static str) {
        self.closes.get_or_create(&Reason { reason }).inc();
    }

    /// `count` messages stored new from sockets, `api` from the publish
    /// API.
    pub fn published(&self, socket: u64, api: u64) {
        if socket > 0 {
            self.published_socket.inc_by(socket);
        }
        if api > 0 {
            self.published_api.inc_by(api);
        }
    }

    pub fn not_new(&self, outcome: NotNew) {
        self.not_new[outcome as usize].inc();
    }

    pub fn limited(&self, kind: Limited) {
        self.limited[kind as usize].inc();
    }

    pub fn replayed(&self, outcome: ReplayOutcome) {
        self.replays[outcome as usize].inc();
    }

    pub fn replay_page(&self) {
        self.replay_pages.inc();
    }

    pub fn stored(&self, took: Duration, messages: usize) {
        self.store_append.observe(took.as_secs_f64());
        self.commit_batch.observe(messages as f64);
    }

    pub fn read(&self, took: Duration) {
        self.store_read.observe(took.as_secs_f64());
    }

    pub fn resubscribed(&self) {
        self.redis_resubscribes.inc();
    }

    pub fn gaps_filled(&self, messages: u64) {
        if messages > 0 {
            self.redis_gaps_filled.inc_by(messages);
        }
    }

    pub fn head_checked(&self, took: Duration) {
        self.redis_head_check.observe(took.as_secs_f64());
    }
}
