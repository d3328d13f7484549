//! The HTTP fallback's routes (see `http_session`): the event stream and
//! the commands of one member, `/api/events/{group}/{client_id}`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use http::header::{self, HeaderValue};
use http::StatusCode;
use roomcast_shared::{ClientCommand, Sender};
use uuid::Uuid;
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

use super::extract::client_address;
use super::extract::with;
use super::gate::{Gate, Knock, Passed};
use crate::auth::{self, Admitted, AuthError};
use crate::connection::Peer;
use crate::http_error::HttpError;
use crate::http_session::commands::{self, Poster, MAX_COMMANDS};
use crate::http_session::events;
use crate::http_session::polls::{Polled, Polls};
use crate::http_session::stream::{self, Shape};
use crate::net::Place;
use crate::net::Remote;
use crate::registry::WireMode;
use crate::upgrade::{self, Described, UpgradeError};

/// Most members one shared stream carries (a browser's tabs' rooms and its
/// rooms stream).
pub const MAX_SHARED_MEMBERS: usize = 16;

/// Largest body of a post of commands.
const MAX_BODY_BYTES: u64 = 256 * 1024;

/// Why an HTTP session's request was refused.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("a post without Origin needs the header X-Roomcast: 1")]
    NoRoomcastHeader,
    #[error("the body must be a JSON array of at most {MAX_COMMANDS} commands: {0}")]
    BadBody(String),
    #[error("Last-Event-ID must be {{epoch}}:{{seq}}")]
    BadLastEventId,
    #[error("long polling needs a token, and this node holds as many sessions as it may; try again shortly")]
    NoPollSession,
    #[error("a shared stream names 1 to {MAX_SHARED_MEMBERS} members, each `m` a member's query with its `group`")]
    BadMembers,
}

impl warp::reject::Reject for SessionError {}

impl HttpError for SessionError {
    fn status(&self) -> StatusCode {
        match self {
            Self::NoRoomcastHeader => StatusCode::FORBIDDEN,
            Self::BadBody(_) | Self::BadLastEventId | Self::BadMembers => StatusCode::BAD_REQUEST,
            Self::NoPollSession => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// The HTTP fallback's routes, together (one branch of the routes' tree:
/// a flat chain of every route is too deep for the compiler's trait
/// checks).
pub fn routes(gate: Gate, polls: Arc<Polls>) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    shared(gate.clone(), polls.clone())
        .or(events(gate.clone(), polls))
        .unify()
        .or(commands(gate.clone()))
        .unify()
        .or(ticket(gate))
        .unify()
}

/// GET /api/events/{group}/{client_id}[?since={seq}&epoch={epoch}][&name=…][&with=…]
/// with `Authorization: Bearer {token}` (or, resuming, `Last-Event-ID:
/// {epoch}:{seq}`): the member's events as Server-Sent Events, streamed;
/// with `&poll=1[&session={id}]`, long polling: what came (in the same
/// format), or nothing after `--long-poll-timeout`, and the session to
/// name in the next poll (`X-Roomcast-Session`).
fn events(gate: Gate, polls: Arc<Polls>) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "events" / String / String)
        .and(warp::get())
        .and(warp::query::<HashMap<String, String>>())
        .and(warp::header::headers_cloned())
        .and(warp::ext::optional::<Remote>())
        .and(with((gate, polls)))
        .and_then(
            |group: String,
             client: String,
             mut query: HashMap<String, String>,
             headers: http::HeaderMap,
             remote: Option<Remote>,
             (gate, polls): (Gate, Arc<Polls>)| async move {
                let ticket = query.get("ticket").map(String::as_str);
                let Passed { admitted, ip, place } =
                    gate.pass(knock(&group, &client, &query, &headers, remote, ticket)).await?;
                let polling = query.contains_key("poll");
                let owner = admitted.claims.as_ref().map(|claims| claims.sub);
                let held = query
                    .get("session")
                    .and_then(|id| id.parse().ok())
                    .zip(owner)
                    .and_then(|(id, owner)| polls.find(id, owner))
                    .filter(|_| polling);
                if let Some(session) = held {
                    return Ok(polled(session, polls.poll(session).await));
                }
                if let Some(last) = headers.get("last-event-id") {
                    let last = last.to_str().ok().and_then(events::resume_at);
                    let (epoch, seq) = last.ok_or_else(|| warp::reject::custom(SessionError::BadLastEventId))?;
                    query.insert("epoch".to_owned(), epoch);
                    query.insert("since".to_owned(), seq.to_string());
                }
                if polling && (owner.is_none() || !polls.has_room()) {
                    return Err(warp::reject::custom(SessionError::NoPollSession));
                }
                let peer = member(&group, &client, &query, &admitted, ip, &gate)?;
                if let Some(owner) = owner.filter(|_| polling) {
                    // Held between polls, without a socket: counted against
                    // its address like one.
                    let counted = gate.admission.admit_forwarded(ip).map_err(warp::reject::custom)?;
                    let place = Place { socket: None, forwarded: Some(counted) };
                    let session = polls.hold(owner, stream::open(peer, place, Shape::Poll, &gate.upgrades).await);
                    return Ok(polled(session, polls.poll(session).await));
                }
                let chunks = stream::open(peer, place, Shape::Stream, &gate.upgrades).await;
                Ok::<_, Rejection>(event_stream(warp::reply::stream(stream::body(chunks)).into_response()))
            },
        )
}

