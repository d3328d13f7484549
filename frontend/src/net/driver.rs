//! The connection driver: one async task per room view that opens the
//! WebSocket, feeds what happens into the session logic, and turns the
//! results into [`Action`]s. It holds no rules of its own: when to reconnect,
//! when to ping, what to send and what became of each message are decided in
//! [`crate::session`]; where a row goes, in [`crate::timeline`].
//!
//! Messages are handed to the view in batches: a replay as one batch when
//! `synced` arrives, live messages at most once per [`BATCH_MS`]. A catch-up
//! of thousands of messages therefore renders once, not once per message.
//!
//! The token rides in the socket's second subprotocol, never in its URL
//! (URLs end up in proxies' logs). An open connection's token is renewed
//! in the background, as an event like the socket's, and handed to the
//! connection with `refresh`.

use std::future::poll_fn;
use std::task::Poll;

use futures_channel::mpsc::UnboundedReceiver;
use futures_util::future::LocalBoxFuture;
use futures_util::{FutureExt, SinkExt, StreamExt};
use gloo_net::websocket::futures::WebSocket;
use gloo_net::websocket::{Message, WebSocketError};
use gloo_timers::future::TimeoutFuture;
use roomcast_shared::{
    close, limits, ChatMessage, ClientCommand, ClientId, ErrorCode, GroupName, HeartbeatSettings, MessageId,
    ServerEvent, SUBPROTOCOL, TOKEN_SUBPROTOCOL_PREFIX,
};
use uuid::Uuid;
use yew::UseReducerDispatcher;

use crate::net::command::Command;
use crate::net::identity;
use crate::session::{
    Answer, Backoff, Beat, ConnectionToken, Heartbeat, Identity, Link, Outbox, Owner, Phase, Renewals, Stop,
};
use crate::state::{Action, RoomState, Status};
use crate::storage;
use crate::timeline::{LineKind, MAX_MESSAGES};

/// A connection attempt that has not opened by then is abandoned and
/// counts as failed: a stalled connect never blocks the next attempt.
pub const CONNECT_TIMEOUT_MS: f64 = 10_000.0;

/// Live messages wait at most this long to be shown with the ones after
/// them (one render per batch).
const BATCH_MS: f64 = 16.0;

/// Most replayed messages held before they are handed over (a render each
/// time): ten windows' worth, about 3 MB of messages.
const REPLAY_BATCH_MAX: usize = 10 * MAX_MESSAGES;

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
    /// A renewal of the connection's token was answered.
    Renewed(Answer, Identity),
    Timer,
}

/// A renewal under way: what the answer means, and the identity to use.
type Renewing = Option<LocalBoxFuture<'static, (Answer, Identity)>>;

/// Where the socket goes: `{prefix}{client_id}?{query}[&since=…[&epoch=…]]`.
/// No token: that goes in the subprotocols ([`protocols`]).
#[derive(Debug, Clone, PartialEq)]
pub struct SocketTarget {
    /// `ws(s)://host/ws/{group}/`
    pub prefix: String,
    /// `name=…`, encoded.
    pub query: String,
}

impl SocketTarget {
    /// The socket's URL for `client_id`, asking for what follows `since`
    /// (of `epoch`, if known).
    pub fn url(&self, client_id: ClientId, since: Option<u64>, epoch: Option<&str>) -> String {
        let mut url = format!("{}{client_id}?{}", self.prefix, self.query);
        if let Some(seq) = since {
            url.push_str(&format!("&since={seq}"));
            if let Some(epoch) = epoch {
                url.push_str(&format!("&epoch={epoch}"));
            }
        }
        url
    }
}

/// The subprotocols the socket offers: the JSON protocol, and `token` as
/// the second one (the server answers with the first alone).
pub fn protocols(token: &str) -> [String; 2] {
    [SUBPROTOCOL.to_owned(), format!("{TOKEN_SUBPROTOCOL_PREFIX}{token}")]
}

