//! The server's HTTP surface as a client reaches it: requests built from
//! the input go through `roomcast_backend::routes::routes` (every route,
//! the Host and Origin checks, the single `recover`) with
//! `warp::test::request()`, in process, over an in-memory store. Most are
//! WebSocket handshakes (`GET /ws/{group}/{client}?token&name&since&epoch`
//! with the upgrade headers); the rest are the API's and other paths.
//! Header values may be any bytes hyper lets through, not only text.
//!
//! An input that starts like an HTTP request (`GET /ws/…`) is read as one
//! (request line, headers, blank line, body): the corpus holds such
//! readable requests. Any other input chooses each part of a request, from
//! near-valid values mostly.
//!
//! Without a socket a handshake cannot be upgraded: one that passes every
//! check ends in `UpgradeError::NoUpgrade`, "the connection cannot be
//! upgraded", which is how this target sees that it was accepted.
//!
//! Properties:
//! - no request gets `500`: every refusal is a typed error with its status;
//! - a handshake gets exactly the status and message the public validators
//!   predict, in the server's order: Host, Origin, the method, the path,
//!   the query, the token (`Auth::admit_member`), then the request's own
//!   validity (group, client id, `name`, `since`, `epoch`, the upgrade
//!   headers, the version, the key, the subprotocol); and one they all
//!   accept is accepted.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::LazyLock;

use arbitrary::Unstructured;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Uri};
use roomcast_backend::auth::{Claims, GroupPattern};
use roomcast_backend::http_error::HttpError;
use roomcast_backend::routes::routes;
use roomcast_backend::upgrade::{self, UpgradeError};
use roomcast_shared::{ClientId, DisplayName, GroupName, SUBPROTOCOL, TOKEN_SUBPROTOCOL_PREFIX};
use uuid::Uuid;

use crate::fixtures::{block_on, PerThread, Renewed, UnderTest, API_KEY, TOKENS};
use crate::harness::Target;
use crate::input::{one_in, one_of, some_bytes};

pub const TARGET: Target = Target {
    name: "handshake",
    check,
    dictionary: &["roomcast.v1", "websocket", "upgrade", "13", "token", "name", "since", "epoch", "%", "&", "="],
    max_len: 1024,
};

/// The client id the handshakes mostly use, and another.
const CLIENT: &str = "6f1c2a9e-0b5d-4c61-9a55-5f6d0d3f6a10";
const OTHER: &str = "3f2504e0-4f89-4d3a-9a0c-0305e82c3301";

thread_local! {
    static BACKEND: PerThread<UnderTest> = const { RefCell::new(Renewed::new(4096)) };
}

/// A request as built from the input, before warp sees it.
#[derive(Debug)]
struct Request {
    method: Method,
    /// Path and query.
    uri: Uri,
    headers: HeaderMap,
    body: Vec<u8>,
}

/// A `/ws/{group}/{client}` request's raw path segments and query.
#[derive(Debug)]
struct Handshake<'a> {
    group: &'a str,
    client: &'a str,
    query: &'a str,
}

impl Request {
    /// The handshake this request is, if its path is `/ws/{group}/{client}`.
    fn handshake(&self) -> Option<Handshake<'_>> {
        let (group, client) = self.uri.path().strip_prefix("/ws/")?.split_once('/')?;
        (!client.contains('/')).then_some(Handshake { group, client, query: self.uri.query().unwrap_or("") })
    }
}

pub fn check(data: &[u8]) {
    let request = if starts_like_http(data) {
        // A request as hyper would hand it over; one it would refuse
        // (a bad request line) goes no further.
        let Some(request) = literal(data) else { return };
        request
    } else {
        build(&mut Unstructured::new(data))
    };
    let (status, body, expected) = BACKEND.with(|backend| {
        let mut backend = backend.borrow_mut();
        let backend = backend.get(UnderTest::new);
        let filter = routes(backend.state.clone(), STATIC_DIR.clone());
        let mut test = warp::test::request().method(request.method.as_str()).path(&request.uri.to_string());
        for (name, value) in &request.headers {
            test = test.header(name, value.clone());
        }
        if !request.body.is_empty() {
            test = test.body(&request.body);
        }
        let response = block_on(test.reply(&filter));
        let expected = request.handshake().map(|handshake| expect(backend, &request, &handshake));
        (response.status(), String::from_utf8_lossy(response.body()).into_owned(), expected)
    });
    assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR, "{request:?} got {status}: {body}");
    if let Some((expected_status, message)) = expected {
        assert_eq!((status, body.as_str()), (expected_status, format!("{message}\n").as_str()), "{request:?}");
    }
}

