//! One connection of a room view, from opening to gone: the socket's
//! events, timers and commands handed to the session logic and the view.
//! No rule of its own: each event goes to the part that decides
//! ([`crate::session`], [`crate::timeline`]), and what they decide goes to
//! the socket or the view.

use std::rc::Rc;

use futures_channel::mpsc::UnboundedReceiver;
use gloo_net::websocket::{Message, WebSocketError};
use roomcast_shared::{
    close, limits, ChatMessage, ClientCommand, ClientId, ErrorCode, GroupName, HeartbeatSettings, Reader, ServerEvent,
};
use uuid::Uuid;

use crate::net::carrier::Carrier;
use crate::net::command::Command;
use crate::net::credentials::Credentials;
use crate::net::events::{arm, next_event, now_ms, Event, Renewing, Waited};
use crate::net::http::{Events, HttpLink};
use crate::net::identity::{self, IdentityError};
use crate::net::sending::Sending;
use crate::net::socket::{Socket, SocketTarget};
use crate::net::view::View;
use crate::session::{
    lines, Answer, Attempt, Backoff, Batcher, Beat, ConnectionToken, Direct, Heartbeat, Identity, Link, OnConnection,
    Opening, People, Phase, Reached, Reading, RefusalCheck, Removal, ResumeCursor, SeenBy, Transport, Transports,
    TypingPeople, TypingSender,
};
use crate::state::{Action, Status};
use crate::storage;
use crate::timeline::{Gap, LineKind};

/// Whether the driver goes on after a connection ended.
pub enum Flow {
    Continue,
    /// The view is gone.
    Quit,
}

/// What a room view keeps across its connections; each connection
/// borrows it.
pub struct Room {
    pub target: SocketTarget,
    pub commands: UnboundedReceiver<Command>,
    pub view: View,
    pub link: Link,
    pub credentials: Credentials,
    pub sending: Sending,
    pub resume: ResumeCursor,
    pub batcher: Batcher,
    /// Who is in the room: kept across reconnects until the next
    /// connection's snapshot replaces it.
    pub people: People,
    /// What the user has seen, and what the server was told of it.
    pub reading: Reading,
    /// The other participant, in a direct message room.
    pub direct: Option<Direct>,
    /// Who has seen this user's latest message (small groups).
    pub seen_by: SeenBy,
    /// The server said it drains (the wait it asks for, in ms): the close
    /// that follows is not a failure.
    pub drained: Option<u64>,
    /// The server said an operator removed this connection: the close that
    /// follows is a disconnect or a ban.
    pub removal: Option<Removal>,
    /// Which transport connections use: WebSocket, else HTTP.
    pub transports: Transports,
}

/// The state of one socket.
struct Connection {
    socket: Carrier,
    /// What it runs over, and when it started.
    transport: Transport,
    started_ms: f64,
    /// The token it connected with (a probe uses it too).
    bearer: String,
    /// A WebSocket tried beside an HTTP connection.
    probe: Option<Socket>,
    /// The identity it connected as.
    me: ClientId,
    attempt: Attempt,
    /// The sink turns ready once, when the socket leaves CONNECTING.
    connecting: bool,
    /// `welcome` arrived: the limit is known and sends may go.
    welcomed: bool,
    heartbeat: Option<Heartbeat>,
    /// When its token is renewed (told by `welcome`).
    token: ConnectionToken,
    renewing: Renewing,
    /// The renewed identity sent with `refresh`, until the server takes it.
    handed: Option<Identity>,
    /// When this user's typing is told to the group.
    typing: TypingSender,
    /// Who else is typing; nobody once the connection is gone.
    typers: TypingPeople,
}

impl Room {
    /// The room `group` (a direct message with `direct`) at `target`, as
    /// tab `tab`, with the outbox this tab left (a reload keeps its tab id).
    pub fn new(
        group: GroupName,
        direct: Option<Direct>,
        tab: Uuid,
        target: SocketTarget,
        commands: UnboundedReceiver<Command>,
        view: View,
    ) -> Self {
        Self {
            sending: Sending::restore(group, tab, view.clone()),
            credentials: Credentials::new(view.clone()),
            link: Link::new(Backoff::default()),
            target,
            commands,
            view,
            resume: ResumeCursor::default(),
            batcher: Batcher::default(),
            people: People::default(),
            reading: Reading::default(),
            direct,
            seen_by: SeenBy::default(),
            drained: None,
            removal: None,
            transports: Transports::starting(storage::transport_config(), storage::transport_in_use(), now_ms()),
        }
    }