pub struct Driver {
    group: GroupName,
    tab: Uuid,
    target: SocketTarget,
    /// This browser's identity, once obtained: the one the last connection
    /// used (or was handed with `refresh`, once the server took it).
    identity: Option<Identity>,
    renewals: Renewals,
    commands: UnboundedReceiver<Command>,
    dispatch: UseReducerDispatcher<RoomState>,
    link: Link,
    outbox: Outbox,
    /// The last sequence number received; a reconnect asks for what follows.
    last_seq: Option<u64>,
    /// The epoch `last_seq` belongs to, once the server has told it.
    epoch: Option<String>,
    /// The server's message size limit, as last told (kept for offline).
    limit: Option<usize>,
    /// Messages received and not yet handed to the view.
    incoming: Vec<ChatMessage>,
    /// When `incoming` is handed over, unless `synced` comes first.
    batch_due_ms: Option<f64>,
}

/// The state of one open socket.
struct Connection {
    raw: web_sys::WebSocket,
    ws: WebSocket,
    opened: bool,
    /// The sink turns ready once, when the socket leaves CONNECTING.
    connecting: bool,
    /// `welcome` arrived: the limit is known and sends may go.
    welcomed: bool,
    /// Between `welcome` and `synced`: the replay is batched whole.
    replaying: bool,
    heartbeat: Option<Heartbeat>,
    deadline_ms: f64,
    /// When its token is renewed (told by `welcome`).
    token: ConnectionToken,
    renewing: Renewing,
    /// The renewed identity sent with `refresh`, until the server takes it.
    handed: Option<Identity>,
}

impl Driver {
    /// A driver for `group` at `url`, as tab `tab`, with the outbox this
    /// tab left (a reload keeps its tab id).
    pub fn new(
        group: GroupName,
        tab: Uuid,
        target: SocketTarget,
        commands: UnboundedReceiver<Command>,
        dispatch: UseReducerDispatcher<RoomState>,
    ) -> Self {
        let saved = storage::read_outbox(&group, Owner::Tab(tab)).map(|outbox| outbox.items).unwrap_or_default();
        Self {
            outbox: Outbox::restore(saved),
            link: Link::new(Backoff::default()),
            group,
            tab,
            target,
            identity: None,
            renewals: Renewals::default(),
            commands,
            dispatch,
            last_seq: None,
            epoch: None,
            limit: storage::max_message_bytes(),
            incoming: Vec::new(),
            batch_due_ms: None,
        }
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
                Phase::Offline => {
                    self.dispatch.dispatch(Action::Status(Status::Offline));
                    self.wait(None).await
                }
                Phase::Stopped(stop) => {
                    let reason = match stop {
                        Stop::ByUser => "closed by you".to_owned(),
                        Stop::Revoked => "this browser's identity was revoked by the server".to_owned(),
                        Stop::Terminal { code, reason } => format!("closed by the server ({code} {reason})"),
                    };
                    self.dispatch.dispatch(Action::Status(Status::Closed { reason }));
                    self.wait(None).await
                }
                // connect() returns only once the socket is gone again.
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
        let mut timer = None;
        while *self.link.phase() == phase {
            arm(&mut timer, until_ms);
            match next_event(&mut self.commands, None, false, &mut None, &mut timer).await {
                Event::Timer => {
                    self.link.tick(now_ms());
                }
                Event::Command(None) => return Flow::Quit,
                Event::Command(Some(Command::Online)) => {
                    self.link.online();
                }
                Event::Command(Some(Command::Offline)) => {
                    self.link.offline();
                }
                Event::Command(Some(Command::Reconnect)) => self.link.reconnect_by_user(),
                Event::Command(Some(Command::Close)) => {
                    if !matches!(phase, Phase::Stopped(_)) {
                        self.link.close_by_user();
                    }
                }
                Event::Command(Some(command)) => self.outbox_command(command),
                Event::Opened | Event::Socket(_) | Event::Renewed(..) => {}
            }
        }
        Flow::Continue
    }

