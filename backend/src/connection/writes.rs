//! Writes: frames are fed to the socket's write buffer in batches, then
//! flushed once per batch.

use futures_util::SinkExt;
use roomcast_shared::ServerEvent;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;

use crate::queue::{MemberQueue, Outbound};

/// Most messages fed to the socket buffer before one flush.
const BATCH_MESSAGES: usize = 64;
/// Most bytes fed to the socket buffer before one flush.
const BATCH_BYTES: usize = 64 * 1024;

pub(super) fn event_frame(event: &ServerEvent) -> Message {
    Message::text(event.encode())
}

/// Feeds `first` and whatever else is already queued, up to one batch, into
/// the socket's write buffer without flushing, skipping messages the replay
/// already sent (numbered up to `watermark`; a new epoch resets it). Returns
/// whether anything was fed.
pub(super) async fn feed_batch<S>(
    ws: &mut WebSocketStream<S>,
    queue: &MemberQueue,
    first: Outbound,
    watermark: &mut u64,
) -> Result<bool, tungstenite::Error>
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
            bytes += outbound.message.len();
            fed += 1;
            ws.feed(outbound.message).await?;
        }
        if fed >= BATCH_MESSAGES || bytes >= BATCH_BYTES {
            break;
        }
        next = queue.try_pop();
    }
    Ok(fed > 0)
}
