//! Server configuration: command-line flags, each with an environment
//! variable fallback and a built-in default, so that `cargo run` works with no
//! configuration at all. Secrets may come from files (`--secret-file`,
//! `--api-key-file`): a command line is visible to every user of the
//! machine in `/proc`.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser};
use roomcast_shared::limits;

pub use crate::auth::AuthMode;
pub use crate::history::sqlite::Durability;
use crate::history::Retention;
pub use crate::identities::IdentitiesMode;
use crate::net::client_ip::Network;
use crate::presence::PresenceSettings;
use crate::rate::{PublishLimits, Rate};

/// The most `--fanout-threads`: more than a machine's cores only adds
/// threads that wait for one.
const MAX_FANOUT_THREADS: usize = 64;

// The groups of flags in `--help` and docs/CONFIGURATION.md.
const NETWORK: &str = "Network";
const CONNECTIONS: &str = "Connections";
const PUBLISHING: &str = "Publishing";
const HISTORY: &str = "History";
const IDENTITIES: &str = "Identities";
const OPERATIONS: &str = "Operations";

/// Roomcast: real-time group messaging over WebSocket.
///
/// Every flag can also be given as its environment variable. Durations are
/// written `500us`, `500ms`, `15s`, `2m`, `12h` or `30d`; timers and
/// intervals are at most a day; `--retention-age`, `--group-idle-age` and
/// `--identity-lifetime` at most 10 years (`3653d`).
#[derive(Debug, Clone, Parser)]
#[command(name = "roomcast", version, about)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, help_heading = NETWORK, env = "ROOMCAST_LISTEN", default_value = "127.0.0.1:8000")]
    pub listen: SocketAddr,

    /// Directory of the built single-page app (trunk's output).
    #[arg(long, help_heading = NETWORK, env = "ROOMCAST_STATIC_DIR", default_value = "frontend/dist")]
    pub static_dir: PathBuf,

    /// How often the server pings each connection (e.g. `15s`, `500ms`).
    #[arg(long, help_heading = CONNECTIONS, env = "ROOMCAST_PING_INTERVAL", default_value = "15s", value_parser = parse_duration)]
    pub ping_interval: Duration,

    /// A connection silent for this long is closed as dead.
    #[arg(long, help_heading = CONNECTIONS, env = "ROOMCAST_IDLE_TIMEOUT", default_value = "45s", value_parser = parse_duration)]
    pub idle_timeout: Duration,

    /// How long a long poll (the HTTP fallback's, where a proxy holds
    /// streams back) waits for an event before it answers empty.
    #[arg(long, help_heading = CONNECTIONS, env = "ROOMCAST_LONG_POLL_TIMEOUT", default_value = "25s", value_parser = parse_duration)]
    pub long_poll_timeout: Duration,

    /// Largest accepted WebSocket message, in bytes.
    #[arg(long, help_heading = CONNECTIONS, env = "ROOMCAST_MAX_MESSAGE_BYTES", default_value_t = limits::MAX_MESSAGE_BYTES)]
    pub max_message_bytes: usize,

    /// Messages that may wait for one connection's socket before that
    /// connection counts as too slow and is closed with 1013.
    #[arg(long, help_heading = CONNECTIONS, env = "ROOMCAST_OUTBOUND_QUEUE", default_value_t = 256)]
    pub outbound_queue: usize,

    /// Bytes of frames that may wait for one connection's socket (one frame
    /// always fits) before it counts as too slow.
    #[arg(long, help_heading = CONNECTIONS, env = "ROOMCAST_OUTBOUND_QUEUE_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub outbound_queue_bytes: usize,

    /// Threads that write each group message straight to the sockets of
    /// the members waiting for it, encoded once, instead of waking every
    /// member's task to write it (0: the tasks write everything). More
    /// than one splits a large delivery between them. A member's order and
    /// bounds are the same either way. Measured on 2 cores: one thread
    /// takes a fifth off the CPU per delivery of a 15,000-member group;
    /// two spend part of it again, competing with the receivers
    /// (docs/BENCHMARKS.md, "Direct writes"). At most 64.
    #[arg(long, help_heading = CONNECTIONS, env = "ROOMCAST_FANOUT_THREADS", default_value_t = 1)]
    pub fanout_threads: usize,

    /// Longest wait for a request head, from accept on (a socket that sends
    /// nothing is closed) and between keep-alive requests, and for a request
    /// (its body included) to be answered. Heads over 16 KiB get `431`.
    #[arg(long, help_heading = NETWORK, env = "ROOMCAST_HANDSHAKE_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub handshake_timeout: Duration,

    /// Most sockets open at once, handshaking or upgraded; past it, `503`.
    /// Default: the open-file limit (raised to its hard limit at start)
    /// minus a reserve for the database, files and listener.
    #[arg(long, help_heading = NETWORK, env = "ROOMCAST_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,

    /// Most sockets open at once from one IP address, and connections it may
    /// open: twice that at once, then that many per second; past it, `503`
    /// or `429` (0: no per-address limit at all, e.g. for load tests from
    /// one machine).
    #[arg(long, help_heading = NETWORK, env = "ROOMCAST_MAX_CONNECTIONS_PER_IP", default_value_t = 100)]
    pub max_connections_per_ip: usize,

    /// Reverse proxies (addresses or networks like `10.0.0.0/8`,
    /// comma-separated) whose `X-Forwarded-For` names the client.
    #[arg(long, help_heading = NETWORK, env = "ROOMCAST_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<Network>,

    /// How long a closing handshake, or a request still open at shutdown,
    /// may take before its socket is dropped.
    #[arg(long, help_heading = NETWORK, env = "ROOMCAST_CLOSE_GRACE", default_value = "2s", value_parser = parse_duration)]
    pub close_grace: Duration,

    /// On SIGTERM, drain for this long before stopping: `/readyz` answers
    /// 503 and no socket is taken at once, and the connections close spread
    /// over the period (1012, and JSON clients are told to come back after
    /// a short random wait), so that the other nodes see a ramp. 0: SIGTERM
    /// closes every connection at once (within --close-grace).
    #[arg(long, help_heading = OPERATIONS, env = "ROOMCAST_DRAIN_PERIOD", default_value = "0", value_parser = parse_duration)]
    pub drain_period: Duration,

    /// How long an identity stays present in a group after its last
    /// connection there closed: a reload or a reconnect within it shows no
    /// leave.
    #[arg(long, help_heading = CONNECTIONS, env = "ROOMCAST_PRESENCE_GRACE", default_value = "5s", value_parser = parse_duration)]
    pub presence_grace: Duration,

    /// Groups with more present (people and anonymous connections) than
    /// this get presence as counts only, at most once a second, instead of
    /// a list with joins and leaves.
    #[arg(long, help_heading = CONNECTIONS, env = "ROOMCAST_PRESENCE_LIST_MAX", default_value_t = 1_000)]
    pub presence_list_max: usize,

    /// Groups with at most this many identities holding a read cursor in
    /// them tell their members how far each has read (`seen`: "Seen by
    /// Alice, Bob" in the app); larger groups, none (0: off; at most
    /// 1000).
    #[arg(long, help_heading = CONNECTIONS, env = "ROOMCAST_SEEN_MAX", default_value_t = 50)]
    pub seen_max: usize,

    /// Messages per second one identity may publish, across all its
    /// connections and reconnects (0: no publish limit at all, per address
    /// neither). A JSON client over the limit gets `rate_limited` errors; a
    /// raw one is closed with 1008.
    #[arg(long, help_heading = PUBLISHING, env = "ROOMCAST_PUBLISH_RATE", default_value_t = 50)]
    pub publish_rate: u32,

    /// Messages one identity may publish at once before the rate applies.
    #[arg(long, help_heading = PUBLISHING, env = "ROOMCAST_PUBLISH_BURST", default_value_t = 200)]
    pub publish_burst: u32,

    /// Messages per second all clients at one IP address may publish
    /// together; its burst grows in proportion to --publish-burst.
    #[arg(long, help_heading = PUBLISHING, env = "ROOMCAST_PUBLISH_RATE_PER_IP", default_value_t = 200)]
    pub publish_rate_per_ip: u32,

    /// Bytes of text per second one identity may publish (0: no byte
    /// limit); an address may publish as many more as --publish-rate-per-ip
    /// allows more messages. Beside the message rate: at 50 messages a
    /// second of 64 KiB, one client would fill a group's retention in
    /// minutes (and Redis's memory).
    #[arg(long, help_heading = PUBLISHING, env = "ROOMCAST_PUBLISH_BYTES_RATE", default_value_t = 256 * 1024)]
    pub publish_bytes_rate: u32,

    /// Bytes one identity may publish at once before the byte rate applies
    /// (at least --max-message-bytes).
    #[arg(long, help_heading = PUBLISHING, env = "ROOMCAST_PUBLISH_BYTES_BURST", default_value_t = 4 * 1024 * 1024)]
    pub publish_bytes_burst: u32,

    /// Publishes that may wait for the history writer. When it is this far
    /// behind, each publishing connection holds its next message and stops
    /// reading until there is room, which holds its sender back.
    #[arg(long, help_heading = PUBLISHING, env = "ROOMCAST_PUBLISH_QUEUE", default_value_t = 8192)]
    pub publish_queue: usize,

    /// Bytes of message text that may wait for the history writer, as
    /// --publish-queue does for messages.
    #[arg(long, help_heading = PUBLISHING, env = "ROOMCAST_PUBLISH_QUEUE_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub publish_queue_bytes: usize,

    /// Where history is kept: an SQLite file, or memory (lost on restart;
    /// for tests and throwaway runs).
    #[arg(long, help_heading = HISTORY, env = "ROOMCAST_HISTORY", value_enum, default_value_t = HistoryKind::Sqlite)]
    pub history: HistoryKind,

    /// Redis URL (`redis://[user:password@]host:port[/db]`, or `rediss://`
    /// for TLS, verified against the system's certificates; a fragment
    /// `#insecure` skips that, for a self-signed test server): sequence numbers,
    /// history, deduplication and delivery across nodes live there, and every
    /// node started with the same URL and `--secret` is one system. Redis 7.0
    /// or later. Replaces `--history`; needs `--secret`.
    #[arg(long, help_heading = HISTORY, env = "ROOMCAST_REDIS", hide_env_values = true)]
    pub redis: Option<String>,

    /// The SQLite history file. A directory the server creates for it is
    /// made 0700; the database and its `-wal` and `-shm` files 0600.
    #[arg(long, help_heading = HISTORY, env = "ROOMCAST_DATABASE", default_value = "data/roomcast.sqlite3")]
    pub database: PathBuf,

    /// `full`: every commit reaches the disk before messages are
    /// acknowledged (survives power loss); `normal`: survives a crash of the
    /// server process, not of the machine.
    #[arg(long, help_heading = HISTORY, env = "ROOMCAST_DURABILITY", value_enum, default_value_t = Durability::Full)]
    pub durability: Durability,

    /// How long the single writer waits, once it has taken the messages
    /// waiting for a commit (and at least --commit-siblings were), for more
    /// to join it (0: never; messages that arrive while a commit is in
    /// flight join the next one anyway). It trades up to that much latency
    /// for fewer commits, disk syncs and wake-ups (docs/BENCHMARKS.md).
    /// Accepts `us` as a unit (e.g. 500us).
    #[arg(long, help_heading = HISTORY, env = "ROOMCAST_COMMIT_WINDOW", default_value = "2ms", value_parser = parse_duration)]
    pub commit_window: Duration,

    /// The commit window applies only when at least this many messages were
    /// waiting beside a commit's first (0: always), like PostgreSQL's
    /// `commit_siblings`: when the writer is behind, commits grow (at the
    /// maximum rate the defaults cut the CPU per delivery by a fifth), and
    /// a message at a quiet moment is not held back.
    #[arg(long, help_heading = HISTORY, env = "ROOMCAST_COMMIT_SIBLINGS", default_value_t = 4)]
    pub commit_siblings: usize,

    /// Messages a client receives when it joins without `since`.
    #[arg(long, help_heading = HISTORY, env = "ROOMCAST_HISTORY_ON_JOIN", default_value_t = limits::HISTORY_ON_JOIN)]
    pub history_on_join: usize,

    /// Keep at most this many messages per group (0: no limit).
    #[arg(long, help_heading = HISTORY, env = "ROOMCAST_RETENTION_MESSAGES", default_value_t = 10_000)]
    pub retention_messages: u64,

    /// Remove messages older than this (e.g. `30d`; 0: keep regardless of age).
    #[arg(long, help_heading = HISTORY, env = "ROOMCAST_RETENTION_AGE", default_value = "0", value_parser = parse_duration)]
    pub retention_age: Duration,

    /// Remove a group, with its history, once nothing was written to it for
    /// this long and nobody is in it, freeing its place under --max-groups
    /// (e.g. `90d`; 0: keep groups). Not with --redis.
    #[arg(long, help_heading = HISTORY, env = "ROOMCAST_GROUP_IDLE_AGE", default_value = "0", value_parser = parse_duration)]
    pub group_idle_age: Duration,

    /// Keep at most this many bytes of message text per group (0: no limit).
    #[arg(long, help_heading = HISTORY, env = "ROOMCAST_RETENTION_BYTES", default_value_t = 256 * 1024 * 1024)]
    pub retention_bytes: u64,

    /// New rooms one identity may open per hour (joining a group nobody has
    /// written to yet opens it; 0: no limit, per address neither).
    #[arg(long, help_heading = PUBLISHING, env = "ROOMCAST_NEW_GROUPS_PER_HOUR", default_value_t = 30)]
    pub new_groups_per_hour: u32,

    /// New rooms all clients of one IP address may open per hour together.
    #[arg(long, help_heading = PUBLISHING, env = "ROOMCAST_NEW_GROUPS_PER_HOUR_PER_IP", default_value_t = 100)]
    pub new_groups_per_hour_per_ip: u32,

    /// Most groups the history holds; a message that would create one more
    /// is refused with `quota` (0: no limit).
    #[arg(long, help_heading = HISTORY, env = "ROOMCAST_MAX_GROUPS", default_value_t = 100_000)]
    pub max_groups: u64,

    /// Largest SQLite database file, in bytes (0: its size at start plus four
    /// fifths of the free disk space). At the limit, a publish is refused as
    /// `unavailable` while room is made for its retry: the oldest messages
    /// go, first from the groups that wrote the most in the last hour.
    #[arg(long, help_heading = HISTORY, env = "ROOMCAST_MAX_DATABASE_BYTES", default_value_t = 0)]
    pub max_database_bytes: u64,

    /// How often retention runs.
    #[arg(long, help_heading = HISTORY, env = "ROOMCAST_RETENTION_INTERVAL", default_value = "60s", value_parser = parse_duration)]
    pub retention_interval: Duration,

    /// Secret that signs identities (its UTF-8 bytes, at least 32).
    /// Default: generated on first start and kept beside the database in
    /// `roomcast.secret` (mode 0600); with `--history memory`, per process.
    /// A command line shows in the process list: prefer --secret-file or the
    /// environment variable.
    #[arg(long, help_heading = IDENTITIES, env = "ROOMCAST_SECRET", hide_env_values = true)]
    pub secret: Option<String>,

    /// A file holding the secret (a trailing newline is dropped): unlike
    /// --secret, it does not show in the process list.
    // Read into `secret` by `Config::load`.
    #[arg(long, help_heading = IDENTITIES, env = "ROOMCAST_SECRET_FILE", value_name = "PATH", conflicts_with = "secret", value_parser = FileText::read)]
    pub secret_file: Option<FileText>,

    /// `required`: every connection and API call presents a valid token;
    /// `open`: anyone may connect, only token holders are verified.
    #[arg(long, help_heading = IDENTITIES, env = "ROOMCAST_AUTH", value_enum, default_value_t = AuthMode::Required)]
    pub auth: AuthMode,

    /// Self-service identities (`POST /api/identities`); `off` when an
    /// application issues its own tokens.
    #[arg(long, help_heading = IDENTITIES, env = "ROOMCAST_IDENTITIES", value_enum, default_value_t = IdentitiesMode::On)]
    pub identities: IdentitiesMode,

    /// New identities and renewals per minute per IP address, together (0:
    /// no limit).
    #[arg(long, help_heading = IDENTITIES, env = "ROOMCAST_IDENTITIES_PER_MINUTE", default_value_t = 120)]
    pub identities_per_minute: u32,

    /// How long a self-service token lasts; the app renews it
    /// (`POST /api/identities/renew`) before then.
    #[arg(long, help_heading = IDENTITIES, env = "ROOMCAST_IDENTITY_LIFETIME", default_value = "30d", value_parser = parse_duration)]
    pub identity_lifetime: Duration,

    /// Groups a self-service token allows (comma-separated names or
    /// `prefix*`; default: every group); direct messages need `dm-*`.
    #[arg(long, help_heading = IDENTITIES, env = "ROOMCAST_IDENTITY_GROUPS", value_delimiter = ',')]
    pub identity_groups: Vec<crate::auth::GroupPattern>,

    /// Origins (`https://chat.example.com`, comma-separated; `*`: any) whose
    /// pages may use the sockets and the API, besides the server's own (and
    /// in debug builds `http://127.0.0.1:8080` and `http://localhost:8080`,
    /// trunk's dev server).
    #[arg(long, help_heading = NETWORK, env = "ROOMCAST_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// Host names the server answers (comma-separated; `*`: any), besides
    /// the --public-url host, the listen address, localhost, 127.0.0.1 and
    /// [::1], and on a wildcard address (0.0.0.0, [::]) any IP address.
    /// Others get `421`: a DNS rebinding page needs a DNS name.
    #[arg(long, help_heading = NETWORK, env = "ROOMCAST_ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,

    /// Key for the server-side publish API (`POST /api/groups/{group}/messages`
    /// with `Authorization: Bearer KEY`, and revocations); without it, the
    /// API is off. At least 32 bytes; like --secret, better in a file or the
    /// environment variable.
    #[arg(long, help_heading = IDENTITIES, env = "ROOMCAST_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,

    /// A file holding the API key, as --secret-file holds the secret.
    // Read into `api_key` by `Config::load`.
    #[arg(long, help_heading = IDENTITIES, env = "ROOMCAST_API_KEY_FILE", value_name = "PATH", conflicts_with = "api_key", value_parser = FileText::read)]
    pub api_key_file: Option<FileText>,

    /// The URL users reach the server at through a reverse proxy: allows its
    /// origin and its host.
    #[arg(long, help_heading = NETWORK, env = "ROOMCAST_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// How logs are written to stderr: `text` for people; `json`, one
    /// object per line, for log shippers. Either way they never hold
    /// message text, tokens or query strings.
    #[arg(long, help_heading = OPERATIONS, env = "ROOMCAST_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Checks the configuration (and, with --redis, that Redis answers),
    /// prints it with its secrets masked, and exits: 0 if the server would
    /// start, 2 if not. Creates nothing (no data directory, no secret).
    #[arg(long, help_heading = OPERATIONS)]
    pub check_config: bool,

    /// Address of the admin surface (`GET /metrics`, `POST /drain`, the
    /// admin API and the app's `/admin` page), behind --admin-key; off
    /// unless given, and never on the public --listen address. Keep it on a
    /// private network.
    #[arg(long, help_heading = OPERATIONS, env = "ROOMCAST_ADMIN_LISTEN")]
    pub admin_listen: Option<SocketAddr>,

    /// The admin surface's key (`Authorization: Bearer …`), at least 32
    /// bytes and not the --api-key.
    #[arg(long, help_heading = OPERATIONS, env = "ROOMCAST_ADMIN_KEY", hide_env_values = true)]
    pub admin_key: Option<String>,

    /// A file holding the admin key, as --secret-file holds the secret.
    // Read into `admin_key` by `Config::load`.
    #[arg(long, help_heading = OPERATIONS, env = "ROOMCAST_ADMIN_KEY_FILE", value_name = "PATH", conflicts_with = "admin_key", value_parser = FileText::read)]
    pub admin_key_file: Option<FileText>,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// The text of a file a flag names (`--secret-file`, `--api-key-file`),
