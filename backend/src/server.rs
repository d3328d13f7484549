//! Starting and stopping a server: used by `main` and by the integration
//! tests alike, so that tests run exactly what production runs.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::net::{TcpListener, TcpSocket};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::access::{Access, AccessConfigError};
use crate::auth::{Auth, Revocations, Secret, SecretError, Tokens};
use crate::config::{Config, ConfigError, HistoryKind};
use crate::connection::{Context, Settings};
use crate::history::memory::MemoryStore;
use crate::history::redis_store::{self, RedisOptions, RedisStore};
use crate::history::sequencer::{Delivering, Depth, Sequencer};
use crate::history::sqlite::{self, SqliteOptions, SqliteStore};
use crate::history::{retention, History, HistoryError, Store};
use crate::identities::{Issuer, Policy};
use crate::net::admission::{Admission, Caps};
use crate::net::client_ip::TrustedProxies;
use crate::net::{self, HttpLimits};
use crate::new_groups::NewGroupLimits;
use crate::queue::Capacity;
use crate::registry::Registry;
use crate::revoke::{self, Revoker};
use crate::routes::routes;
use crate::signals::{self, NodeId, SignalError};
use crate::state::AppState;
use crate::upgrade::Upgrades;

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen: {0}")]
    Listen(#[from] io::Error),
    #[error(transparent)]
    History(#[from] HistoryError),
    #[error("secret: {0}")]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Access(#[from] AccessConfigError),
    #[error(transparent)]
    Signals(#[from] SignalError),
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

/// Each accepted socket's kernel send buffer (see [`listen`]).
const SEND_BUFFER_BYTES: u32 = 128 * 1024;

/// A listening socket whose accepted connections have Nagle's algorithm off
/// (Linux copies TCP_NODELAY from the listener to each accepted socket, which
/// saves a system call per accept). A chat message is small and must leave
/// at once, not wait for the previous one's acknowledgement.
pub fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.set_nodelay(true)?;
    // The kernel's send buffer is the last buffer on a socket's path, and
    // left to itself Linux grows it to 4 MiB per socket: a peer that reads
    // nothing then holds that much kernel memory, and the stall clock,
    // which starts when a write can no longer be taken, waits for all of
    // it (a client trickling pings stayed for minutes; 200 stalled readers
    // held 785 MiB of the kernel's TCP memory in the hostile soak). Fixed
    // here (Linux doubles it for its bookkeeping), inherited by every
    // accepted socket: still a whole replay page per round trip.
    socket.set_send_buffer_size(SEND_BUFFER_BYTES)?;
    socket.bind(addr)?;
    socket.listen(4096)
}

/// How long after the close grace connection tasks still running at
/// shutdown are dropped. Each one bounds its closing handshake by the grace
/// itself; this is the backstop should one ever wait on something else.
const ABANDON_AFTER_GRACE: std::time::Duration = std::time::Duration::from_millis(500);

/// A running server.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    registry: Arc<Registry>,
    admission: Arc<Admission>,
    history: History,
    shutdown: CancellationToken,
    task: JoinHandle<()>,
}

impl Server {
    /// Binds `config.listen` and starts serving.
    pub async fn bind(config: Config) -> Result<Self, StartError> {
        let listener = listen(config.listen)?;
        Self::start(listener, config)
    }

    /// Starts serving on an already bound listener (tests bind port 0).
    pub fn start(listener: TcpListener, config: Config) -> Result<Self, StartError> {
        config.validate()?;
        let addr = listener.local_addr()?;
        let revocations = Arc::new(Revocations::default());
        let auth = Arc::new(Auth::new(config.auth, Tokens::new(&secret(&config)?), revocations.clone()));
        let access = Access::new(addr, &config.allowed_origins, &config.allowed_hosts, config.public_url.as_deref())?;
        let max_groups = (config.max_groups > 0).then_some(config.max_groups);
        let redis = match &config.redis {
            Some(url) => Some(Arc::new(RedisStore::open(url, RedisOptions::new(&config.retention(), max_groups))?)),
            None => None,
        };
        let store: Arc<dyn Store> = match (&redis, config.history) {
            (Some(redis), _) => redis.clone(),
            (None, HistoryKind::Memory) => Arc::new(MemoryStore::with_max_groups(max_groups)),
            (None, HistoryKind::Sqlite) => Arc::new(SqliteStore::open(
                &config.database,
                SqliteOptions {
                    durability: config.durability,
                    max_groups,
                    max_database_bytes: (config.max_database_bytes > 0)
                        .then_some(config.max_database_bytes)
                        .or_else(|| sqlite::default_max_bytes(&config.database)),
                },
            )?),
        };
        let registry = Registry::new(Capacity { messages: config.outbound_queue, bytes: config.outbound_queue_bytes });
        let depth = Depth { messages: config.publish_queue, bytes: config.publish_queue_bytes };
        // In Redis mode every node, this one too, delivers from pub/sub.
        let delivering = match redis {
            Some(_) => Delivering::Announced(registry.clone()),
            None => Delivering::Itself(registry.clone()),
        };
        let (sequencer, writer) = Sequencer::start(store.clone(), delivering, depth)?;
        let subscriber_stop = Arc::new(AtomicBool::new(false));
        let subscriber = redis
            .map(|redis| redis_store::subscriber::spawn(redis, registry.clone(), subscriber_stop.clone()))
            .transpose()?;
        let shutdown = CancellationToken::new();
        let abandon = CancellationToken::new();
        let history = History::new(store.clone());
        let context = Context {
            history: history.clone(),
            sequencer,
            limits: config.publish_limits(),
            auth: auth.clone(),
            settings: Settings {
                ping_interval: config.ping_interval,
                idle_timeout: config.idle_timeout,
                close_grace: config.close_grace,
                max_message_bytes: config.max_message_bytes,
                history_on_join: config.history_on_join,
            },
            shutdown: shutdown.clone(),
            abandon: abandon.clone(),
        };
        let connections = TaskTracker::new();
        let admission = Admission::new(Caps {
            total: net::max_connections(config.max_connections),
            per_ip: config.max_connections_per_ip,
        });
        let proxies = Arc::new(TrustedProxies::new(config.trusted_proxies.clone()));
        // Signals between nodes (revocations), and this node on the list of
        // live ones until shutdown.
        let on_signal = revoke::listener(store.clone(), revocations.clone(), registry.clone());
        let signals = signals::open(config.redis.as_deref(), on_signal)?;
        tokio::spawn(signals::keep_alive(signals.clone(), NodeId::random(), shutdown.clone()));
        let revoker = Revoker::new(store.clone(), revocations, registry.clone(), signals);
        revoker.load()?;
        let policy = Policy {
            lifetime_seconds: config.identity_lifetime.as_secs(),
            groups: (!config.identity_groups.is_empty()).then(|| config.identity_groups.clone()),
        };
        let state = AppState {
            admission: admission.clone(),
            proxies: proxies.clone(),
            api_key: config.api_key.as_deref().map(Arc::from),
            registry: registry.clone(),
            history: history.clone(),
            upgrades: Upgrades { registry: registry.clone(), context: Arc::new(context), tasks: connections.clone() },
            auth,
            access: Arc::new(access),
            issuer: Arc::new(Issuer::new(config.identities, config.identities_per_minute, policy)),
            revoker,
            new_groups: Arc::new(NewGroupLimits::per_hour(
                config.new_groups_per_hour,
                config.new_groups_per_hour_per_ip,
            )),
        };
        let occupied: retention::Occupied = {
            let registry = registry.clone();
            Arc::new(move |group| registry.members(group) > 0)
        };
        let pruning = tokio::spawn(retention::run(
            store,
            config.retention(),
            config.retention_interval,
            occupied,
            shutdown.clone(),
        ));
        let service = warp::service(routes(state, config.static_dir));
        let handle = move |request| tower_service::Service::call(&mut service.clone(), request);
        let limits = HttpLimits { handshake_timeout: config.handshake_timeout, close_grace: config.close_grace };
        let http = tokio::spawn(net::serve(listener, handle, admission.clone(), proxies, limits, shutdown.clone()));
        let stopping = shutdown.clone();
        let task = tokio::spawn(async move {
            stopping.cancelled().await;
            // Every open request and closing handshake has the close grace;
            // a little after it, whatever is left is dropped, so that no
            // client can hold a shutdown, however it (mis)behaves.
            let deadline = tokio::time::Instant::now() + limits.close_grace + ABANDON_AFTER_GRACE;
            let _ = http.await;
            // The same token told every connection to close; wait for their
            // closing handshakes.
            connections.close();
            if tokio::time::timeout_at(deadline, connections.wait()).await.is_err() {
                tracing::warn!(left = connections.len(), "connections still open after the close grace: dropping them");
                abandon.cancel();
                connections.wait().await;
            }
            let _ = pruning.await;
            // Every sequencer handle is gone with the routes and connections:
            // the writer stores what it still holds, then stops.
            if tokio::task::spawn_blocking(move || writer.join()).await.is_err() {
                tracing::error!("the history writer panicked");
            }
            subscriber_stop.store(true, Ordering::Relaxed);
            if let Some(subscriber) = subscriber {
                if tokio::task::spawn_blocking(move || subscriber.join()).await.is_err() {
                    tracing::error!("the Redis subscriber panicked");
                }
            }
        });
        Ok(Self { addr, registry, admission, history, shutdown, task })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Sockets open now: handshaking, refused-to-be, or upgraded.
    pub fn sockets_open(&self) -> usize {
        self.admission.open()
    }

    pub fn history(&self) -> &History {
        &self.history
    }

    /// Stops accepting, closes every connection with
    /// [`SERVICE_RESTART`](roomcast_shared::close::SERVICE_RESTART), waits
    /// until all of them are closed and the history writer has stopped.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        if let Err(err) = self.task.await {
            tracing::error!(%err, "server task failed");
        }
    }
}