    /// One connection, from opening to gone.
    pub async fn connect(&mut self) -> Flow {
        // A removal told on a connection let go before its close is not
        // this one's.
        self.removal = None;
        let identity = match self.credentials.for_connection().await {
            Ok(identity) => identity,
            // No socket was opened: nothing to close, the status says why.
            Err(IdentityError::Banned(ban)) => {
                self.link.banned(ban);
                return Flow::Continue;
            }
            Err(err) => {
                self.ended(Reached::NeverOpened, 1006, &err.to_string());
                return Flow::Continue;
            }
        };
        let transport = self.transports.current();
        let socket = match transport {
            Transport::WebSocket => {
                let url = self.target.url(identity.client_id, &self.resume);
                let Some(socket) = Socket::open(&url, &identity.token) else {
                    let now = now_ms();
                    if self.transports.websocket_failed(now, now) {
                        self.view.note(LineKind::Notice, self.transports.current().switched_line().to_owned());
                        storage::remember_transport(self.transports.in_use());
                    }
                    self.ended(Reached::NeverOpened, 1006, "the browser refused to open a WebSocket");
                    return Flow::Continue;
                };
                Carrier::WebSocket(socket)
            }
            Transport::Stream | Transport::Poll => {
                let (query, start) = (self.target.member_query(), self.resume.query());
                let events = Events { query, start, poll: transport == Transport::Poll };
                Carrier::Http(HttpLink::open(events, self.target.commands_url(identity.client_id), &identity.token))
            }
        };
        let mut conn = Connection {
            socket,
            transport,
            started_ms: now_ms(),
            bearer: identity.token.clone(),
            probe: None,
            me: identity.client_id,
            attempt: Attempt::started(now_ms()),
            connecting: true,
            welcomed: false,
            heartbeat: None,
            token: ConnectionToken::default(),
            renewing: None,
            handed: None,
            typing: TypingSender::default(),
            typers: TypingPeople::new(identity.client_id),
        };
        let flow = self.serve(&mut conn).await;
        // A WebSocket that never opened, and is retried, counts towards
        // the fallback to HTTP.
        if !conn.attempt.is_open() && matches!(self.link.phase(), Phase::Waiting { .. }) {
            let switched = match conn.transport {
                // Before the count is reached, the server may know why.
                Transport::WebSocket => {
                    self.transports.websocket_failed(conn.started_ms, now_ms())
                        || (identity::upgrade_stripped(&identity).await && self.transports.upgrade_stripped(now_ms()))
                }
                Transport::Stream | Transport::Poll => self.transports.http_failed(now_ms()),
            };
            if switched {
                self.view.note(LineKind::Notice, self.transports.current().switched_line().to_owned());
            }
        }
        // The next view, the other tabs and the rooms stream start here.
        storage::remember_transport(self.transports.in_use());
        // The view is gone with `Quit`; otherwise nobody types any more.
        if matches!(flow, Flow::Continue) && conn.typers.clear() {
            self.view.act(Action::Typing(None));
        }
        flow
    }

    /// The socket's events and timers until the connection is over.
    async fn serve(&mut self, conn: &mut Connection) -> Flow {
        let mut timer = None;
        loop {
            let due = match self.on_timers(conn).await {
                Ok(due) => due,
                Err(flow) => return flow,
            };
            arm(&mut timer, due);
            let socket =
                if conn.connecting { Waited::Opening(&mut conn.socket) } else { Waited::Open(&mut conn.socket) };
            let event = next_event(&mut self.commands, socket, &mut conn.probe, &mut conn.renewing, &mut timer).await;
            if let Some(flow) = self.on_event(conn, event).await {
                self.check_refusal(conn.attempt.reached()).await;
                return flow;
            }
        }
    }

    /// After a connection that got as far as `reached`: asks the server
    /// whether it refuses (or bans) this browser's identity, or refuses
    /// this direct message, for good, if that is worth asking
    /// ([`RefusalCheck`]).
    async fn check_refusal(&mut self, reached: Reached) {
        let Some(check) = RefusalCheck::after(reached, self.link.phase(), self.direct.is_some()) else { return };
        let standing = self.credentials.standing().await;
        let (Some(room), Some(direct)) = (check.answered(standing, &mut self.link), self.direct.as_ref()) else {
            return;
        };
        let refusal = self.credentials.refused_room(direct).await;
        room.answered(refusal, &mut self.link);
    }