/// GET /api/events/{client_id}?m={member}&m=… with
/// `Authorization: Bearer {token}`: one event stream for several members of
/// one identity (a browser's tabs share it: a browser gives an origin six
/// connections, not one per tab). Each `m` is a member's own query, as
/// `/api/events/{group}/{client_id}` takes it, with its `group`
/// (`group=lobby&name=Ann&since=4&epoch=…`); each is admitted and bounded
/// as a stream of its own (one connection each, every one after the first
/// counted against the address), and each of its events carries
/// `member: {index}` (its `m`'s place). The padding comes once.
fn shared(gate: Gate, polls: Arc<Polls>) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "events" / String)
        .and(warp::get())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(warp::header::headers_cloned())
        .and(warp::ext::optional::<Remote>())
        .and(with((gate, polls)))
        .and_then(
            |client: String,
             query: String,
             headers: http::HeaderMap,
             remote: Option<Remote>,
             (gate, polls): (Gate, Arc<Polls>)| async move {
                let asked = shared_members(&query).map_err(warp::reject::custom)?;
                // Whose polls: a token for this client id, from an address
                // not banned (a stream's members are admitted below, each
                // as a request of its own would be).
                let owner = if asked.poll {
                    let ip = client_address(&gate.proxies, remote.as_ref(), &headers);
                    let admitted = gate.auth.admit_stream(auth::bearer(&headers), &client);
                    let sub = admitted.map(|admitted| admitted.claims.map(|claims| claims.sub));
                    gate.auth.check_address(ip).and(sub).map_err(warp::reject::custom)?
                } else {
                    None
                };
                let held = asked.session.zip(owner).and_then(|(id, owner)| polls.find(id, owner));
                if let Some(session) = held {
                    return Ok(polled(session, polls.poll(session).await));
                }
                if asked.poll && !polls.has_room() {
                    return Err(warp::reject::custom(SessionError::NoPollSession));
                }
                let shape = if asked.poll { Shape::Poll } else { Shape::Shared };
                let mut streams = Vec::with_capacity(asked.members.len());
                for (index, query) in asked.members.iter().enumerate() {
                    let group = query.get("group").map_or("", String::as_str);
                    let Passed { admitted, ip, mut place } =
                        gate.pass(knock(group, &client, query, &headers, remote.clone(), None)).await?;
                    if index > 0 || asked.poll {
                        // One TCP connection carries them all, and none
                        // between polls: each is counted against its
                        // address as a session of its own.
                        let counted = gate.admission.admit_forwarded(ip).map_err(warp::reject::custom)?;
                        place = Place { socket: None, forwarded: Some(counted) };
                    }
                    let peer = member(group, &client, query, &admitted, ip, &gate)?;
                    streams.push((index, stream::open(peer, place, shape, &gate.upgrades).await));
                }
                let tagged = futures_util::stream::select_all(streams.into_iter().map(|(index, chunks)| {
                    stream::body(chunks).map(move |chunk| chunk.map(|chunk| events::of_member(index, chunk)))
                }));
                if let Some(owner) = owner {
                    let session = polls.hold(owner, stream::gathered(tagged));
                    return Ok(polled(session, polls.poll(session).await));
                }
                let padding = futures_util::stream::once(async { Ok(Bytes::from(events::padding())) });
                let body = padding.chain(tagged);
                Ok::<_, Rejection>(event_stream(warp::reply::stream(body).into_response()))
            },
        )
}

