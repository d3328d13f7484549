//! Why a connection ended, which close code says so, and the closing
//! handshake. [`CloseReason`] is the only place that maps an ending to a
//! close code.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use roomcast_shared::close;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::{timeout_at, Instant};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;

use super::writes::feed_batch;
use crate::history::HistoryError;
use crate::queue::{MemberQueue, Removal};

/// Why a connection ended; decides the close frame, if any.
#[derive(Debug, thiserror::Error)]
pub enum CloseReason {
    #[error("server shutting down")]
    Shutdown,
    #[error("node draining")]
    Drained,
    #[error("outbound queue full")]
    TooSlow,
    #[error("socket not writable for the idle timeout")]
    Stalled,
    #[error("heartbeat timeout")]
    HeartbeatTimeout,
    #[error("token expired")]
    TokenExpired,
    #[error("{0}")]
    Removed(Removal),
    #[error("history unavailable: {0}")]
    HistoryUnavailable(HistoryError),
    #[error("publish rate limit exceeded")]
    RateLimited,
    #[error("too many control frames")]
    ControlFlood,
    #[error("message too big")]
    TooBig,
    #[error("message too big once JSON-escaped")]
    TooBigForJson,
    #[error("invalid UTF-8")]
    InvalidUtf8,
    #[error("protocol violation: {0}")]
    Protocol(tungstenite::error::ProtocolError),
    #[error("closed by peer")]
    PeerClosed,
    #[error("connection lost: {0}")]
    Lost(tungstenite::Error),
}

impl CloseReason {
    /// Its name in the metrics (`roomcast_closes_total{reason}`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Shutdown => "shutdown",
            Self::Drained => "drained",
            Self::TooSlow => "too_slow",
            Self::Stalled => "stalled",
            Self::HeartbeatTimeout => "heartbeat_timeout",
            Self::TokenExpired => "token_expired",
            Self::Removed(Removal::Revoked) => "revoked",
            Self::Removed(Removal::Disconnected { .. }) => "disconnected",
            Self::Removed(Removal::Banned { .. }) => "banned",
            Self::HistoryUnavailable(_) => "history_unavailable",
            Self::RateLimited => "rate_limited",
            Self::ControlFlood => "control_flood",
            Self::TooBig | Self::TooBigForJson => "too_big",
            Self::InvalidUtf8 => "invalid_utf8",
            Self::Protocol(_) => "protocol_error",
            Self::PeerClosed => "peer_closed",
            Self::Lost(_) => "lost",
        }
    }

    /// The close frame to send, or `None` when the peer can no longer hear it.
    fn close_frame(&self) -> Option<CloseFrame> {
        let (code, reason) = match self {
            Self::Shutdown => (close::SERVICE_RESTART, "server restarting"),
            Self::Drained => (close::SERVICE_RESTART, "draining: reconnect after a short wait"),
            Self::TooSlow | Self::Stalled => (close::TRY_AGAIN_LATER, "too slow to keep up"),
            Self::HeartbeatTimeout => (close::HEARTBEAT_TIMEOUT, "heartbeat timeout"),
            Self::TokenExpired => (close::TOKEN_EXPIRED, "token expired: get a new token and reconnect"),
            Self::Removed(Removal::Revoked) => (close::IDENTITY_REVOKED, "identity revoked"),
            Self::Removed(Removal::Disconnected { .. }) => (close::DISCONNECTED, "disconnected by an operator"),
            Self::Removed(Removal::Banned { until_ms, .. }) => {
                let reason = format!("removed from this server until {until_ms} (Unix ms)");
                return Some(CloseFrame { code: CloseCode::from(close::IDENTITY_REVOKED), reason: reason.into() });
            }
            Self::HistoryUnavailable(_) => (close::INTERNAL_ERROR, "history unavailable"),
            Self::RateLimited => (close::POLICY_VIOLATION, "publish rate limit exceeded"),
            Self::ControlFlood => (close::POLICY_VIOLATION, "too many control frames"),
            Self::TooBig => (close::MESSAGE_TOO_BIG, "message too big"),
            Self::TooBigForJson => (close::MESSAGE_TOO_BIG, "message too big once JSON-escaped"),
            Self::InvalidUtf8 => (close::INVALID_PAYLOAD, "invalid UTF-8"),
            Self::Protocol(_) => (close::PROTOCOL_ERROR, "protocol error"),
            Self::PeerClosed | Self::Lost(_) => return None,
        };
        Some(CloseFrame { code: CloseCode::from(code), reason: reason.into() })
    }

    /// Whether the peer may still be sending a frame that tungstenite will
    /// not read: it stops at the header of a frame over the size limit.
    fn leaves_input_unread(&self) -> bool {
        matches!(self, Self::TooBig)
    }

    /// Whether queued messages should still be written before closing.
    fn drains_queue(&self) -> bool {
        // Nothing more for a peer that is thrown out, or whose right to
        // read ended.
        !matches!(
            self,
            Self::TooSlow
                | Self::Stalled
                | Self::ControlFlood
                | Self::TokenExpired
                | Self::Removed(_)
                | Self::PeerClosed
                | Self::Lost(_)
        )
    }
}

