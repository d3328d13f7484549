//! The connection driver: one async task per room view that opens the
//! WebSocket, feeds what happens into the session logic, and turns the
//! results into [`Action`]s. It holds no rules of its own: when to reconnect,
//! when to ping and what to resend are decided in [`crate::session`].

use std::future::poll_fn;
use std::task::Poll;

use futures_channel::mpsc::UnboundedReceiver;
use futures_util::{FutureExt, SinkExt, StreamExt};
use gloo_net::websocket::futures::WebSocket;
use gloo_net::websocket::{Message, WebSocketError};
use gloo_timers::future::TimeoutFuture;
use roomcast_shared::{
    close, limits, ClientCommand, GroupName, HeartbeatSettings, MessageId, ServerEvent, SUBPROTOCOL,
};
use uuid::Uuid;
use yew::UseReducerDispatcher;

use crate::session::{Backoff, Beat, Heartbeat, Link, Outbox, Phase, Stop};
use crate::state::{Action, RoomState, Status};
use crate::storage;

/// What the view asks of the driver.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Send(String),
    Close,
    Reconnect,
    /// The browser's `online` event.
    Online,
}

/// Whether the driver goes on after a connection ended.
enum Flow {
    Continue,
    /// The view is gone.
    Quit,
}

enum Event {
    Opened,
    Socket(Option<Result<Message, WebSocketError>>),
    Command(Option<Command>),
    Timer,
}

pub struct Driver {
    group: GroupName,
    /// The socket URL without `since`.
    url: String,
    commands: UnboundedReceiver<Command>,
    dispatch: UseReducerDispatcher<RoomState>,
    link: Link,
    outbox: Outbox,
    /// The last sequence number received; a reconnect asks for what follows.
    last_seq: Option<u64>,
}

impl Driver {
    /// A driver for `group` at `url`, with the outbox a previous page left.
    pub fn new(
        group: GroupName,
        url: String,
        commands: UnboundedReceiver<Command>,
        dispatch: UseReducerDispatcher<RoomState>,
    ) -> Self {
        let outbox = Outbox::restore(storage::load_outbox(&group));
        let link = Link::new(Backoff::default());
        Self { group, url, commands, dispatch, link, outbox, last_seq: None }
    }

    /// Runs until the view drops its command sender.
    pub async fn run(mut self) {
        self.publish_outbox();
        loop {
            let flow = match self.link.phase().clone() {
                Phase::Connecting { attempt } => {
                    self.dispatch.dispatch(Action::Status(Status::Connecting { attempt }));
                    self.connect().await
                }
                Phase::Waiting { attempt, at_ms } => {
                    self.dispatch.dispatch(Action::Status(Status::Reconnecting { attempt, at_ms }));
                    self.wait(Some(at_ms)).await
                }
                Phase::Stopped(stop) => {
                    let reason = match stop {
                        Stop::ByUser => "closed by you".to_owned(),
                        Stop::Terminal { code, reason } => format!("closed by the server ({code} {reason})"),
                    };
                    self.dispatch.dispatch(Action::Status(Status::Closed { reason }));
                    self.wait(None).await
                }
                // connect() returns only once the socket is closed again.
                Phase::Open { .. } => Flow::Continue,
            };
            if let Flow::Quit = flow {
                return;
            }
        }
    }

    /// Waits while no connection is wanted: until `until_ms` (if any) or a
    /// command that changes the link's phase.
    async fn wait(&mut self, until_ms: Option<f64>) -> Flow {
        let phase = self.link.phase().clone();
        while *self.link.phase() == phase {
            let delay = until_ms.map(|at| (at - now_ms()).max(0.0));
            match next_event(&mut self.commands, None, false, delay).await {
                Event::Timer => {
                    self.link.tick(now_ms());
                }
                Event::Command(None) => return Flow::Quit,
                Event::Command(Some(Command::Send(text))) => self.queue(text),
                Event::Command(Some(Command::Online)) => {
                    self.link.online();
                }
                Event::Command(Some(Command::Reconnect)) => {
                    self.link.reconnect_by_user();
                }
                Event::Command(Some(Command::Close)) => {
                    if !matches!(phase, Phase::Stopped(_)) {
                        self.link.close_by_user();
                    }
                }
                Event::Opened | Event::Socket(_) => {}
            }
        }
        Flow::Continue
    }

