//! The connection's loop: one task, woken by whichever source is ready
//! ([`Sources`]), handling one event per pass.

use std::sync::Arc;

use futures_util::{FutureExt, SinkExt};
use roomcast_shared::ServerEvent;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{interval_at, Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;

use super::catch_up::CatchUp;
use super::commands::Inbound;
use super::control_rate::ControlRate;
use super::sources::{Event, Sources};
use super::writes::{event_frame, feed, feed_batch};
use super::{CloseReason, Context, Peer};
use crate::history::sequencer::Backlogged;
use crate::history::{Page, Replay};
use crate::queue::Next;
use crate::registry::{Membership, WireMode};

pub(super) struct Connection {
    pub(super) peer: Peer,
    pub(super) membership: Membership,
    pub(super) context: Arc<Context>,
    /// The last sequence number the replay sent; live messages up to it are
    /// dropped.
    watermark: u64,
    /// A publish waiting for room at the sequencer; reading stops meanwhile.
    pub(super) held: Option<Box<Backlogged>>,
    /// The replay, until the connection is live (JSON mode). Boxed: an idle
    /// connection holds none of it.
    catch_up: Option<Box<CatchUp>>,
    /// Control frames the peer sent in the current second.
    pub(super) control: ControlRate,
}

impl Connection {
    pub(super) fn new(peer: Peer, membership: Membership, context: Arc<Context>) -> Self {
        let catch_up = (peer.mode == WireMode::Json).then(|| {
            let replay = Replay::new(peer.group.clone(), peer.start.clone(), context.settings.history_on_join);
            Box::new(CatchUp::new(replay))
        });
        Self {
            peer,
            membership,
            context,
            watermark: 0,
            held: None,
            catch_up,
            control: ControlRate::new(Instant::now()),
        }
    }

    pub(super) fn into_parts(self) -> (Peer, Membership, Arc<Context>) {
        (self.peer, self.membership, self.context)
    }

    pub(super) async fn run<S>(&mut self, ws: &mut WebSocketStream<S>) -> CloseReason
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let context = self.context.clone();
        let settings = context.settings;
        let cancelled = context.shutdown.cancelled();
        tokio::pin!(cancelled);
        // The idle and write-stall checks run at least four times per idle
        // timeout, so that a connection goes within a quarter of the
        // timeout after it; a ping goes out every `ticks_per_ping` checks,
        // i.e. every ping interval.
        let ticks_per_ping = settings.ping_interval.as_nanos().div_ceil((settings.idle_timeout / 4).as_nanos().max(1));
        let ticks_per_ping = u32::try_from(ticks_per_ping).unwrap_or(u32::MAX).max(1);
        let tick = settings.ping_interval / ticks_per_ping;
        let mut heartbeat = interval_at(Instant::now() + tick, tick);
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut last_heard = Instant::now();
        let mut ticks = 0u32;
        // Since when written bytes have been waiting for the peer to read
        // them (ours, or tungstenite's own pongs and closes). Meanwhile the
        // socket is not read: a peer that does not read cannot make the
        // server write more for it.
        let mut unflushed: Option<Instant> = None;
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
                catch_up: self.catch_up.as_deref_mut().map(|catch_up| (catch_up, &context.history)),
            };
            let wrote = match sources.next_event(unflushed.is_some(), reads_first).await {
                Event::Shutdown => return CloseReason::Shutdown,
                Event::Flushed(Ok(())) => {
                    // Reading resumes: the time it was paused is not the
                    // peer's silence.
                    if let Some(since) = unflushed.take() {
                        last_heard = (last_heard + since.elapsed()).min(Instant::now());
                    }
                    Wrote::Nothing
                }
                Event::Flushed(Err(err)) => return err.into(),
                Event::Queued(Next::Evicted) => return CloseReason::TooSlow,
                Event::Queued(Next::Revoked) => return CloseReason::Revoked,
                Event::Queued(Next::Message(first)) => match feed_batch(ws, &queue, first, &mut self.watermark) {
                    Ok(true) => Wrote::Frames,
                    Ok(false) => Wrote::Nothing,
                    Err(err) => return err.into(),
                },
                Event::Page(Ok(page)) => match self.feed_page(ws, page) {
                    Ok(()) => Wrote::Frames,
                    Err(err) => return err.into(),
                },
                Event::Page(Err(err)) => return CloseReason::HistoryUnavailable(err),
                Event::Frame(frame) => {
                    last_heard = Instant::now();
                    let message = match frame {
                        None => return CloseReason::PeerClosed,
                        Some(Err(err)) => return err.into(),
                        Some(Ok(message)) => message,
                    };
                    // tungstenite answers a ping or a close by itself, on
                    // the next write or flush: flush now, so the answer is
                    // counted as waiting like any other write.
                    let answered = message.is_ping() || message.is_close();
                    if let Err(reason) = self.apply(Inbound::parse(self.peer.mode, message)) {
                        return reason;
                    }
                    if answered {
                        Wrote::Frames
                    } else {
                        Wrote::Nothing
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
                    Wrote::Nothing
                }
                Event::Heartbeat => {
                    // A peer that has not taken a byte for the idle timeout
                    // is not reading: it goes, and its memory with it,
                    // whether or not it still sends.
                    if unflushed.is_some_and(|since| since.elapsed() >= settings.idle_timeout) {
                        return CloseReason::Stalled;
                    }
                    // While a publish is held or writes wait, the socket is
                    // not read, so the peer cannot be heard; it is not
                    // silent.
                    if self.held.is_none() && unflushed.is_none() && last_heard.elapsed() >= settings.idle_timeout {
                        return CloseReason::HeartbeatTimeout;
                    }
                    if self.token_expired() {
                        return CloseReason::TokenExpired;
                    }
                    ticks = (ticks + 1) % ticks_per_ping;
                    if ticks == 0 {
                        if let Err(reason) = self.queue(Message::Ping(Default::default())) {
                            return reason;
                        }
                    }
                    Wrote::Nothing
                }
            };
            // Flush at once when the socket takes it (the usual case),
            // instead of in another turn of this loop: one delivery then
            // costs one pass, not two.
            if wrote == Wrote::Frames && unflushed.is_none() {
                match ws.flush().now_or_never() {
                    Some(Ok(())) => {}
                    Some(Err(err)) => return err.into(),
                    None => unflushed = Some(Instant::now()),
                }
            }
        }
    }

    /// Feeds a replay page; once the replay has caught up with everything
    /// that went by, `synced`, and the connection is live.
    fn feed_page<S>(&mut self, ws: &mut WebSocketStream<S>, page: Page) -> Result<(), tungstenite::Error>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let Some(catch_up) = self.catch_up.as_mut() else { return Ok(()) };
        let caught_up = page.caught_up;
        for frame in catch_up.frames(page, &self.peer, &self.context.settings) {
            feed(ws, frame)?;
        }
        let position = catch_up.position();
        if caught_up && self.membership.go_live(position, catch_up.epoch()) {
            feed(ws, event_frame(&ServerEvent::Synced { seq: position }))?;
            self.watermark = position;
            self.catch_up = None;
        }
        Ok(())
    }
}

/// Whether an event put bytes into the socket's write buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wrote {
    Nothing,
    Frames,
}
