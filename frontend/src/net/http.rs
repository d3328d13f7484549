//! The HTTP transport (docs/PROTOCOL.md, "Over plain HTTP"), for a
//! connection when WebSocket cannot get through: its member on the
//! browser's one event stream ([`shared_stream`], streamed or long-polled),
//! and its commands `POST`ed in batches (with `X-Roomcast: 1`).
//!
//! What it reads comes out as a WebSocket's frames would
//! ([`HttpLink::poll_next`]): each event's data as a text frame, the
//! member's `event: close` as the close a socket would get, the end of the
//! stream as 1006; a post's answers (`ack`, `error`, `pong`) are frames
//! too. So the connection logic does not know which transport it has.
//! Which transport is [`Transports`](crate::session::Transports)'s.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use gloo_net::websocket::events::CloseEvent;
use gloo_net::websocket::{Message, WebSocketError};
use roomcast_shared::{ClientCommand, ServerEvent};
use wasm_bindgen_futures::spawn_local;
use web_sys::{AbortController, AbortSignal};

use crate::net::request::{fetch, text};
use crate::net::shared_stream::{self, Delivery, Membership};
use crate::session::SseItem;

/// The most commands one post carries (the server's limit).
const MAX_BATCH: usize = 64;

/// A frame as the WebSocket stream gives it; `None`: the stream ended.
pub type Frame = Option<Result<Message, WebSocketError>>;

/// What the link's tasks share with the connection that polls it.
#[derive(Default)]
struct Shared {
    /// The link is open: something came for it (the stream's padding comes
    /// first; a `200` alone may be a proxy holding the stream back).
    opened: bool,
    /// Something came on the stream (the padding comment, an event).
    heard: bool,
    /// What came, not yet taken.
    frames: VecDeque<Frame>,
    /// The last frame is queued (a close, or the end): nothing follows.
    ended: bool,
    /// The connection let the link go.
    let_go: bool,
    waker: Option<Waker>,
    /// Commands waiting for a post.
    outgoing: Vec<ClientCommand>,
    posting: bool,
    /// `Bearer {token}`: a `refresh` changes it for the next requests.
    bearer: String,
}

impl Shared {
    fn wake(&mut self) {
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }

    fn push(&mut self, frame: Frame) {
        if self.ended || self.let_go {
            return;
        }
        self.ended = frame.is_none() || matches!(frame, Some(Err(_)));
        self.frames.push_back(frame);
        self.wake();
    }

    /// The stream's items, as frames. Returns whether one was its close.
    fn items(&mut self, items: Vec<SseItem>) -> bool {
        for item in items {
            self.heard = true;
            self.opened = true;
            match item {
                SseItem::Comment => self.wake(),
                SseItem::Data { data, .. } => self.push(Some(Ok(Message::Text(data)))),
                SseItem::Close { code, reason, .. } => {
                    self.push(Some(Err(WebSocketError::ConnectionClose(CloseEvent { code, reason, was_clean: true }))));
                    return true;
                }
            }
        }
        false
    }
}

/// Where a link's events come from: the browser's one event stream
/// ([`shared_stream`]), as the member `query` names (`group=…&name=…`),
/// from `start` (`&since=…&epoch=…`), streamed or (`poll`) long-polled.
pub struct Events {
    pub query: String,
    pub start: String,
    pub poll: bool,
}

/// One HTTP connection of a room: its member on the browser's stream, or
/// its polls; and its posts.
pub struct HttpLink {
    shared: Rc<RefCell<Shared>>,
    abort: Option<AbortController>,
    /// Its place on the browser's stream.
    membership: RefCell<Option<Membership>>,
    /// Where commands are posted.
    post_url: String,
}

impl HttpLink {
    /// Opens the link's `events` with `token`; `post_url` takes the
    /// commands.
    pub fn open(events: Events, post_url: String, token: &str) -> Self {
        let shared = Rc::new(RefCell::new(Shared { bearer: format!("Bearer {token}"), ..Shared::default() }));
        let abort = AbortController::new().ok();
        let sink = shared.clone();
        let membership = shared_stream::join(events.query, events.start, events.poll, move |delivery| {
            let mut shared = sink.borrow_mut();
            match delivery {
                Delivery::Items(items) => {
                    shared.items(items);
                }
                Delivery::Ended => shared.push(None),
            }
        });
        let membership = Some(membership);
        Self { shared, abort, membership: RefCell::new(membership), post_url }
    }

