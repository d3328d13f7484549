//! The browser's one HTTP event stream (docs/PROTOCOL.md, "One stream for
//! several members"): a browser gives an origin six HTTP/1.1 connections,
//! so the tabs' links on the HTTP stream (each tab's room, the rooms
//! stream) share one `GET /api/events/{client_id}?m=…`, held by the tab
//! that holds the `roomcast-http-stream` Web Lock. Its links and the other
//! tabs' (over the `roomcast-http-stream` `BroadcastChannel`) tell it what
//! they want; it asks for a new stream when that changes, and passes each
//! event to its link. A tab that takes the stream over (its holder closed)
//! says `hello`, and every tab tells it again what its links want, from
//! where they are. Where the browser has no Web Locks, each tab holds a
//! stream of its own. Which member an event is for, and what a new stream
//! asks, is [`SharedMembers`]'s.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use gloo_events::EventListener;
use gloo_timers::future::TimeoutFuture;
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::spawn_local;
use web_sys::AbortController;

use crate::net::request::{fetch, read, text};
use crate::net::socket;
use crate::net::tabs;
use crate::session::{SharedMembers, SseItem, SseParser, Want};
use crate::storage;

const LOCK: &str = "roomcast-http-stream";
const CHANNEL: &str = "roomcast-http-stream";
/// How long the holder waits for more changes before it asks for a new
/// stream (links come and go together when a page opens or a tab moves).
const SETTLE_MS: u32 = 30;

/// What reaches a link.
pub enum Delivery {
    Items(Vec<SseItem>),
    /// The stream ended without a word for it (the link reconnects).
    Ended,
}

/// What tabs tell each other.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "tab", rename_all = "snake_case")]
enum TabMessage {
    /// A link wants its member on the stream (again, from where it is).
    Want(Want),
    /// A link is gone.
    Drop { key: String },
    /// What came for a link.
    Items { key: String, items: Vec<SseItem> },
    /// The stream ended for a link.
    Ended { key: String },
    /// A tab took the stream over: tell it what your links want.
    Hello,
}

type Sink = Rc<dyn Fn(Delivery)>;

/// This tab's part: its links, and the stream while it holds it.
struct Hub {
    channel: Option<web_sys::BroadcastChannel>,
    /// This tab's links: what they want, and where their events go.
    links: RefCell<HashMap<String, (Want, Sink)>>,
    holder: Cell<bool>,
    /// Only this tab's links (no Web Locks: every tab holds its own).
    alone: Cell<bool>,
    members: RefCell<SharedMembers>,
    /// The current stream, to let go of.
    abort: RefCell<Option<AbortController>>,
    /// Which stream is current: an older one's end is nobody's news.
    generation: Cell<u64>,
    settling: Cell<bool>,
    /// The lock, held until the tab goes (the next tab in line then takes
    /// the stream over).
    lock: RefCell<Option<tabs::HeldLock>>,
    _listener: RefCell<Option<EventListener>>,
}

thread_local! {
    static HUB: RefCell<Option<Rc<Hub>>> = const { RefCell::new(None) };
}

/// A link's place on the stream: dropping it takes the link off.
pub struct Membership {
    key: String,
}

impl Drop for Membership {
    fn drop(&mut self) {
        hub().leave(&self.key);
    }
}

/// Puts a link on the browser's stream: `query` names its member
/// (`group=…&name=…`), `start` where it starts (`&since=…&epoch=…`);
/// `sink` gets what comes for it.
pub fn join(query: String, start: String, poll: bool, sink: impl Fn(Delivery) + 'static) -> Membership {
    let key = Uuid::new_v4().to_string();
    let want = Want { key: key.clone(), query, start, last_id: None, synced: false, poll };
    let hub = hub();
    hub.links.borrow_mut().insert(key.clone(), (want.clone(), Rc::new(sink)));
    hub.wanted(want);
    Membership { key }
}

