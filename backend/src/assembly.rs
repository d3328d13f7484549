//! The server's state, put together from its configuration and backend
//! without a socket: what [`Server::start`](crate::server::Server::start)
//! serves, and what the fuzz targets drive with `warp::test`. One place, so
//! that both run the same thing.

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::access::{Access, AccessConfigError};
use crate::admin::cluster::Cluster;
use crate::admin::sampler::Sampler;
use crate::auth::{Auth, Bans, Revocations, Secret, SecretError, Tokens};
use crate::backend::Backend;
use crate::config::{Config, HistoryKind};
use crate::connection::{Context, Settings};
use crate::cursors::{self, Cursors, CursorsError};
use crate::direct_writes::Lanes;
use crate::drain::Drain;
use crate::history::sequencer::{CommitWindow, Depth, Sequencer};
use crate::history::{History, HistoryError};
use crate::http_session::polls::Polls;
use crate::identities::{Issuer, Policy};
use crate::identity_control::{self, IdentityControl};
use crate::metrics::Metrics;
use crate::net::admission::{Admission, Caps};
use crate::net::client_ip::TrustedProxies;
use crate::net::{self};
use crate::new_groups::NewGroupLimits;
use crate::node_signals;
use crate::presence::{Presence, PresenceStartError};
use crate::queue::Capacity;
use crate::registry::Registry;
use crate::rooms::{self, RoomsHub};
use crate::state::AppState;
use crate::typing::{self, Typing, TypingError};
use crate::upgrade::Upgrades;