    /// Does what is due (heartbeat, connect timeout, a token renewal, a
    /// resend, a read, a batch) and returns when the next thing is due, or how the
    /// connection ended.
    async fn on_timers(&mut self, conn: &mut Connection) -> Result<Option<f64>, Flow> {
        let now = now_ms();
        let mut next: Option<f64> = None;
        let mut at = |due: f64| next = Some(next.map_or(due, |n: f64| n.min(due)));
        match conn.attempt.check(now) {
            Opening::TimedOut => {
                conn.socket.close("connect timeout");
                self.ended(Reached::NeverOpened, 1006, &lines::timed_out());
                return Err(Flow::Continue);
            }
            Opening::Until { deadline_ms } => at(deadline_ms),
            Opening::Open => {}
        }
        if conn.transport == Transport::Stream && !conn.socket.heard() {
            if self.transports.stream_silent(conn.started_ms, now) {
                conn.socket.close("the stream is held back");
                self.ended(conn.attempt.reached(), 1006, Transport::Poll.switched_line());
                return Err(Flow::Continue);
            }
            if let Some(deadline) = self.transports.first_event_deadline_ms(conn.started_ms) {
                at(deadline);
            }
        }
        if conn.attempt.is_open() && self.transports.take_probe(now) {
            let url = self.target.url(conn.me, &self.resume);
            conn.probe = Socket::open(&url, &conn.bearer);
        }
        if let Some(due) = self.transports.probe_due_ms() {
            at(due);
        }
        if let Some(beat) = conn.heartbeat.as_mut() {
            match beat.check(now) {
                Beat::Ping => {
                    conn.socket.send(&ClientCommand::Ping).await;
                    if let Beat::Wait { next_check_ms } = beat.check(now) {
                        at(next_check_ms);
                    }
                }
                Beat::Dead => {
                    conn.socket.close("heartbeat timeout");
                    self.ended(Reached::Opened, close::HEARTBEAT_TIMEOUT, "no answer from the server");
                    return Err(Flow::Continue);
                }
                Beat::Wait { next_check_ms } => at(next_check_ms),
            }
        }
        if conn.token.take_due(now) {
            self.start_renewal(conn);
        }
        if let Some(due) = conn.token.due_ms() {
            at(due);
        }
        if conn.welcomed {
            self.sending.send_next(&mut conn.socket).await;
            if let Some(retry_at) = self.sending.next_retry_ms() {
                at(retry_at);
            }
        }
        if let Some(read) = self.reading.take(now) {
            conn.socket.send(&read).await;
        }
        if let Some(due) = self.reading.due_ms() {
            at(due);
        }
        self.view.hand_over(self.batcher.tick(now));
        if let Some(due) = self.batcher.due_ms() {
            at(due);
        }
        if conn.typers.expire(now) {
            self.view.act(Action::Typing(conn.typers.shown()));
        }
        if let Some(due) = conn.typers.due_ms() {
            at(due);
        }
        Ok(next)
    }

    /// Handles one event; `Some` when the connection is over.
    async fn on_event(&mut self, conn: &mut Connection, event: Event) -> Option<Flow> {
        match event {
            Event::Opened => {
                conn.connecting = false;
                if conn.socket.is_open() {
                    conn.attempt.opened();
                    if conn.transport == Transport::WebSocket {
                        self.transports.websocket_opened();
                        storage::remember_transport(None);
                    }
                    self.batcher.opened();
                    let now = now_ms();
                    self.link.opened(now);
                    conn.heartbeat = Some(Heartbeat::new(default_heartbeat(), now));
                    self.view.act(Action::Status(Status::Open { via: conn.transport }));
                    self.view.note(LineKind::Event, conn.transport.connected_line());
                }
            }
            // WebSocket gets through again: the HTTP connection is let go,
            // and the next one is a WebSocket resuming where it was.
            Event::Probe(true) => {
                if self.transports.websocket_opened() {
                    storage::remember_transport(None);
                    self.link.reconnect_by_user();
                    self.let_go(conn, "WebSocket gets through again");
                    return Some(Flow::Continue);
                }
            }
            Event::Probe(false) => {}
            Event::Socket(Some(Ok(Message::Text(text)))) => {
                if let Some(beat) = conn.heartbeat.as_mut() {
                    beat.heard(now_ms());
                }
                match ServerEvent::decode(&text) {
                    Ok(event) => self.on_server_event(conn, event).await,
                    Err(_) => {
                        self.view.note(LineKind::Notice, "ignored an unreadable message from the server".to_owned());
                    }
                }
            }
            Event::Socket(Some(Ok(Message::Bytes(_)))) => {}
            Event::Socket(Some(Err(WebSocketError::ConnectionClose(event)))) => {
                self.ended(conn.attempt.reached(), event.code, &event.reason);
                return Some(Flow::Continue);
            }
            // An `error` event; the `close` event follows.
            Event::Socket(Some(Err(_))) => {}
            Event::Socket(None) => {
                self.ended(conn.attempt.reached(), 1006, "");
                return Some(Flow::Continue);
            }
            Event::Command(Some(Command::Typing { has_text })) => {
                if conn.typing.keystroke(has_text, now_ms()) {
                    conn.socket.send(&ClientCommand::Typing).await;
                }
            }
            Event::Command(command) => return self.on_command(conn, command),
            Event::Timer => {}
            Event::Renewed(answer, identity) => return self.renewed(conn, answer, identity).await,
        }
        None
    }