    /// This browser's identity for the next connection: the stored one
    /// (another tab may have renewed or replaced it), else the one in hand,
    /// else a new one from the server; renewed first when that is due.
    async fn identity(&mut self) -> Result<Identity, identity::IdentityError> {
        let identity = match storage::identity().or_else(|| self.identity.clone()) {
            Some(known) if self.renewals.renew_before_use(&known, self.identity.as_ref(), now_ms()) => {
                let (answer, identity) = identity::renew(known).await;
                self.renewals.answered(answer, now_ms());
                if answer == Answer::Refused {
                    self.forget_refused(&identity);
                    identity::create().await?
                } else {
                    identity
                }
            }
            Some(known) => known,
            None => identity::create().await?,
        };
        if self.identity.as_ref().map(|held| held.client_id) != Some(identity.client_id) {
            self.dispatch.dispatch(Action::Me(identity.client_id));
        }
        self.identity = Some(identity.clone());
        Ok(identity)
    }

    /// After a connection that never opened: if the server refuses this
    /// identity for good, forget it and connect again at once with a new one.
    async fn renew_identity_if_refused(&mut self) {
        let Some(identity) = self.identity.clone() else { return };
        if identity::is_refused(&identity).await {
            self.forget_refused(&identity);
            self.link.reconnect_by_user();
        }
    }

    /// The server refuses `identity` for good: the next connection gets a new
    /// one (and the outbox goes out under it).
    fn forget_refused(&mut self, identity: &Identity) {
        storage::forget_identity(identity);
        self.identity = None;
        self.note(LineKind::Event, "the server no longer knows this browser's identity: getting a new one".into());
    }

    /// One connection, from opening to gone.
    async fn connect(&mut self) -> Flow {
        let identity = match self.identity().await {
            Ok(identity) => identity,
            Err(err) => {
                self.ended(false, 1006, &err.to_string());
                return Flow::Continue;
            }
        };
        let url = self.target.url(identity.client_id, self.last_seq, self.epoch.as_deref());
        let protocols: js_sys::Array =
            protocols(&identity.token).iter().map(|p| wasm_bindgen::JsValue::from_str(p)).collect();
        let socket = web_sys::WebSocket::new_with_str_sequence(&url, &protocols)
            .map_err(|_| ())
            .and_then(|raw| WebSocket::try_from(raw.clone()).map(|ws| (raw, ws)).map_err(|_| ()));
        let Ok((raw, ws)) = socket else {
            self.ended(false, 1006, "the browser refused to open a WebSocket");
            return Flow::Continue;
        };
        let mut conn = Connection {
            raw,
            ws,
            opened: false,
            connecting: true,
            welcomed: false,
            replaying: false,
            heartbeat: None,
            deadline_ms: now_ms() + CONNECT_TIMEOUT_MS,
            token: ConnectionToken::default(),
            renewing: None,
            handed: None,
        };
        let mut timer = None;
        loop {
            let due = match self.on_timers(&mut conn).await {
                Ok(due) => due,
                Err(flow) => return flow,
            };
            arm(&mut timer, due);
            let event =
                next_event(&mut self.commands, Some(&mut conn.ws), conn.connecting, &mut conn.renewing, &mut timer)
                    .await;
            if let Some(flow) = self.on_event(&mut conn, event).await {
                if !conn.opened && matches!(self.link.phase(), Phase::Waiting { .. }) {
                    self.renew_identity_if_refused().await;
                }
                return flow;
            }
        }
    }