/// Why the state could not be put together.
#[derive(Debug, thiserror::Error)]
pub enum AssemblyError {
    #[error("secret: {0}")]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Access(#[from] AccessConfigError),
    #[error(transparent)]
    History(#[from] HistoryError),
    #[error("cannot start the history writer: {0}")]
    Writer(#[from] std::io::Error),
    #[error(transparent)]
    Typing(#[from] TypingError),
    #[error(transparent)]
    Presence(#[from] PresenceStartError),
    #[error(transparent)]
    Cursors(#[from] CursorsError),
}

/// The state, and what must be stopped with it.
#[derive(Debug)]
pub struct Assembly {
    pub state: AppState,
    /// The history writer: it stores what it still holds and ends once
    /// every sequencer handle is gone (with the routes and connections).
    pub writer: JoinHandle<()>,
    /// The tasks of upgraded connections.
    pub connections: TaskTracker,
    /// Cancelled to drop connection tasks still running after the close
    /// grace.
    pub abandon: CancellationToken,
    /// This node's numbers, sampled (run it: [`Sampler::run`]).
    pub sampler: Arc<Sampler>,
    /// Questions between the nodes' admin surfaces.
    pub cluster: Arc<Cluster>,
}

/// The groups of a server configured by `config` (the backend delivers to
/// them).
pub fn registry(config: &Config) -> std::io::Result<Arc<Registry>> {
    let capacity = Capacity { messages: config.outbound_queue, bytes: config.outbound_queue_bytes };
    let lanes = (config.fanout_threads > 0).then(|| Lanes::start(config.fanout_threads)).transpose()?;
    Ok(Registry::with_lanes(capacity, lanes))
}

/// The state of a server configured by `config`, listening on `addr`, on
/// `backend` (delivering to `registry`), stopping when `shutdown` is
/// cancelled.
pub fn assemble(
    config: &Config,
    addr: SocketAddr,
    backend: &Backend,
    registry: Arc<Registry>,
    metrics: Arc<Metrics>,
    shutdown: &CancellationToken,
) -> Result<Assembly, AssemblyError> {
    let (revocations, bans) = (Arc::new(Revocations::default()), Arc::new(Bans::default()));
    let auth = Arc::new(Auth::new(config.auth, Tokens::new(&secret(config)?), revocations.clone(), bans.clone()));
    let depth = writer_depth(config);
    let (sequencer, writer) =
        Sequencer::start(backend.store().clone(), backend.broker().clone(), depth, metrics.clone())?;
    let history = History::new(backend.store().clone(), metrics.clone());
    let abandon = CancellationToken::new();
    let rooms = RoomsHub::new(registry.clone());
    let drain = Drain::default();
    let context = Context {
        history: history.clone(),
        sequencer,
        limits: config.publish_limits(),
        typing: Typing::start(backend.signals().clone(), typing::EVERY)?,
        cursors: Cursors::start(backend.store().clone(), backend.signals().clone(), config.seen_max)?,
        auth: auth.clone(),
        rooms: rooms.clone(),
        settings: settings(config),
        shutdown: shutdown.clone(),
        drain: drain.clone(),
        abandon: abandon.clone(),
        metrics: metrics.clone(),
    };
    let connections = TaskTracker::new();
    let sampler = Sampler::new(registry.clone(), rooms.clone(), drain.clone());
    let cluster = Cluster::new(backend.node(), backend.signals().clone(), registry.clone(), sampler.clone());
    let presence = Arc::new(Presence::start(
        backend.node(),
        config.presence(),
        backend.presence().clone(),
        backend.signals().clone(),
        registry.clone(),
    )?);
    // Revocations and bans from other nodes close sockets here; those
    // stored before are read after the handler is attached, so none is
    // missed. Typing
    // from any node (this one too) reaches the group's members here, and
    // a read cursor the identity's members of its group.
    backend.on_signal(node_signals::handler(
        identity_control::Heard::new(
            backend.node(),
            backend.store().clone(),
            (revocations.clone(), bans.clone()),
            registry.clone(),
        ),
        typing::Fanout::new(registry.clone()),
        cursors::Fanout::new(registry.clone()),
        presence.heard(),
        rooms::Heard::new(rooms),
        cluster.clone(),
    ));
    let identities = IdentityControl::new(
        backend.node(),
        backend.store().clone(),
        (revocations, bans),
        registry.clone(),
        backend.signals().clone(),
    );
    identities.load()?;
    let state = AppState {
        admission: Admission::new(Caps {
            total: net::max_connections(config.max_connections),
            per_ip: config.max_connections_per_ip,
        }),
        proxies: Arc::new(TrustedProxies::new(config.trusted_proxies.clone())),
        api_key: config.api_key.as_deref().map(Arc::from),
        registry: registry.clone(),
        history,
        upgrades: Upgrades { registry, presence, context: Arc::new(context), tasks: connections.clone() },
        auth,
        access: Arc::new(Access::new(
            addr,
            &config.allowed_origins,
            &config.allowed_hosts,
            config.public_url.as_deref(),
        )?),
        issuer: Arc::new(Issuer::new(config.identities, config.identities_per_minute, policy(config))),
        identities,
        new_groups: Arc::new(NewGroupLimits::per_hour(config.new_groups_per_hour, config.new_groups_per_hour_per_ip)),
        drain,
        metrics,
        polls: Polls::new(config.long_poll_timeout, config.idle_timeout),
    };
    Ok(Assembly { state, writer, connections, abandon, sampler, cluster })
}

/// What every connection is held to.
fn settings(config: &Config) -> Settings {
    Settings {
        ping_interval: config.ping_interval,
        idle_timeout: config.idle_timeout,
        close_grace: config.close_grace,
        max_message_bytes: config.max_message_bytes,
        history_on_join: config.history_on_join,
        seen_max: config.seen_max,
    }
}

/// What self-service identities get.
fn policy(config: &Config) -> Policy {
    Policy {
        lifetime_seconds: config.identity_lifetime.as_secs(),
        groups: (!config.identity_groups.is_empty()).then(|| config.identity_groups.clone()),
    }
}

/// The secret of `config`: the flag's, else the one kept beside the
/// database, else (memory history) a new one for this process.
fn secret(config: &Config) -> Result<Secret, SecretError> {
    match (&config.secret, config.history) {
        (Some(text), _) => Secret::from_text(text),
        (None, HistoryKind::Memory) => Ok(Secret::generate()),
        (None, HistoryKind::Sqlite) => {
            let dir = config.database.parent().filter(|dir| !dir.as_os_str().is_empty());
            Secret::load_or_create(dir.unwrap_or(std::path::Path::new(".")))
        }
    }
}

/// How much may wait for the single writer, and how long it waits for a
/// batch to fill.
fn writer_depth(config: &Config) -> Depth {
    let commit_window = CommitWindow { length: config.commit_window, siblings: config.commit_siblings };
    Depth { messages: config.publish_queue, bytes: config.publish_queue_bytes, commit_window }
}