impl From<tungstenite::Error> for CloseReason {
    fn from(err: tungstenite::Error) -> Self {
        use tungstenite::Error;
        match err {
            Error::Capacity(_) => Self::TooBig,
            Error::Utf8(_) => Self::InvalidUtf8,
            Error::Protocol(violation) => Self::Protocol(violation),
            Error::WriteBufferFull(_) => Self::TooSlow,
            Error::ConnectionClosed => Self::PeerClosed,
            other => Self::Lost(other),
        }
    }
}

/// The closing handshake: what is still queued (when the reason allows),
/// `last_word` (an event that says why, for a JSON member), the close
/// frame, then the peer's answer; all of it within `grace`, so
/// that a peer that never answers (or never reads) cannot keep the socket
/// open, nor delay a shutdown.
pub(super) async fn close<S>(
    socket: &mut WebSocketStream<S>,
    reason: &CloseReason,
    queue: &MemberQueue,
    last_word: Option<Message>,
    grace: Duration,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let deadline = Instant::now() + grace;
    let closing = async {
        if let Some(frame) = reason.close_frame() {
            if reason.drains_queue() {
                // A batch at a time, each flushed before the next is fed:
                // the writer takes whatever it is given.
                while let Some(first) = queue.try_pop() {
                    feed_batch(socket, queue, first, &mut 0)?;
                    socket.flush().await?;
                }
            }
            if let Some(last_word) = last_word {
                socket.feed(last_word).await?;
            }
            socket.send(Message::Close(Some(frame))).await?;
            if reason.leaves_input_unread() {
                discard_until_closed(socket.get_mut()).await?;
            } else {
                // Wait for the peer's close frame (or its end of stream), so
                // that the server closes the TCP connection last, as RFC 6455
                // prefers.
                while let Some(Ok(_)) = socket.next().await {}
            }
        }
        Ok::<_, tungstenite::Error>(())
    };
    let _ = timeout_at(deadline, closing).await;
    // tungstenite's last words (its reply to the peer's close frame) may
    // still sit in the batched writer: it does not flush a closed stream.
    let _ = timeout_at(deadline, socket.get_mut().flush()).await;
}

/// Ends the connection after a close frame when its input cannot be read as
/// frames any more: sends FIN, then reads and drops bytes until the peer
/// closes too. Closing a socket with unread input makes the kernel reset it,
/// and a reset can destroy the close frame before the peer reads it: browsers
/// then report 1006 instead of 1009, and cannot tell which message was
/// refused.
async fn discard_until_closed<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S) -> Result<(), tungstenite::Error> {
    stream.shutdown().await?;
    // On the heap: an array here would live in every connection task's
    // future for the connection's whole life (2 KiB per idle connection).
    let mut sink = vec![0u8; 2048];
    while stream.read(&mut sink).await? > 0 {}
    Ok(())
}
