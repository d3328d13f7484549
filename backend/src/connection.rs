//! One WebSocket connection: reads frames, turns them into group operations,
//! writes what the group and the server queue for it, keeps the heartbeat,
//! and closes with the code that says why.
//!
//! Everything happens in one task that waits on all its sources at once (see
//! [`Sources`]), so a connection costs one task, one bounded queue and the
//! WebSocket buffers. Writes are batched: everything already queued is fed
//! to the socket buffer, then flushed once.
//!
//! A JSON connection first joins its group (so the live queue starts
//! collecting), then replays history, then goes live, dropping the live
//! messages the replay already covered: no gap and no duplicate, whatever is
//! published meanwhile.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use futures_util::{FutureExt, SinkExt, StreamExt};
use roomcast_shared::{
    close, ChatMessage, ClientCommand, ClientId, DisplayName, ErrorCode, GroupName, HeartbeatSettings, MessageId,
    Sender, ServerEvent, Welcome,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::{interval_at, timeout, Instant, Interval, MissedTickBehavior};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;
use uuid::Uuid;

use crate::history::sequencer::{Backlogged, Publish, Stopped, Submitted};
use crate::history::HistoryError;
use crate::queue::{MemberQueue, Next, Outbound};
use crate::rate::TokenBucket;
use crate::registry::{Membership, WireMode};
use crate::state::AppState;

/// Most messages fed to the socket buffer before one flush.
const BATCH_MESSAGES: usize = 64;
/// Most bytes fed to the socket buffer before one flush.
const BATCH_BYTES: usize = 64 * 1024;

/// Who is on the other end, as established by the upgrade.
#[derive(Debug, Clone)]
pub struct Peer {
    pub connection_id: Uuid,
    pub client_id: ClientId,
    pub name: Option<DisplayName>,
    /// The connection presented a valid token for `client_id`.
    pub verified: bool,
    pub group: GroupName,
    pub mode: WireMode,
    /// The last sequence number the client holds (JSON mode).
    pub since: Option<u64>,
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
    /// Publishes per second and burst per connection; `None`: no limit.
    pub publish_limit: Option<(u32, u32)>,
}

/// Why a connection ended; decides the close frame, if any.
#[derive(Debug, thiserror::Error)]
pub enum CloseReason {
    #[error("server shutting down")]
    Shutdown,
    #[error("outbound queue full")]
    TooSlow,
    #[error("heartbeat timeout")]
    HeartbeatTimeout,
    #[error("history unavailable: {0}")]
    HistoryUnavailable(HistoryError),
    #[error("publish rate limit exceeded")]
    RateLimited,
    #[error("message too big")]
    TooBig,
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
    /// The close frame to send, or `None` when the peer can no longer hear it.
    fn close_frame(&self) -> Option<CloseFrame> {
        let (code, reason) = match self {
            Self::Shutdown => (close::SERVICE_RESTART, "server restarting"),
            Self::TooSlow => (close::TRY_AGAIN_LATER, "too slow to keep up"),
            Self::HeartbeatTimeout => (close::HEARTBEAT_TIMEOUT, "heartbeat timeout"),
            Self::HistoryUnavailable(_) => (close::INTERNAL_ERROR, "history unavailable"),
            Self::RateLimited => (close::POLICY_VIOLATION, "publish rate limit exceeded"),
            Self::TooBig => (close::MESSAGE_TOO_BIG, "message too big"),
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
        !matches!(self, Self::TooSlow | Self::PeerClosed | Self::Lost(_))
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

/// Serves one upgraded connection until it ends.
pub async fn serve<S>(mut socket: WebSocketStream<S>, peer: Peer, state: AppState)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let membership = state.registry.join(&peer.group, peer.mode);
    tracing::debug!(conn = %peer.connection_id, group = %peer.group, mode = peer.mode.as_str(), "joined");
    let limit = state.settings.publish_limit.map(|(rate, burst)| TokenBucket::new(rate, burst, Instant::now()));
    let mut connection = Connection { peer, state, membership, watermark: 0, limit, held: None };
    let reason = connection.run(&mut socket).await;
    let Connection { membership, state, peer, .. } = connection;
    let (conn, group) = (&peer.connection_id, &peer.group);
    match &reason {
        CloseReason::TooSlow => tracing::warn!(%conn, %group, "disconnecting a reader too slow for its group"),
        CloseReason::PeerClosed | CloseReason::Shutdown => tracing::debug!(%conn, %group, %reason, "closing"),
        _ => tracing::info!(%conn, %group, %reason, "closing"),
    }
    // Leave first, so that nothing more is queued for a closing connection.
    let queue = membership.queue().clone();
    drop(membership);
    let closing = async {
        if let Some(frame) = reason.close_frame() {
            if reason.drains_queue() {
                while let Some(outbound) = queue.try_pop() {
                    socket.feed(outbound.message).await?;
                }
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
    // A peer that never answers must not keep the socket open.
    let _ = timeout(state.settings.close_grace, closing).await;
    // tungstenite's last words (its reply to the peer's close frame) may
    // still sit in the batched writer: it does not flush a closed stream.
    let _ = timeout(state.settings.close_grace, socket.get_mut().flush()).await;
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

struct Connection {
    peer: Peer,
    state: AppState,
    membership: Membership,
    /// The last sequence number already written (by the replay); live
    /// messages up to it are dropped.
    watermark: u64,
    limit: Option<TokenBucket>,
    /// A publish waiting for room at the sequencer; reading stops meanwhile.
    held: Option<Box<Backlogged>>,
}

/// What woke the connection's loop.
enum Event {
    Shutdown,
    /// A pending flush finished (or failed).
    Flushed(Result<(), tungstenite::Error>),
    Queued(Next),
    Frame(Option<Result<Message, tungstenite::Error>>),
    /// The held publish was handed to the sequencer (or it has stopped).
    Submitted(Result<(), Stopped>),
    Heartbeat,
}

impl Connection {
    async fn run<S>(&mut self, ws: &mut WebSocketStream<S>) -> CloseReason
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let shutdown = self.state.shutdown.clone();
        let cancelled = shutdown.cancelled();
        tokio::pin!(cancelled);
        if self.peer.mode == WireMode::Json {
            // Boxed: the replay's state would otherwise stay part of every
            // idle connection's future.
            let greeted = tokio::select! {
                () = &mut cancelled => return CloseReason::Shutdown,
                greeted = Box::pin(self.greet(ws)) => greeted,
            };
            if let Err(reason) = greeted {
                return reason;
            }
        }
        let ping_interval = self.state.settings.ping_interval;
        let mut heartbeat = interval_at(Instant::now() + ping_interval, ping_interval);
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut last_heard = Instant::now();
        let mut unflushed = false;
        let mut reads_first = false;
        let queue = self.membership.queue().clone();
        loop {
            // Reads and writes take turns at going first, so that a busy
            // group cannot starve reads (the peer's pongs would go unseen)
            // and a chatty peer cannot starve writes.
            reads_first = !reads_first;
            let sources = Sources {
                cancelled: cancelled.as_mut(),
                ws: &mut *ws,
                queue: &queue,
                heartbeat: &mut heartbeat,
                held: self.held.as_deref_mut(),
            };
            match sources.next_event(unflushed, reads_first).await {
                Event::Shutdown => return CloseReason::Shutdown,
                Event::Flushed(Ok(())) => unflushed = false,
                Event::Flushed(Err(err)) => return err.into(),
                Event::Queued(Next::Evicted) => return CloseReason::TooSlow,
                Event::Queued(Next::Message(first)) => match feed_batch(ws, &queue, first, self.watermark).await {
                    // Flush at once when the socket takes it (the usual
                    // case), instead of in another turn of this loop: one
                    // delivery then costs one pass, not two.
                    Ok(true) => match ws.flush().now_or_never() {
                        Some(Ok(())) => {}
                        Some(Err(err)) => return err.into(),
                        None => unflushed = true,
                    },
                    Ok(false) => {}
                    Err(err) => return err.into(),
                },
                Event::Frame(frame) => {
                    last_heard = Instant::now();
                    let outcome = match frame {
                        None => Err(CloseReason::PeerClosed),
                        Some(Err(err)) => Err(err.into()),
                        Some(Ok(message)) => self.on_message(message),
                    };
                    if let Err(reason) = outcome {
                        return reason;
                    }
                }
                Event::Submitted(submitted) => {
                    // Reading resumes: the time it was paused is not the
                    // peer's silence.
                    last_heard = Instant::now();
                    let held = self.held.take();
                    if let (Err(stopped), Some(id)) = (submitted, held.and_then(|held| held.reply_id())) {
                        if let Err(reason) = self.refuse(id, stopped) {
                            return reason;
                        }
                    }
                }
                Event::Heartbeat => {
                    // While a publish is held the socket is not read, so the
                    // peer cannot be heard; it is not silent.
                    if self.held.is_none() && last_heard.elapsed() >= self.state.settings.idle_timeout {
                        return CloseReason::HeartbeatTimeout;
                    }
                    if let Err(reason) = self.queue(Message::Ping(Default::default())) {
                        return reason;
                    }
                }
            }
        }
    }

    /// Writes `welcome`, then the replay (a `gap` if some history cannot be
    /// recovered, the messages, and `synced`), straight to the socket.
    async fn greet<S>(&mut self, ws: &mut WebSocketStream<S>) -> Result<(), CloseReason>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        ws.feed(event_frame(&ServerEvent::Welcome(self.welcome()))).await?;
        let replay = self
            .state
            .history
            .replay(self.peer.group.clone(), self.peer.since, self.state.settings.history_on_join)
            .await
            .map_err(CloseReason::HistoryUnavailable)?;
        if let Some((from, to)) = replay.gap {
            ws.feed(event_frame(&ServerEvent::Gap { from, to })).await?;
        }
        for (index, message) in replay.messages.into_iter().enumerate() {
            ws.feed(event_frame(&ServerEvent::Message(message))).await?;
            if index % BATCH_MESSAGES == BATCH_MESSAGES - 1 {
                ws.flush().await?;
            }
        }
        ws.feed(event_frame(&ServerEvent::Synced { seq: replay.synced })).await?;
        ws.flush().await?;
        self.watermark = replay.synced;
        Ok(())
    }

    fn welcome(&self) -> Welcome {
        let settings = &self.state.settings;
        Welcome {
            connection_id: self.peer.connection_id,
            client_id: self.peer.client_id,
            group: self.peer.group.clone(),
            heartbeat: HeartbeatSettings {
                ping_interval_ms: settings.ping_interval.as_millis() as u64,
                idle_timeout_ms: settings.idle_timeout.as_millis() as u64,
            },
            max_message_bytes: settings.max_message_bytes,
        }
    }

    /// Handles one inbound message. Control frames are answered by the
    /// WebSocket layer itself; they only count as signs of life here.
    fn on_message(&mut self, message: Message) -> Result<(), CloseReason> {
        match (self.peer.mode, message) {
            (_, Message::Ping(_) | Message::Pong(_) | Message::Close(_) | Message::Frame(_)) => Ok(()),
            (WireMode::Json, Message::Text(text)) => self.on_command(&text),
            (WireMode::Json, Message::Binary(_)) => self.reply(&ServerEvent::Error {
                code: ErrorCode::BinaryNotSupported,
                message: "binary frames carry nothing in roomcast.v1; send JSON text".into(),
                id: None,
            }),
            // Relayed as they came (raw mode is byte-exact, and Autobahn's
            // echo cases rely on it), but counted like any publish: a flood
            // of empty or binary frames would otherwise reach every raw
            // member unchecked.
            (WireMode::Raw, Message::Text(text)) if text.is_empty() => {
                self.count_raw_frame()?;
                self.membership.relay(Message::Text(text));
                Ok(())
            }
            (WireMode::Raw, Message::Text(text)) => {
                self.count_raw_frame()?;
                // Raw clients get no acknowledgement; a refused publish is
                // logged by the sequencer, and a stopped one is the
                // shutdown this connection is about to see.
                let _ = self.publish(MessageId(Uuid::new_v4()), text.as_str().to_owned(), false);
                Ok(())
            }
            (WireMode::Raw, Message::Binary(data)) => {
                self.count_raw_frame()?;
                self.membership.relay(Message::Binary(data));
                Ok(())
            }
        }
    }

    /// One raw frame against the publish rate limit. A raw client cannot be
    /// told about one refused frame, so a flood closes it (1008).
    fn count_raw_frame(&mut self) -> Result<(), CloseReason> {
        if self.within_limit() {
            Ok(())
        } else {
            Err(CloseReason::RateLimited)
        }
    }

    fn on_command(&mut self, frame: &str) -> Result<(), CloseReason> {
        match ClientCommand::decode(frame) {
            Ok(ClientCommand::Send { id, .. }) if !self.within_limit() => self.reply(&ServerEvent::Error {
                code: ErrorCode::RateLimited,
                message: "too many messages; send this one again later".into(),
                id: Some(id),
            }),
            // The ack (or an error) comes from the sequencer, once stored.
            Ok(ClientCommand::Send { id, text }) => match self.publish(id, text, true) {
                Ok(()) => Ok(()),
                Err(stopped) => self.refuse(id, stopped),
            },
            Ok(ClientCommand::Ping) => self.reply(&ServerEvent::Pong),
            Err(err) => {
                tracing::debug!(conn = %self.peer.connection_id, code = ?err.code(), "refused a command");
                self.reply(&ServerEvent::from_command_error(&err))
            }
        }
    }

    /// Whether one more publish fits this connection's rate limit.
    fn within_limit(&mut self) -> bool {
        self.limit.as_mut().is_none_or(|bucket| bucket.try_take(Instant::now()))
    }

    /// Hands a message to the sequencer. When the writer is far behind, the
    /// publish is held and the connection reads nothing more until it is
    /// handed over: the sender is held back, while this connection's writes
    /// go on, so its own queue keeps draining instead of overflowing.
    fn publish(&mut self, id: MessageId, text: String, acknowledge: bool) -> Result<(), Stopped> {
        let message = ChatMessage {
            group: self.peer.group.clone(),
            seq: 0,
            id,
            from: Sender { client_id: self.peer.client_id, name: self.peer.name.clone(), verified: self.peer.verified },
            text,
            ts: 0,
        };
        let reply_to = acknowledge.then(|| self.membership.queue().clone());
        match self.state.sequencer.try_submit(Publish { message, reply_to })? {
            Submitted::Queued => {}
            Submitted::Backlogged(backlogged) => self.held = Some(backlogged),
        }
        Ok(())
    }

    /// Tells a JSON sender its message was not taken (the server is
    /// stopping); its app sends it again after reconnecting.
    fn refuse(&self, id: MessageId, stopped: Stopped) -> Result<(), CloseReason> {
        self.reply(&ServerEvent::Error { code: ErrorCode::Unavailable, message: stopped.to_string(), id: Some(id) })
    }

    fn reply(&self, event: &ServerEvent) -> Result<(), CloseReason> {
        self.queue(event_frame(event))
    }

    fn queue(&self, message: Message) -> Result<(), CloseReason> {
        self.membership.reply(message).map_err(|_| CloseReason::TooSlow)
    }
}

fn event_frame(event: &ServerEvent) -> Message {
    Message::text(event.encode())
}

/// Everything a connection waits on, polled by hand rather than with
/// `select!` over a split socket: the socket stays whole (no lock between
/// its read and write halves), and the loop chooses the order of polling.
struct Sources<'a, S, C> {
    cancelled: Pin<&'a mut C>,
    ws: &'a mut WebSocketStream<S>,
    queue: &'a MemberQueue,
    heartbeat: &'a mut Interval,
    held: Option<&'a mut Backlogged>,
}

impl<S, C> Sources<'_, S, C>
where
    S: AsyncRead + AsyncWrite + Unpin,
    C: Future<Output = ()>,
{
    /// The first source that is ready. While a flush is pending (the peer
    /// may not be reading) the queue is only watched for eviction; while a
    /// publish is held, the socket is not read.
    async fn next_event(mut self, unflushed: bool, reads_first: bool) -> Event {
        poll_fn(|cx| {
            if self.cancelled.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Event::Shutdown);
            }
            // Before the busy sources, so that however busy the group and
            // the peer are, pings go out and the idle timeout is checked.
            if self.heartbeat.poll_tick(cx).is_ready() {
                return Poll::Ready(Event::Heartbeat);
            }
            let reading = match self.held.as_mut() {
                Some(held) => match held.poll_submit(cx) {
                    Poll::Ready(submitted) => return Poll::Ready(Event::Submitted(submitted)),
                    Poll::Pending => false,
                },
                None => true,
            };
            if reads_first && reading {
                if let Poll::Ready(frame) = self.ws.poll_next_unpin(cx) {
                    return Poll::Ready(Event::Frame(frame));
                }
            }
            if unflushed {
                if let Poll::Ready(flushed) = self.ws.poll_flush_unpin(cx) {
                    return Poll::Ready(Event::Flushed(flushed));
                }
                if self.queue.poll_evicted(cx).is_ready() {
                    return Poll::Ready(Event::Queued(Next::Evicted));
                }
            } else if let Poll::Ready(next) = self.queue.poll_next(cx) {
                return Poll::Ready(Event::Queued(next));
            }
            if !reads_first && reading {
                if let Poll::Ready(frame) = self.ws.poll_next_unpin(cx) {
                    return Poll::Ready(Event::Frame(frame));
                }
            }
            Poll::Pending
        })
        .await
    }
}

/// Feeds `first` and whatever else is already queued, up to one batch, into
/// the socket's write buffer without flushing, skipping messages the replay
/// already sent. Returns whether anything was fed.
async fn feed_batch<S>(
    ws: &mut WebSocketStream<S>,
    queue: &MemberQueue,
    first: Outbound,
    watermark: u64,
) -> Result<bool, tungstenite::Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut bytes, mut fed) = (0, 0);
    let mut next = Some(first);
    while let Some(outbound) = next {
        if outbound.seq == 0 || outbound.seq > watermark {
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