fn hub() -> Rc<Hub> {
    HUB.with(|hub| {
        hub.borrow_mut()
            .get_or_insert_with(|| {
                let hub = Rc::new(Hub {
                    channel: web_sys::BroadcastChannel::new(CHANNEL).ok(),
                    links: RefCell::default(),
                    holder: Cell::new(false),
                    alone: Cell::new(false),
                    members: RefCell::default(),
                    abort: RefCell::default(),
                    generation: Cell::new(0),
                    settling: Cell::new(false),
                    lock: RefCell::default(),
                    _listener: RefCell::default(),
                });
                hub.listen();
                spawn_local(take_over(hub.clone()));
                hub
            })
            .clone()
    })
}

/// Waits for the lock, then holds the stream for as long as the tab lives.
async fn take_over(hub: Rc<Hub>) {
    let lock = tabs::wait_to_hold(LOCK).await;
    hub.alone.set(lock.is_none());
    hub.holder.set(true);
    let wants: Vec<Want> = hub.links.borrow().values().map(|(want, _)| want.clone()).collect();
    for want in wants {
        hub.members.borrow_mut().want(want);
    }
    if !hub.alone.get() {
        hub.post(&TabMessage::Hello);
    }
    *hub.lock.borrow_mut() = lock;
    hub.settle();
}

impl Hub {
    fn listen(self: &Rc<Self>) {
        let Some(channel) = &self.channel else { return };
        let hub = Rc::downgrade(self);
        let listener = EventListener::new(channel, "message", move |event| {
            let data = event.unchecked_ref::<web_sys::MessageEvent>().data().as_string();
            let message = data.and_then(|text| serde_json::from_str::<TabMessage>(&text).ok());
            if let (Some(hub), Some(message)) = (hub.upgrade(), message) {
                hub.told(message);
            }
        });
        *self._listener.borrow_mut() = Some(listener);
    }

    fn post(&self, message: &TabMessage) {
        if let (Some(channel), Ok(text)) = (&self.channel, serde_json::to_string(message)) {
            let _ = channel.post_message(&text.into());
        }
    }

    /// The holder hears the other tabs' links; every tab hears its own.
    fn told(self: &Rc<Self>, message: TabMessage) {
        let holding = self.holder.get() && !self.alone.get();
        match message {
            TabMessage::Want(want) if holding => {
                self.members.borrow_mut().want(want);
                self.settle();
            }
            TabMessage::Drop { key } if holding => {
                self.members.borrow_mut().remove(&key);
                self.settle();
            }
            TabMessage::Items { key, items } => self.deliver_here(&key, Delivery::Items(items)),
            TabMessage::Ended { key } => self.deliver_here(&key, Delivery::Ended),
            TabMessage::Hello if !self.holder.get() => {
                let wants: Vec<Want> = self.links.borrow().values().map(|(want, _)| want.clone()).collect();
                for want in wants {
                    self.post(&TabMessage::Want(want));
                }
            }
            _ => {}
        }
    }

    /// One of this tab's links wants its member.
    fn wanted(self: &Rc<Self>, want: Want) {
        if self.holder.get() {
            self.members.borrow_mut().want(want);
            self.settle();
        } else {
            self.post(&TabMessage::Want(want));
        }
    }

    fn leave(self: &Rc<Self>, key: &str) {
        self.links.borrow_mut().remove(key);
        if self.holder.get() {
            self.members.borrow_mut().remove(key);
            self.settle();
        } else {
            self.post(&TabMessage::Drop { key: key.to_owned() });
        }
    }

    /// What came for `key`: to its link here, or to the tab that has it.
    fn deliver(&self, key: &str, delivery: Delivery) {
        if self.links.borrow().contains_key(key) {
            self.deliver_here(key, delivery);
        } else if !self.alone.get() {
            self.post(&match delivery {
                Delivery::Items(items) => TabMessage::Items { key: key.to_owned(), items },
                Delivery::Ended => TabMessage::Ended { key: key.to_owned() },
            });
        }
    }

    fn deliver_here(&self, key: &str, delivery: Delivery) {
        let sink = {
            let mut links = self.links.borrow_mut();
            let Some((want, sink)) = links.get_mut(key) else { return };
            if let Delivery::Items(items) = &delivery {
                items.iter().for_each(|item| want.heard(item));
            }
            sink.clone()
        };
        // Called outside the borrow: the link may let go at once.
        sink(delivery);
    }