/// read as the flags are parsed, without the trailing newline an editor or
/// `echo` leaves. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct FileText(String);

impl FileText {
    fn read(path: &str) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|err| format!("cannot read {path}: {err}"))?;
        let line = text.strip_suffix('\n').map_or(text.as_str(), |line| line.strip_suffix('\r').unwrap_or(line));
        Ok(Self(line.to_owned()))
    }
}

impl fmt::Debug for FileText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FileText(…)")
    }
}

/// Where history is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum HistoryKind {
    Sqlite,
    Memory,
}

/// The longest value of a kind of duration flag, and how an error says it.
struct Cap {
    longest: Duration,
    text: &'static str,
}

/// Timers and intervals: a wait anywhere here is seconds to minutes, and a
/// deadline far enough away overflows the clock (a panic in every request
/// that sets one).
const TIMER: Cap = Cap { longest: Duration::from_secs(86_400), text: "1 day (1d)" };
/// A commit window: every message waits that long at most.
const COMMIT_WINDOW: Cap = Cap { longest: Duration::from_secs(1), text: "1 second (1s)" };
/// Ages: 10 years, leap days included.
const AGE: Cap = Cap { longest: Duration::from_secs(3_653 * 86_400), text: "10 years (3653d)" };

/// The most `--seen-max` may be: a `seen` event lists up to that many
/// readers, so it bounds the event (about 60 bytes a reader).
pub const MOST_SEEN_MAX: usize = 1_000;

