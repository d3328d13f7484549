//! Everything a connection waits on, polled by hand rather than with
//! `select!` over a split socket: the socket stays whole (no lock between
//! its read and write halves), and the loop chooses the order of polling.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::Poll;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Interval;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;

use super::catch_up::{CatchUp, Caught};
use crate::history::sequencer::{Backlogged, Stopped};
use crate::history::{History, HistoryError};
use crate::queue::{MemberQueue, Next};

/// What woke the connection's loop.
pub(super) enum Event {
    Shutdown,
    /// A pending flush finished (or failed).
    Flushed(Result<(), tungstenite::Error>),
    Queued(Next),
    Frame(Option<Result<Message, tungstenite::Error>>),
    /// The held publish was handed to the sequencer (or it has stopped).
    Submitted(Result<(), Stopped>),
    /// A step of the start was read (a replay page, a rooms list).
    Caught(Result<Caught, HistoryError>),
    Heartbeat,
    /// Bytes the socket must be written before anything else: what a
    /// direct write left, or frames it owed (see [`crate::direct_writes`]).
    Owed(Vec<Bytes>),
}

/// Which goes first in a pass: reading the socket, or the writes (the
/// queue, a replay page, a pending flush). They take turns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Turn {
    ReadsFirst,
    WritesFirst,
}

impl Turn {
    /// The other one's turn.
    pub(super) fn next(self) -> Self {
        match self {
            Self::ReadsFirst => Self::WritesFirst,
            Self::WritesFirst => Self::ReadsFirst,
        }
    }
}

pub(super) struct Sources<'a, S, C> {
    pub cancelled: Pin<&'a mut C>,
    pub ws: &'a mut WebSocketStream<S>,
    pub queue: &'a MemberQueue,
    pub heartbeat: &'a mut Interval,
    pub held: Option<&'a mut Backlogged>,
    pub catch_up: Option<(&'a mut CatchUp, &'a History)>,
    /// The last number the replay wrote (the connection's).
    pub watermark: u64,
}

impl<S, C> Sources<'_, S, C>
where
    S: AsyncRead + AsyncWrite + Unpin,
    C: Future<Output = ()>,
{
    /// The first source that is ready. While a flush is pending (the peer
    /// may not be reading) the socket is not read (a peer that reads
    /// nothing cannot make the server answer it: its pings wait in its own
    /// socket), the queue is only watched for eviction, and no replay page
    /// is read; while a publish is held, the socket is not read either.
    pub(super) async fn next_event(mut self, unflushed: bool, turn: Turn) -> Event {
        let reads_first = turn == Turn::ReadsFirst;
        poll_fn(|cx| {
            // The socket is the task's again for this pass (the fan-out
            // may have written to it while the task waited).
            let first = self.queue.take_back();
            if !first.is_empty() {
                return Poll::Ready(Event::Owed(first));
            }
            if self.cancelled.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Event::Shutdown);
            }
            // Before the busy sources, so that however busy the group and
            // the peer are, pings go out and the idle and write-stall
            // checks run.
            if self.heartbeat.poll_tick(cx).is_ready() {
                return Poll::Ready(Event::Heartbeat);
            }
            let reading = match self.held.as_mut() {
                Some(held) => match held.poll_submit(cx) {
                    Poll::Ready(submitted) => return Poll::Ready(Event::Submitted(submitted)),
                    Poll::Pending => false,
                },
                None => !unflushed,
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
                if let Poll::Ready(ending) = self.queue.poll_evicted(cx) {
                    return Poll::Ready(Event::Queued(ending));
                }
            } else {
                let queue_waits = self.catch_up.as_ref().is_some_and(|(catch_up, _)| catch_up.holds_the_queue());
                let queued = if queue_waits { self.queue.poll_evicted(cx) } else { self.queue.poll_next(cx) };
                if let Poll::Ready(next) = queued {
                    return Poll::Ready(Event::Queued(next));
                }
                if let Some((catch_up, history)) = self.catch_up.as_mut() {
                    if let Poll::Ready(caught) = catch_up.poll_next(history, cx) {
                        return Poll::Ready(Event::Caught(caught));
                    }
                }
            }
            if !reads_first && reading {
                if let Poll::Ready(frame) = self.ws.poll_next_unpin(cx) {
                    return Poll::Ready(Event::Frame(frame));
                }
            }
            // Nothing to write, nothing buffered, nothing held: the group's
            // next message may go straight to the socket.
            if !unflushed && self.held.is_none() && self.catch_up.is_none() {
                self.queue.park(self.watermark);
            }
            Poll::Pending
        })
        .await
    }
}
