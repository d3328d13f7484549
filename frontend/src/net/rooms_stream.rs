//! The identity's rooms stream in the browser: one socket per browser
//! (`/ws/_me/{client_id}`), kept by the tab that holds the
//! `roomcast-rooms-stream` Web Lock and shared with the others over a
//! `BroadcastChannel`: the holder passes on each event; a tab that opens
//! asks for the list (`hello`) and the holder answers with it; a tab's
//! `forget` goes through the holder. When the holder closes, another tab
//! gets the lock and opens the stream. Where the browser has no Web Locks,
//! every tab keeps its own. What the events mean is decided in
//! [`session::rooms`](crate::session::rooms). An operator's ban stops the
//! stream as it stops a room's connection: told before the close, or, for a
//! stream that never opens, asked of the server.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use futures_channel::mpsc::{self, UnboundedReceiver, UnboundedSender};
use futures_util::future::{poll_fn, select, Either};
use futures_util::StreamExt;
use gloo_events::EventListener;
use gloo_net::websocket::{Message, WebSocketError};
use gloo_timers::future::TimeoutFuture;
use roomcast_shared::{ClientCommand, GroupName, ServerEvent, ROOMS_STREAM};
use serde::{Deserialize, Serialize};
use wasm_bindgen::JsCast;
use yew::Callback;

use crate::net::carrier::Carrier;
use crate::net::events::now_ms;
use crate::net::http::{Events, HttpLink};
use crate::net::identity;
use crate::net::socket::{self, Socket};
use crate::net::tabs;
use crate::session::{
    Backoff, Identity, Link, Phase, Reached, RefusalCheck, Removal, RoomList, RoomsShown, Transport, Transports,
};
use crate::storage;

const LOCK: &str = "roomcast-rooms-stream";
const CHANNEL: &str = "roomcast-rooms";
/// How often a tab without an identity yet looks again (the first room it
/// opens gets one).
const IDENTITY_POLL_MS: u32 = 1_000;

/// What tabs tell each other about the list.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "tab", rename_all = "snake_case")]
enum TabMessage {
    /// A tab opened: the holder sends the list.
    Hello,
    /// A tab's user forgot a room: the holder tells the server.
    Forget { group: GroupName },
    /// An event of the stream, as the server sent it.
    Event { text: String },
}

/// The list for as long as this is alive.
pub struct RoomsStream {
    stopped: Rc<Cell<bool>>,
    forgets: UnboundedSender<GroupName>,
    shared: Shared,
    _listener: Option<EventListener>,
}

/// What the task and the channel's listener share.
#[derive(Clone)]
struct Shared {
    list: Rc<RefCell<Option<RoomList>>>,
    channel: Option<web_sys::BroadcastChannel>,
    holder: Rc<Cell<bool>>,
    on_change: Callback<Rc<RoomsShown>>,
}

impl RoomsStream {
    /// Starts following the list; `on_change` hears each new state.
    pub fn start(on_change: Callback<Rc<RoomsShown>>) -> Self {
        let channel = web_sys::BroadcastChannel::new(CHANNEL).ok();
        let (forgets, forgotten) = mpsc::unbounded();
        let shared = Shared { list: Rc::default(), channel, holder: Rc::default(), on_change };
        let listener = shared.channel.as_ref().map(|channel| {
            let (shared, forgets) = (shared.clone(), forgets.clone());
            EventListener::new(channel, "message", move |event| {
                let data = event.unchecked_ref::<web_sys::MessageEvent>().data().as_string();
                if let Some(message) = data.and_then(|text| serde_json::from_str(&text).ok()) {
                    shared.told_by_tab(message, &forgets);
                }
            })
        });
        let stopped = Rc::new(Cell::new(false));
        wasm_bindgen_futures::spawn_local(run(shared.clone(), forgotten, stopped.clone()));
        Self { stopped, forgets, shared, _listener: listener }
    }

    /// Takes `group` off the list on every device.
    pub fn forget(&self, group: GroupName) {
        if self.shared.holder.get() {
            let _ = self.forgets.unbounded_send(group);
        } else {
            self.shared.post(&TabMessage::Forget { group });
        }
    }
}

impl Drop for RoomsStream {
    fn drop(&mut self) {
        self.stopped.set(true);
        self.forgets.close_channel();
    }
}

impl Shared {
    fn post(&self, message: &TabMessage) {
        if let (Some(channel), Ok(text)) = (&self.channel, serde_json::to_string(message)) {
            let _ = channel.post_message(&text.into());
        }
    }

    /// An event of the stream: into the list, and on to the view.
    fn heard(&self, event: &ServerEvent) {
        let shown = self.list.borrow_mut().as_mut().and_then(|list| list.heard(event).then(|| list.shown()));
        // Emitted outside the borrow: the view may ask for the list again.
        if let Some(shown) = shown {
            self.on_change.emit(shown);
        }
    }

    fn told_by_tab(&self, message: TabMessage, forgets: &UnboundedSender<GroupName>) {
        match message {
            TabMessage::Event { text } if !self.holder.get() => {
                if let Ok(event) = ServerEvent::decode(&text) {
                    self.heard(&event);
                }
            }
            TabMessage::Hello if self.holder.get() => {
                let snapshot = self.list.borrow().as_ref().and_then(RoomList::snapshot);
                if let Some(snapshot) = snapshot {
                    self.post(&TabMessage::Event { text: snapshot.encode() });
                }
            }
            TabMessage::Forget { group } if self.holder.get() => {
                let _ = forgets.unbounded_send(group);
            }
            _ => {}
        }
    }
}