    /// Ready once the link is open (or ended without opening).
    pub fn poll_opened(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut shared = self.shared.borrow_mut();
        if shared.opened || shared.ended {
            return Poll::Ready(());
        }
        shared.waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// The next frame.
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Frame> {
        let mut shared = self.shared.borrow_mut();
        match shared.frames.pop_front() {
            Some(frame) => Poll::Ready(frame),
            None => {
                shared.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    pub fn is_open(&self) -> bool {
        let shared = self.shared.borrow();
        shared.opened && !shared.ended
    }

    /// Whether anything came on the stream yet (its padding comes first).
    pub fn heard(&self) -> bool {
        self.shared.borrow().heard
    }

    /// Queues `command` for the next post. A `refresh` is not posted (each
    /// request carries its token): the next requests carry the new token,
    /// and it is taken at once.
    pub fn send(&mut self, command: &ClientCommand) {
        let mut shared = self.shared.borrow_mut();
        if shared.ended || shared.let_go {
            return;
        }
        if let ClientCommand::Refresh { token } = command {
            shared.bearer = format!("Bearer {token}");
            let taken = ServerEvent::Refreshed { token_expires_at: None }.encode();
            shared.push(Some(Ok(Message::Text(taken))));
            return;
        }
        shared.outgoing.push(command.clone());
        if !shared.posting {
            shared.posting = true;
            let signal = self.abort.as_ref().map(AbortController::signal);
            spawn_local(run_posts(self.shared.clone(), self.post_url.clone(), signal));
        }
    }

    /// Lets the link go: every request is aborted, nothing more comes.
    pub fn close(&self) {
        self.shared.borrow_mut().let_go = true;
        // Off the browser's stream (after the borrow: leaving may deliver).
        drop(self.membership.borrow_mut().take());
        if let Some(abort) = &self.abort {
            abort.abort();
        }
    }
}

impl Drop for HttpLink {
    fn drop(&mut self) {
        self.close();
    }
}

/// Posts the queued commands, a batch at a time, and queues the answers
/// as frames. A post that fails ends the link (1006): what it carried is
/// sent again on the next connection (a resend is recognized by its id).
async fn run_posts(shared: Rc<RefCell<Shared>>, url: String, signal: Option<AbortSignal>) {
    loop {
        let (batch, bearer) = {
            let mut shared = shared.borrow_mut();
            if shared.outgoing.is_empty() || shared.let_go {
                shared.posting = false;
                return;
            }
            let take = shared.outgoing.len().min(MAX_BATCH);
            (shared.outgoing.drain(..take).collect::<Vec<_>>(), shared.bearer.clone())
        };
        let body = serde_json::to_string(&batch).unwrap_or_default();
        let answers = match fetch(&url, &bearer, Some(&body), signal.as_ref()).await {
            Some(response) => text(&response).await.and_then(|text| answers(&text)),
            None => None,
        };
        let mut shared = shared.borrow_mut();
        match answers {
            Some(answers) => answers.into_iter().for_each(|answer| shared.push(Some(Ok(Message::Text(answer))))),
            None => {
                shared.posting = false;
                shared.push(None);
                return;
            }
        }
    }
}

/// A post's answer: one JSON value per command, `null` for those that have
/// none; the others as text frames.
fn answers(text: &str) -> Option<Vec<String>> {
    let values: Vec<serde_json::Value> = serde_json::from_str(text).ok()?;
    Some(values.into_iter().filter(|value| !value.is_null()).map(|value| value.to_string()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_frames_and_nulls_are_nothing() {
        let frames = answers(r#"[{"type":"pong"},null,{"type":"ack","id":"x","seq":4}]"#).expect("answers");
        let values: Vec<serde_json::Value> = frames.iter().map(|f| serde_json::from_str(f).expect("json")).collect();
        assert_eq!(
            values,
            [serde_json::json!({"type": "pong"}), serde_json::json!({"type": "ack", "id": "x", "seq": 4})]
        );
        assert_eq!(answers("not json"), None);
    }
}