/// What a shared stream's request asks.
struct SharedAsk {
    /// Each `m`'s query: at least one and at most [`MAX_SHARED_MEMBERS`].
    members: Vec<HashMap<String, String>>,
    /// `poll=1`: long polling.
    poll: bool,
    /// `session={id}`: the long-poll session to go on with.
    session: Option<Uuid>,
}

/// A shared stream's request, from its query string.
fn shared_members(query: &str) -> Result<SharedAsk, SessionError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).map_err(|_| SessionError::BadMembers)?;
    let members = pairs
        .iter()
        .filter(|(name, _)| name == "m")
        .map(|(_, member)| serde_urlencoded::from_str(member))
        .collect::<Result<Vec<HashMap<String, String>>, _>>()
        .map_err(|_| SessionError::BadMembers)?;
    if members.is_empty() || members.len() > MAX_SHARED_MEMBERS {
        return Err(SessionError::BadMembers);
    }
    let value = |wanted: &str| pairs.iter().find(|(name, _)| name == wanted).map(|(_, value)| value.as_str());
    let session = value("session").and_then(|id| id.parse().ok());
    Ok(SharedAsk { members, poll: value("poll").is_some(), session })
}

/// The member a request of `client` describes in `group` (raw, as in its
/// path) with its `query`: refused as a socket's handshake would be.
fn member(
    group: &str,
    client: &str,
    query: &HashMap<String, String>,
    admitted: &Admitted,
    ip: IpAddr,
    gate: &Gate,
) -> Result<Peer, Rejection> {
    let (group, role) = upgrade::role_of(group, query).map_err(warp::reject::custom)?;
    let client_id = client.parse().map_err(|err| warp::reject::custom(UpgradeError::BadName(err)))?;
    let asked = upgrade::asked(query, admitted).map_err(warp::reject::custom)?;
    let described = Described { group, role, client_id, asked, ip, mode: WireMode::Json };
    upgrade::describe(described, admitted, &gate.upgrades).map_err(warp::reject::custom)
}

/// A poll's answer: its events, and the session to poll next (none once
/// it ended).
fn polled(session: Uuid, polled: Polled) -> Response {
    let mut response = event_stream(Response::new(polled.body.into()));
    if !polled.ended {
        let session = HeaderValue::from_str(&session.to_string()).expect("a UUID is a header value");
        response.headers_mut().insert("x-roomcast-session", session);
    }
    response
}

/// `response` as an event stream that no cache or proxy holds back.
fn event_stream(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // nginx passes a stream on as it comes with this.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// POST /api/events/{group}/{client_id} with `Authorization: Bearer
/// {token}`, an allowed `Origin` (or `X-Roomcast: 1`) and a JSON array of
/// commands: their answers, in order.
fn commands(gate: Gate) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "events" / String / String)
        .and(warp::post())
        .and(warp::query::<HashMap<String, String>>())
        .and(warp::header::headers_cloned())
        .and(warp::ext::optional::<Remote>())
        .and(warp::body::content_length_limit(MAX_BODY_BYTES))
        .and(warp::body::bytes())
        .and(with(gate))
        .and_then(
            |group: String,
             client: String,
             query: HashMap<String, String>,
             headers: http::HeaderMap,
             remote,
             body: bytes::Bytes,
             gate: Gate| async move {
                from_a_page(&headers)?;
                let Passed { admitted, ip, .. } =
                    gate.pass(knock(&group, &client, &query, &headers, remote, None)).await?;
                let batch = parse(&body).map_err(warp::reject::custom)?;
                let peer = member(&group, &client, &query, &admitted, ip, &gate)?;
                let from = Sender { client_id: peer.client_id, name: peer.name.clone(), verified: peer.verified };
                let poster = Poster { group: peer.group, from, ip, role: peer.role };
                let answers = commands::apply(batch, &poster, &gate.upgrades.context).await;
                Ok::<_, Rejection>(warp::reply::json(&answers).into_response())
            },
        )
}