    /// A command while a socket is open or opening; `Some` when the
    /// connection is over.
    fn on_command(&mut self, conn: &mut Connection, command: Option<Command>) -> Option<Flow> {
        // Close, Reconnect and Offline act at once: the socket is let go
        // without waiting for its close, which a half-dead link may never
        // deliver.
        match command {
            None => {
                conn.socket.close("left the room");
                return Some(Flow::Quit);
            }
            Some(Command::Close) => {
                self.link.close_by_user();
                self.let_go(conn, "closed by you");
            }
            Some(Command::Reconnect) => {
                self.link.reconnect_by_user();
                self.let_go(conn, "reconnecting");
            }
            Some(Command::Offline) => {
                self.link.offline();
                self.let_go(conn, "the browser is offline");
            }
            Some(Command::Online) => return None,
            Some(Command::Seen(seq)) => {
                self.reading.seen(seq);
                return None;
            }
            Some(command) => {
                self.sending.command(command);
                return None;
            }
        }
        Some(Flow::Continue)
    }

    /// Renews the connection's token in the background: the socket is served
    /// meanwhile, and the answer comes as [`Event::Renewed`].
    fn start_renewal(&self, conn: &mut Connection) {
        conn.renewing = self.credentials.renewal();
        if conn.renewing.is_none() {
            conn.token.give_up();
        }
    }

    /// A renewal of the connection's token was answered; `Some` when the
    /// connection is over.
    async fn renewed(&mut self, conn: &mut Connection, answer: Answer, identity: Identity) -> Option<Flow> {
        let now = now_ms();
        match self.credentials.answered(answer, &identity, now) {
            OnConnection::Hand => {
                // A failed write means the socket is closing: the next
                // connection takes the stored token.
                conn.socket.send(&ClientCommand::Refresh { token: identity.token.clone() }).await;
                conn.handed = Some(identity);
            }
            OnConnection::GiveUp => conn.token.give_up(),
            OnConnection::Retry => conn.token.failed(self.credentials.retry_at_ms(), now),
            OnConnection::Replace => {
                self.credentials.forget_refused(&identity);
                self.link.reconnect_by_user();
                self.let_go(conn, "reconnecting with a new identity");
                return Some(Flow::Continue);
            }
        }
        None
    }

