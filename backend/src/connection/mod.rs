//! One WebSocket connection: reads frames, turns them into group operations,
//! writes what the group and the server queue for it, keeps the heartbeat,
//! and closes with the code that says why.
//!
//! # Layout
//! - [`state`]: the [`Connection`](state::Connection) itself, what it
//!   holds; the loop and the commands work on it, neither owns it.
//! - [`event_loop`]: the task's loop; everything happens in one task that
//!   waits on all its sources at once ([`sources`]), so a connection costs
//!   one task, one bounded queue and the WebSocket buffers.
//! - [`liveness`]: the heartbeat's arithmetic: when to ping, when the peer
//!   is idle, the stall clock while written bytes wait.
//! - [`commands`]: what an inbound frame means (JSON commands, raw frames),
//!   parsed, then applied, one place per command.
//! - [`catch_up`]: the `welcome` and the replay of history, one page at a
//!   time, before the connection goes live.
//! - [`writes`]: batched writes of queued frames.
//! - [`close`]: why a connection ended, its close code, and the closing
//!   handshake.
//!
//! A connection owns only what it uses: its [`Peer`], its group
//! [`Membership`], and the shared [`Context`] (history reads, the
//! sequencer, publish limits, settings, the shutdown token).

mod catch_up;
mod close;
mod commands;
mod control_rate;
mod event_loop;
mod liveness;
mod sources;
mod state;
mod writes;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use roomcast_shared::{ClientId, DisplayName, GroupName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub use close::CloseReason;
pub use control_rate::CONTROL_FRAMES_PER_SECOND;
pub use writes::write_buffer_limit;

use crate::auth::Auth;
use crate::history::sequencer::Sequencer;
use crate::history::{History, Start};
use crate::rate::PublishLimits;
use crate::registry::{Membership, WireMode};

/// Who is on the other end, as established by the upgrade.
#[derive(Debug, Clone)]
pub struct Peer {
    pub connection_id: Uuid,
    pub client_id: ClientId,
    pub name: Option<DisplayName>,
    /// The connection presented a valid token for `client_id`.
    pub verified: bool,
    /// When its token expires (Unix seconds), unless a `refresh` brings a
    /// newer one; `None`: never.
    pub token_expires_at: Option<u64>,
    /// The client's address (the socket's, or a trusted proxy's word).
    pub ip: IpAddr,
    pub group: GroupName,
    pub mode: WireMode,
    /// Where the replay starts (JSON mode).
    pub start: Start,
}

/// Connection settings taken from the server configuration.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub ping_interval: Duration,
    pub idle_timeout: Duration,
    pub close_grace: Duration,
    pub max_message_bytes: usize,
    /// Messages replayed to a client that joins without `since`.
    pub history_on_join: usize,
}

/// What every connection shares; built once per server.
#[derive(Debug)]
pub struct Context {
    pub history: History,
    pub sequencer: Sequencer,
    pub limits: PublishLimits,
    /// Checks the token of a `refresh`.
    pub auth: Arc<Auth>,
    pub settings: Settings,
    /// Cancelled once when the server begins to shut down.
    pub shutdown: CancellationToken,
    /// Cancelled when the close grace is over at shutdown: connection tasks
    /// still running then are dropped, and their sockets with them.
    pub abandon: CancellationToken,
}

/// Serves one upgraded connection, already a member of its group, until it
/// ends.
pub async fn serve<S>(mut socket: WebSocketStream<S>, peer: Peer, membership: Membership, context: Arc<Context>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    tracing::debug!(conn = %peer.connection_id, group = %peer.group, mode = peer.mode.as_str(), "joined");
    let mut connection = state::Connection::new(peer, membership, context);
    let reason = connection.run(&mut socket).await;
    let (peer, membership, context) = connection.into_parts();
    let (conn, group) = (&peer.connection_id, &peer.group);
    match &reason {
        CloseReason::TooSlow | CloseReason::Stalled => {
            tracing::warn!(%conn, %group, %reason, "disconnecting a reader too slow for its group")
        }
        CloseReason::PeerClosed | CloseReason::Shutdown => tracing::debug!(%conn, %group, %reason, "closing"),
        _ => tracing::info!(%conn, %group, %reason, "closing"),
    }
    // Leave first, so that nothing more is queued for a closing connection.
    let queue = membership.queue().clone();
    drop(membership);
    close::close(&mut socket, &reason, &queue, context.settings.close_grace).await;
}
