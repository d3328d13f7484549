//! How a hostile socket ended, as the client could tell, and the helpers
//! that find out without the client ever reading before its end.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsFd;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::{Error, Message};

use crate::client::{tcp, upgrade, Join, Socket};

/// What became of one attempt.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fate {
    /// The TCP connect itself failed.
    ConnectFailed(io::ErrorKind),
    /// The handshake was answered with this HTTP status.
    Refused(u16),
    /// The socket was closed during the handshake, without an answer (past
    /// the server's room for refusals).
    Dropped,
    /// The server closed the WebSocket with this close code.
    Closed(u16),
    /// An HTTP response with this status came, then the server closed.
    Answered(u16),
    /// An HTTP response with this status was cut short: the server gave
    /// up writing it.
    CutShort(u16),
    /// The stream ended without a close frame.
    Eof,
    /// An HTTP request closed without a response.
    Unanswered,
    /// The connection was reset.
    Reset,
    /// The socket was still open when its hold was over: the server kept a
    /// client it should have closed by then (the client closed it).
    KeptPastHold,
    /// The client ended it, as its kind does (storms, spam, floods).
    EndedByClient,
    /// Open when the run ended.
    OpenAtEnd,
    /// Still connecting when the run ended.
    ConnectingAtEnd,
    Other(String),
}

impl Fate {
    /// A refused handshake, by what tungstenite made of the answer.
    pub fn of_handshake(err: Error) -> Self {
        match err {
            Error::Http(response) => Self::Refused(response.status().as_u16()),
            Error::Io(err) if gone(&err) => Self::Dropped,
            Error::ConnectionClosed | Error::AlreadyClosed => Self::Dropped,
            Error::Protocol(ProtocolError::HandshakeIncomplete | ProtocolError::ResetWithoutClosingHandshake) => {
                Self::Dropped
            }
            other => Self::Other(format!("handshake: {other}")),
        }
    }

    /// An I/O error on an open socket.
    pub fn of_io(err: &io::Error) -> Self {
        if err.kind() == io::ErrorKind::UnexpectedEof {
            Self::Eof
        } else if gone(err) {
            Self::Reset
        } else {
            Self::Other(format!("{:?}", err.kind()))
        }
    }

    /// A failed write on an open WebSocket.
    pub fn of_write(err: Error) -> Self {
        match err {
            Error::Io(err) => Self::of_io(&err),
            Error::ConnectionClosed | Error::AlreadyClosed => Self::Eof,
            other => Self::Other(format!("write: {other}")),
        }
    }
}

impl fmt::Display for Fate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ConnectFailed(kind) => write!(f, "connect failed ({kind:?})"),
            Self::Refused(status) => write!(f, "refused {status}"),
            Self::Dropped => f.write_str("dropped at the handshake"),
            Self::Closed(code) => write!(f, "closed {code}"),
            Self::Answered(status) => write!(f, "answered {status}, closed"),
            Self::CutShort(status) => write!(f, "answered {status}, cut short"),
            Self::Eof => f.write_str("EOF without close frame"),
            Self::Unanswered => f.write_str("closed unanswered"),
            Self::Reset => f.write_str("reset"),
            Self::KeptPastHold => f.write_str("still open at its hold"),
            Self::EndedByClient => f.write_str("ended by the client"),
            Self::OpenAtEnd => f.write_str("open at end"),
            Self::ConnectingAtEnd => f.write_str("connecting at end"),
            Self::Other(what) => write!(f, "other: {what}"),
        }
    }
}

fn gone(err: &io::Error) -> bool {
    use io::ErrorKind::*;
    matches!(err.kind(), ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof | NotConnected)
}

/// A WebSocket from `source` joined as `join` says, with a receive buffer
/// of `receive_buffer` bytes if given; or how the attempt failed.
pub async fn join(
    server: SocketAddr,
    source: IpAddr,
    receive_buffer: Option<u32>,
    join: &Join<'_>,
) -> Result<Socket, Fate> {
    let stream = tcp(server, source, receive_buffer).await.map_err(|err| Fate::ConnectFailed(err.kind()))?;
    upgrade(server, stream, join).await.map_err(Fate::of_handshake)
}

/// How the server ended `socket`, read from what is left in it: its close
/// frame, the end of the stream, or a reset. `None` when frames still come
/// after `within` (the server still serves it). Reads are bounded by time:
/// what the server's kernel still holds for a non-reader is read and dropped.
pub async fn read_fate(socket: &mut Socket, within: Duration) -> Option<Fate> {
    let ending = async {
        loop {
            match socket.next().await {
                None => return Fate::Eof,
                Some(Ok(Message::Close(frame))) => return Fate::Closed(frame.map_or(1005, |frame| frame.code.into())),
                Some(Ok(_)) => {}
                Some(Err(err)) => return read_error(err),
            }
        }
    };
    tokio::time::timeout(within, ending).await.ok()
}

/// How a read error ended a socket.
pub fn read_error(err: Error) -> Fate {
    match err {
        Error::ConnectionClosed | Error::AlreadyClosed => Fate::Eof,
        Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) => Fate::Eof,
        Error::Io(err) => Fate::of_io(&err),
        other => Fate::Other(format!("read: {other}")),
    }
}

/// Resolves once the peer has reset or finished the connection, without
/// reading from it. tokio reports a hang-up or an error beside
/// readability; a `try_io` that reads nothing clears readability, so that
/// the next wait is for the next change instead of spinning on bytes left
/// unread. That is done on a second descriptor of the socket, registered on
/// its own: cleared on `stream` itself, tokio would not try to read it
/// again until new bytes came, and a full socket gets none. (A server's
/// FIN waits behind the bytes it sent, so for a full socket only a reset
/// shows here; the rest shows when the client reads at its end.)
pub async fn peer_gone(stream: &TcpStream) {
    let watcher = stream.as_fd().try_clone_to_owned().map(std::net::TcpStream::from).and_then(TcpStream::from_std);
    let Ok(watcher) = watcher else {
        // Then only the client's own end tells.
        return std::future::pending().await;
    };
    loop {
        match watcher.ready(Interest::READABLE | Interest::ERROR).await {
            Ok(ready) if ready.is_read_closed() || ready.is_error() => return,
            Ok(_) => {
                let _ = watcher.try_io(Interest::READABLE, || Err::<(), _>(io::ErrorKind::WouldBlock.into()));
            }
            Err(_) => return,
        }
    }
}

/// `count` WebSocket ping frames of 125 bytes (the largest a control frame
/// may carry), as a client sends them: masked, here with a zero key, so the
/// payload goes as it is. Written straight to the socket, past tungstenite,
/// so that a fast pinger is as fast as its socket.
pub fn ping_frames(count: usize) -> Vec<u8> {
    let mut frame = vec![0x89, 0x80 | 125, 0, 0, 0, 0];
    frame.extend(std::iter::repeat_n(b'p', 125));
    frame.repeat(count)
}