    /// One connection, from opening to closed.
    async fn connect(&mut self) -> Flow {
        let url = match self.last_seq {
            Some(seq) => format!("{}&since={seq}", self.url),
            None => self.url.clone(),
        };
        let socket = web_sys::WebSocket::new_with_str(&url, SUBPROTOCOL)
            .map_err(|_| ())
            .and_then(|raw| WebSocket::try_from(raw.clone()).map(|ws| (raw, ws)).map_err(|_| ()));
        let Ok((raw, mut ws)) = socket else {
            self.on_closed(false, 1006, "the browser refused to open a WebSocket");
            return Flow::Continue;
        };
        let mut opened = false;
        // The sink turns ready once, when the socket leaves CONNECTING (for
        // OPEN or for CLOSED); after that only the stream matters.
        let mut connecting = true;
        let mut heartbeat: Option<Heartbeat> = None;
        loop {
            let mut delay = None;
            if let Some(beat) = heartbeat.as_mut() {
                let now = now_ms();
                match beat.check(now) {
                    Beat::Ping => {
                        let _ = ws.send(Message::Text(ClientCommand::Ping.encode())).await;
                        if let Beat::Wait { next_check_ms } = beat.check(now) {
                            delay = Some(next_check_ms - now);
                        }
                    }
                    Beat::Dead => {
                        let _ = raw.close_with_code_and_reason(close::NORMAL, "heartbeat timeout");
                        self.on_closed(true, close::HEARTBEAT_TIMEOUT, "no answer from the server");
                        return Flow::Continue;
                    }
                    Beat::Wait { next_check_ms } => delay = Some(next_check_ms - now),
                }
            }
            match next_event(&mut self.commands, Some(&mut ws), connecting, delay).await {
                Event::Opened => {
                    connecting = false;
                    if raw.ready_state() == web_sys::WebSocket::OPEN {
                        opened = true;
                        let now = now_ms();
                        self.link.opened(now);
                        heartbeat = Some(Heartbeat::new(default_heartbeat(), now));
                        self.dispatch.dispatch(Action::Status(Status::Open));
                        self.system("connected".to_owned());
                        self.flush(&mut ws).await;
                    }
                }
                Event::Socket(Some(Ok(Message::Text(text)))) => {
                    if let Some(beat) = heartbeat.as_mut() {
                        beat.heard(now_ms());
                    }
                    match ServerEvent::decode(&text) {
                        Ok(ServerEvent::Welcome(welcome)) => {
                            heartbeat = Some(Heartbeat::new(welcome.heartbeat, now_ms()));
                        }
                        Ok(event) => self.on_server_event(event),
                        Err(_) => self.system("ignored an unreadable message from the server".to_owned()),
                    }
                }
                Event::Socket(Some(Ok(Message::Bytes(_)))) => {}
                Event::Socket(Some(Err(WebSocketError::ConnectionClose(event)))) => {
                    self.on_closed(opened, event.code, &event.reason);
                    return Flow::Continue;
                }
                // An `error` event; the `close` event follows.
                Event::Socket(Some(Err(_))) => {}
                Event::Socket(None) => {
                    self.on_closed(opened, 1006, "");
                    return Flow::Continue;
                }
                Event::Command(None) => {
                    let _ = raw.close_with_code_and_reason(close::NORMAL, "left the room");
                    return Flow::Quit;
                }
                Event::Command(Some(Command::Send(text))) => {
                    self.queue(text);
                    if opened {
                        self.flush(&mut ws).await;
                    }
                }
                Event::Command(Some(Command::Close)) => {
                    self.link.close_by_user();
                    let _ = raw.close_with_code_and_reason(close::NORMAL, "closed by user");
                }
                Event::Command(Some(Command::Reconnect)) => {
                    self.link.reconnect_by_user();
                    let _ = raw.close_with_code_and_reason(close::NORMAL, "reconnecting");
                }
                Event::Command(Some(Command::Online)) | Event::Timer => {}
            }
        }
    }

