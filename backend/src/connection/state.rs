//! What one connection holds, and the changes to it that take more than
//! one field. The loop ([`event_loop`](super::event_loop)) and the commands
//! ([`commands`](super::commands)) both work on a [`Connection`]; neither
//! reaches into its fields.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use roomcast_shared::ServerEvent;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{Instant, Interval};
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::WebSocketStream;

use super::catch_up::{rooms_frames, CatchUp, Caught, FirstReads, Replaying, RoomsList};
use super::context::{Context, Peer, Role};
use super::control_rate::ControlRate;
use super::sources::Sources;
use super::writes::{event_frame, feed, feed_batch, Wrote};
use crate::auth::token::{unix_seconds, LEEWAY_SECONDS};
use crate::history::sequencer::Backlogged;
use crate::history::{Page, Replay};
use crate::queue::Outbound;
use crate::registry::{Membership, WireMode};

pub(super) struct Connection {
    peer: Peer,
    membership: Membership,
    context: Arc<Context>,
    /// The last sequence number the replay sent; live messages up to it
    /// are dropped.
    watermark: u64,
    /// A publish waiting for room at the sequencer; reading stops meanwhile.
    held: Option<Box<Backlogged>>,
    /// The replay, until the connection is live (JSON mode). Boxed: an idle
    /// connection holds none of it.
    catch_up: Option<Box<CatchUp>>,
    /// Control frames the peer sent in the current second.
    control: ControlRate,
}

impl Connection {
    pub(super) fn new(peer: Peer, membership: Membership, context: Arc<Context>) -> Self {
        let catch_up = match (peer.role, peer.mode) {
            (Role::Rooms, _) => Some(Box::new(CatchUp::Rooms(RoomsList::new(peer.client_id, context.rooms.clone())))),
            (Role::Member { .. }, WireMode::Json) => {
                let replay = Replay::new(peer.group.clone(), peer.start.clone(), context.settings.history_on_join);
                let seen_max = context.settings.seen_max;
                let first = FirstReads {
                    reader: peer.verified.then(|| (peer.client_id, peer.group.clone())),
                    readers: (seen_max > 0).then(|| (peer.group.clone(), seen_max)),
                };
                Some(Box::new(CatchUp::History(Replaying::new(replay, first))))
            }
            (Role::Member { .. }, WireMode::Raw) => None,
        };
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

    pub(super) fn peer(&self) -> &Peer {
        &self.peer
    }

    pub(super) fn membership(&self) -> &Membership {
        &self.membership
    }

    pub(super) fn context(&self) -> &Context {
        &self.context
    }

    /// Whether the connection's token has expired (with the tokens'
    /// leeway).
    pub(super) fn token_expired(&self) -> bool {
        self.peer.token_expires_at.is_some_and(|exp| unix_seconds() >= exp.saturating_add(LEEWAY_SECONDS))
    }

    /// A `refresh` brought a newer token: its expiry is the connection's.
    pub(super) fn extend_token(&mut self, expires_at: Option<u64>) {
        self.peer.token_expires_at = expires_at;
    }

    /// Counts one control frame at `now`; false past the rate.
    pub(super) fn take_control_frame(&mut self, now: Instant) -> bool {
        self.control.take(now)
    }

    /// Holds a publish the sequencer has no room for; reading stops until
    /// it is handed over.
    pub(super) fn hold(&mut self, backlogged: Box<Backlogged>) {
        self.held = Some(backlogged);
    }

    pub(super) fn holds_publish(&self) -> bool {
        self.held.is_some()
    }

    /// The held publish, once handed over (or refused).
    pub(super) fn take_held(&mut self) -> Option<Box<Backlogged>> {
        self.held.take()
    }

    /// What the loop waits on, this time round.
    pub(super) fn sources<'a, S, C>(
        &'a mut self,
        cancelled: Pin<&'a mut C>,
        ws: &'a mut WebSocketStream<S>,
        heartbeat: &'a mut Interval,
    ) -> Sources<'a, S, C>
    where
        C: Future<Output = ()>,
    {
        Sources {
            cancelled,
            ws,
            queue: self.membership.queue(),
            heartbeat,
            held: self.held.as_deref_mut(),
            catch_up: self.catch_up.as_deref_mut().map(|catch_up| (catch_up, &self.context.history)),
            watermark: self.watermark,
        }
    }

    /// Feeds `first` and what else is queued, one batch, skipping what the
    /// replay already sent.
    pub(super) fn feed_queued<S>(
        &mut self,
        ws: &mut WebSocketStream<S>,
        first: Outbound,
    ) -> Result<Wrote, tungstenite::Error>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        feed_batch(ws, self.membership.queue(), first, &mut self.watermark)
    }

    /// Feeds what a step of the start read: a replay page, or a rooms
    /// stream's list (it is live at once).
    pub(super) fn feed_caught<S>(
        &mut self,
        ws: &mut WebSocketStream<S>,
        caught: Caught,
    ) -> Result<(), tungstenite::Error>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        match caught {
            Caught::Page(page) => self.feed_page(ws, page),
            Caught::Rooms(rooms) => {
                for frame in rooms_frames(rooms, &self.peer, &self.context.settings) {
                    feed(ws, frame)?;
                }
                self.membership.go_live(0, "");
                self.catch_up = None;
                Ok(())
            }
        }
    }

    /// Feeds a replay page; once the replay has caught up with everything
    /// that went by, `synced`, and the connection is live.
    fn feed_page<S>(&mut self, ws: &mut WebSocketStream<S>, page: Page) -> Result<(), tungstenite::Error>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let Some(CatchUp::History(catch_up)) = self.catch_up.as_deref_mut() else { return Ok(()) };
        self.context.metrics.replay_page();
        let caught_up = page.caught_up;
        for frame in catch_up.frames(page, &self.peer, &self.context.settings) {
            feed(ws, frame)?;
        }
        let position = catch_up.position();
        if caught_up && self.membership.go_live(position, catch_up.epoch()) {
            self.context.metrics.replayed(catch_up.outcome());
            feed(ws, event_frame(&ServerEvent::Synced { seq: position }))?;
            self.watermark = position;
            self.catch_up = None;
        }
        Ok(())
    }
}
