//! Writes: frames are fed to the socket's write buffer in batches, then
//! flushed once per batch.
//!
//! Feeding never waits. The [`BatchedWriter`](crate::batched_io::BatchedWriter)
//! under tungstenite takes every write whole, so a frame is handed over with
//! `start_send` alone, outside any `await`; only the flush waits on the peer,
//! and the loop polls that flush beside its other sources. A connection fed
//! only while nothing is buffered holds at most one batch (or one replay
//! page) plus tungstenite's own replies.

use std::pin::Pin;

use bytes::Bytes;
use futures_util::{FutureExt, Sink};
use roomcast_shared::ServerEvent;
use tokio::io::AsyncWriteExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::WebSocketStream;

use crate::frame::Frame;
use crate::queue::{MemberQueue, Outbound};

/// Most messages fed to the socket buffer before one flush.
const BATCH_MESSAGES: usize = 64;
/// Most bytes fed to the socket buffer before one flush.
const BATCH_BYTES: usize = 64 * 1024;
/// What a frame adds to the text it carries, at most: a `message` event's
/// envelope (group, numbers, sender, name) around its text.
const ENVELOPE_BYTES: usize = 4 * 1024;

/// The bound on tungstenite's own write buffer: one batch and one frame.
/// The writer below takes every write, so tungstenite's buffer stays empty
/// in practice; the bound makes sure it can never become a second,
/// unbounded queue (it once grew by every pong to a peer that sent pings
/// and read nothing).
pub fn write_buffer_limit(max_message_bytes: usize) -> usize {
    BATCH_BYTES + max_message_bytes + ENVELOPE_BYTES
}

/// Whether something put bytes into the socket's write buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Wrote {
    Nothing,
    Frames,
}

pub(super) fn event_frame(event: &ServerEvent) -> Frame {
    Frame::text(event.encode())
}

/// Hands one frame to tungstenite, which writes it into the batched writer
/// at once; never waits (see the module docs). The frame becomes a
/// `Message` here, the one place it does, by a move of its shared bytes.
pub(super) fn feed<S>(ws: &mut WebSocketStream<S>, frame: Frame) -> Result<(), tungstenite::Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    Pin::new(ws).start_send(frame.into_message())
}

/// Feeds `first` and whatever else is already queued, up to one batch, into
/// the socket's write buffer without flushing, skipping messages the replay
/// already sent (numbered up to `watermark`; a new epoch resets it).
pub(super) fn feed_batch<S>(
    ws: &mut WebSocketStream<S>,
    queue: &MemberQueue,
    first: Outbound,
    watermark: &mut u64,
) -> Result<Wrote, tungstenite::Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut bytes, mut fed) = (0, 0);
    let mut next = Some(first);
    while let Some(outbound) = next {
        if outbound.rewinds {
            *watermark = 0;
        }
        if outbound.seq == 0 || outbound.seq > *watermark {
            bytes += outbound.frame.len();
            fed += 1;
            feed(ws, outbound.frame)?;
        }
        if fed >= BATCH_MESSAGES || bytes >= BATCH_BYTES {
            break;
        }
        next = queue.try_pop();
    }
    Ok(if fed > 0 { Wrote::Frames } else { Wrote::Nothing })
}

/// Puts `bytes`, already framed (what a direct write left, see
/// [`crate::direct_writes`]), into the socket's write buffer before anything fed
/// after: tungstenite's own buffer is empty whenever the fan-out may
/// write (the task parks only with nothing buffered), so they go out
/// first. Never waits: the batched writer takes every write whole.
pub(super) fn feed_raw<S>(ws: &mut WebSocketStream<S>, frames: &[Bytes]) -> Result<Wrote, tungstenite::Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    for bytes in frames {
        match ws.get_mut().write_all(bytes).now_or_never() {
            Some(written) => written.map_err(tungstenite::Error::Io)?,
            None => return Err(tungstenite::Error::Io(std::io::ErrorKind::WouldBlock.into())),
        }
    }
    Ok(Wrote::Frames)
}