/// A configuration that parses but cannot run (e.g. a zero interval).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("--{0} must be more than zero")]
    Zero(&'static str),
    #[error("--{flag} must be at most {max}")]
    TooLong { flag: &'static str, max: &'static str },
    #[error("--idle-timeout must be longer than --ping-interval (a live peer would be cut between two pings)")]
    IdleBeforePing,
    #[error("--secret (or --secret-file) must be at least {} bytes", crate::auth::secret::MIN_BYTES)]
    ShortSecret,
    #[error("--redis: {0}")]
    Redis(&'static str),
    #[error("--api-key (or --api-key-file) must be at least {} bytes", crate::auth::secret::MIN_BYTES)]
    ShortApiKey,
    #[error("--retention-bytes must be 0 (no limit) or at least --max-message-bytes")]
    RetentionBelowMessage,
    #[error("--publish-bytes-burst must be at least --max-message-bytes (or a message that size would never pass)")]
    BytesBurstBelowMessage,
    #[error(
        "--admin-listen needs --admin-key (or --admin-key-file) of at least {} bytes, not the --api-key",
        crate::auth::secret::MIN_BYTES
    )]
    AdminKey,
}

impl Config {
    /// Refuses settings that would panic or make no sense, with the flag
    /// named. Zero stays allowed where it documents "no limit".
    pub fn validate(&self) -> Result<(), ConfigError> {
        let zero_durations = [
            ("ping-interval", self.ping_interval),
            ("idle-timeout", self.idle_timeout),
            ("handshake-timeout", self.handshake_timeout),
            ("long-poll-timeout", self.long_poll_timeout),
            ("retention-interval", self.retention_interval),
            ("identity-lifetime", self.identity_lifetime),
        ];
        if let Some((flag, _)) = zero_durations.iter().find(|(_, value)| value.is_zero()) {
            return Err(ConfigError::Zero(flag));
        }
        self.check_duration_caps()?;
        let zero_sizes = [
            ("max-message-bytes", self.max_message_bytes),
            ("outbound-queue", self.outbound_queue),
            ("outbound-queue-bytes", self.outbound_queue_bytes),
            ("publish-queue", self.publish_queue),
            ("publish-queue-bytes", self.publish_queue_bytes),
            ("publish-burst", self.publish_burst as usize),
            ("max-connections", self.max_connections.unwrap_or(1)),
        ];
        if let Some((flag, _)) = zero_sizes.iter().find(|(_, value)| *value == 0) {
            return Err(ConfigError::Zero(flag));
        }
        if self.fanout_threads > MAX_FANOUT_THREADS {
            return Err(ConfigError::TooLong { flag: "fanout-threads", max: "64" });
        }
        if self.publish_rate > 0 && self.publish_rate_per_ip == 0 {
            return Err(ConfigError::Zero("publish-rate-per-ip"));
        }
        if self.retention_bytes > 0 && self.retention_bytes < self.max_message_bytes as u64 {
            return Err(ConfigError::RetentionBelowMessage);
        }
        if self.publish_bytes_rate > 0 && (self.publish_bytes_burst as usize) < self.max_message_bytes {
            return Err(ConfigError::BytesBurstBelowMessage);
        }
        if self.seen_max > MOST_SEEN_MAX {
            return Err(ConfigError::TooLong { flag: "seen-max", max: "1000" });
        }
        if self.idle_timeout <= self.ping_interval {
            return Err(ConfigError::IdleBeforePing);
        }
        if self.secret.as_ref().is_some_and(|secret| secret.len() < crate::auth::secret::MIN_BYTES) {
            return Err(ConfigError::ShortSecret);
        }
        if let Some(url) = &self.redis {
            if !["redis://", "rediss://", "redis+unix://", "unix://"].iter().any(|scheme| url.starts_with(scheme)) {
                return Err(ConfigError::Redis("the URL must start with redis:// (or rediss:// for TLS)"));
            }
            if self.secret.is_none() {
                return Err(ConfigError::Redis("every node must verify the others' tokens: give them one --secret"));
            }
            if !self.retention_age.is_zero() {
                return Err(ConfigError::Redis("--retention-age is not supported with Redis (use counts and bytes)"));
            }
            if !self.group_idle_age.is_zero() {
                return Err(ConfigError::Redis("--group-idle-age is not supported with Redis yet"));
            }
            if self.max_database_bytes > 0 {
                return Err(ConfigError::Redis("--max-database-bytes is for SQLite; bound Redis with its maxmemory"));
            }
        }
        if self.api_key.as_ref().is_some_and(|key| key.len() < crate::auth::secret::MIN_BYTES) {
            return Err(ConfigError::ShortApiKey);
        }
        let admin_key = self.admin_key.as_ref().filter(|key| key.len() >= crate::auth::secret::MIN_BYTES);
        if self.admin_listen.is_some() && admin_key.is_none_or(|key| Some(key) == self.api_key.as_ref()) {
            return Err(ConfigError::AdminKey);
        }
        Ok(())
    }