/// POST /api/events/{group}/{client_id}/ticket with `Authorization: Bearer
/// {token}` and an allowed `Origin` (or `X-Roomcast: 1`): a session ticket
/// for a plain `EventSource`, which cannot send the token, to name in the
/// stream's URL instead (`?ticket=`): `{"ticket", "open_by", "expires_at"}`
/// (Unix seconds). See `auth::ticket`.
fn ticket(gate: Gate) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "events" / String / String / "ticket")
        .and(warp::post())
        .and(warp::query::<HashMap<String, String>>())
        .and(warp::header::headers_cloned())
        .and(warp::ext::optional::<Remote>())
        .and(with(gate))
        .and_then(
            |group: String,
             client: String,
             query: HashMap<String, String>,
             headers: http::HeaderMap,
             remote: Option<Remote>,
             gate: Gate| async move {
                from_a_page(&headers)?;
                let with = query.get("with").map(String::as_str);
                let admitted = gate
                    .auth
                    .admit_connection(auth::bearer(&headers), &client, &group, with)
                    .map_err(warp::reject::custom)?;
                // Without a token (under `--auth open`) a stream needs no ticket.
                let claims = admitted.claims.ok_or_else(|| warp::reject::custom(AuthError::Missing))?;
                upgrade::role_of(&group, &query).map_err(warp::reject::custom)?;
                let ip = client_address(&gate.proxies, remote.as_ref(), &headers);
                gate.auth.check_address(ip).map_err(warp::reject::custom)?;
                let (ticket, claims) = gate.auth.issue_ticket(&claims, &group, ip);
                let open_by = claims.tkt.as_ref().map(|scope| scope.open_by);
                let body = serde_json::json!({ "ticket": ticket, "open_by": open_by, "expires_at": claims.exp });
                Ok::<_, Rejection>(warp::reply::json(&body).into_response())
            },
        )
}

/// A post comes from a page of an allowed origin (its `Origin` was checked
/// before any route) or, without `Origin`, says `X-Roomcast: 1`, which a
/// form on another site cannot send.
fn from_a_page(headers: &http::HeaderMap) -> Result<(), Rejection> {
    if headers.contains_key(header::ORIGIN) || headers.get("x-roomcast").map(HeaderValue::as_bytes) == Some(b"1") {
        Ok(())
    } else {
        Err(warp::reject::custom(SessionError::NoRoomcastHeader))
    }
}

/// Who asks: the token in `Authorization`, never in the URL; a plain
/// `EventSource`'s stream names a ticket instead.
fn knock<'a>(
    group: &'a str,
    client: &'a str,
    query: &'a HashMap<String, String>,
    headers: &'a http::HeaderMap,
    remote: Option<Remote>,
    ticket: Option<&'a str>,
) -> Knock<'a> {
    let with = query.get("with").map(String::as_str);
    Knock { group, client, token: auth::bearer(headers), ticket, with, headers, remote }
}

/// A post's commands, each decoded (and checked) as a socket's frame is.
fn parse(body: &[u8]) -> Result<Vec<Result<ClientCommand, roomcast_shared::CommandError>>, SessionError> {
    let values: Vec<serde_json::Value> =
        serde_json::from_slice(body).map_err(|err| SessionError::BadBody(err.to_string()))?;
    if values.len() > MAX_COMMANDS {
        return Err(SessionError::BadBody(format!("{} commands", values.len())));
    }
    Ok(values.iter().map(|value| ClientCommand::decode(&value.to_string())).collect())
}
