//! Starting and stopping a server: used by `main` and by the integration
//! tests alike, so that tests run exactly what production runs.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::connection::Settings;
use crate::registry::Registry;
use crate::routes::routes;
use crate::state::AppState;

/// A running server.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    registry: Arc<Registry>,
    shutdown: CancellationToken,
    task: JoinHandle<()>,
}

impl Server {
    /// Binds `config.listen` and starts serving.
    pub async fn bind(config: Config) -> io::Result<Self> {
        let listener = TcpListener::bind(config.listen).await?;
        Self::start(listener, config)
    }

    /// Starts serving on an already bound listener (tests bind port 0).
    pub fn start(listener: TcpListener, config: Config) -> io::Result<Self> {
        let addr = listener.local_addr()?;
        let registry = Registry::new(config.outbound_queue, config.dedup_window);
        let shutdown = CancellationToken::new();
        let state = AppState {
            registry: registry.clone(),
            settings: Settings {
                ping_interval: config.ping_interval,
                idle_timeout: config.idle_timeout,
                close_grace: config.close_grace,
                max_message_bytes: config.max_message_bytes,
            },
            shutdown: shutdown.clone(),
            connections: TaskTracker::new(),
        };
        let connections = state.connections.clone();
        let http = warp::serve(routes(state, config.static_dir))
            .incoming(listener)
            .graceful(shutdown.clone().cancelled_owned());
        let task = tokio::spawn(async move {
            http.run().await;
            // The same token told every connection to close; wait for their
            // closing handshakes (each bounded by the close grace period).
            connections.close();
            connections.wait().await;
        });
        Ok(Self { addr, registry, shutdown, task })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Stops accepting, closes every connection with
    /// [`SERVICE_RESTART`](roomcast_shared::close::SERVICE_RESTART) and waits
    /// until all of them are closed.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        if let Err(err) = self.task.await {
            tracing::error!(%err, "server task failed");
        }
    }
}