    /// Asks for a new stream once the changes settle.
    fn settle(self: &Rc<Self>) {
        if !self.members.borrow().changed() || self.settling.replace(true) {
            return;
        }
        let hub = self.clone();
        spawn_local(async move {
            TimeoutFuture::new(SETTLE_MS).await;
            hub.settling.set(false);
            hub.restart();
        });
    }

    /// Lets the current stream go and asks for one with every member, each
    /// from where it is.
    fn restart(self: &Rc<Self>) {
        if let Some(abort) = self.abort.borrow_mut().take() {
            abort.abort();
        }
        let generation = self.generation.get() + 1;
        self.generation.set(generation);
        let Some(query) = self.members.borrow_mut().restart() else { return };
        let Some(identity) = storage::identity() else {
            self.ended(generation);
            return;
        };
        let base = format!("{}/api/events/{}", socket::http_base(), identity.client_id);
        let abort = AbortController::new().ok();
        let signal = abort.as_ref().map(AbortController::signal);
        *self.abort.borrow_mut() = abort;
        let hub = self.clone();
        let bearer = format!("Bearer {}", identity.token);
        if self.members.borrow().poll() {
            spawn_local(polls(hub, generation, base, bearer, signal));
            return;
        }
        let url = format!("{base}?{query}");
        spawn_local(async move {
            let reader = match fetch(&url, &bearer, None, signal.as_ref()).await {
                Some(response) => response.body().map(|body| body.get_reader().unchecked_into()),
                None => None,
            };
            let mut parser = SseParser::default();
            if let Some(reader) = reader {
                while let Some(bytes) = read(&reader).await {
                    if hub.generation.get() != generation {
                        return;
                    }
                    hub.heard(parser.feed(&bytes));
                }
            }
            if hub.generation.get() == generation {
                hub.ended(generation);
            }
        });
    }

    /// Whether `generation` is still the current stream.
    fn current(&self, generation: u64) -> bool {
        self.generation.get() == generation
    }

    /// The current stream's items, each to its link; a comment (the
    /// padding first) to every link, as a sign of life.
    fn heard(&self, items: Vec<SseItem>) {
        for item in items {
            if item == SseItem::Comment {
                for key in self.members.borrow().keys() {
                    self.deliver(&key, Delivery::Items(vec![SseItem::Comment]));
                }
                continue;
            }
            let routed = self.members.borrow_mut().route(item);
            if let Some((key, item)) = routed {
                self.deliver(&key, Delivery::Items(vec![item]));
            }
        }
    }

    /// The stream ended by itself: every link on it is told, and asks again
    /// when it reconnects.
    fn ended(&self, generation: u64) {
        if self.generation.get() != generation {
            return;
        }
        let keys = self.members.borrow().keys();
        for key in &keys {
            self.members.borrow_mut().remove(key);
        }
        self.members.borrow_mut().restart();
        for key in keys {
            self.deliver(&key, Delivery::Ended);
        }
    }
}

/// Long polls of the browser's stream: each names every member from where
/// it is and the session to go on with; an answer that names another
/// session comes from one opened afresh (its members' second `welcome` is
/// skipped); one that names none ended it.
async fn polls(hub: Rc<Hub>, generation: u64, base: String, bearer: String, signal: Option<web_sys::AbortSignal>) {
    let mut parser = SseParser::default();
    let mut session: Option<String> = None;
    loop {
        let Some(query) = hub.members.borrow_mut().query() else { return };
        let named = session.as_deref().map(|session| format!("&session={session}")).unwrap_or_default();
        let Some(response) = fetch(&format!("{base}?{query}&poll=1{named}"), &bearer, None, signal.as_ref()).await
        else {
            break;
        };
        let next = response.headers().get("X-Roomcast-Session").ok().flatten();
        let body = text(&response).await;
        if !hub.current(generation) {
            return;
        }
        if session.is_some() && next != session {
            hub.members.borrow_mut().fresh_session();
        }
        let Some(body) = body else { break };
        hub.heard(parser.feed(body.as_bytes()));
        match next {
            Some(next) => session = Some(next),
            None => break,
        }
    }
    if hub.current(generation) {
        hub.ended(generation);
    }
}
