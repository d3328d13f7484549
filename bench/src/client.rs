//! Opening WebSocket connections to the server under test.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::OnceLock;

use anyhow::Context;
use clap::ValueEnum;
use roomcast_backend::auth::{Claims, Secret, Tokens};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::WebSocketStream;
use uuid::Uuid;

pub type Socket = WebSocketStream<TcpStream>;

/// Tokens for the generator's clients, when it knows the server's secret.
static TOKENS: OnceLock<Tokens> = OnceLock::new();

/// Signs every connection's client id with `secret` (the server's), as
/// `--auth required` (its default) wants.
pub fn sign_with(secret: &str) -> anyhow::Result<()> {
    let secret = Secret::from_text(secret).context("--secret")?;
    let _ = TOKENS.set(Tokens::new(&secret));
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    Json,
    Raw,
}

/// Connects to `group` from source address `source`.
pub async fn connect(server: SocketAddr, source: IpAddr, group: &str, mode: Mode) -> anyhow::Result<Socket> {
    let stream = tcp(server, source, None).await.context("tcp connect")?;
    let join = Join { group, client: Uuid::new_v4(), mode, resume: None };
    upgrade(server, stream, &join).await.context("handshake")
}

/// A TCP connection to `server` from `source`. `receive_buffer` sets
/// SO_RCVBUF before the connection exists (the window is agreed on at
/// connect): a small one makes a peer whose socket fills at once.
pub async fn tcp(server: SocketAddr, source: IpAddr, receive_buffer: Option<u32>) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    if let Some(bytes) = receive_buffer {
        socket.set_recv_buffer_size(bytes)?;
    }
    socket.bind(SocketAddr::new(source, 0))?;
    let stream = socket.connect(server).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Who joins which group, and how.
#[derive(Debug, Clone, Copy)]
pub struct Join<'a> {
    pub group: &'a str,
    pub client: Uuid,
    pub mode: Mode,
    /// The last sequence number held and its epoch (`since`, `epoch`), to
    /// resume the group's history after it.
    pub resume: Option<(u64, &'a str)>,
}

/// The token for `client`, when the generator knows the server's secret.
pub fn token(client: Uuid) -> Option<String> {
    TOKENS.get().map(|tokens| tokens.issue(&Claims::for_client(roomcast_shared::ClientId(client))))
}

/// The WebSocket handshake on `stream`. A refused one is tungstenite's
/// `Error::Http`, which holds the server's response and so its status.
pub async fn upgrade(
    server: SocketAddr,
    stream: TcpStream,
    join: &Join<'_>,
) -> Result<Socket, tokio_tungstenite::tungstenite::Error> {
    let mut url = format!("ws://{server}/ws/{}/{}", join.group, join.client);
    let mut query = Vec::new();
    if let Some(token) = token(join.client) {
        query.push(format!("token={token}"));
    }
    if let Some((since, epoch)) = join.resume {
        query.push(format!("since={since}"));
        if !epoch.is_empty() {
            query.push(format!("epoch={epoch}"));
        }
    }
    if !query.is_empty() {
        url.push('?');
        url.push_str(&query.join("&"));
    }
    let mut request = url.into_client_request()?;
    if join.mode == Mode::Json {
        request.headers_mut().insert("sec-websocket-protocol", HeaderValue::from_static(roomcast_shared::SUBPROTOCOL));
    }
    // Small buffers: the generator holds many sockets too.
    let config = WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0);
    let (socket, _) = tokio_tungstenite::client_async_with_config(request, stream, Some(config)).await?;
    Ok(socket)
}

/// Source addresses 127.0.0.1 to 127.0.0.32 in turn: together they pass the
/// ~28k ephemeral ports of a single address, and the sockets earlier runs
/// left in TIME_WAIT rarely collide with new ones.
pub fn source_address(index: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + (index % 32) as u8))
}

/// The server's open connections, from its /healthz.
pub async fn server_connections(addr: SocketAddr) -> anyhow::Result<u64> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let body = response.split_once("\r\n\r\n").context("no body")?.1;
    let health: serde_json::Value = serde_json::from_str(body).context("healthz is not JSON")?;
    health["connections"].as_u64().context("no connection count")
}
