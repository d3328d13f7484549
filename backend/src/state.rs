//! What every route and connection shares.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::connection::Settings;
use crate::history::sequencer::Sequencer;
use crate::history::History;
use crate::registry::Registry;

#[derive(Debug, Clone)]
pub struct AppState {
    pub registry: Arc<Registry>,
    pub history: History,
    pub sequencer: Sequencer,
    pub settings: Settings,
    /// Cancelled once when the server begins to shut down; every connection
    /// loop selects on it.
    pub shutdown: CancellationToken,
    /// Every WebSocket connection task, so that shutdown can wait for their
    /// closing handshakes.
    pub connections: TaskTracker,
}
