//! Shared helpers for the integration tests: a real server on 127.0.0.1:0 and
//! real WebSocket clients.
#![allow(dead_code)] // each test binary uses a different subset

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use roomcast_backend::auth::{AuthMode, Claims, Secret, Tokens};
use roomcast_backend::config::HistoryKind;
use roomcast_backend::{Config, Server};
use roomcast_shared::{ChatMessage, ClientCommand, MessageId, ServerEvent, SUBPROTOCOL};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use uuid::Uuid;

pub type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long a test waits for something that should happen promptly.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// The secret every test server signs identities with, so that the
/// helpers below can mint tokens for their clients.
pub const TEST_SECRET: &str = "roomcast-integration-tests-secret-0123456789";

/// Tokens signed with [`TEST_SECRET`].
pub fn tokens() -> Tokens {
    Tokens::new(&Secret::from_text(TEST_SECRET).unwrap())
}

/// A token for `client` with `claims` changed by `adjust`.
pub fn token_with(client: Uuid, adjust: impl FnOnce(&mut Claims)) -> String {
    let mut claims = Claims::for_client(roomcast_shared::ClientId(client));
    adjust(&mut claims);
    tokens().issue(&claims)
}

/// A token for `client`, any group, no expiry.
pub fn token_for(client: Uuid) -> String {
    token_with(client, |_| {})
}

pub fn test_config() -> Config {
    let mut config = Config::defaults();
    config.secret = Some(TEST_SECRET.to_owned());
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.static_dir = std::env::temp_dir().join("roomcast-no-static-dir");
    // Tests end with clients that no longer read; do not wait long for them.
    config.close_grace = Duration::from_millis(500);
    config.history = HistoryKind::Memory;
    // Tests publish as fast as they can, open rooms as they like and
    // reconnect from loopback as often as they like (the soak reconnects
    // about 500 times in 2 s, past the default 100 a second); the limits
    // have tests of their own.
    config.publish_rate = 0;
    config.new_groups_per_hour = 0;
    config.max_connections_per_ip = 0;
    config
}

/// A server for a member that never reads: a short outbound queue, and a
/// history that keeps little of the traffic (not those tests' subject).
pub fn firehose_config() -> Config {
    let mut config = test_config();
    config.outbound_queue = 32;
    config.retention_messages = 50;
    config.retention_interval = std::time::Duration::from_millis(50);
    config
}

pub async fn start(config: Config) -> Server {
    let listener = roomcast_backend::server::listen(config.listen).unwrap();
    Server::start(listener, config).unwrap()
}

pub async fn start_default() -> Server {
    start(test_config()).await
}

/// A server under `--auth open`: tokenless clients are admitted.
pub async fn start_open() -> Server {
    let mut config = test_config();
    config.auth = AuthMode::Open;
    start(config).await
}

/// A server that accepts messages of at most `max_message_bytes`.
pub async fn start_with_limit(max_message_bytes: usize) -> Server {
    let mut config = test_config();
    config.max_message_bytes = max_message_bytes;
    start(config).await
}

/// The socket URL of `client` in `group`, with a token for it (more query
/// parameters follow with `&`).
pub fn ws_url(addr: SocketAddr, group: &str, client: Uuid) -> String {
    format!("ws://{addr}/ws/{group}/{client}?token={}", token_for(client))
}

/// Connects in JSON mode and returns the client after its `welcome`.
pub async fn connect_json(addr: SocketAddr, group: &str) -> Client {
    connect_json_as(addr, group, Uuid::new_v4(), None).await
}

pub async fn connect_json_as(addr: SocketAddr, group: &str, client: Uuid, name: Option<&str>) -> Client {
    let mut url = ws_url(addr, group, client);
    if let Some(name) = name {
        url.push_str(&format!("&name={name}"));
    }
    connect_json_url(&url, group).await
}

/// A JSON-mode handshake with `url`, nothing read yet; or why it failed.
pub async fn open_json(url: &str) -> Result<Client, tokio_tungstenite::tungstenite::Error> {
    let mut request = url.into_client_request()?;
    request.headers_mut().insert("sec-websocket-protocol", HeaderValue::from_static(SUBPROTOCOL));
    let (ws, response) = tokio_tungstenite::connect_async(request).await?;
    assert_eq!(response.headers()["sec-websocket-protocol"], SUBPROTOCOL);
    Ok(ws)
}

