//! What a room's connection runs over: a WebSocket, or the HTTP transport
//! ([`http`](super::http)), behind one face, so that the connection logic
//! does not know which it has: it waits for the opening, reads frames,
//! sends commands and lets go the same way.

use std::task::{Context, Poll};

use futures_util::{SinkExt, StreamExt};
use roomcast_shared::ClientCommand;

use crate::net::http::{Frame, HttpLink};
use crate::net::socket::Socket;

pub enum Carrier {
    WebSocket(Socket),
    Http(HttpLink),
}

impl Carrier {
    /// Ready once the carrier left its opening (open, or failed).
    pub fn poll_opened(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match self {
            // The sink becomes ready when the socket leaves CONNECTING.
            Self::WebSocket(socket) => socket.stream().poll_ready_unpin(cx).map(|_| ()),
            Self::Http(link) => link.poll_opened(cx),
        }
    }

    /// The next frame; `None` once the carrier is gone.
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Frame> {
        match self {
            Self::WebSocket(socket) => socket.stream().poll_next_unpin(cx),
            Self::Http(link) => link.poll_next(cx),
        }
    }

    /// Whether it is open (not closing already).
    pub fn is_open(&self) -> bool {
        match self {
            Self::WebSocket(socket) => socket.is_open(),
            Self::Http(link) => link.is_open(),
        }
    }

    /// Writes `command` (an HTTP link posts it with the next batch). A
    /// failed write means the carrier is closing: its close follows.
    pub async fn send(&mut self, command: &ClientCommand) {
        match self {
            Self::WebSocket(socket) => socket.send(command).await,
            Self::Http(link) => link.send(command),
        }
    }

    /// Lets it go at once, without waiting for the peer.
    pub fn close(&self, why: &str) {
        match self {
            Self::WebSocket(socket) => socket.close(why),
            Self::Http(link) => link.close(),
        }
    }

    /// Whether anything came on it yet (a WebSocket: once open).
    pub fn heard(&self) -> bool {
        match self {
            Self::WebSocket(socket) => socket.is_open(),
            Self::Http(link) => link.heard(),
        }
    }
}
