//! The connection's loop: one task, woken by whichever source is ready
//! ([`Sources`](super::sources::Sources)), handling one event per pass.

use futures_util::FutureExt;
use futures_util::SinkExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;

use super::close::CloseReason;
use super::commands::Inbound;
use super::liveness::{Beat, Holding, Liveness};
use super::sources::{Event, Turn};
use super::state::Connection;
use super::writes::{feed_raw, Wrote};
use crate::frame::Frame;
use crate::history::sequencer::Stopped;
use crate::queue::Next;

impl Connection {
    pub(super) async fn run<S>(&mut self, ws: &mut WebSocketStream<S>) -> CloseReason
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let (shutdown, drain) = (self.context().shutdown.clone(), self.context().drain.clone());
        // A shutdown closes every connection at once; a drain each at its
        // own moment.
        let cancelled = async {
            tokio::select! {
                () = shutdown.cancelled() => {}
                () = drain.my_turn() => {}
            }
        };
        tokio::pin!(cancelled);
        let settings = self.context().settings;
        let now = Instant::now();
        let mut liveness = Liveness::new(settings.ping_interval, settings.idle_timeout, now);
        let mut heartbeat = liveness.heartbeat(now);
        let mut turn = Turn::WritesFirst;
        loop {
            // Reads and writes take turns at going first, so that a busy
            // group cannot starve reads (the peer's pongs would go unseen)
            // and a chatty peer cannot starve writes.
            turn = turn.next();
            let sources = self.sources(cancelled.as_mut(), ws, &mut heartbeat);
            let event = sources.next_event(liveness.writes_wait(), turn).await;
            let wrote = match self.handle(event, ws, &mut liveness) {
                Ok(wrote) => wrote,
                Err(reason) => return reason,
            };
            // Flush at once when the socket takes it (the usual case),
            // instead of in another turn of this loop: one delivery then
            // costs one pass, not two.
            if wrote == Wrote::Frames && !liveness.writes_wait() {
                match ws.flush().now_or_never() {
                    Some(Ok(())) => {}
                    Some(Err(err)) => return err.into(),
                    None => liveness.writes_wait_since(Instant::now()),
                }
            }
        }
    }

    /// Handles one event; says whether it wrote, or why the connection
    /// ends.
    fn handle<S>(
        &mut self,
        event: Event,
        ws: &mut WebSocketStream<S>,
        liveness: &mut Liveness,
    ) -> Result<Wrote, CloseReason>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        match event {
            Event::Shutdown if self.context().shutdown.is_cancelled() => Err(CloseReason::Shutdown),
            Event::Shutdown => Err(CloseReason::Drained),
            Event::Flushed(flushed) => {
                flushed?;
                liveness.flushed(Instant::now());
                Ok(Wrote::Nothing)
            }
            Event::Queued(Next::Evicted) => Err(CloseReason::TooSlow),
            Event::Queued(Next::Removed(removal)) => Err(CloseReason::Removed(removal)),
            Event::Queued(Next::Message(first)) => Ok(self.feed_queued(ws, first)?),
            Event::Caught(caught) => {
                self.feed_caught(ws, caught.map_err(CloseReason::HistoryUnavailable)?)?;
                Ok(Wrote::Frames)
            }
            Event::Frame(frame) => {
                liveness.heard(Instant::now());
                self.on_frame(frame)
            }
            Event::Submitted(submitted) => {
                // Reading resumes: the time it was paused is not the
                // peer's silence.
                liveness.heard(Instant::now());
                self.on_submitted(submitted).map(|()| Wrote::Nothing)
            }
            Event::Heartbeat => self.on_heartbeat(liveness).map(|()| Wrote::Nothing),
            Event::Owed(frames) => Ok(feed_raw(ws, &frames)?),
        }
    }

    fn on_frame(&mut self, frame: Option<Result<Message, tungstenite::Error>>) -> Result<Wrote, CloseReason> {
        let message = frame.ok_or(CloseReason::PeerClosed)??;
        // tungstenite answers a ping or a close by itself, on the next write
        // or flush: flush now, so the answer is counted as waiting like any
        // other write.
        let answered = message.is_ping() || message.is_close();
        self.apply(Inbound::parse(self.peer().mode, message))?;
        Ok(if answered { Wrote::Frames } else { Wrote::Nothing })
    }

    /// The held publish was handed over; a JSON sender hears if it was
    /// refused.
    fn on_submitted(&mut self, submitted: Result<(), Stopped>) -> Result<(), CloseReason> {
        let held = self.take_held();
        if let (Err(stopped), Some(id)) = (submitted, held.and_then(|held| held.reply_id())) {
            self.refuse(id, stopped)?;
        }
        Ok(())
    }

    /// The checks of a heartbeat tick (stalled, idle, token), and a ping
    /// when one is due.
    fn on_heartbeat(&mut self, liveness: &mut Liveness) -> Result<(), CloseReason> {
        let holding = if self.holds_publish() { Holding::Publish } else { Holding::Nothing };
        let beat = liveness.tick(Instant::now(), holding)?;
        if self.token_expired() {
            return Err(CloseReason::TokenExpired);
        }
        match beat {
            Beat::Ping => self.queue(Frame::ping()),
            Beat::Quiet => Ok(()),
        }
    }
}
