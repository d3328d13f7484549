//! The WebSocket itself: where it goes, what it offers, and the two handles
//! the browser gives for it (gloo-net's stream to read and write, the raw
//! `web_sys::WebSocket` to close with a code).
//!
//! The token rides in the socket's second subprotocol, never in its URL
//! (URLs end up in proxies' logs).

use futures_util::SinkExt;
use gloo_net::websocket::futures::WebSocket;
use gloo_net::websocket::Message;
use roomcast_shared::{close, ClientCommand, ClientId, SUBPROTOCOL, TOKEN_SUBPROTOCOL_PREFIX};

use crate::session::ResumeCursor;

/// Where the socket goes: `{prefix}{client_id}?{query}[&since=…[&epoch=…]]`.
/// No token: that goes in the subprotocols ([`protocols`]).
#[derive(Debug, Clone, PartialEq)]
pub struct SocketTarget {
    /// `ws(s)://host/ws/{group}/`
    pub prefix: String,
    /// `name=…`, encoded (and a direct message's `&with=…`).
    pub query: String,
}

impl SocketTarget {
    /// The socket's URL for `client_id`, asking for what follows `resume`.
    pub fn url(&self, client_id: ClientId, resume: &ResumeCursor) -> String {
        format!("{}{client_id}?{}{}", self.prefix, self.query, resume.query())
    }

    /// `http(s)://host/api/events/{group}/`: the HTTP transport's prefix.
    fn http_prefix(&self) -> String {
        let (scheme, rest) = self.prefix.split_once("://").unwrap_or(("ws", &self.prefix));
        let scheme = if scheme == "wss" { "https" } else { "http" };
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        let group = path.strip_prefix("ws/").unwrap_or(path);
        format!("{scheme}://{host}/api/events/{group}")
    }

    /// The HTTP transport's event stream for `client_id`, asking for what
    /// follows `resume` (the same query as the socket's).
    pub fn events_url(&self, client_id: ClientId, resume: &ResumeCursor) -> String {
        format!("{}{client_id}?{}{}", self.http_prefix(), self.query, resume.query())
    }

    /// The member this target names, as the browser's shared stream asks
    /// for it: `group={group}&{query}` (no position).
    pub fn member_query(&self) -> String {
        let group = self.prefix.trim_end_matches('/').rsplit('/').next().unwrap_or_default();
        format!("group={group}&{}", self.query)
    }

    /// Where the HTTP transport posts commands: only a direct message's
    /// `with=…` goes in its query.
    pub fn commands_url(&self, client_id: ClientId) -> String {
        let with: Vec<&str> = self.query.split('&').filter(|part| part.starts_with("with=")).collect();
        let query = if with.is_empty() { String::new() } else { format!("?{}", with.join("&")) };
        format!("{}{client_id}{query}", self.http_prefix())
    }
}

/// `trunk serve`'s port and the backend's default port (Trunk.toml, config).
const TRUNK_SERVE_PORT: &str = "8080";
const DEV_BACKEND_PORT: u16 = 8000;

/// `ws(s)://<this host>`: sockets go to the page's own origin.
///
/// One exception, in debug builds only: under `trunk serve` the socket goes
/// to the backend directly. trunk 0.21 proxies the WebSocket but drops the
/// negotiated subprotocol from its `101` response, and browsers refuse a
/// connection whose requested subprotocol is not confirmed.
pub fn base() -> String {
    let location = web_sys::window().map(|window| window.location());
    let field = |read: fn(&web_sys::Location) -> Result<String, wasm_bindgen::JsValue>| {
        location.as_ref().and_then(|l| read(l).ok()).unwrap_or_default()
    };
    let scheme = if field(web_sys::Location::protocol) == "https:" { "wss" } else { "ws" };
    let host = if cfg!(debug_assertions) && field(web_sys::Location::port) == TRUNK_SERVE_PORT {
        format!("{}:{DEV_BACKEND_PORT}", field(web_sys::Location::hostname))
    } else {
        field(web_sys::Location::host)
    };
    format!("{scheme}://{host}")
}