/// The task: waits for an identity, then for the lock (taking what the
/// holder shares meanwhile), then keeps the stream until stopped, or until
/// the server refuses it for good (revoked, or banned).
async fn run(shared: Shared, mut forgets: UnboundedReceiver<GroupName>, stopped: Rc<Cell<bool>>) {
    let identity = loop {
        if stopped.get() {
            return;
        }
        if let Some(identity) = storage::identity() {
            break identity;
        }
        TimeoutFuture::new(IDENTITY_POLL_MS).await;
    };
    *shared.list.borrow_mut() = Some(RoomList::new(identity.client_id));
    shared.post(&TabMessage::Hello);
    let _lock = tabs::wait_to_hold(LOCK).await;
    if stopped.get() {
        return;
    }
    shared.holder.set(true);
    let mut link = Link::new(Backoff::default());
    let mut transports = Transports::starting(storage::transport_config(), storage::transport_in_use(), now_ms());
    while !stopped.get() {
        match link.phase().clone() {
            Phase::Stopped(_) => return,
            Phase::Waiting { at_ms, .. } => {
                TimeoutFuture::new((at_ms - now_ms()).max(0.0) as u32).await;
                link.tick(now_ms());
            }
            _ => attempt(&shared, &mut forgets, &mut link, &stopped, &mut transports).await,
        }
    }
}

/// One connection attempt with the stored identity (renewed meanwhile by a
/// room's connection), until it closes; then, for one that never opened,
/// whether the server bans the identity ([`RefusalCheck`]). It goes over
/// the transport the room's connections found (or its own fallback, when
/// it is the one that finds WebSocket blocked: [`Transports`]).
async fn attempt(
    shared: &Shared,
    forgets: &mut UnboundedReceiver<GroupName>,
    link: &mut Link,
    stopped: &Cell<bool>,
    transports: &mut Transports,
) {
    let Some(identity) = storage::identity() else {
        link.closed(1006, "no identity", now_ms(), js_sys::Math::random());
        return;
    };
    if transports.current() == Transport::WebSocket {
        if let Some(in_use) = storage::transport_in_use() {
            *transports = Transports::starting(*transports.config(), Some(in_use), now_ms());
        }
    }
    let (transport, started_ms) = (transports.current(), now_ms());
    let ended = connect(shared, forgets, link, stopped, &identity, transport).await;
    let reached = if link.is_open() { Reached::Opened } else { Reached::NeverOpened };
    match (reached, transport) {
        (Reached::Opened, Transport::WebSocket) => {
            transports.websocket_opened();
        }
        (Reached::Opened, _) => {}
        (_, Transport::WebSocket) => {
            if transports.websocket_failed(started_ms, now_ms()) {
                storage::remember_transport(transports.in_use());
            }
        }
        (_, _) => {
            transports.http_failed(now_ms());
        }
    }
    let (now, random) = (now_ms(), js_sys::Math::random());
    match &ended.removal {
        Some(removal) => link.closed_after(removal, ended.code, &ended.reason, now, random),
        None => link.closed(ended.code, &ended.reason, now, random),
    }
    if let Some(check) = RefusalCheck::after_rooms_stream(reached, link.phase()) {
        check.answered(identity::standing(&identity).await, link);
    }
}

/// How a socket ended.
struct Ended {
    code: u16,
    reason: String,
    /// What the server said of an operator's removal before closing.
    removal: Option<Removal>,
}

impl Ended {
    fn new(code: u16, reason: impl Into<String>) -> Self {
        Self { code, reason: reason.into(), removal: None }
    }
}

/// One socket, until it closes or the view is gone.
async fn connect(
    shared: &Shared,
    forgets: &mut UnboundedReceiver<GroupName>,
    link: &mut Link,
    stopped: &Cell<bool>,
    identity: &Identity,
    transport: Transport,
) -> Ended {
    let mut socket = match transport {
        Transport::WebSocket => {
            let url = format!("{}/ws/{ROOMS_STREAM}/{}", socket::base(), identity.client_id);
            let Some(socket) = Socket::open(&url, &identity.token) else { return Ended::new(1006, "refused") };
            Carrier::WebSocket(socket)
        }
        Transport::Stream | Transport::Poll => {
            let url = format!("{}/api/events/{ROOMS_STREAM}/{}", socket::http_base(), identity.client_id);
            let query = format!("group={ROOMS_STREAM}");
            let events = Events { query, start: String::new(), poll: transport == Transport::Poll };
            Carrier::Http(HttpLink::open(events, url, &identity.token))
        }
    };
    let mut removal = None;
    loop {
        if stopped.get() {
            socket.close("the page is gone");
            return Ended::new(1000, "");
        }
        match select(poll_fn(|cx| socket.poll_next(cx)), forgets.next()).await {
            Either::Left((Some(Ok(Message::Text(text))), _)) => {
                if !link.is_open() {
                    link.opened(now_ms());
                }
                match ServerEvent::decode(&text) {
                    Ok(ServerEvent::Removed { reason, until_ms }) => removal = Some(Removal { reason, until_ms }),
                    Ok(event) => {
                        shared.heard(&event);
                        shared.post(&TabMessage::Event { text });
                    }
                    Err(_) => {}
                }
            }
            Either::Left((Some(Err(WebSocketError::ConnectionClose(event))), _)) => {
                return Ended { code: event.code, reason: event.reason, removal };
            }
            // A `removed` already told is kept: its close frame may be lost.
            Either::Left((None | Some(Err(_)), _)) => {
                return Ended { code: 1006, reason: "the connection failed".into(), removal };
            }
            Either::Left((Some(Ok(Message::Bytes(_))), _)) => {}
            Either::Right((Some(group), _)) => socket.send(&ClientCommand::Forget { group }).await,
            // The view is gone.
            Either::Right((None, _)) => {
                socket.close("the page is gone");
                return Ended::new(1000, "");
            }
        }
    }
}