/// The next answer to a `send`: an `ack` or an `error` (other events are
/// passed over).
pub async fn next_answer(ws: &mut Client) -> ServerEvent {
    loop {
        if let event @ (ServerEvent::Ack { .. } | ServerEvent::Error { .. }) = next_event(ws).await {
            return event;
        }
    }
}

/// Connects in JSON mode to `url` (a socket URL of `group`, query included)
/// and returns the client after its `welcome` and replay.
pub async fn connect_json_url(url: &str, group: &str) -> Client {
    let mut ws = open_json(url).await.unwrap();
    match next_event(&mut ws).await {
        ServerEvent::Welcome(welcome) => assert_eq!(welcome.group.as_str(), group),
        other => panic!("expected welcome, got {other:?}"),
    }
    skip_replay(&mut ws).await;
    ws
}

/// Waits until something listens on `addr` (a server binary starting up).
pub async fn wait_until_listening(addr: SocketAddr) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while TcpStream::connect(addr).await.is_err() {
        assert!(tokio::time::Instant::now() < deadline, "the server did not start listening");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits for the answer to a `ping`: every frame this client sent before
/// it has been acted on. Returns what came before the answer.
pub async fn settled(ws: &mut Client) -> Vec<ServerEvent> {
    send_command(ws, &ClientCommand::Ping).await;
    let mut before = Vec::new();
    loop {
        match next_event(ws).await {
            ServerEvent::Pong => return before,
            other => before.push(other),
        }
    }
}

/// Reads a JSON connection's replay up to its `synced` event.
pub async fn skip_replay(ws: &mut Client) -> u64 {
    loop {
        if let ServerEvent::Synced { seq } = next_event(ws).await {
            return seq;
        }
    }
}

/// Connects in JSON mode with `query` (e.g. `since=5`) and returns the
/// client with the events between `welcome` and `synced`, `synced` included.
pub async fn connect_json_with(addr: SocketAddr, group: &str, query: &str) -> (Client, Vec<ServerEvent>) {
    let (ws, _, replay) = connect_json_welcomed(addr, group, query).await;
    (ws, replay)
}

/// [`connect_json_with`], with the `welcome`.
pub async fn connect_json_welcomed(
    addr: SocketAddr,
    group: &str,
    query: &str,
) -> (Client, roomcast_shared::Welcome, Vec<ServerEvent>) {
    connect_json_welcomed_as(addr, group, Uuid::new_v4(), query).await
}

/// [`connect_json_welcomed`] as `client` (with a token for it).
pub async fn connect_json_welcomed_as(
    addr: SocketAddr,
    group: &str,
    client: Uuid,
    query: &str,
) -> (Client, roomcast_shared::Welcome, Vec<ServerEvent>) {
    let url = format!("{}&{query}", ws_url(addr, group, client));
    let mut ws = open_json(&url).await.unwrap();
    let ServerEvent::Welcome(welcome) = next_event(&mut ws).await else { panic!("welcome first") };
    let mut replay = Vec::new();
    loop {
        let event = next_event(&mut ws).await;
        let done = matches!(event, ServerEvent::Synced { .. });
        replay.push(event);
        if done {
            return (ws, welcome, replay);
        }
    }
}

/// Sends every text (at most `window` unacknowledged at a time) and returns
/// each message's id and acknowledged sequence number, in sending order.
pub async fn publish_all(ws: &mut Client, texts: &[String], window: usize) -> Vec<(MessageId, u64)> {
    let mut sent: Vec<MessageId> = Vec::new();
    let mut acks: std::collections::HashMap<MessageId, u64> = std::collections::HashMap::new();
    let mut next = 0;
    while acks.len() < texts.len() {
        while next < texts.len() && sent.len() - acks.len() < window {
            sent.push(send_text(ws, &texts[next]).await);
            next += 1;
        }
        match next_event(ws).await {
            ServerEvent::Ack { id, seq } => {
                acks.insert(id, seq);
            }
            ServerEvent::Error { message, .. } => panic!("publish refused: {message}"),
            _ => {}
        }
    }
    sent.into_iter().map(|id| (id, acks[&id])).collect()
}

/// One page of `group`'s history through the HTTP API; `query` is the query
/// string, `?` included (or empty). Panics unless the answer is 200.
pub async fn history_page(addr: SocketAddr, group: &str, query: &str) -> roomcast_shared::MessagePage {
    let (status, body) = http_request(addr, &format!("/api/groups/{group}/messages{query}"), &[]).await;
    assert_eq!(status, 200, "{query}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// The whole stored history of `group`, oldest first, through the HTTP API.
pub async fn stored_history(addr: SocketAddr, group: &str) -> Vec<ChatMessage> {
    let mut messages = Vec::new();
    let mut before = String::new();
    loop {
        let (status, body) = http_request(addr, &format!("/api/groups/{group}/messages?limit=500{before}"), &[]).await;
        assert_eq!(status, 200, "{body}");
        let page: roomcast_shared::MessagePage = serde_json::from_str(&body).unwrap();
        let Some(first) = page.messages.first() else { break };
        before = format!("&before={}", first.seq);
        let mut older = page.messages;
        older.append(&mut messages);
        messages = older;
        if !page.has_more {
            break;
        }
    }
    messages
}

/// A fresh path for an SQLite history file, removed (with its WAL files)
/// when dropped.
pub struct TempDatabase(pub std::path::PathBuf);

impl TempDatabase {
    pub fn new() -> Self {
        Self(std::env::temp_dir().join(format!("roomcast-it-{}.sqlite3", Uuid::new_v4())))
    }
}

impl Drop for TempDatabase {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
        }
    }
}

/// Connects in raw mode (no subprotocol).
pub async fn connect_raw(addr: SocketAddr, group: &str) -> Client {
    connect_raw_as(addr, group, Uuid::new_v4()).await
}

/// A raw-mode connection of `client` (with its token).
pub async fn connect_raw_as(addr: SocketAddr, group: &str, client: Uuid) -> Client {
    let (ws, _) = tokio_tungstenite::connect_async(ws_url(addr, group, client)).await.unwrap();
    ws
}

/// The next data message, skipping control frames; panics on timeout or end.
pub async fn next_message(ws: &mut Client) -> Message {
    loop {
        let message = tokio::time::timeout(PATIENCE, ws.next())
            .await
            .expect("timed out waiting for a message")
            .expect("stream ended")
            .expect("websocket error");
        if !matches!(message, Message::Ping(_) | Message::Pong(_)) {
            return message;
        }
    }
}

/// The next event, passing over presence (`presence`, `join`, `leave`)
/// and "seen by" (`seen`): state a member is kept up to date with beside
/// everything else, which tests of something else leave aside.
/// [`next_any_event`] reads them too.
pub async fn next_event(ws: &mut Client) -> ServerEvent {
    loop {
        let event = next_any_event(ws).await;
        if !is_presence(&event) && !matches!(event, ServerEvent::Seen { .. }) {
            return event;
        }
    }
}

/// The next event, whatever it is.
pub async fn next_any_event(ws: &mut Client) -> ServerEvent {
    match next_message(ws).await {
        Message::Text(text) => ServerEvent::decode(&text).unwrap(),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

pub fn is_presence(event: &ServerEvent) -> bool {
    matches!(event, ServerEvent::Presence { .. } | ServerEvent::Join { .. } | ServerEvent::Leave { .. })
}

/// The next event, which must be a group message; a `reset` and `synced`
/// before it (the group's creation tells members that joined it empty its
/// epoch) are passed over.
pub async fn next_chat(ws: &mut Client) -> ChatMessage {
    loop {
        match next_event(ws).await {
            ServerEvent::Message(message) => return message,
            ServerEvent::Reset { .. } | ServerEvent::Synced { .. } => {}
            other => panic!("expected a message, got {other:?}"),
        }
    }
}

/// Sends `text` and checks it comes back: the connection is alive and in
/// its group.
pub async fn assert_round_trip(ws: &mut Client, text: &str) {
    let id = send_text(ws, text).await;
    let message = next_chat(ws).await;
    assert_eq!((message.id, message.text.as_str()), (id, text));
}

pub async fn next_text(ws: &mut Client) -> String {
    match next_message(ws).await {
        Message::Text(text) => text.to_string(),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

pub async fn send_command(ws: &mut Client, command: &ClientCommand) {
    ws.send(Message::text(command.encode())).await.unwrap();
}

/// Sends `text` and returns its id.
pub async fn send_text(ws: &mut Client, text: &str) -> MessageId {
    let id = MessageId(Uuid::new_v4());
    send_command(ws, &ClientCommand::Send { id, text: text.into() }).await;
    id
}

/// Reads until the close frame and returns its code.
pub async fn close_code(ws: &mut Client) -> u16 {
    loop {
        let next = tokio::time::timeout(PATIENCE, ws.next()).await.expect("timed out waiting for close");
        match next {
            Some(Ok(Message::Close(Some(frame)))) => return frame.code.into(),
            Some(Ok(Message::Close(None))) => return 1005,
            Some(Ok(_)) => continue,
            Some(Err(err)) => panic!("error before close frame: {err}"),
            None => panic!("stream ended without a close frame"),
        }
    }
}

/// Sends a raw HTTP/1.1 GET with a valid `Authorization: Bearer` token
/// (unless `headers` has one) and returns (status, body).
pub async fn http_request(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let bearer = format!("Bearer {}", token_for(Uuid::new_v4()));
    let mut headers = headers.to_vec();
    if !headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("authorization")) {
        headers.push(("Authorization", &bearer));
    }
    raw_request(addr, "GET", path, &headers, "").await
}

/// Sends a raw HTTP/1.1 request as given (`Host` is the server's address
/// unless `headers` has one) and returns (status, body).
pub async fn raw_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("host")) {
        request.push_str(&format!("Host: {addr}\r\n"));
    }
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        request.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).await.unwrap();
    // The head first: after a `101` the connection stays open.
    let mut response = Vec::new();
    let reading = async {
        while !response.windows(4).any(|window| window == b"\r\n\r\n") {
            if stream.read_buf(&mut response).await.unwrap() == 0 {
                break;
            }
        }
        if !response.starts_with(b"HTTP/1.1 101") {
            stream.read_to_end(&mut response).await.unwrap();
        }
    };
    tokio::time::timeout(PATIENCE, reading).await.expect("timed out reading the response");
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response.split(' ').nth(1).and_then(|code| code.parse().ok()).expect("status line");
    let body = response.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default();
    (status, body)
}

/// `POST /api/groups/{group}/messages` (the publish API) with `body`, the
/// API `key` and an `Idempotency-Key` when given; returns (status, body).
pub async fn post_message(
    addr: std::net::SocketAddr,
    group: &str,
    key: Option<&str>,
    idempotency: Option<&str>,
    body: &str,
) -> (u16, String) {
    let bearer = key.map(|key| format!("Bearer {key}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(bearer) = &bearer {
        headers.push(("Authorization", bearer));
    }
    if let Some(idempotency) = idempotency {
        headers.push(("Idempotency-Key", idempotency));
    }
    raw_request(addr, "POST", &format!("/api/groups/{group}/messages"), &headers, body).await
}

/// Headers of a valid WebSocket upgrade request.
pub const UPGRADE_HEADERS: [(&str, &str); 4] = [
    ("Connection", "Upgrade"),
    ("Upgrade", "websocket"),
    ("Sec-WebSocket-Version", "13"),
    ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
];

/// Waits until `condition` holds, checking it every 5 ms and failing after
/// [`PATIENCE`] (both on the runtime's clock, so paused time works too).
pub async fn eventually(mut condition: impl FnMut() -> bool) {
    eventually_async(|| std::future::ready(condition())).await;
}

/// [`eventually`] for a condition that has to wait itself (a request).
pub async fn eventually_async<F: std::future::Future<Output = bool>>(mut condition: impl FnMut() -> F) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !condition().await {
        assert!(tokio::time::Instant::now() < deadline, "condition not met in time");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// This process's resident set size, from /proc.
pub fn resident_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// A TCP connection to `addr` from the loopback address `source` (any
/// 127.x.y.z reaches a server on 127.0.0.1), with a receive buffer of
/// `recv_buffer` bytes when given (a small one makes a client that does not
/// read stall the server's writes soon).
pub async fn tcp_from(source: [u8; 4], addr: SocketAddr, recv_buffer: Option<u32>) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    if let Some(size) = recv_buffer {
        socket.set_recv_buffer_size(size).unwrap();
    }
    socket.bind(SocketAddr::from((source, 0))).unwrap();
    socket.connect(addr).await.unwrap()
}

/// The `i`th message of a firehose test (`payload` behind its number) from
/// `publisher`, which it and `reader` each read next: both keep up, in
/// order, whatever a member that does not read is doing.
pub async fn firehose_message(i: usize, payload: &str, publisher: &mut Client, reader: &mut Client) {
    publisher.send(Message::text(format!("{i:05}{payload}"))).await.unwrap();
    for member in [reader, publisher] {
        assert!(next_text(member).await.starts_with(&format!("{i:05}")));
    }
}

/// A JSON-mode WebSocket handshake over `tcp`, with `headers` added; the
/// server's refusal comes back as its status.
pub async fn upgrade_over(tcp: TcpStream, url: &str, headers: &[(&'static str, &str)]) -> Result<Client, u16> {
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert("sec-websocket-protocol", HeaderValue::from_static(SUBPROTOCOL));
    for (name, value) in headers {
        request.headers_mut().insert(*name, HeaderValue::from_str(value).unwrap());
    }
    match tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(tcp)).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => Err(response.status().as_u16()),
        Err(err) => panic!("handshake failed: {err}"),
    }
}

/// The real server binary, started on `addr` with `database`, the test
/// secret and `args`.
pub struct ServerProcess {
    pub child: std::process::Child,
    /// Where it is reached (loopback, for a wildcard listen address).
    pub addr: SocketAddr,
}

impl ServerProcess {
    pub async fn start(addr: SocketAddr, database: &std::path::Path, args: &[&str]) -> Self {
        let mut all = vec!["--secret", TEST_SECRET];
        all.extend_from_slice(args);
        Self::spawn(addr, database, &all, std::process::Stdio::inherit(), "warn").await
    }

    /// The binary listening on `listen` (a wildcard address is reached on
    /// loopback) with `database` and only `args` (no secret unless they give
    /// one), its log kept for [`Self::stop_for_log`].
    pub async fn start_logged(listen: SocketAddr, database: &std::path::Path, args: &[&str]) -> Self {
        Self::start_logged_at(listen, database, args, "warn").await
    }

    /// [`Self::start_logged`], logging at `level` (`RUST_LOG`).
    pub async fn start_logged_at(listen: SocketAddr, database: &std::path::Path, args: &[&str], level: &str) -> Self {
        Self::spawn(listen, database, args, std::process::Stdio::piped(), level).await
    }

    async fn spawn(
        listen: SocketAddr,
        database: &std::path::Path,
        args: &[&str],
        stderr: std::process::Stdio,
        level: &str,
    ) -> Self {
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_roomcast"))
            .args(["--listen", &listen.to_string(), "--database"])
            .arg(database)
            .args(["--static-dir", "/nonexistent"])
            .args(args)
            .env("RUST_LOG", level)
            .stdout(std::process::Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start the server binary");
        let addr = match listen.ip() {
            ip if ip.is_unspecified() => SocketAddr::from(([127, 0, 0, 1], listen.port())),
            _ => listen,
        };
        wait_until_listening(addr).await;
        Self { child, addr }
    }

    pub fn kill_9(mut self) {
        self.child.kill().expect("SIGKILL"); // std's kill is SIGKILL on Unix
        self.child.wait().unwrap();
    }

    /// Sends SIGTERM and waits up to `within` for the exit; its status code.
    pub async fn terminate(mut self, within: Duration) -> Option<i32> {
        self.stop(within).await
    }

    /// Waits up to `within` for the process to exit by itself; its status
    /// code.
    pub async fn exit_within(mut self, within: Duration) -> Option<i32> {
        self.wait(within).await
    }

    /// Stops a server of [`Self::start_logged`] (SIGTERM) and returns its log.
    pub async fn stop_for_log(mut self) -> String {
        self.stop(PATIENCE).await;
        let mut log = String::new();
        let stderr = self.child.stderr.take().expect("started with start_logged");
        std::io::Read::read_to_string(&mut { stderr }, &mut log).unwrap();
        log
    }

    async fn stop(&mut self, within: Duration) -> Option<i32> {
        // SAFETY: kill(2) with a child's pid and a signal number.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        self.wait(within).await
    }

    async fn wait(&mut self, within: Duration) -> Option<i32> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            if tokio::time::Instant::now() >= deadline {
                panic!("the server was still running after {within:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for ServerProcess {
    /// A test that fails midway must not leave its server running.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A free port on 127.0.0.1 (for a server binary to listen on).
pub fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

/// A node of a cluster on the Redis at `redis_url`, with `adjust`ed
/// settings (all nodes share the test secret).
pub async fn start_node(redis_url: &str, adjust: impl FnOnce(&mut Config)) -> Server {
    let mut config = test_config();
    config.redis = Some(redis_url.to_owned());
    adjust(&mut config);
    start(config).await
}

/// Reads group messages until `count` have come, skipping other events
/// (acks, pongs); returns them in the order they came.
pub async fn collect_chats(ws: &mut Client, count: usize) -> Vec<ChatMessage> {
    let mut messages = Vec::with_capacity(count);
    while messages.len() < count {
        if let ServerEvent::Message(message) = next_event(ws).await {
            messages.push(message);
        }
    }
    messages
}

/// A raw-mode WebSocket handshake by hand over `tcp` for `client` in
/// `group`: the socket after the `101`, to write frames on as an attacker
/// would (no library reading or answering on the client's side).
pub async fn raw_upgrade(tcp: TcpStream, group: &str, client: Uuid) -> TcpStream {
    upgrade_by_hand(tcp, group, client, &[]).await
}

/// [`raw_upgrade`] with `headers` added (the subprotocol, for JSON mode).
pub async fn upgrade_by_hand(mut tcp: TcpStream, group: &str, client: Uuid, headers: &[(&str, &str)]) -> TcpStream {
    let addr = tcp.peer_addr().unwrap();
    let mut request = format!("GET /ws/{group}/{client}?token={} HTTP/1.1\r\nHost: {addr}\r\n", token_for(client));
    for (name, value) in UPGRADE_HEADERS.iter().chain(headers) {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    tcp.write_all(request.as_bytes()).await.unwrap();
    // Byte by byte up to the end of the head: nothing after it is taken.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let byte = tokio::time::timeout(PATIENCE, tcp.read_u8()).await.expect("no answer to the upgrade").unwrap();
        head.push(byte);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head));
    tcp
}

/// `count` masked ping frames (as a client must send them) of `payload`
/// bytes each (at most 125), back to back.
pub fn ping_frames(count: usize, payload: usize) -> Vec<u8> {
    assert!(payload <= 125, "a control frame carries at most 125 bytes");
    let mut frame = vec![0x89, 0x80 | payload as u8, 0, 0, 0, 0];
    frame.resize(6 + payload, b'p');
    frame.repeat(count)
}

/// One masked text frame carrying `text` (under 64 KiB).
pub fn text_frame(text: &str) -> Vec<u8> {
    let mut frame = vec![0x81];
    match text.len() {
        len @ 0..=125 => frame.push(0x80 | len as u8),
        len => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&u16::try_from(len).expect("under 64 KiB").to_be_bytes());
        }
    }
    frame.extend_from_slice(&[0, 0, 0, 0]);
    frame.extend_from_slice(text.as_bytes());
    frame
}

/// The idle timeout of [`start_pinging_every_second`].
pub const QUICK_IDLE_TIMEOUT: Duration = Duration::from_secs(2);

/// A server that pings every second and counts a peer stalled after
/// [`QUICK_IDLE_TIMEOUT`].
pub async fn start_pinging_every_second() -> roomcast_backend::Server {
    let mut config = test_config();
    config.ping_interval = Duration::from_secs(1);
    config.idle_timeout = QUICK_IDLE_TIMEOUT;
    start(config).await
}

/// A raw member of `pinged` with a 4 KiB receive buffer, to write frames on
/// and never read.
pub async fn pinging_non_reader(addr: std::net::SocketAddr) -> tokio::net::TcpStream {
    raw_upgrade(tcp_from([127, 0, 0, 1], addr, Some(4096)).await, "pinged", Uuid::new_v4()).await
}

/// A member's view of its group's presence, kept from the events as a
/// client keeps it.
#[derive(Debug, Default)]
pub struct PresenceView {
    /// People and their connections.
    pub people: std::collections::BTreeMap<Uuid, u32>,
    pub count: roomcast_shared::PresenceCount,
    /// Every presence event applied, in order.
    pub events: Vec<ServerEvent>,
}

impl PresenceView {
    pub fn apply(&mut self, event: &ServerEvent) {
        match event {
            ServerEvent::Presence { members, count } => {
                self.people = members.iter().map(|member| (member.client_id.0, member.connections)).collect();
                self.count = *count;
            }
            ServerEvent::Join { members, count } => {
                self.people.extend(members.iter().map(|member| (member.client_id.0, member.connections)));
                self.count = *count;
            }
            ServerEvent::Leave { ids, count } => {
                for id in ids {
                    self.people.remove(&id.0);
                }
                self.count = *count;
            }
            _ => return,
        }
        self.events.push(event.clone());
    }

    /// Whether a `leave` named `who`.
    pub fn saw_leave_of(&self, who: Uuid) -> bool {
        self.events
            .iter()
            .any(|event| matches!(event, ServerEvent::Leave { ids, .. } if ids.iter().any(|id| id.0 == who)))
    }
}

/// Reads `ws`, applying presence events to `view` and passing over the
/// rest, until `done(view)` holds; panics if it does not within `within`.
pub async fn watch_presence(
    ws: &mut Client,
    view: &mut PresenceView,
    within: Duration,
    done: impl Fn(&PresenceView) -> bool,
) {
    let deadline = tokio::time::Instant::now() + within;
    while !done(view) {
        let frame = tokio::time::timeout_at(deadline, ws.next())
            .await
            .unwrap_or_else(|_| panic!("presence not as expected within {within:?}: {view:?}"))
            .expect("stream ended")
            .expect("websocket error");
        if let Message::Text(text) = frame {
            view.apply(&ServerEvent::decode(&text).unwrap());
        }
    }
}

/// Applies to `view` every presence event `ws` receives until the answer
/// to a `ping` (what the server had queued for it before).
pub async fn presence_until_pong(ws: &mut Client, view: &mut PresenceView) {
    send_command(ws, &ClientCommand::Ping).await;
    loop {
        match next_any_event(ws).await {
            ServerEvent::Pong => return,
            event => view.apply(&event),
        }
    }
}

/// Sends `read` for `seq` of `epoch`.
pub async fn read(ws: &mut Client, epoch: &str, seq: u64) {
    send_command(ws, &ClientCommand::Read { epoch: epoch.to_owned(), seq }).await;
}

/// The next `cursor` event, passing over the group's messages and acks.
pub async fn next_cursor(ws: &mut Client) -> (String, u64) {
    loop {
        match next_event(ws).await {
            ServerEvent::Cursor { epoch, seq } => return (epoch, seq),
            ServerEvent::Message(_) | ServerEvent::Ack { .. } => {}
            other => panic!("expected a cursor, got {other:?}"),
        }
    }
}

/// Sends `count` messages from `ws` and waits for their acks.
pub async fn publish(ws: &mut Client, count: usize) {
    let texts: Vec<String> = (0..count).map(|i| format!("m{i}")).collect();
    publish_all(ws, &texts, count).await;
}

/// The admin key of the servers [`with_admin`] configures.
pub const ADMIN_KEY: &str = "integration-tests-admin-key-0123456789abc";

/// `config` with its admin surface on a free loopback port, behind
/// [`ADMIN_KEY`].
pub fn with_admin(config: &mut Config) {
    config.admin_listen = Some("127.0.0.1:0".parse().unwrap());
    config.admin_key = Some(ADMIN_KEY.to_owned());
}

/// A request to an admin surface with [`ADMIN_KEY`]; (status, body).
pub async fn admin_call(admin: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let bearer = format!("Bearer {ADMIN_KEY}");
    raw_request(admin, method, path, &[("authorization", &bearer)], body).await
}

/// An admin API answer that must be `200` (or `201`), as JSON.
pub async fn admin_json(admin: SocketAddr, method: &str, path: &str, body: &str) -> serde_json::Value {
    let (status, text) = admin_call(admin, method, path, body).await;
    assert!(status == 200 || status == 201, "{method} {path}: {status} {text}");
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("{method} {path}: not JSON ({err}): {text}"))
}

/// The next `removed` event, then the close code.
pub async fn removed_then_closed(ws: &mut Client) -> (String, Option<u64>, u16) {
    loop {
        match next_message(ws).await {
            Message::Text(text) => {
                if let Ok(ServerEvent::Removed { reason, until_ms }) = ServerEvent::decode(&text) {
                    return (reason, until_ms, close_code(ws).await);
                }
            }
            Message::Close(frame) => panic!("closed before a removed event: {frame:?}"),
            _ => {}
        }
    }
}

/// One scrape of `/metrics`, parsed as Prometheus parses it.
pub struct Samples(Vec<prometheus_parse::Sample>);

impl Samples {
    pub async fn scrape(admin: SocketAddr) -> Self {
        let bearer = format!("Bearer {ADMIN_KEY}");
        let (status, body) = http_request(admin, "/metrics", &[("authorization", &bearer)]).await;
        assert_eq!(status, 200, "{body}");
        let scrape =
            prometheus_parse::Scrape::parse(body.lines().map(|line| Ok(line.to_owned()))).expect("Prometheus text");
        Self(scrape.samples)
    }

    /// The value of `metric` with `labels` (0 when no such series exists yet).
    pub fn get(&self, metric: &str, labels: &[(&str, &str)]) -> f64 {
        self.0
            .iter()
            .find(|sample| {
                sample.metric == metric && labels.iter().all(|(name, value)| sample.labels.get(name) == Some(*value))
            })
            .map_or(0.0, |sample| match sample.value {
                prometheus_parse::Value::Gauge(value)
                | prometheus_parse::Value::Counter(value)
                | prometheus_parse::Value::Untyped(value) => value,
                ref other => panic!("{metric}: {other:?}"),
            })
    }
}

/// Counters between two scrapes: what moved, by exactly how much.
pub fn moved(before: &Samples, after: &Samples, metric: &str, labels: &[(&str, &str)]) -> f64 {
    after.get(metric, labels) - before.get(metric, labels)
}

/// One Server-Sent Event as a client reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
    /// A shared stream's member the event is for.
    pub member: Option<usize>,
}

impl SseEvent {
    /// Its data as a `roomcast.v1` event.
    pub fn server_event(&self) -> ServerEvent {
        ServerEvent::decode(&self.data).unwrap_or_else(|err| panic!("not an event ({err:?}): {}", self.data))
    }
}

/// A `text/event-stream` response read as it comes (HTTP/1.1, chunked),
/// over a plain socket: what a browser's `fetch` or `EventSource` sees.
pub struct SseClient {
    reader: tokio::io::BufReader<TcpStream>,
    /// Body bytes read and not yet taken as events.
    pending: String,
    /// Comment lines seen (the padding, keep-alives).
    pub comments: usize,
    /// The body's length, when it is not chunked (a long poll's answer).
    length: Option<usize>,
}

impl SseClient {
    /// GETs `path` with `headers`; the status and, for a 200, the stream.
    pub async fn open(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> (u16, Option<Self>, String) {
        use tokio::io::AsyncBufReadExt;
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let mut request =
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\nConnection: close\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut reader = tokio::io::BufReader::new(stream);
        let mut head = String::new();
        loop {
            let mut line = String::new();
            let read = tokio::time::timeout(PATIENCE, reader.read_line(&mut line)).await.expect("a response head");
            if read.unwrap() == 0 || line == "\r\n" {
                break;
            }
            head.push_str(&line);
        }
        let status: u16 = head.split(' ').nth(1).and_then(|code| code.parse().ok()).expect("a status line");
        if status != 200 {
            let mut body = Vec::new();
            let _ = tokio::time::timeout(PATIENCE, reader.read_to_end(&mut body)).await;
            return (status, None, String::from_utf8_lossy(&body).into_owned());
        }
        let length = head
            .lines()
            .find_map(|line| line.to_ascii_lowercase().strip_prefix("content-length: ").map(str::to_owned))
            .map(|length| length.trim().parse().expect("a length"));
        (status, Some(Self { reader, pending: String::new(), comments: 0, length }), head)
    }

    /// The next event (comments are counted, not returned); `None` once the
    /// stream ended.
    pub async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(end) = self.pending.find("\n\n") {
                let block: String = self.pending.drain(..end + 2).collect();
                let mut event = SseEvent::default();
                let mut fields = 0;
                for line in block.lines() {
                    if line.starts_with(':') {
                        self.comments += 1;
                    } else if let Some((name, value)) = line.split_once(": ") {
                        fields += 1;
                        match name {
                            "id" => event.id = Some(value.to_owned()),
                            "event" => event.event = Some(value.to_owned()),
                            "data" => event.data.push_str(value),
                            "member" => event.member = Some(value.parse().expect("a member's index")),
                            other => panic!("unknown field {other}"),
                        }
                    }
                }
                if fields > 0 {
                    return Some(event);
                }
                continue;
            }
            let chunk = tokio::time::timeout(PATIENCE, self.chunk()).await.expect("an event in time")?;
            self.pending.push_str(&chunk);
        }
    }

    /// The next event that is not presence or "seen by" (see
    /// [`next_event`]).
    pub async fn next_event(&mut self) -> Option<SseEvent> {
        loop {
            let event = self.next().await?;
            if event.event.is_some()
                || !matches!(event.server_event(), e if is_presence(&e) || matches!(e, ServerEvent::Seen { .. }))
            {
                return Some(event);
            }
        }
    }

    /// One chunk of the chunked body (or the whole body of a known
    /// length); `None` at its end.
    async fn chunk(&mut self) -> Option<String> {
        use tokio::io::AsyncBufReadExt;
        if let Some(length) = self.length.take() {
            let mut data = vec![0; length];
            self.reader.read_exact(&mut data).await.ok()?;
            self.length = Some(0);
            return (length > 0).then(|| String::from_utf8(data).expect("UTF-8 events"));
        }
        let mut size = String::new();
        if self.reader.read_line(&mut size).await.ok()? == 0 {
            return None;
        }
        let size = usize::from_str_radix(size.trim(), 16).ok()?;
        if size == 0 {
            return None;
        }
        let mut data = vec![0; size + 2];
        self.reader.read_exact(&mut data).await.ok()?;
        data.truncate(size);
        Some(String::from_utf8(data).expect("UTF-8 events"))
    }
}