    async fn on_server_event(&mut self, conn: &mut Connection, event: ServerEvent) {
        match event {
            ServerEvent::Welcome(welcome) => {
                conn.heartbeat = Some(Heartbeat::new(welcome.heartbeat, now_ms()));
                conn.token = ConnectionToken::new(welcome.token_expires_at, now_ms());
                conn.welcomed = true;
                conn.typing.opened();
                self.reading.welcomed(&welcome.epoch);
                self.seen_by.welcomed(&welcome.epoch, conn.me);
                self.resume.welcomed(welcome.epoch);
                self.sending.limit_told(welcome.max_message_bytes);
            }
            ServerEvent::Message(message) => self.on_message(conn, message),
            ServerEvent::Gap { from, to } => {
                self.view.hand_over(self.batcher.flush());
                self.resume.gap(Gap { from, to });
                self.view.act(Action::Gap { from, to, at_ms: now_ms() });
            }
            ServerEvent::Reset { epoch } => {
                // What we hold is not the group's history any more; a
                // fresh join's messages follow.
                self.view.hand_over(self.batcher.flush());
                self.reading.reset(&epoch);
                self.seen_by.reset(&epoch);
                self.show_seen_by();
                self.resume.reset(epoch);
                self.view.act(Action::Reset { at_ms: now_ms() });
            }
            ServerEvent::Synced { seq } => {
                // Decided before the replay is shown: the divider is there
                // when its messages are.
                if let Some(after) = self.reading.synced() {
                    self.view.act(Action::Divider { after, me: conn.me });
                }
                self.resume.synced(seq);
                self.view.hand_over(self.batcher.synced());
                self.view.act(Action::Synced(seq));
                self.show_seen_by();
            }
            ServerEvent::Ack { id, seq } => {
                self.view.act(Action::Acked(seq));
                self.sending.acknowledged(id);
            }
            ServerEvent::Error { code, message, id: Some(id) } if self.sending.holds(id) => {
                self.sending.refused(id, code, &message);
            }
            ServerEvent::Refreshed { token_expires_at } => {
                conn.token.refreshed(token_expires_at, now_ms());
                if let Some(handed) = conn.handed.take() {
                    self.credentials.took(handed);
                }
            }
            // The connection keeps its token: a 4001 at its expiry then finds
            // the renewed one stored, and the next connection takes it as is.
            ServerEvent::Error { code: ErrorCode::TokenRefused, .. } => {
                conn.token.give_up();
                conn.handed = None;
                let text = "the server did not take the renewed token on this connection";
                self.view.note(LineKind::Notice, text.into());
            }
            ServerEvent::Error { message, .. } => self.view.note(LineKind::Notice, format!("server: {message}")),
            ServerEvent::Typing { from } => {
                if conn.typers.typed(&from, now_ms()) {
                    self.view.act(Action::Typing(conn.typers.shown()));
                }
            }
            presence @ (ServerEvent::Presence { .. } | ServerEvent::Join { .. } | ServerEvent::Leave { .. }) => {
                self.people.heard(&presence);
                self.view.act(Action::People(self.people.shown()));
                self.show_seen_by();
            }
            ServerEvent::Cursor { epoch, seq } => self.reading.cursor(&epoch, seq),
            ServerEvent::Seen { epoch, readers } => self.seen_by_heard(&epoch, &readers),
            ServerEvent::Draining { retry_after_ms } => self.drained = Some(retry_after_ms),
            ServerEvent::Removed { reason, until_ms } => self.removal = Some(Removal { reason, until_ms }),
            // The rooms stream's events never come to a room's connection.
            ServerEvent::Pong
            | ServerEvent::Rooms { .. }
            | ServerEvent::Room { .. }
            | ServerEvent::Activity { .. }
            | ServerEvent::Forgotten { .. }
            | ServerEvent::Unknown => {}
        }
        if conn.welcomed {
            self.sending.send_next(&mut conn.socket).await;
        }
    }

    /// A group message, replayed or live.
    fn on_message(&mut self, conn: &mut Connection, message: ChatMessage) {
        if conn.typers.message_from(message.from.client_id) {
            self.view.act(Action::Typing(conn.typers.shown()));
        }
        self.resume.received(message.seq);
        self.reading.received(&message, conn.me);
        self.seen_by.received(&message);
        self.show_seen_by();
        self.sending.acknowledged(message.id);
        self.view.hand_over(self.batcher.received(message, now_ms()));
    }

    /// A `seen` event: how far readers of this small group have read.
    fn seen_by_heard(&mut self, epoch: &str, readers: &[Reader]) {
        self.seen_by.heard(epoch, readers);
        self.show_seen_by();
    }

    /// Tells the view who has seen this user's latest message, if that
    /// changed.
    fn show_seen_by(&mut self) {
        if let Some(line) = self.seen_by.changed(&self.people) {
            self.view.act(Action::SeenBy(line.map(Rc::new)));
        }
    }

    /// The socket closed (or never opened) with `code`.
    fn ended(&mut self, reached: Reached, code: u16, reason: &str) {
        self.view.hand_over(self.batcher.closed());
        self.reading.closed();
        self.sending.closed(reached, code);
        self.credentials.closed(code);
        let removal = self.removal.take();
        let (now, random) = (now_ms(), js_sys::Math::random());
        match (&removal, self.drained.take()) {
            (Some(removal), _) => self.link.closed_after(removal, code, reason, now, random),
            (None, Some(within_ms)) => self.link.drained(within_ms as f64, now, random),
            (None, None) => self.link.closed(code, reason, now, random),
        }
        let (kind, text) = lines::closed(reached, code, reason, removal.as_ref(), self.link.phase());
        self.view.note(kind, text);
    }

    /// The user or the browser ended the connection: it is let go now.
    fn let_go(&mut self, conn: &mut Connection, why: &str) {
        conn.socket.close(why);
        self.view.hand_over(self.batcher.closed());
        self.reading.closed();
        self.sending.connection_lost();
        self.view.note(LineKind::Event, lines::let_go(conn.attempt.reached(), why));
    }
}

/// Heartbeat settings until the server's `welcome` says otherwise.
fn default_heartbeat() -> HeartbeatSettings {
    HeartbeatSettings { ping_interval_ms: limits::PING_INTERVAL_MS, idle_timeout_ms: limits::IDLE_TIMEOUT_MS }
}