    /// Does what is due (heartbeat, connect timeout, a token renewal, a
    /// resend, a batch) and returns when the next thing is due, or how the
    /// connection ended.
    async fn on_timers(&mut self, conn: &mut Connection) -> Result<Option<f64>, Flow> {
        let now = now_ms();
        let mut next: Option<f64> = None;
        let mut at = |due: f64| next = Some(next.map_or(due, |n: f64| n.min(due)));
        if !conn.opened {
            if now >= conn.deadline_ms {
                let _ = conn.raw.close_with_code_and_reason(close::NORMAL, "connect timeout");
                self.ended(false, 1006, "no answer within 10 s");
                return Err(Flow::Continue);
            }
            at(conn.deadline_ms);
        }
        if let Some(beat) = conn.heartbeat.as_mut() {
            match beat.check(now) {
                Beat::Ping => {
                    let _ = conn.ws.send(Message::Text(ClientCommand::Ping.encode())).await;
                    if let Beat::Wait { next_check_ms } = beat.check(now) {
                        at(next_check_ms);
                    }
                }
                Beat::Dead => {
                    let _ = conn.raw.close_with_code_and_reason(close::NORMAL, "heartbeat timeout");
                    self.ended(true, close::HEARTBEAT_TIMEOUT, "no answer from the server");
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
            self.send_next(conn).await;
            if let Some(retry_at) = self.outbox.next_retry_ms() {
                at(retry_at);
            }
        }
        if let Some(due) = self.batch_due_ms {
            if now >= due {
                self.hand_over();
            } else {
                at(due);
            }
        }
        Ok(next)
    }

    /// Handles one event; `Some` when the connection is over.
    async fn on_event(&mut self, conn: &mut Connection, event: Event) -> Option<Flow> {
        match event {
            Event::Opened => {
                conn.connecting = false;
                if conn.raw.ready_state() == web_sys::WebSocket::OPEN {
                    conn.opened = true;
                    conn.replaying = true;
                    let now = now_ms();
                    self.link.opened(now);
                    conn.heartbeat = Some(Heartbeat::new(default_heartbeat(), now));
                    self.dispatch.dispatch(Action::Status(Status::Open));
                    self.note(LineKind::Event, "connected".to_owned());
                }
            }
            Event::Socket(Some(Ok(Message::Text(text)))) => {
                if let Some(beat) = conn.heartbeat.as_mut() {
                    beat.heard(now_ms());
                }
                match ServerEvent::decode(&text) {
                    Ok(event) => self.on_server_event(conn, event).await,
                    Err(_) => self.note(LineKind::Notice, "ignored an unreadable message from the server".to_owned()),
                }
            }
            Event::Socket(Some(Ok(Message::Bytes(_)))) => {}
            Event::Socket(Some(Err(WebSocketError::ConnectionClose(event)))) => {
                self.ended(conn.opened, event.code, &event.reason);
                return Some(Flow::Continue);
            }
            // An `error` event; the `close` event follows.
            Event::Socket(Some(Err(_))) => {}
            Event::Socket(None) => {
                self.ended(conn.opened, 1006, "");
                return Some(Flow::Continue);
            }
            Event::Command(None) => {
                let _ = conn.raw.close_with_code_and_reason(close::NORMAL, "left the room");
                return Some(Flow::Quit);
            }
            // Close, Reconnect and Offline act at once: the socket is let go
            // without waiting for its close, which a half-dead link may
            // never deliver.
            Event::Command(Some(Command::Close)) => {
                self.link.close_by_user();
                self.let_go(conn, "closed by you");
                return Some(Flow::Continue);
            }
            Event::Command(Some(Command::Reconnect)) => {
                self.link.reconnect_by_user();
                self.let_go(conn, "reconnecting");
                return Some(Flow::Continue);
            }
            Event::Command(Some(Command::Offline)) => {
                self.link.offline();
                self.let_go(conn, "the browser is offline");
                return Some(Flow::Continue);
            }
            Event::Command(Some(Command::Online)) | Event::Timer => {}
            Event::Command(Some(command)) => self.outbox_command(command),
            Event::Renewed(answer, identity) => return self.renewed(conn, answer, identity).await,
        }
        None
    }

    /// Renews the connection's token in the background: the socket is served
    /// meanwhile, and the answer comes as [`Event::Renewed`].
    fn start_renewal(&self, conn: &mut Connection) {
        match self.identity.clone() {
            Some(identity) if self.renewals.may_renew() => conn.renewing = Some(Box::pin(identity::renew(identity))),
            _ => conn.token.give_up(),
        }
    }

    /// A renewal of the connection's token was answered; `Some` when the
    /// connection is over.
    async fn renewed(&mut self, conn: &mut Connection, answer: Answer, identity: Identity) -> Option<Flow> {
        let now = now_ms();
        self.renewals.answered(answer, now);
        match answer {
            Answer::Renewed if self.identity.as_ref().is_some_and(|held| held.client_id == identity.client_id) => {
                // A failed write means the socket is closing: the next
                // connection takes the stored token.
                let refresh = ClientCommand::Refresh { token: identity.token.clone() };
                let _ = conn.ws.send(Message::Text(refresh.encode())).await;
                conn.handed = Some(identity);
            }
            // Another tab replaced the identity (a new client id, which this
            // connection cannot take): the next connection uses it.
            Answer::Renewed | Answer::Off => conn.token.give_up(),
            Answer::Later => conn.token.failed(self.renewals.retry_at_ms(), now),
            Answer::Refused => {
                self.forget_refused(&identity);
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
                if !welcome.epoch.is_empty() {
                    self.epoch = Some(welcome.epoch);
                }
                storage::remember_max_message_bytes(welcome.max_message_bytes);
                self.limit = Some(welcome.max_message_bytes);
                self.dispatch.dispatch(Action::Limit(welcome.max_message_bytes));
                if self.fail_oversized() {
                    self.publish_outbox();
                }
            }
            ServerEvent::Message(message) => {
                self.last_seq = Some(self.last_seq.map_or(message.seq, |last| last.max(message.seq)));
                if self.outbox.acknowledge(message.id) {
                    self.publish_outbox();
                }
                self.incoming.push(message);
                if conn.replaying {
                    // A replay is handed over whole at `synced` (one render);
                    // only a huge one is handed over in parts, to bound what
                    // waits here.
                    if self.incoming.len() >= REPLAY_BATCH_MAX {
                        self.hand_over();
                    }
                } else if self.batch_due_ms.is_none() {
                    self.batch_due_ms = Some(now_ms() + BATCH_MS);
                }
            }
            ServerEvent::Gap { from, to } => {
                self.hand_over();
                if self.last_seq.is_some_and(|last| from <= last) {
                    // The server's history was reset below what we hold.
                    self.last_seq = Some(from - 1);
                }
                self.dispatch.dispatch(Action::Gap { from, to, at_ms: now_ms() });
            }
            ServerEvent::Reset { epoch } => {
                // What we hold is not the group's history any more; a
                // fresh join's messages follow.
                self.hand_over();
                self.last_seq = None;
                self.epoch = Some(epoch).filter(|epoch| !epoch.is_empty());
                self.dispatch.dispatch(Action::Reset { at_ms: now_ms() });
            }
            ServerEvent::Synced { seq } => {
                conn.replaying = false;
                self.last_seq = Some(seq);
                self.hand_over();
                self.dispatch.dispatch(Action::Synced(seq));
            }
            ServerEvent::Ack { id, seq } => {
                self.dispatch.dispatch(Action::Acked(seq));
                if self.outbox.acknowledge(id) {
                    self.publish_outbox();
                }
            }
            ServerEvent::Error { code, message, id: Some(id) } if self.outbox.items().iter().any(|p| p.id == id) => {
                self.outbox.refused(id, code.is_retryable(), &message, now_ms(), js_sys::Math::random());
                self.publish_outbox();
            }
            ServerEvent::Refreshed { token_expires_at } => {
                conn.token.refreshed(token_expires_at, now_ms());
                if let Some(handed) = conn.handed.take() {
                    self.identity = Some(handed);
                }
            }
            // The connection keeps its token: a 4001 at its expiry then finds
            // the renewed one stored, and the next connection takes it as is.
            ServerEvent::Error { code: ErrorCode::TokenRefused, .. } => {
                conn.token.give_up();
                conn.handed = None;
                self.note(LineKind::Notice, "the server did not take the renewed token on this connection".into());
            }
            ServerEvent::Error { message, .. } => self.note(LineKind::Notice, format!("server: {message}")),
            ServerEvent::Pong | ServerEvent::Unknown => {}
        }
        if conn.welcomed {
            self.send_next(conn).await;
        }
    }

    /// The outbox commands, whatever the connection is doing; what they
    /// queue goes out with the next [`send_next`](Self::send_next).
    fn outbox_command(&mut self, command: Command) {
        let changed = match command {
            Command::Send(text) => {
                self.outbox.push(MessageId(Uuid::new_v4()), text);
                true
            }
            // A retried message is checked against the limit again: one that
            // is still too long fails again at once instead of being sent.
            Command::Retry(id) => {
                let retried = self.outbox.retry(id);
                self.fail_oversized();
                retried
            }
            Command::Delete(id) => self.outbox.delete(id),
            Command::Adopt { owner, items } => {
                if self.outbox.adopt(items) {
                    self.publish_outbox();
                }
                // Ours now (saved under this tab's key): theirs can go.
                storage::remove_outbox(&self.group, owner);
                false
            }
            // Nothing changed for the view: only the stamp in storage.
            Command::Refresh => {
                self.save_outbox();
                false
            }
            Command::Close | Command::Reconnect | Command::Online | Command::Offline => false,
        };
        if changed {
            self.publish_outbox();
        }
    }

    /// Fails every unsent message over the server's last known limit.
    fn fail_oversized(&mut self) -> bool {
        self.limit.is_some_and(|limit| self.outbox.fail_oversized(limit, ClientCommand::send_frame_len))
    }

    /// Writes the next message of the outbox, if one may go now.
    async fn send_next(&mut self, conn: &mut Connection) {
        if let Some((id, text)) = self.outbox.next_to_send(now_ms()) {
            // A failed write means the socket is closing; the close puts the
            // message back in the queue.
            let _ = conn.ws.send(Message::Text(ClientCommand::Send { id, text }.encode())).await;
            self.publish_outbox();
        }
    }

    /// The socket closed (or never opened) with `code`.
    fn ended(&mut self, was_open: bool, code: u16, reason: &str) {
        self.hand_over();
        if was_open && code == close::MESSAGE_TOO_BIG {
            self.outbox.in_flight_too_big();
        }
        self.outbox.connection_lost();
        self.publish_outbox();
        self.renewals.closed(code);
        self.link.closed(code, reason, now_ms(), js_sys::Math::random());
        let detail = if reason.is_empty() { close::describe(code).to_owned() } else { reason.to_owned() };
        match (was_open, self.link.phase()) {
            (true, _) => self.note(LineKind::Event, format!("disconnected: {code} {detail}")),
            (false, Phase::Waiting { attempt, .. }) => {
                let attempt = *attempt;
                self.note(LineKind::Retry, format!("could not connect (attempt {attempt}): {code} {detail}"));
            }
            (false, _) => self.note(LineKind::Event, format!("could not connect: {code} {detail}")),
        }
    }

    /// The user or the browser ended the connection: it is let go now.
    fn let_go(&mut self, conn: &mut Connection, why: &str) {
        let _ = conn.raw.close_with_code_and_reason(close::NORMAL, why);
        self.hand_over();
        self.outbox.connection_lost();
        self.publish_outbox();
        let text = if conn.opened {
            format!("disconnected: {} {why}", close::NORMAL)
        } else {
            format!("connection attempt abandoned: {why}")
        };
        self.note(LineKind::Event, text);
    }

    /// Hands the messages received so far to the view, as one action.
    fn hand_over(&mut self) {
        self.batch_due_ms = None;
        if !self.incoming.is_empty() {
            self.dispatch.dispatch(Action::Received(std::mem::take(&mut self.incoming)));
        }
    }

    /// Shows the outbox and keeps it in storage under this tab's key, so
    /// that a reload does not lose what was typed.
    fn publish_outbox(&self) {
        self.save_outbox();
        self.dispatch.dispatch(Action::Outbox(self.outbox.items().to_vec()));
    }

    /// Keeps the outbox in storage, stamped now (other tabs without Web
    /// Locks judge by the stamp whether this tab is alive).
    fn save_outbox(&self) {
        storage::save_outbox(&self.group, self.tab, self.outbox.saved(), now_ms());
    }

    fn note(&self, kind: LineKind, text: String) {
        self.dispatch.dispatch(Action::Note { kind, text, at_ms: now_ms() });
    }
}

/// Heartbeat settings until the server's `welcome` says otherwise.
fn default_heartbeat() -> HeartbeatSettings {
    HeartbeatSettings { ping_interval_ms: limits::PING_INTERVAL_MS, idle_timeout_ms: limits::IDLE_TIMEOUT_MS }
}

/// A timer and the time it fires at.
type Timer = Option<(f64, TimeoutFuture)>;

/// Makes `timer` fire at `due_ms` or earlier. A timer that already fires no
/// later is kept: firing early only means checking again, and not setting a
/// new timeout per message (the heartbeat's moves with each one) keeps
/// `setTimeout`/`clearTimeout` off the per-message path.
///
/// Delays are capped at `setTimeout`'s largest, 2^31 − 1 ms (24.8 days): a
/// longer one fires at once in browsers, and a token renewal can be weeks
/// away.
fn arm(timer: &mut Timer, due_ms: Option<f64>) {
    match (timer.as_ref(), due_ms) {
        (Some((at, _)), Some(due)) if *at <= due => {}
        (_, Some(due)) => {
            let delay = (due - now_ms()).ceil().clamp(0.0, f64::from(i32::MAX)) as u32;
            *timer = Some((due, TimeoutFuture::new(delay)));
        }
        (_, None) => *timer = None,
    }
}

/// The next thing that happens: the socket opening (if `await_open`), a
/// socket event, a renewal's answer (which ends `renewing`), a command, or
/// `timer` firing (which disarms it).
async fn next_event(
    commands: &mut UnboundedReceiver<Command>,
    mut socket: Option<&mut WebSocket>,
    await_open: bool,
    renewing: &mut Renewing,
    timer: &mut Timer,
) -> Event {
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
        if let Some(future) = renewing.as_mut() {
            if let Poll::Ready((answer, identity)) = future.poll_unpin(cx) {
                *renewing = None;
                return Poll::Ready(Event::Renewed(answer, identity));
            }
        }
        if let Poll::Ready(command) = commands.poll_next_unpin(cx) {
            return Poll::Ready(Event::Command(command));
        }
        if let Some((_, future)) = timer.as_mut() {
            if future.poll_unpin(cx).is_ready() {
                *timer = None;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> SocketTarget {
        SocketTarget { prefix: "wss://chat.example/ws/lobby/".into(), query: "name=Ann".into() }
    }

    #[test]
    fn the_socket_url_names_the_client_and_what_it_holds() {
        let client = ClientId(Uuid::from_u128(1));
        assert_eq!(target().url(client, None, None), format!("wss://chat.example/ws/lobby/{client}?name=Ann"));
        assert_eq!(
            target().url(client, Some(41), Some("9f2c")),
            format!("wss://chat.example/ws/lobby/{client}?name=Ann&since=41&epoch=9f2c")
        );
    }

    #[test]
    fn the_token_is_offered_as_the_second_subprotocol() {
        assert_eq!(protocols("a.b.c"), ["roomcast.v1".to_owned(), "roomcast.token.a.b.c".to_owned()]);
    }
}
