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
mod context;
mod control_rate;
mod event_loop;
mod liveness;
mod sources;
mod state;
mod writes;

use std::sync::Arc;

use roomcast_shared::ServerEvent;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;

pub use close::CloseReason;
pub use context::{Context, Peer, Role, Settings};
pub use writes::write_buffer_limit;

use crate::drain;
use crate::metrics::Limited;
use crate::queue::Removal;
use crate::registry::{Membership, WireMode};

/// Serves one upgraded connection, already a member of its group, until it
/// ends.
pub async fn serve<S>(mut socket: WebSocketStream<S>, peer: Peer, membership: Membership, context: Arc<Context>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    tracing::debug!(
        conn = %peer.connection_id,
        group = %peer.group,
        client = %peer.client_id,
        peer = %peer.ip,
        mode = peer.mode.as_str(),
        "joined"
    );
    let mut connection = state::Connection::new(peer, membership, context);
    let reason = connection.run(&mut socket).await;
    let (peer, membership, context) = connection.into_parts();
    let (conn, group, client, peer_ip) = (&peer.connection_id, &peer.group, &peer.client_id, &peer.ip);
    match &reason {
        CloseReason::TooSlow | CloseReason::Stalled => {
            tracing::warn!(%conn, %group, %client, peer = %peer_ip, %reason, "disconnecting a reader too slow for its group")
        }
        CloseReason::PeerClosed | CloseReason::Shutdown | CloseReason::Drained => {
            tracing::debug!(%conn, %group, %client, peer = %peer_ip, %reason, "closing")
        }
        _ => tracing::info!(%conn, %group, %client, peer = %peer_ip, %reason, "closing"),
    }
    context.metrics.closed(reason.name());
    match reason {
        CloseReason::RateLimited => context.metrics.limited(Limited::Publish),
        CloseReason::ControlFlood => context.metrics.limited(Limited::Control),
        _ => {}
    }
    // Leave first, so that nothing more is queued for a closing connection.
    let queue = membership.queue().clone();
    drop(membership);
    let last_word = (peer.mode == WireMode::Json).then(|| last_word(&reason)).flatten();
    let last_word = last_word.map(|event| writes::event_frame(&event).into_message());
    close::close(&mut socket, &reason, &queue, last_word, context.settings.close_grace).await;
}

/// The event that tells a JSON member why it is closed, before the close
/// frame, where the code alone does not say all: when to come back after a
/// drain; an operator's reason, and a ban's end.
fn last_word(reason: &CloseReason) -> Option<ServerEvent> {
    match reason {
        CloseReason::Drained => {
            let retry_after_ms = u64::try_from(drain::RETRY_AFTER.as_millis()).unwrap_or(u64::MAX);
            Some(ServerEvent::Draining { retry_after_ms })
        }
        CloseReason::Removed(Removal::Disconnected { reason }) => {
            Some(ServerEvent::Removed { reason: reason.to_string(), until_ms: None })
        }
        CloseReason::Removed(Removal::Banned { until_ms, reason }) => {
            Some(ServerEvent::Removed { reason: reason.to_string(), until_ms: Some(*until_ms) })
        }
        _ => None,
    }
}
