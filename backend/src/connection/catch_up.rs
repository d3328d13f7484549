//! The start of a JSON connection: `welcome`, then the replay of history,
//! one page at a time, then `synced`, then live. A rooms stream's start is
//! `welcome`, then its room list (`rooms`), then live.
//!
//! A page is read only once the previous one is flushed to the socket, so a
//! client that does not read holds one page (at most
//! [`replay::PAGE`](crate::history::replay::PAGE)) and is closed by the
//! write-stall check like any other. Live group messages are not queued
//! meanwhile (the member queue is catching up): the replay reads them from
//! the store, and the connection goes live only once the replay has reached
//! every number that went by.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use roomcast_shared::{ClientId, GroupName, HeartbeatSettings, RoomEntry, ServerEvent, Welcome};

use super::context::{Peer, Settings};
use super::writes::{event_frame, write_buffer_limit};
use crate::frame::Frame;
use crate::history::{Cursor, History, HistoryError, Page, Piece, Replay};
use crate::metrics::ReplayOutcome;
use crate::rooms::{entry, RoomsHub};
use crate::seen;

/// How a connection starts.
pub(super) enum CatchUp {
    /// A room's: its history replayed.
    History(Replaying),
    /// A rooms stream's: its list read.
    Rooms(RoomsList),
}

/// What a step of the start read.
pub(super) enum Caught {
    Page(Page),
    Rooms(Vec<RoomEntry>),
}

impl CatchUp {
    /// The next step's result, reading it if no read is under way.
    pub(super) fn poll_next(&mut self, history: &History, cx: &mut Context<'_>) -> Poll<Result<Caught, HistoryError>> {
        match self {
            Self::History(replay) => replay.poll_page(history, cx).map_ok(Caught::Page),
            Self::Rooms(list) => list.poll_list(history, cx).map_ok(Caught::Rooms),
        }
    }

    /// Whether the queue waits until this is written: a rooms stream's
    /// `welcome` comes first, then the list, then what was queued
    /// meanwhile (the `activity` of its rooms; the list may hold some of
    /// it too).
    pub(super) fn holds_the_queue(&self) -> bool {
        matches!(self, Self::Rooms(_))
    }
}

/// The read of a rooms stream's list.
type ListRead = Pin<Box<dyn Future<Output = Result<Vec<RoomEntry>, HistoryError>> + Send>>;

/// A rooms stream's list, read once: its identity's cursors, each room
/// watched before it is read.
pub(super) struct RoomsList {
    sub: ClientId,
    hub: Arc<RoomsHub>,
    read: Option<ListRead>,
}

impl RoomsList {
    pub(super) fn new(sub: ClientId, hub: Arc<RoomsHub>) -> Self {
        Self { sub, hub, read: None }
    }

    fn poll_list(&mut self, history: &History, cx: &mut Context<'_>) -> Poll<Result<Vec<RoomEntry>, HistoryError>> {
        let read = self.read.get_or_insert_with(|| {
            let (history, hub, sub) = (history.clone(), self.hub.clone(), self.sub);
            Box::pin(async move {
                history.blocking(move |store| entry::list(store, sub, &|group| hub.watch(sub, group))).await
            })
        });
        read.as_mut().poll(cx)
    }
}

/// The welcome and the list of a rooms stream.
pub(super) fn rooms_frames(rooms: Vec<RoomEntry>, peer: &Peer, settings: &Settings) -> [Frame; 2] {
    let welcome = event_frame(&ServerEvent::Welcome(welcome(peer, settings, String::new())));
    let budget = write_buffer_limit(settings.max_message_bytes).saturating_sub(welcome.len() + 2 * FRAME_HEADER_BYTES);
    [welcome, rooms_frame(rooms, budget)]
}

/// Most bytes a WebSocket frame's header takes (with a 64-bit length).
const FRAME_HEADER_BYTES: usize = 14;

