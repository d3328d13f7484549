//! What every route and connection shares.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::access::Access;
use crate::auth::Auth;
use crate::connection::Settings;
use crate::history::sequencer::Sequencer;
use crate::history::History;
use crate::identities::Issuer;
use crate::registry::Registry;

#[derive(Debug, Clone)]
pub struct AppState {
    pub registry: Arc<Registry>,
    pub history: History,
    pub sequencer: Sequencer,
    pub settings: Settings,
    /// Who may connect and read: tokens and the mode.
    pub auth: Arc<Auth>,
    /// Which hosts and origins are answered.
    pub access: Arc<Access>,
    /// Self-service identities.
    pub issuer: Arc<Issuer>,
    /// Cancelled once when the server begins to shut down; every connection
    /// loop selects on it.
    pub shutdown: CancellationToken,
    /// Every WebSocket connection task, so that shutdown can wait for their
    /// closing handshakes.
    pub connections: TaskTracker,
}