/// `http(s)://<the socket's host>`: where the HTTP transport goes when
/// sockets cannot.
pub fn http_base() -> String {
    let base = base();
    match base.split_once("://") {
        Some(("wss", host)) => format!("https://{host}"),
        Some((_, host)) => format!("http://{host}"),
        None => base,
    }
}

/// The subprotocols the socket offers: the JSON protocol, and `token` as
/// the second one (the server answers with the first alone).
pub fn protocols(token: &str) -> [String; 2] {
    [SUBPROTOCOL.to_owned(), format!("{TOKEN_SUBPROTOCOL_PREFIX}{token}")]
}

/// A socket, from opening to closed.
pub struct Socket {
    raw: web_sys::WebSocket,
    ws: WebSocket,
}

impl Socket {
    /// Opens a socket to `url` offering `token`; `None` if the browser
    /// refuses to.
    pub fn open(url: &str, token: &str) -> Option<Self> {
        let protocols: js_sys::Array = protocols(token).iter().map(|p| wasm_bindgen::JsValue::from_str(p)).collect();
        let raw = web_sys::WebSocket::new_with_str_sequence(url, &protocols).ok()?;
        let ws = WebSocket::try_from(raw.clone()).ok()?;
        Some(Self { raw, ws })
    }

    /// The stream of frames (and the sink that turns ready once the socket
    /// leaves CONNECTING).
    pub fn stream(&mut self) -> &mut WebSocket {
        &mut self.ws
    }

    /// Whether the socket is OPEN (not closing already).
    pub fn is_open(&self) -> bool {
        self.raw.ready_state() == web_sys::WebSocket::OPEN
    }

    /// Writes `command`. A failed write means the socket is closing: its
    /// close follows, and the caller learns of it then.
    pub async fn send(&mut self, command: &ClientCommand) {
        let _ = self.ws.send(Message::Text(command.encode())).await;
    }

    /// Closes with 1000 and `why` at once, without waiting for the peer.
    pub fn close(&self, why: &str) {
        let _ = self.raw.close_with_code_and_reason(close::NORMAL, why);
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    fn target() -> SocketTarget {
        SocketTarget { prefix: "wss://chat.example/ws/lobby/".into(), query: "name=Ann".into() }
    }

    #[test]
    fn the_socket_url_names_the_client_and_what_it_holds() {
        let client = ClientId(Uuid::from_u128(1));
        let mut resume = ResumeCursor::default();
        assert_eq!(target().url(client, &resume), format!("wss://chat.example/ws/lobby/{client}?name=Ann"));
        resume.welcomed("9f2c".into());
        resume.received(41);
        assert_eq!(
            target().url(client, &resume),
            format!("wss://chat.example/ws/lobby/{client}?name=Ann&since=41&epoch=9f2c")
        );
    }

    #[test]
    fn the_http_transport_goes_to_the_events_api_with_the_same_query() {
        let client = ClientId(Uuid::from_u128(1));
        let mut resume = ResumeCursor::default();
        resume.welcomed("9f2c".into());
        resume.received(41);
        assert_eq!(
            target().events_url(client, &resume),
            format!("https://chat.example/api/events/lobby/{client}?name=Ann&since=41&epoch=9f2c")
        );
        assert_eq!(target().commands_url(client), format!("https://chat.example/api/events/lobby/{client}"));
        let plain = SocketTarget { prefix: "ws://h:8000/ws/dm-1/".into(), query: "name=A&with=abc".into() };
        assert_eq!(plain.commands_url(client), format!("http://h:8000/api/events/dm-1/{client}?with=abc"));
        assert_eq!(
            plain.events_url(client, &ResumeCursor::default()),
            format!("http://h:8000/api/events/dm-1/{client}?name=A&with=abc")
        );
    }

    #[test]
    fn the_token_is_offered_as_the_second_subprotocol() {
        assert_eq!(protocols("a.b.c"), ["roomcast.v1".to_owned(), "roomcast.token.a.b.c".to_owned()]);
    }
}
