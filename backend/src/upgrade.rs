//! The WebSocket upgrade, done here rather than by `warp::ws()`: warp's
//! filter fixes tungstenite's default 128 KiB read buffer per connection,
//! while Roomcast wants a few KiB per idle connection. Everything a client can
//! get wrong is checked before the `101 Switching Protocols`, so a bad request
//! gets a plain-text HTTP error instead of a dropped socket.

use std::collections::HashMap;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;

use http::header::{self, HeaderMap, HeaderValue};
use http::StatusCode;
use hyper::upgrade::OnUpgrade;
use roomcast_shared::{
    ClientId, DisplayName, GroupName, NameError, ROOMS_STREAM, SUBPROTOCOL, TOKEN_SUBPROTOCOL_PREFIX,
};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role as Side, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;
use tokio_util::task::TaskTracker;
use uuid::Uuid;
use warp::reply::Response;

use crate::auth::Admitted;
use crate::batched_io::BatchedWriter;
use crate::connection::{self, Context, Peer, Role};
use crate::history::Start;
use crate::http_error::HttpError;
use crate::net::{self, Place};
use crate::presence::{Presence, Who};
use crate::registry::{Registry, WireMode};

/// Read buffer per connection. Small on purpose: idle connections dominate,
/// and tungstenite grows the buffer for the rare large message.
const READ_BUFFER_BYTES: usize = 2 * 1024;

/// Why an upgrade request was refused (HTTP 400, 426 or 503).
#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    #[error(transparent)]
    BadName(#[from] NameError),
    #[error("display name: {0}")]
    BadDisplayName(NameError),
    #[error("since must be a sequence number (a non-negative integer)")]
    BadSince,
    #[error("epoch must be at most 64 letters and digits")]
    BadEpoch,
    #[error("expected a WebSocket upgrade request (Connection: Upgrade, Upgrade: websocket)")]
    NotWebSocket,
    #[error("missing Sec-WebSocket-Key")]
    MissingKey,
    #[error("unsupported WebSocket version: this server speaks version 13")]
    UnsupportedVersion,
    #[error("unsupported subprotocol: this server speaks {SUBPROTOCOL} or none (raw text)")]
    UnsupportedSubprotocol,
    #[error("the connection cannot be upgraded")]
    NoUpgrade,
    #[error("server shutting down")]
    ShuttingDown,
    #[error("the rooms stream speaks {SUBPROTOCOL} only")]
    RoomsStreamIsJson,
}

impl warp::reject::Reject for UpgradeError {}