/// The `rooms` frame, holding as many of the newest rooms as fit in
/// `budget` bytes. Both start frames are fed at once, and tungstenite
/// refuses (the connection then closes as too slow) a frame that does not
/// fit its write buffer: 200 rooms with 100-character previews come to
/// about 100 KB, more than that buffer under a small `--max-message-bytes`.
/// The list is newest first, so the rooms left out are the ones longest
/// quiet; one comes back as a `room` event when its identity reads it, or
/// in the next list once it is among the newest.
fn rooms_frame(rooms: Vec<RoomEntry>, budget: usize) -> Frame {
    let event = ServerEvent::Rooms { rooms };
    let frame = event_frame(&event);
    if frame.len() <= budget {
        return frame;
    }
    let ServerEvent::Rooms { mut rooms } = event else { unreachable!("the event was built above as a `rooms` event") };
    let mut len = frame.len();
    while len > budget {
        let Some(room) = rooms.pop() else { break };
        // The entry and the comma before it (an entry made of strings and
        // numbers always serializes).
        let entry = serde_json::to_string(&room).map_or(0, |json| json.len());
        len = len.saturating_sub(entry + 1);
    }
    event_frame(&ServerEvent::Rooms { rooms })
}

/// A page read, with the replay, and (the first time) what follows the
/// `welcome`.
type Step = Pin<Box<dyn Future<Output = Result<(Replay, Page, Welcomed), HistoryError>> + Send>>;

/// What the first step reads to follow the `welcome`: a verified member's
/// read cursor, and in a small group its readers (see [`seen`]).
#[derive(Default)]
struct Welcomed {
    cursor: Option<Cursor>,
    readers: Option<Vec<(ClientId, Cursor)>>,
}

/// What the first step is to read besides the page.
#[derive(Default)]
pub(super) struct FirstReads {
    /// Whose read cursor in which group (a verified member's).
    pub(super) reader: Option<(ClientId, GroupName)>,
    /// Which group's readers, if it has at most this many (`--seen-max`).
    pub(super) readers: Option<(GroupName, usize)>,
}

impl FirstReads {
    async fn read(self, history: &History) -> Welcomed {
        // Either missing, the `welcome` goes without it.
        let cursor = match self.reader {
            Some((sub, group)) => history.cursor(sub, group).await.unwrap_or_else(|err| {
                tracing::debug!(%err, "cannot read a read cursor: the welcome goes without it");
                None
            }),
            None => None,
        };
        let readers = match self.readers {
            Some((group, max)) => {
                history.blocking(move |store| store.readers(&group, max)).await.unwrap_or_else(|err| {
                    tracing::debug!(%err, "cannot read a group's readers: the welcome goes without them");
                    None
                })
            }
            None => None,
        };
        Welcomed { cursor, readers }
    }
}

/// A replay in progress.
pub(super) struct Replaying {
    /// `None` while a page is being read.
    replay: Option<Replay>,
    step: Option<Step>,
    welcomed: bool,
    /// What the first step reads besides its page, until it does (boxed:
    /// read once).
    first: Option<Box<FirstReads>>,
    /// What it read, until it follows the `welcome`.
    told: Welcomed,
    /// The worst its pages told so far.
    outcome: ReplayOutcome,
}

impl Replaying {
    /// `first`: what follows the `welcome`, read with the first page.
    pub(super) fn new(replay: Replay, first: FirstReads) -> Self {
        let first = Some(Box::new(first));
        Self {
            replay: Some(replay),
            step: None,
            welcomed: false,
            first,
            told: Welcomed::default(),
            outcome: ReplayOutcome::Gapless,
        }
    }

    /// The next page, reading it if no read is under way.
    pub(super) fn poll_page(&mut self, history: &History, cx: &mut Context<'_>) -> Poll<Result<Page, HistoryError>> {
        if self.step.is_none() {
            let Some(replay) = self.replay.take() else { return Poll::Pending };
            let history = history.clone();
            let first = self.first.take();
            self.step = Some(Box::pin(async move {
                // Read before the replay's head: a cursor of the epoch the
                // replay then reads is one of that history.
                let welcomed = match first {
                    Some(first) => first.read(&history).await,
                    None => Welcomed::default(),
                };
                let (replay, page) = history.step(replay).await?;
                Ok((replay, page, welcomed))
            }));
        }
        let step = self.step.as_mut().expect("set above");
        let Poll::Ready(stepped) = step.as_mut().poll(cx) else { return Poll::Pending };
        self.step = None;
        Poll::Ready(stepped.map(|(replay, page, welcomed)| {
            self.replay = Some(replay);
            if welcomed.cursor.is_some() || welcomed.readers.is_some() {
                self.told = welcomed;
            }
            page
        }))
    }

    /// The group's epoch as the replay read it.
    pub(super) fn epoch(&self) -> &str {
        self.replay.as_ref().map_or("", Replay::epoch)
    }

    /// The last number the replay sent or reported.
    pub(super) fn position(&self) -> u64 {
        self.replay.as_ref().map_or(0, Replay::position)
    }

