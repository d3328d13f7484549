//! Starting and stopping a server: used by `main` and by the integration
//! tests alike, so that tests run exactly what production runs.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::admin::{Admin, Parts};
use crate::assembly::{self, assemble, Assembly, AssemblyError};
use crate::backend::{Backend, BackendError};
use crate::config::{Config, ConfigError};
use crate::drain::Drain;
use crate::history::broker::DeliveryError;
use crate::history::{retention, History};
use crate::metrics::Metrics;
use crate::net::admission::{Admission, Caps};
use crate::net::client_ip::TrustedProxies;
use crate::net::{self, HttpLimits};
use crate::registry::Registry;
use crate::routes::{admin_routes, routes};
use crate::signals;
use crate::state::AppState;

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen: {0}")]
    Listen(#[from] io::Error),
    #[error("cannot listen on the admin address: {0}")]
    AdminListen(io::Error),
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error(transparent)]
    Assembly(#[from] AssemblyError),
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// Why a server stopped by itself (it shut down as if told to).
#[derive(Debug, Clone, thiserror::Error)]
pub enum Failure {
    #[error("the backend cannot deliver to this node: {0}")]
    Delivery(#[from] DeliveryError),
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
const ABANDON_AFTER_GRACE: Duration = Duration::from_millis(500);

/// How often a drain looks whether connections are left.
const DRAIN_POLL: Duration = Duration::from_millis(50);

/// A running server.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    registry: Arc<Registry>,
    admission: Arc<Admission>,
    history: History,
    shutdown: CancellationToken,
    drain: Drain,
    close_grace: Duration,
    /// Where the admin surface listens, if it does.
    admin_addr: Option<SocketAddr>,
    /// Cancelled by the admin surface's `POST /drain`.
    drain_requested: CancellationToken,
    /// Cancelled when the server stops by itself.
    failed: CancellationToken,
    task: JoinHandle<Option<Failure>>,
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
        let registry = assembly::registry(&config)?;
        let metrics = Metrics::new();
        let backend = Backend::open(&config, registry.clone(), metrics.clone())?;
        let shutdown = CancellationToken::new();
        let Assembly { state, writer, connections, abandon, sampler, cluster } =
            assemble(&config, addr, &backend, registry.clone(), metrics.clone(), &shutdown)?;
        let (admission, history, drain) = (state.admission.clone(), state.history.clone(), state.drain.clone());
        let pruning = spawn_background(&config, &backend, &state, &shutdown);
        tokio::spawn(sampler.run(shutdown.clone()));
        let limits = HttpLimits {
            handshake_timeout: config.handshake_timeout,
            close_grace: config.close_grace,
            long_poll: config.long_poll_timeout,
        };
        let admin = config.admin_key.as_deref().map(|key| {
            let parts = Parts {
                registry: state.registry.clone(),
                rooms: state.upgrades.context.rooms.clone(),
                drain: state.drain.clone(),
                drain_period: crate::drain::asked_period(config.drain_period),
                identities: state.identities.clone(),
                cluster,
            };
            Admin::new(key, parts, &metrics)
        });
        let drain_requested = admin.as_ref().map_or_else(CancellationToken::new, |admin| admin.drain_requested.clone());
        let admin_served = match (config.admin_listen, admin) {
            (Some(addr), Some(admin)) => Some(
                listen(addr)
                    .and_then(|listener| serve_admin(listener, admin, config.static_dir.clone(), limits, &shutdown))
                    .map_err(StartError::AdminListen)?,
            ),
            _ => None,
        };
        let admin_addr = admin_served.as_ref().map(|(addr, _)| *addr);
        let http = serve(listener, state, config, limits, &shutdown);
        let failed = CancellationToken::new();
        let admin = admin_served.map(|(_, task)| task);
        let running =
            Running { backend, http, admin, connections, abandon, pruning, writer, close_grace: limits.close_grace };
        let task = tokio::spawn(running.until_stopped(shutdown.clone(), failed.clone()));
        let close_grace = limits.close_grace;
        Ok(Self {
            addr,
            registry,
            admission,
            history,
            shutdown,
            drain,
            close_grace,
            admin_addr,
            drain_requested,
            failed,
            task,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where the admin surface listens (`--admin-listen`), if it does.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// Resolves once the admin surface asked the node to drain (`POST
    /// /drain`); never without it.
    pub async fn drain_requested(&self) {
        self.drain_requested.cancelled().await;
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

    /// Resolves once the server has begun to stop by itself (its backend
    /// failed): it is shutting down as [`shutdown`](Self::shutdown) does,
    /// and [`stop`](Self::stop) says why. Never, while it runs well.
    pub async fn failed(&self) {
        self.failed.cancelled().await;
    }

    /// Stops accepting, closes every connection with
    /// [`SERVICE_RESTART`](roomcast_shared::close::SERVICE_RESTART), waits
    /// until all of them are closed and the history writer has stopped.
    pub async fn shutdown(self) {
        let _ = self.stop().await;
    }

    /// Drains the node over `period` for a rolling restart, then stops it:
    /// `/readyz` answers 503 and no socket is taken from now on, and each
    /// connection closes at its own moment of the period (1012, and JSON
    /// members a last `draining`); once none is left, or the period and the
    /// close grace are over, it stops as [`stop`](Self::stop) does.
    ///
    /// The drain has begun when this returns (`/readyz` says so, new
    /// sockets are refused), before the future is first polled: a caller
    /// that spawns it races nothing.
    pub fn drain_then_stop(self, period: Duration) -> impl std::future::Future<Output = Result<(), Failure>> {
        if self.drain.begin(period) {
            tracing::info!(period_ms = period.as_millis() as u64, "draining");
        }
        async move {
            let deadline = tokio::time::Instant::now() + period + self.close_grace;
            while self.registry.stats().connections > 0 && tokio::time::Instant::now() < deadline {
                tokio::select! {
                    () = tokio::time::sleep(DRAIN_POLL) => {}
                    () = self.failed.cancelled() => break,
                }
            }
            self.stop().await
        }
    }

    /// [`shutdown`](Self::shutdown), and whether the server had stopped by
    /// itself before, and why.
    pub async fn stop(self) -> Result<(), Failure> {
        self.shutdown.cancel();
        match self.task.await {
            Ok(None) => Ok(()),
            Ok(Some(failure)) => Err(failure),
            Err(err) => {
                tracing::error!(%err, "server task failed");
                Ok(())
            }
        }
    }
}

/// The background tasks: this node's place on the list of live nodes, and
/// retention. Returns the retention task.
fn spawn_background(
    config: &Config,
    backend: &Backend,
    state: &AppState,
    shutdown: &CancellationToken,
) -> JoinHandle<()> {
    // This node on the list of live ones until shutdown.
    tokio::spawn(signals::keep_alive(backend.signals().clone(), backend.node(), shutdown.clone()));
    let occupied: retention::Occupied = {
        let registry = state.registry.clone();
        Arc::new(move |group| registry.members(group) > 0)
    };
    let retention = config.retention();
    tokio::spawn(retention::run(
        backend.store().clone(),
        retention,
        config.retention_interval,
        occupied,
        shutdown.clone(),
    ))
}

/// Serves `state`'s routes on `listener` until `shutdown`.
fn serve(
    listener: TcpListener,
    state: AppState,
    config: Config,
    limits: HttpLimits,
    shutdown: &CancellationToken,
) -> JoinHandle<()> {
    let (admission, proxies, metrics) = (state.admission.clone(), state.proxies.clone(), state.metrics.clone());
    let service = warp::service(routes(state, config.static_dir));
    let handle = move |request| tower_service::Service::call(&mut service.clone(), request);
    tokio::spawn(net::serve(listener, handle, admission, proxies, limits, metrics, shutdown.clone()))
}

/// Serves the admin surface on `listener` until `shutdown`: its own caps
/// (a few sockets: it is for the operator's tools), the same timers.
fn serve_admin(
    listener: TcpListener,
    admin: Admin,
    static_dir: std::path::PathBuf,
    limits: HttpLimits,
    shutdown: &CancellationToken,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let addr = listener.local_addr()?;
    let admission = Admission::new(Caps { total: ADMIN_SOCKETS, per_ip: 0 });
    let service = warp::service(admin_routes(admin, static_dir));
    let handle = move |request| tower_service::Service::call(&mut service.clone(), request);
    let proxies = Arc::new(TrustedProxies::new(Vec::new()));
    // The admin surface's own requests are not the node's traffic.
    let uncounted = Metrics::new();
    Ok((addr, tokio::spawn(net::serve(listener, handle, admission, proxies, limits, uncounted, shutdown.clone()))))
}

/// Sockets the admin surface takes at once.
const ADMIN_SOCKETS: usize = 64;

/// What a running server stops, in order.
struct Running {
    backend: Backend,
    http: JoinHandle<()>,
    admin: Option<JoinHandle<()>>,
    connections: TaskTracker,
    abandon: CancellationToken,
    pruning: JoinHandle<()>,
    writer: thread::JoinHandle<()>,
    close_grace: Duration,
}

impl Running {
    /// Waits for a shutdown, or for the backend to fail (then shuts down
    /// all the same, and cancels `failed`), and stops everything within
    /// the close grace. Returns the failure, if any.
    async fn until_stopped(mut self, shutdown: CancellationToken, failed: CancellationToken) -> Option<Failure> {
        let failure = tokio::select! {
            () = shutdown.cancelled() => None,
            err = self.backend.failed() => {
                tracing::error!(%err, "the backend cannot deliver to this node; it stops so that its clients recover elsewhere");
                failed.cancel();
                shutdown.cancel();
                Some(Failure::from(err))
            }
        };
        self.stop().await;
        failure
    }

    async fn stop(self) {
        // Every open request and closing handshake has the close grace;
        // a little after it, whatever is left is dropped, so that no
        // client can hold a shutdown, however it (mis)behaves.
        let deadline = tokio::time::Instant::now() + self.close_grace + ABANDON_AFTER_GRACE;
        let _ = self.http.await;
        if let Some(admin) = self.admin {
            let _ = admin.await;
        }
        // The same token told every connection to close; wait for their
        // closing handshakes.
        let connections = self.connections;
        connections.close();
        if tokio::time::timeout_at(deadline, connections.wait()).await.is_err() {
            tracing::warn!(left = connections.len(), "connections still open after the close grace: dropping them");
            self.abandon.cancel();
            connections.wait().await;
        }
        let _ = self.pruning.await;
        // Every sequencer handle is gone with the routes and connections:
        // the writer stores what it still holds, then stops.
        let writer = self.writer;
        if tokio::task::spawn_blocking(move || writer.join()).await.is_err() {
            tracing::error!("the history writer panicked");
        }
        self.backend.stop().await;
    }
}