impl HttpError for UpgradeError {
    fn status(&self) -> StatusCode {
        match self {
            Self::UnsupportedVersion => StatusCode::UPGRADE_REQUIRED,
            Self::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// What an upgrade needs: where connections join (the group and its
/// presence), what they share, and the tracker that shutdown waits on.
#[derive(Debug, Clone)]
pub struct Upgrades {
    pub registry: Arc<Registry>,
    pub presence: Arc<Presence>,
    pub context: Arc<Context>,
    pub tasks: TaskTracker,
}

/// The request of a client already `admitted` (its token, if any, checked),
/// as the route read it.
#[derive(Debug)]
pub struct Request<'a> {
    pub group: &'a str,
    pub client_id: &'a str,
    pub query: &'a HashMap<String, String>,
    pub headers: &'a HeaderMap,
    pub on_upgrade: Option<OnUpgrade>,
    pub ip: IpAddr,
    /// The connection's places in the admission counts, kept while it lives.
    pub place: Place,
}

/// Validates `request` and, if it is acceptable, answers `101` and starts
/// serving the connection once hyper hands over the socket.
pub fn accept(request: Request<'_>, admitted: Admitted, upgrades: &Upgrades) -> Result<Response, UpgradeError> {
    let Request { group, client_id, query, headers, on_upgrade, ip, place } = request;
    let (group, role) = role_of(group, query)?;
    let client_id: ClientId = client_id.parse()?;
    // The request's own fields first, then what makes it a WebSocket one.
    let asked = asked(query, &admitted)?;
    if !header_has_token(headers, header::CONNECTION, "upgrade")
        || !header_has_token(headers, header::UPGRADE, "websocket")
    {
        return Err(UpgradeError::NotWebSocket);
    }
    if headers.get(header::SEC_WEBSOCKET_VERSION).map(HeaderValue::as_bytes) != Some(b"13") {
        return Err(UpgradeError::UnsupportedVersion);
    }
    let key = headers.get(header::SEC_WEBSOCKET_KEY).ok_or(UpgradeError::MissingKey)?;
    let mode = negotiate_mode(headers)?;
    if role == Role::Rooms && mode != WireMode::Json {
        return Err(UpgradeError::RoomsStreamIsJson);
    }
    let on_upgrade = on_upgrade.ok_or(UpgradeError::NoUpgrade)?;
    let peer = describe(Described { group, role, client_id, asked, ip, mode }, &admitted, upgrades)?;
    let config = socket_config(upgrades.context.settings.max_message_bytes);
    let members = upgrades.clone();
    let serve = async move {
        let _place = place;
        let upgraded = match on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(err) => {
                tracing::debug!(conn = %peer.connection_id, %err, "upgrade failed");
                return;
            }
        };
        // The bare TCP socket, without hyper's buffers around it: an idle
        // connection holds no more than it must.
        let Ok((stream, already_read)) = net::take_socket(upgraded) else {
            tracing::error!(conn = %peer.connection_id, "an upgraded connection without its socket");
            return;
        };
        // What the client sent along with its request (its first frames),
        // copied out: the bytes hyper hands over share its whole read
        // buffer (8 KiB), which must not live as long as the connection.
        let sent_along = (!already_read.is_empty()).then(|| already_read.to_vec());
        drop(already_read);
        // Open as long as the connection's membership, which ends direct
        // writes when it is dropped, before the socket is.
        let fd = stream.as_raw_fd();
        let io = BatchedWriter::new(stream);
        let socket = match sent_along {
            None => WebSocketStream::from_raw_socket(io, Side::Server, Some(config)).await,
            Some(part) => WebSocketStream::from_partially_read(io, part, Side::Server, Some(config)).await,
        };
        serve_member(socket, peer, members, Some(fd)).await;
    };
    spawn(upgrades, serve);
    Ok(switching(key, mode))
}

/// What a member asks for in its request's query: its name (a token's
/// wins over `?name=`) and where its replay starts (`since`, `epoch`).
#[derive(Debug)]
pub struct Asked {
    name: Option<DisplayName>,
    start: Start,
}

/// `query`'s name, `since` and `epoch`, checked.
pub fn asked(query: &HashMap<String, String>, admitted: &Admitted) -> Result<Asked, UpgradeError> {
    let from_query = query
        .get("name")
        .filter(|name| !name.is_empty())
        .map(|name| name.parse::<DisplayName>().map_err(UpgradeError::BadDisplayName))
        .transpose()?;
    let name = admitted.name().cloned().or(from_query);
    let since = query.get("since").map(|since| since.parse::<u64>().map_err(|_| UpgradeError::BadSince)).transpose()?;
    let epoch = query.get("epoch").filter(|epoch| !epoch.is_empty()).cloned();
    if epoch.as_ref().is_some_and(|epoch| !is_epoch(epoch)) {
        return Err(UpgradeError::BadEpoch);
    }
    Ok(Asked { name, start: Start { since, epoch } })
}

/// What [`describe`] takes, already parsed by the transport.
#[derive(Debug)]
pub struct Described {
    pub group: GroupName,
    pub role: Role,
    pub client_id: ClientId,
    pub asked: Asked,
    pub ip: IpAddr,
    pub mode: WireMode,
}

/// A member's connection as every transport describes it (a socket, or an
/// HTTP session), with a new connection id; refused while the node stops
/// or drains.
pub fn describe(described: Described, admitted: &Admitted, upgrades: &Upgrades) -> Result<Peer, UpgradeError> {
    let Described { group, role, client_id, asked: Asked { name, start }, ip, mode } = described;
    let context = &upgrades.context;
    if context.shutdown.is_cancelled() || context.drain.is_draining() {
        return Err(UpgradeError::ShuttingDown);
    }
    Ok(Peer {
        connection_id: Uuid::new_v4(),
        client_id,
        name,
        verified: admitted.verified(),
        token_expires_at: admitted.claims.as_ref().and_then(|claims| claims.exp),
        ip,
        group,
        mode,
        role,
        start,
    })
}

/// Whether `text` can be an epoch: 1 to 64 letters and digits.
pub fn is_epoch(text: &str) -> bool {
    !text.is_empty() && text.len() <= 64 && text.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Runs `serve` (a connection's whole life) among the server's connection
/// tasks, dropped a little after the close grace at shutdown.
pub fn spawn(upgrades: &Upgrades, serve: impl std::future::Future<Output = ()> + Send + 'static) {
    let abandon = upgrades.context.abandon.clone();
    // Boxed: the wrapper would otherwise hold the connection's future twice
    // over (as its argument and as its pinned local), 4 KiB more for every
    // idle connection.
    let serve = Box::pin(serve);
    upgrades.tasks.spawn(async move { abandon.run_until_cancelled(serve).await });
}

/// Serves `peer` over `socket` (a client's, or one end of an HTTP
/// session's pipe) until it ends: joins its group, takes its seat in the
/// group's presence (or its place among the rooms streams), and runs the
/// connection. No tracing span per connection: a span's recorded fields
/// cost about half a KiB for the connection's lifetime; the few log events
/// carry the connection's fields themselves instead. `direct_fd`, the
/// client's socket under `socket`, lets the fan-out write to it
/// ([`crate::direct_writes`]).
///
/// Not an `async fn`: one would keep its arguments (the socket, the peer)
/// beside the connection's future that takes them, about 0.9 KiB more per
/// idle connection (measured: 19,000 JSON connections, 8.54 KiB each as an
/// `async fn`, 7.64 as this). The setup runs now; the future is the
/// connection's own.
pub fn serve_member<S>(
    socket: WebSocketStream<S>,
    peer: Peer,
    upgrades: Upgrades,
    direct_fd: Option<RawFd>,
) -> impl std::future::Future<Output = ()>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let Upgrades { registry, presence, context, .. } = upgrades;
    let membership = registry.join(&peer.group, peer.mode, peer.client_id);
    membership.note_address(peer.ip);
    if let Some(fd) = direct_fd {
        membership.write_directly(fd);
    }
    // A ban noted since the request was checked missed this member when it
    // closed the others: it closes now.
    if let Some(removal) = context.auth.removal_of(peer.verified.then_some(peer.client_id), peer.ip) {
        membership.queue().remove(removal);
    }
    // A member's seat in its group's presence, or a rooms stream's place
    // among the node's streams; given back when it ends.
    let places = match peer.role {
        Role::Member { .. } => (Some(presence.seat(&peer.group, who(&peer))), None),
        Role::Rooms => (None, Some(context.rooms.open(peer.client_id, membership.queue().clone()))),
    };
    futures_util::FutureExt::map(connection::serve(socket, peer, membership, context), move |()| drop(places))
}

/// The group a request's path names, and what the connection is for: the
/// reserved name is the identity's rooms stream; a direct message group's
/// member knows the other participant (`with`, checked by the admission).
pub fn role_of(group: &str, query: &HashMap<String, String>) -> Result<(GroupName, Role), UpgradeError> {
    if group == ROOMS_STREAM {
        return Ok((GroupName::rooms_stream(), Role::Rooms));
    }
    let group: GroupName = group.parse()?;
    let with = group.is_direct().then(|| query.get("with").and_then(|with| with.parse().ok())).flatten();
    Ok((group, Role::Member { with }))
}

/// Who `peer` is in its group's presence: a verified JSON member by its
/// identity, anyone else only counted.
fn who(peer: &Peer) -> Who {
    if peer.verified && peer.mode == WireMode::Json {
        Who::Person { sub: peer.client_id, name: peer.name.clone() }
    } else {
        Who::Anonymous
    }
}

/// The `101 Switching Protocols` for the request's `key`, naming
/// `roomcast.v1` in JSON mode.
fn switching(key: &HeaderValue, mode: WireMode) -> Response {
    let mut response = Response::default();
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let reply = response.headers_mut();
    reply.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    reply.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    // derive_accept_key returns base64, which is always a valid header value.
    let accept = HeaderValue::from_str(&derive_accept_key(key.as_bytes())).expect("base64 is a valid header");
    reply.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    if mode == WireMode::Json {
        reply.insert(header::SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(SUBPROTOCOL));
    }
    response
}

/// The production WebSocket settings: small buffers and bounded messages.
/// tungstenite passes every frame straight on to the [`BatchedWriter`],
/// which turns a batch into one socket write and frees its memory after.
pub fn socket_config(max_message_bytes: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(0)
        .max_write_buffer_size(connection::write_buffer_limit(max_message_bytes))
        .max_message_size(Some(max_message_bytes))
        .max_frame_size(Some(max_message_bytes))
}

/// The subprotocols a client offers, in order.
fn offered(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|token| !token.is_empty())
}

/// A token offered as the subprotocol `roomcast.token.{token}`: out of the
/// URL, so out of proxies' request logs. Never echoed.
pub fn offered_token(headers: &HeaderMap) -> Option<&str> {
    offered(headers).find_map(|protocol| protocol.strip_prefix(TOKEN_SUBPROTOCOL_PREFIX))
}

/// `roomcast.v1` if the client offers it; raw if it offers nothing (or
/// only its token); an error if it offers only protocols this server does
/// not speak (a browser would fail such a connection anyway, with a less
/// helpful message).
fn negotiate_mode(headers: &HeaderMap) -> Result<WireMode, UpgradeError> {
    let mut offered = offered(headers).filter(|protocol| !protocol.starts_with(TOKEN_SUBPROTOCOL_PREFIX)).peekable();
    if offered.peek().is_none() {
        return Ok(WireMode::Raw);
    }
    if offered.any(|token| token == SUBPROTOCOL) {
        Ok(WireMode::Json)
    } else {
        Err(UpgradeError::UnsupportedSubprotocol)
    }
}

fn header_has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|part| part.trim().eq_ignore_ascii_case(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn the_subprotocol_picks_the_mode() {
        assert_eq!(negotiate_mode(&headers(&[])).unwrap(), WireMode::Raw);
        let json = headers(&[("sec-websocket-protocol", "chat, roomcast.v1")]);
        assert_eq!(negotiate_mode(&json).unwrap(), WireMode::Json);
        let other = headers(&[("sec-websocket-protocol", "mqtt")]);
        assert!(matches!(negotiate_mode(&other), Err(UpgradeError::UnsupportedSubprotocol)));
    }

    #[test]
    fn a_token_rides_as_a_subprotocol_and_picks_no_mode() {
        let json = headers(&[("sec-websocket-protocol", "roomcast.v1, roomcast.token.aaa.bbb.ccc")]);
        assert_eq!((negotiate_mode(&json).unwrap(), offered_token(&json)), (WireMode::Json, Some("aaa.bbb.ccc")));
        let raw = headers(&[("sec-websocket-protocol", "roomcast.token.aaa.bbb.ccc")]);
        assert_eq!((negotiate_mode(&raw).unwrap(), offered_token(&raw)), (WireMode::Raw, Some("aaa.bbb.ccc")));
        assert_eq!(offered_token(&headers(&[])), None);
    }

    #[test]
    fn connection_tokens_are_matched_case_insensitively() {
        let map = headers(&[("connection", "keep-alive, Upgrade")]);
        assert!(header_has_token(&map, header::CONNECTION, "upgrade"));
        assert!(!header_has_token(&map, header::UPGRADE, "websocket"));
    }
}