    /// How the replay went so far: a gap or a reset in any page.
    pub(super) fn outcome(&self) -> ReplayOutcome {
        self.outcome
    }

    /// The frames of `page`, after the `welcome` if it is the first.
    pub(super) fn frames(&mut self, page: Page, peer: &Peer, settings: &Settings) -> Vec<Frame> {
        let mut frames = Vec::with_capacity(page.pieces.len() + 1);
        if !self.welcomed {
            self.welcomed = true;
            let epoch = self.replay.as_ref().map(|replay| replay.epoch().to_owned()).unwrap_or_default();
            // The member's read cursor, when it is of the history it is
            // about to get: where its "new messages" begin.
            let cursor = self.told.cursor.take().filter(|cursor| !epoch.is_empty() && cursor.epoch == epoch);
            // The group's readers, of that history too.
            let seen =
                self.told.readers.take().filter(|_| !epoch.is_empty()).map(|readers| seen::snapshot(&epoch, readers));
            frames.push(event_frame(&ServerEvent::Welcome(welcome(peer, settings, epoch))));
            if let Some(Cursor { epoch, seq }) = cursor {
                frames.push(event_frame(&ServerEvent::Cursor { epoch, seq }));
            }
            frames.extend(seen.as_ref().map(event_frame));
        }
        frames.extend(page.pieces.into_iter().map(|piece| {
            event_frame(&match piece {
                Piece::Reset { epoch } => {
                    self.outcome = ReplayOutcome::Reset;
                    ServerEvent::Reset { epoch }
                }
                Piece::Gap { from, to } => {
                    self.outcome = self.outcome.max(ReplayOutcome::Gap);
                    ServerEvent::Gap { from, to }
                }
                Piece::Message(message) => ServerEvent::Message(message),
            })
        }));
        frames
    }
}

fn welcome(peer: &Peer, settings: &Settings, epoch: String) -> Welcome {
    Welcome {
        connection_id: peer.connection_id,
        client_id: peer.client_id,
        group: peer.group.clone(),
        heartbeat: HeartbeatSettings {
            ping_interval_ms: settings.ping_interval.as_millis() as u64,
            idle_timeout_ms: settings.idle_timeout.as_millis() as u64,
        },
        max_message_bytes: settings.max_message_bytes,
        epoch,
        token_expires_at: peer.token_expires_at,
    }
}

#[cfg(test)]
mod tests {
    use roomcast_shared::{LastMessage, Sender};
    use uuid::Uuid;

    use super::*;

    /// A room whose preview is 100 two-byte characters.
    fn room(index: usize) -> RoomEntry {
        let from = Sender { client_id: ClientId(Uuid::new_v4()), name: None, verified: true };
        let text = "é".repeat(300);
        RoomEntry {
            group: format!("room-{index}").parse().expect("a valid group name"),
            with: None,
            epoch: "0123456789abcdef".to_owned(),
            read: 7,
            unread: 3,
            last: Some(LastMessage { seq: 10, from, preview: LastMessage::preview_of(&text), ts: 1 }),
            active_ms: 1_000 - index as u64,
        }
    }

    #[test]
    fn a_list_that_fits_goes_whole() {
        let rooms: Vec<RoomEntry> = (0..3).map(room).collect();
        let frame = rooms_frame(rooms.clone(), 64 * 1024);
        assert_eq!(ServerEvent::decode(frame.as_text().expect("text")).expect("decodes"), ServerEvent::Rooms { rooms });
    }

    #[test]
    fn a_list_too_long_keeps_the_newest_rooms_that_fit() {
        let rooms: Vec<RoomEntry> = (0..200).map(room).collect();
        let whole = event_frame(&ServerEvent::Rooms { rooms: rooms.clone() }).len();
        let budget = whole / 2;
        let frame = rooms_frame(rooms.clone(), budget);
        assert!(frame.len() <= budget, "{} bytes over a budget of {budget}", frame.len());
        let ServerEvent::Rooms { rooms: kept } = ServerEvent::decode(frame.as_text().expect("text")).expect("decodes")
        else {
            panic!("not a rooms event")
        };
        assert_eq!(kept, rooms[..kept.len()]);
        let one_more = event_frame(&ServerEvent::Rooms { rooms: rooms[..=kept.len()].to_vec() });
        assert!(one_more.len() > budget, "{} rooms fit, {} were kept", kept.len() + 1, kept.len());
    }
}