    fn on_server_event(&mut self, event: ServerEvent) {
        match event {
            ServerEvent::Message(message) => {
                self.last_seq = Some(self.last_seq.map_or(message.seq, |last| last.max(message.seq)));
                if self.outbox.acknowledge(message.id) {
                    self.publish_outbox();
                }
                self.dispatch.dispatch(Action::Received(message));
            }
            ServerEvent::Gap { from, to } => {
                self.dispatch.dispatch(Action::Gap { from, to, at_ms: now_ms() });
            }
            ServerEvent::Synced { seq } => self.last_seq = Some(seq),
            ServerEvent::Ack { id, .. } => {
                if self.outbox.acknowledge(id) {
                    self.publish_outbox();
                }
            }
            ServerEvent::Error { code, message, id } => {
                if let Some(id) = id {
                    if code.is_retryable() {
                        // Not stored this time: it goes out with the next batch.
                        self.outbox.requeue(id);
                    } else {
                        // Refused for good: resending would not help.
                        self.outbox.acknowledge(id);
                    }
                    self.publish_outbox();
                }
                self.system(format!("server: {message}"));
            }
            ServerEvent::Welcome(_) | ServerEvent::Pong => {}
        }
    }

    fn on_closed(&mut self, was_open: bool, code: u16, reason: &str) {
        self.outbox.requeue_all();
        self.publish_outbox();
        let detail = if reason.is_empty() { close::describe(code).to_owned() } else { reason.to_owned() };
        self.system(if was_open {
            format!("disconnected: {code} {detail}")
        } else {
            format!("could not connect: {code} {detail}")
        });
        self.link.closed(code, reason, now_ms(), js_sys::Math::random());
    }

    fn queue(&mut self, text: String) {
        self.outbox.push(MessageId(Uuid::new_v4()), text);
        self.publish_outbox();
    }

    /// Writes every queued message to the open socket.
    async fn flush(&mut self, ws: &mut WebSocket) {
        let queued = self.outbox.take_queued();
        if queued.is_empty() {
            return;
        }
        for (id, text) in queued {
            // A failed write means the socket is closing; the close handler
            // puts the message back in the queue.
            let _ = ws.feed(Message::Text(ClientCommand::Send { id, text }.encode())).await;
        }
        let _ = ws.flush().await;
        self.publish_outbox();
    }

    /// Shows the outbox and keeps it in localStorage, so that a reload
    /// does not lose what was typed.
    fn publish_outbox(&self) {
        storage::save_outbox(&self.group, &self.outbox.saved());
        self.dispatch.dispatch(Action::Pending(self.outbox.items().to_vec()));
    }

    fn system(&self, text: String) {
        self.dispatch.dispatch(Action::System { text, at_ms: now_ms() });
    }
}

/// Heartbeat settings until the server's `welcome` says otherwise.
fn default_heartbeat() -> HeartbeatSettings {
    HeartbeatSettings { ping_interval_ms: limits::PING_INTERVAL_MS, idle_timeout_ms: limits::IDLE_TIMEOUT_MS }
}

/// The next thing that happens: the socket opening (if `await_open`), a
/// socket event, a command, or `delay_ms` passing.
async fn next_event(
    commands: &mut UnboundedReceiver<Command>,
    mut socket: Option<&mut WebSocket>,
    await_open: bool,
    delay_ms: Option<f64>,
) -> Event {
    let mut timer = delay_ms.map(|ms| TimeoutFuture::new(ms.ceil().clamp(0.0, u32::MAX as f64) as u32));
    poll_fn(|cx| {
        if let Some(ws) = socket.as_deref_mut() {
            // The sink becomes ready when the socket leaves CONNECTING.
            if await_open && ws.poll_ready_unpin(cx).is_ready() {
                return Poll::Ready(Event::Opened);
            }
            if let Poll::Ready(item) = ws.poll_next_unpin(cx) {
                return Poll::Ready(Event::Socket(item));
            }
        }
        if let Poll::Ready(command) = commands.poll_next_unpin(cx) {
            return Poll::Ready(Event::Command(command));
        }
        if let Some(timer) = timer.as_mut() {
            if timer.poll_unpin(cx).is_ready() {
                return Poll::Ready(Event::Timer);
            }
        }
        Poll::Pending
    })
    .await
}

fn now_ms() -> f64 {
    js_sys::Date::now()
}