    /// Every duration flag within the cap of its kind: timers and
    /// intervals a day, ages 10 years.
    fn check_duration_caps(&self) -> Result<(), ConfigError> {
        let durations = [
            ("ping-interval", self.ping_interval, TIMER),
            ("idle-timeout", self.idle_timeout, TIMER),
            ("handshake-timeout", self.handshake_timeout, TIMER),
            ("close-grace", self.close_grace, TIMER),
            ("long-poll-timeout", self.long_poll_timeout, TIMER),
            ("commit-window", self.commit_window, COMMIT_WINDOW),
            ("drain-period", self.drain_period, TIMER),
            ("retention-interval", self.retention_interval, TIMER),
            ("retention-age", self.retention_age, AGE),
            ("group-idle-age", self.group_idle_age, AGE),
            ("identity-lifetime", self.identity_lifetime, AGE),
        ];
        match durations.into_iter().find(|(_, value, cap)| *value > cap.longest) {
            Some((flag, _, cap)) => Err(ConfigError::TooLong { flag, max: cap.text }),
            None => Ok(()),
        }
    }

    /// Settings that run but are likely not what the operator meant, to be
    /// logged at start.
    pub fn warnings(&self) -> Vec<&'static str> {
        let mut warnings = Vec::new();
        // An operator who gives the secret usually signs tokens with it in
        // an application of their own, whose users the tokens name; with
        // self-service left on, anyone may also mint a signed identity.
        if self.secret.is_some() && self.identities == IdentitiesMode::On {
            warnings.push(
                "a secret is given (--secret or --secret-file) and --identities is on: anyone may get a signed \
                 identity from POST /api/identities; if your application issues the tokens, add --identities off",
            );
        }
        warnings
    }

    pub fn retention(&self) -> Retention {
        Retention {
            max_messages: (self.retention_messages > 0).then_some(self.retention_messages),
            max_age: (!self.retention_age.is_zero()).then_some(self.retention_age),
            max_bytes: (self.retention_bytes > 0).then_some(self.retention_bytes),
            group_idle_age: (!self.group_idle_age.is_zero()).then_some(self.group_idle_age),
        }
    }

    /// The publish limits: per identity, and per address with a burst in
    /// the same proportion.
    pub fn presence(&self) -> PresenceSettings {
        PresenceSettings { grace: self.presence_grace, listed_max: self.presence_list_max }
    }

    pub fn publish_limits(&self) -> PublishLimits {
        if self.publish_rate == 0 {
            return PublishLimits::unlimited();
        }
        // An address gets as many times an identity's allowances as its
        // message rate is an identity's.
        let per_ip = |value: u32| {
            let scaled = u64::from(value) * u64::from(self.publish_rate_per_ip) / u64::from(self.publish_rate);
            u32::try_from(scaled).unwrap_or(u32::MAX).max(1)
        };
        let bytes = (self.publish_bytes_rate > 0).then(|| {
            (
                Rate { per_second: self.publish_bytes_rate, burst: self.publish_bytes_burst },
                Rate { per_second: per_ip(self.publish_bytes_rate), burst: per_ip(self.publish_bytes_burst) },
            )
        });
        PublishLimits::new(
            Rate { per_second: self.publish_rate, burst: self.publish_burst },
            Rate { per_second: self.publish_rate_per_ip, burst: per_ip(self.publish_burst) },
            bytes,
        )
    }

    /// This process's configuration: its flags and environment, with the
    /// secret files read into `secret` and `api_key` (where the server
    /// takes them from).
    pub fn load() -> Result<Self, clap::Error> {
        Self::load_with_sources().map(|(config, _)| config)
    }

    /// [`load`](Self::load), and where each value came from (the command
    /// line, the environment, or the default), for `--check-config`.
    pub fn load_with_sources() -> Result<(Self, ArgMatches), clap::Error> {
        let matches = Self::command().try_get_matches()?;
        let config = Self::from_arg_matches(&matches)?.with_files_read();
        Ok((config, matches))
    }

    fn with_files_read(mut self) -> Self {
        // The flags conflict: at most one of each pair is given.
        if let Some(FileText(secret)) = self.secret_file.take() {
            self.secret = Some(secret);
        }
        if let Some(FileText(key)) = self.api_key_file.take() {
            self.api_key = Some(key);
        }
        if let Some(FileText(key)) = self.admin_key_file.take() {
            self.admin_key = Some(key);
        }
        self
    }

    /// The defaults, as `roomcast` with no flags and no environment would run.
    pub fn defaults() -> Self {
        // Parsing an empty command line only applies the declared defaults,
        // which are valid literals.
        Self::try_parse_from(["roomcast"]).map(Self::with_files_read).expect("built-in defaults parse")
    }
}

