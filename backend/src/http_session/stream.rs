//! An HTTP session's event stream: a real Roomcast connection (the
//! socket's own loop, replay, limits, heartbeat and close codes), served
//! over an in-process pipe, whose frames this end relays as Server-Sent
//! Events into the response body.
//!
//! Bounds: the pipe holds at most [`PIPE_BYTES`], the relay at most
//! [`RELAYED`] chunks; a client that stops reading stops the relay, the
//! pipe fills, and the connection's own write-stall check closes it as it
//! closes a socket that does not read (its last words, `event: close`, go
//! out if the client reads again). A client that goes away drops the body:
//! the relay ends, the pipe closes, and the connection leaves its group.

use std::convert::Infallible;

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::io::DuplexStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::{Role as Side, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::events::{self, Ids};
use crate::connection::{write_buffer_limit, Peer};
use crate::net::Place;
use crate::upgrade::{self, Upgrades};

/// What the pipe holds between the connection and the relay: a batch of
/// frames, as a socket's buffers would.
const PIPE_BYTES: usize = 64 * 1024;
/// Chunks (events) waiting for the response body.
const RELAYED: usize = 16;

/// What the relay adds to the events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A response of its own that stays open: the padding first, and a
    /// keep-alive comment with each heartbeat.
    Stream,
    /// One member of a shared stream: keep-alives (the shared stream pads
    /// once).
    Shared,
    /// A long poll's: the events alone.
    Poll,
}

/// Starts `peer`'s connection over a pipe; its events come as SSE chunks
/// shaped as `shape` says, at most [`RELAYED`] waiting; `place` (its places
/// in the admission counts) is held as long as the connection lives.
/// Dropping the receiver ends the connection.
pub async fn open(peer: Peer, place: Place, shape: Shape, upgrades: &Upgrades) -> mpsc::Receiver<Bytes> {
    let max_message_bytes = upgrades.context.settings.max_message_bytes;
    let (server_end, client_end) = tokio::io::duplex(PIPE_BYTES);
    let members = upgrades.clone();
    upgrade::spawn(upgrades, async move {
        let _place = place;
        let config = upgrade::socket_config(max_message_bytes);
        let socket = WebSocketStream::from_raw_socket(server_end, Side::Server, Some(config)).await;
        upgrade::serve_member(socket, peer, members, None).await;
    });
    // This end reads what the server writes: frames up to its write bound.
    let config = WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_message_size(Some(write_buffer_limit(max_message_bytes)))
        .max_frame_size(Some(write_buffer_limit(max_message_bytes)));
    let client = WebSocketStream::from_raw_socket(client_end, Side::Client, Some(config)).await;
    let (chunks, receiver) = mpsc::channel(RELAYED);
    tokio::spawn(relay(client, chunks, shape));
    receiver
}

/// `events` (a shared stream's members, merged) as one receiver, as a
/// long-poll session holds its events: a task passes them on, at most
/// [`RELAYED`] waiting, until the receiver is dropped.
pub fn gathered(
    events: impl futures_util::Stream<Item = Result<Bytes, Infallible>> + Send + Unpin + 'static,
) -> mpsc::Receiver<Bytes> {
    let (chunks, receiver) = mpsc::channel(RELAYED);
    tokio::spawn(async move {
        let mut events = events;
        // A session dropped while its rooms are quiet: its members go now.
        while let Some(Some(Ok(chunk))) = until_dropped(&chunks, events.next()).await {
            if chunks.send(chunk).await.is_err() {
                break;
            }
        }
    });
    receiver
}

/// `next`, unless the receiver of `chunks` is dropped first (`None`).
async fn until_dropped<T>(chunks: &mpsc::Sender<Bytes>, next: impl std::future::Future<Output = T>) -> Option<T> {
    tokio::select! {
        biased;
        () = chunks.closed() => None,
        next = next => Some(next),
    }
}

/// `chunks` as a response body.
pub fn body(
    mut chunks: mpsc::Receiver<Bytes>,
) -> impl futures_util::Stream<Item = Result<Bytes, Infallible>> + Send + Sync + 'static {
    futures_util::stream::poll_fn(move |cx| chunks.poll_recv(cx).map(|chunk| chunk.map(Ok)))
}

/// Reads the connection's frames and hands each on as an SSE chunk, the
/// padding first, until the connection closes or the body is dropped.
async fn relay(mut client: WebSocketStream<DuplexStream>, chunks: mpsc::Sender<Bytes>, shape: Shape) {
    let mut ids = Ids::default();
    if shape == Shape::Stream && chunks.send(Bytes::from(events::padding())).await.is_err() {
        return;
    }
    // Reading also sends the pipe's pongs: the connection hears its peer.
    // A receiver dropped (a client gone, a poll session no one polls) ends
    // the relay at once, not at the next event: a quiet room may send none.
    while let Some(Some(Ok(message))) = until_dropped(&chunks, client.next()).await {
        let chunk = match message {
            Message::Text(text) => ids.event(text.as_str()),
            // The connection's heartbeat keeps every proxy on the way awake
            // (a poll answers with events only).
            Message::Ping(_) if shape != Shape::Poll => events::KEEPALIVE.to_owned(),
            Message::Ping(_) => continue,
            Message::Close(frame) => {
                let (code, reason) = frame
                    .map_or((1005, String::new()), |frame| (u16::from(frame.code), frame.reason.as_str().to_owned()));
                let _ = chunks.send(Bytes::from(events::close(code, &reason))).await;
                break;
            }
            Message::Binary(_) | Message::Pong(_) | Message::Frame(_) => continue,
        };
        if chunks.send(Bytes::from(chunk)).await.is_err() {
            break;
        }
    }
    // The body is gone or the connection ended: this end of the pipe goes,
    // so that the connection sees its peer leave (it may be waiting on a
    // full pipe).
    drop(client);
}