/// Whether the input reads as an HTTP request (`GET /…`): the corpus's
/// readable seeds. Any other input chooses a request's parts.
fn starts_like_http(data: &[u8]) -> bool {
    let method = data.split(|b| *b == b' ').next().unwrap_or_default();
    data.len() > method.len() && !method.is_empty() && method.iter().all(u8::is_ascii_uppercase)
}

/// An HTTP/1.1 request's text: request line, header lines, a blank line,
/// the body. Header lines hyper would refuse are left out; for a header
/// given twice, the last line counts (as `warp::test` sets them).
fn literal(data: &[u8]) -> Option<Request> {
    let (head, body) = match data.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(at) => (&data[..at], &data[at + 4..]),
        None => (data, &[][..]),
    };
    let mut lines = head.split(|b| *b == b'\n').map(|line| line.strip_suffix(b"\r").unwrap_or(line));
    let mut request_line = lines.next()?.split(|b| *b == b' ');
    let method = Method::from_bytes(request_line.next()?).ok()?;
    let uri =
        Uri::try_from(request_line.next()?).ok().filter(|uri| uri.scheme().is_none() && uri.path().starts_with('/'))?;
    let mut headers = HeaderMap::new();
    for line in lines {
        let Some(colon) = line.iter().position(|b| *b == b':') else { continue };
        let name = HeaderName::from_bytes(line[..colon].trim_ascii());
        let value = HeaderValue::from_bytes(line[colon + 1..].trim_ascii());
        if let (Ok(name), Ok(value)) = (name, value) {
            headers.insert(name, value);
        }
    }
    Some(Request { method, uri, headers, body: body.to_vec() })
}

/// An empty static directory: no app is built, so no `index.html`
/// answers for a path that is not served (the file system still looks).
static STATIC_DIR: LazyLock<PathBuf> = LazyLock::new(|| {
    let dir = std::env::temp_dir().join("roomcast-fuzz-static");
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    dir
});

fn build(u: &mut Unstructured<'_>) -> Request {
    let kind = u.choose_index(10).unwrap_or(0);
    let mut headers = HeaderMap::new();
    let mut add = |u: &mut Unstructured<'_>, name: HeaderName, known: &[&str]| {
        if let Some(value) = header_value(u, known) {
            headers.insert(name, value);
        }
    };
    if !one_in(u, 20) {
        add(
            u,
            header::HOST,
            &["localhost:8000", "127.0.0.1:8000", "[::1]:8000", "LOCALHOST", "127.0.0.1", "evil.example"],
        );
    }
    if one_in(u, 4) {
        add(
            u,
            header::ORIGIN,
            &["http://localhost:8000", "http://127.0.0.1:8000", "http://localhost:8080", "null", "http://evil.example"],
        );
    }
    let (method, path, query) = match kind {
        0..=5 => {
            add(u, header::CONNECTION, &["Upgrade", "keep-alive, Upgrade", "upgrade", "close"]);
            add(u, header::UPGRADE, &["websocket", "WebSocket", "websocket, h2c", "h2c"]);
            add(u, header::SEC_WEBSOCKET_VERSION, &["13", "13", "13", "8", " 13"]);
            if !one_in(u, 10) {
                add(u, header::SEC_WEBSOCKET_KEY, &["dGhlIHNhbXBsZSBub25jZQ==", ""]);
            }
            if one_in(u, 2) {
                add(
                    u,
                    header::SEC_WEBSOCKET_PROTOCOL,
                    &[SUBPROTOCOL, "chat, roomcast.v1", SUBPROTOCOL, "mqtt", ",", "ROOMCAST.V1"],
                );
            }
            let group =
                segment(&one_of(u, &["lobby", "team-a", "lobby", &"x".repeat(64), &"x".repeat(65), "é", "%41", "a.b"]));
            let client = segment(&one_of(u, &[CLIENT, CLIENT, OTHER, &CLIENT.to_uppercase(), "not-a-uuid", ""]));
            let query = query(u, &client);
            (Method::GET, format!("/ws/{group}/{client}"), query)
        }
        6 => (Method::GET, "/api/groups/lobby/messages".to_owned(), String::new()),
        7 => {
            add(u, header::AUTHORIZATION, &[&format!("Bearer {API_KEY}"), "Bearer nope", "Basic x"]);
            if one_in(u, 2) {
                add(u, HeaderName::from_static("idempotency-key"), &["k1", ""]);
            }
            (Method::POST, "/api/groups/lobby/messages".to_owned(), String::new())
        }
        8 => (Method::POST, "/api/identities".to_owned(), String::new()),
        _ => {
            let path = one_of(u, &["/api/identities/me", "/healthz", "/readyz", "/", "/room/lobby", "/ws/", "/api/"]);
            (Method::GET, segment_path(&path), String::new())
        }
    };
    if one_in(u, 3) {
        add(u, HeaderName::from_static("x-forwarded-for"), &["203.0.113.9", "garbage, 10.0.0.5", "::1"]);
    }
    if kind > 5 && one_in(u, 2) {
        let token = TOKENS.issue(&Claims::for_client(ClientId(Uuid::parse_str(CLIENT).expect("a uuid"))));
        add(u, header::AUTHORIZATION, &[&format!("Bearer {token}"), "Bearer x.y.z"]);
    }
    let method = if one_in(u, 20) { Method::PUT } else { method };
    let body = if method == Method::POST { some_bytes(u, 200) } else { Vec::new() };
    let uri = if query.is_empty() { path } else { format!("{path}?{query}") };
    Request { method, uri: uri.parse().expect("escaped to a valid URI"), headers, body }
}

