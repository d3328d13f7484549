//! The backend a node runs on, opened from the configuration in this one
//! place: the history [`Store`], the delivery half ([`Broker`]) that
//! brings stored messages to this node's members, with the broker's own
//! thread if it has one, and the signal half ([`Signals`]: control messages
//! to every node, and which nodes are alive). SQLite and memory: the local
//! broker and in-process signals; Redis: the Redis store, broker and
//! signals. The rest of the server holds the trait objects and never asks
//! which it has.

use std::sync::Arc;

use crate::config::{Config, HistoryKind};
use crate::history::broker::{Broker, DeliveryError, LocalBroker, Worker};
use crate::history::memory::MemoryStore;
use crate::history::redis_store::broker::RedisBroker;
use crate::history::redis_store::{RedisOptions, RedisStore};
use crate::history::sqlite::{self, SqliteOptions, SqliteStore};
use crate::history::{HistoryError, Store};
use crate::metrics::Metrics;
use crate::presence::memory::MemoryPresence;
use crate::presence::redis_presence::RedisPresence;
use crate::presence::{PresenceError, PresenceStore};
use crate::registry::Registry;
use crate::signals::memory::MemoryHub;
use crate::signals::redis_signals::RedisSignals;
use crate::signals::{Handler, NodeId, Relay, SignalError, Signals};

/// Why a backend could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The store could not be opened (`store` names which).
    #[error("cannot open the {store} store: {source}")]
    History { store: &'static str, source: HistoryError },
    #[error("cannot start the delivery thread: {0}")]
    Thread(#[from] std::io::Error),
    #[error(transparent)]
    Signals(#[from] SignalError),
    #[error(transparent)]
    Presence(#[from] PresenceError),
}

/// A store, its delivery half, the signal half and where presence is kept,
/// for one node.
pub struct Backend {
    /// This node, new at each start.
    node: NodeId,
    store: Arc<dyn Store>,
    broker: Arc<dyn Broker>,
    signals: Arc<dyn Signals>,
    presence: Arc<dyn PresenceStore>,
    /// Where the signals go, once [`on_signal`](Self::on_signal) says.
    relay: Relay,
    /// The broker's thread (Redis: the subscriber), stopped last.
    worker: Option<Worker>,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend").field("broker", &self.broker).finish_non_exhaustive()
    }
}

impl Backend {
    /// The backend `config` names, delivering to `registry`, counting in
    /// `metrics` what its delivery half does.
    pub fn open(config: &Config, registry: Arc<Registry>, metrics: Arc<Metrics>) -> Result<Self, BackendError> {
        let max_groups = (config.max_groups > 0).then_some(config.max_groups);
        if let Some(url) = &config.redis {
            let store = Arc::new(
                RedisStore::open(url, RedisOptions::new(&config.retention(), max_groups))
                    .map_err(|source| BackendError::History { store: "Redis", source })?,
            );
            // Every node, this one too, delivers from pub/sub.
            let (broker, worker) = RedisBroker::start(store.clone(), registry, metrics)?;
            let relay = Relay::default();
            // Redis is not reached here: the subscription is made (and
            // made again) by a thread of its own, which says so with
            // `Signal::Listening`.
            let signals = Arc::new(RedisSignals::open(url, relay.handler())?);
            let presence = Arc::new(RedisPresence::open(url)?);
            return Ok(Self {
                node: NodeId::random(),
                store,
                broker: Arc::new(broker),
                signals,
                presence,
                relay,
                worker: Some(worker),
            });
        }
        let store: Arc<dyn Store> = match config.history {
            HistoryKind::Memory => Arc::new(MemoryStore::with_max_groups(max_groups)),
            HistoryKind::Sqlite => Arc::new(
                SqliteStore::open(
                    &config.database,
                    SqliteOptions {
                        durability: config.durability,
                        max_groups,
                        max_database_bytes: (config.max_database_bytes > 0)
                            .then_some(config.max_database_bytes)
                            .or_else(|| sqlite::default_max_bytes(&config.database)),
                    },
                )
                .map_err(|source| BackendError::History { store: "SQLite", source })?,
            ),
        };
        Ok(Self::local(store, registry))
    }

    /// `store` with the local broker (the sequencer delivers its own
    /// commits to `registry`), signals and presence within this process.
    pub fn local(store: Arc<dyn Store>, registry: Arc<Registry>) -> Self {
        let broker = Arc::new(LocalBroker::new(store.clone(), registry));
        let relay = Relay::default();
        let signals: Arc<dyn Signals> = Arc::new(MemoryHub::default().join(relay.handler()));
        let presence = Arc::new(MemoryPresence::default());
        Self { node: NodeId::random(), store, broker, signals, presence, relay, worker: None }
    }

    pub fn node(&self) -> NodeId {
        self.node
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn broker(&self) -> &Arc<dyn Broker> {
        &self.broker
    }

    pub fn signals(&self) -> &Arc<dyn Signals> {
        &self.signals
    }

    pub fn presence(&self) -> &Arc<dyn PresenceStore> {
        &self.presence
    }

    /// Sends what this node hears from the others to `handler` from now
    /// on (once; later calls are ignored). Read what is stored after it.
    pub fn on_signal(&self, handler: Handler) {
        self.relay.attach(handler);
    }

    /// Resolves with why the backend can no longer deliver to this node;
    /// never, while it can. Cancel-safe.
    pub async fn failed(&mut self) -> DeliveryError {
        match &mut self.worker {
            Some(worker) => worker.failed().await,
            None => std::future::pending().await,
        }
    }

    /// Stops the broker's thread. Call it after the sequencer has stopped.
    pub async fn stop(self) {
        if let Some(worker) = self.worker {
            worker.stop().await;
        }
    }
}