/// Parses `250ms`, `15s`, `2m`, `12h`, `30d` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| format!("{text:?} is not a duration like 500ms, 15s or 2m"))?;
    let seconds_per = match unit {
        "us" => return Ok(Duration::from_micros(number)),
        "ms" => return Ok(Duration::from_millis(number)),
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("unknown unit in {text:?}: use us, ms, s, m, h or d")),
    };
    number.checked_mul(seconds_per).map(Duration::from_secs).ok_or_else(|| format!("{text:?} is too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("500us"), Ok(Duration::from_micros(500)));
        assert_eq!(parse_duration("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("15"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("fast").is_err());
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert!(parse_duration("5y").is_err());
        assert!(parse_duration("144115188075855872d").is_err(), "too long, not wrapped to zero");
    }

    #[test]
    fn durations_are_capped_by_their_kind() {
        let day = Duration::from_secs(86_400);
        let mut config = Config::defaults();
        (config.ping_interval, config.idle_timeout, config.handshake_timeout) = (day / 2, day, day);
        (config.close_grace, config.retention_interval, config.retention_age) = (day, day, AGE.longest);
        config.drain_period = day;
        (config.identity_lifetime, config.group_idle_age) = (AGE.longest, AGE.longest);
        assert_eq!(config.validate(), Ok(()), "at the caps");
        let over = Duration::from_secs(1);
        type Field = fn(&mut Config) -> &mut Duration;
        let flags: [(&str, Field); 9] = [
            ("ping-interval", |config| &mut config.ping_interval),
            ("idle-timeout", |config| &mut config.idle_timeout),
            ("handshake-timeout", |config| &mut config.handshake_timeout),
            ("close-grace", |config| &mut config.close_grace),
            ("drain-period", |config| &mut config.drain_period),
            ("retention-interval", |config| &mut config.retention_interval),
            ("retention-age", |config| &mut config.retention_age),
            ("identity-lifetime", |config| &mut config.identity_lifetime),
            ("group-idle-age", |config| &mut config.group_idle_age),
        ];
        for (flag, field) in flags {
            let mut long = config.clone();
            *field(&mut long) = day.max(*field(&mut long)) + over;
            let refused = long.validate().unwrap_err().to_string();
            assert!(refused.starts_with(&format!("--{flag} must be at most")), "{flag}: {refused}");
        }
    }

    #[test]
    fn seen_max_is_bounded_and_0_is_off() {
        let mut config = Config::defaults();
        for fine in [0, MOST_SEEN_MAX] {
            config.seen_max = fine;
            assert_eq!(config.validate(), Ok(()), "{fine}");
        }
        config.seen_max = MOST_SEEN_MAX + 1;
        assert_eq!(config.validate().unwrap_err().to_string(), "--seen-max must be at most 1000");
    }

    #[test]
    fn secret_files_are_read_without_their_trailing_newline() {
        let dir = std::env::temp_dir().join(format!("roomcast-config-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        for (written, read) in [("key\n", "key"), ("key\r\n", "key"), ("key", "key"), (" key \n\n", " key \n")] {
            std::fs::write(dir.join("file"), written).unwrap();
            assert_eq!(
                FileText::read(dir.join("file").to_str().unwrap()),
                Ok(FileText(read.to_owned())),
                "{written:?}"
            );
        }
        let missing = FileText::read(dir.join("missing").to_str().unwrap()).unwrap_err();
        assert!(missing.starts_with("cannot read ") && missing.contains("missing"), "{missing}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_given_secret_with_self_service_identities_is_warned() {
        let mut config = Config::defaults();
        assert!(config.warnings().is_empty(), "a generated secret");
        config.secret = Some("s".repeat(32));
        assert_eq!(config.warnings().len(), 1);
        config.identities = IdentitiesMode::Off;
        assert!(config.warnings().is_empty());
    }

    #[test]
    fn defaults_match_the_protocol_limits() {
        let config = Config::defaults();
        assert_eq!(config.listen.port(), 8000);
        assert_eq!(config.ping_interval.as_millis() as u64, limits::PING_INTERVAL_MS);
        assert_eq!(config.idle_timeout.as_millis() as u64, limits::IDLE_TIMEOUT_MS);
        assert_eq!(config.max_message_bytes, limits::MAX_MESSAGE_BYTES);
    }
}