/// A header value: a known one, text, or (one time in eight) any bytes;
/// `None` for one hyper would not have let through.
fn header_value(u: &mut Unstructured<'_>, known: &[&str]) -> Option<HeaderValue> {
    if one_in(u, 8) {
        HeaderValue::from_bytes(&some_bytes(u, 24)).ok()
    } else {
        HeaderValue::from_str(&one_of(u, known)).ok()
    }
}

/// The query: pairs encoded as a client would, or text as it comes.
fn query(u: &mut Unstructured<'_>, client: &str) -> String {
    if one_in(u, 6) {
        return escape(&one_of(u, &["token=", "name=%ZZ", "since=1&since=x", "a&&b", "=&="]), "&=%+");
    }
    let mut pairs: Vec<(String, String)> = Vec::new();
    if !one_in(u, 8) {
        let client = Uuid::parse_str(client).map(ClientId).unwrap_or(ClientId(Uuid::nil()));
        let mine = TOKENS.issue(&Claims::for_client(client));
        let team = TOKENS.issue(&Claims {
            groups: Some(vec!["team-*".parse::<GroupPattern>().expect("a pattern")]),
            ..Claims::for_client(client)
        });
        let expired = TOKENS.issue(&Claims { exp: Some(1), ..Claims::for_client(client) });
        pairs.push(("token".into(), one_of(u, &[&mine, &mine, &team, &expired, "x.y.z", ""])));
    }
    for (key, known) in [
        ("name", &["Ann", "server", " ", "A\u{202e}b", &"x".repeat(33), ""][..]),
        ("since", &["0", "42", "-1", "18446744073709551616", ""]),
        ("epoch", &["", "abc123", &"x".repeat(65), "a-b"]),
    ] {
        if one_in(u, 3) {
            pairs.push((key.into(), one_of(u, known)));
        }
    }
    if one_in(u, 8) {
        pairs.push((one_of(u, &["token", "x"]), one_of(u, &["", "y"])));
    }
    serde_urlencoded::to_string(&pairs).expect("pairs of strings encode")
}

/// A path segment a client could send: bytes outside the URI's path
/// characters percent-encoded, `%` itself left as it is.
fn segment(text: &str) -> String {
    escape(text, "%-._~!$&'()*+,;=:@")
}

fn segment_path(text: &str) -> String {
    let path = escape(text, "%-._~!$&'()*+,;=:@/");
    if path.starts_with('/') {
        path
    } else {
        format!("/{path}")
    }
}

/// `text` with every byte but ASCII letters, digits and `keep`
/// percent-encoded; if the result is still not a valid URI, `%` too.
fn escape(text: &str, keep: &str) -> String {
    let encode = |keep: &str| {
        text.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || keep.as_bytes().contains(&b) {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect::<String>()
    };
    let escaped = encode(keep);
    if format!("/{escaped}").parse::<Uri>().is_ok() {
        escaped
    } else {
        encode(&keep.replace('%', ""))
    }
}

/// The status and message a handshake should get, from the public
/// validators, in the order the server applies them.
fn expect(backend: &UnderTest, request: &Request, handshake: &Handshake<'_>) -> (StatusCode, String) {
    let Handshake { group, client, query } = *handshake;
    let headers = &request.headers;
    let host = match text(headers, header::HOST) {
        Ok(host) => host,
        Err(_) => return (StatusCode::BAD_REQUEST, "the host header must be text".into()),
    };
    let origin = match text(headers, header::ORIGIN) {
        Ok(origin) => origin,
        Err(_) => return (StatusCode::BAD_REQUEST, "the origin header must be text".into()),
    };
    if let Err(err) = backend.state.access.check(host, origin) {
        return (err.status(), err.to_string());
    }
    // Every route but the API's POSTs is a GET: warp tells the method
    // before a path that matches no route.
    if request.method != Method::GET {
        return (StatusCode::METHOD_NOT_ALLOWED, "method not allowed".into());
    }
    if group.is_empty() || client.is_empty() {
        return (StatusCode::NOT_FOUND, "not found".into());
    }
    let Ok(query) = serde_urlencoded::from_str::<HashMap<String, String>>(query) else {
        return (StatusCode::BAD_REQUEST, "invalid query string".into());
    };
    let token = upgrade::offered_token(headers).or(query.get("token").map(String::as_str));
    if let Err(err) = backend.state.auth.admit_member(token, client, group, query.get("with").map(String::as_str)) {
        return (err.status(), err.to_string());
    }
    let err = validity(group, client, &query, headers);
    (err.status(), err.to_string())
}

/// A header's value as text, `None` when it is absent.
fn text(headers: &HeaderMap, name: HeaderName) -> Result<Option<&str>, http::header::ToStrError> {
    headers.get(name).map(HeaderValue::to_str).transpose()
}

/// Why an admitted handshake is refused: `NoUpgrade` once everything is
/// valid (there is no socket to upgrade).
fn validity(group: &str, client: &str, query: &HashMap<String, String>, headers: &HeaderMap) -> UpgradeError {
    if let Err(err) = group.parse::<GroupName>() {
        return UpgradeError::BadName(err);
    }
    if let Err(err) = client.parse::<ClientId>() {
        return UpgradeError::BadName(err);
    }
    if let Some(Err(err)) = query.get("name").filter(|name| !name.is_empty()).map(|name| name.parse::<DisplayName>()) {
        return UpgradeError::BadDisplayName(err);
    }
    if query.get("since").is_some_and(|since| since.parse::<u64>().is_err()) {
        return UpgradeError::BadSince;
    }
    if query.get("epoch").is_some_and(|epoch| epoch.len() > 64 || !epoch.bytes().all(|b| b.is_ascii_alphanumeric())) {
        return UpgradeError::BadEpoch;
    }
    if !tokens_of(headers, header::CONNECTION).any(|token| token.eq_ignore_ascii_case("upgrade"))
        || !tokens_of(headers, header::UPGRADE).any(|token| token.eq_ignore_ascii_case("websocket"))
    {
        return UpgradeError::NotWebSocket;
    }
    if headers.get(header::SEC_WEBSOCKET_VERSION).map(HeaderValue::as_bytes) != Some(b"13") {
        return UpgradeError::UnsupportedVersion;
    }
    if !headers.contains_key(header::SEC_WEBSOCKET_KEY) {
        return UpgradeError::MissingKey;
    }
    let mut offered = tokens_of(headers, header::SEC_WEBSOCKET_PROTOCOL)
        .filter(|token| !token.is_empty() && !token.starts_with(TOKEN_SUBPROTOCOL_PREFIX))
        .peekable();
    if offered.peek().is_some() && !offered.any(|token| token == SUBPROTOCOL) {
        return UpgradeError::UnsupportedSubprotocol;
    }
    UpgradeError::NoUpgrade
}

/// The comma-separated tokens of a header's text values, trimmed.
fn tokens_of(headers: &HeaderMap, name: HeaderName) -> impl Iterator<Item = &str> {
    headers
        .get_all(name)
        .into_iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
}
