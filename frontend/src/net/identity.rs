//! This browser's identity from the server: `POST /api/identities` on the
//! first visit, `POST /api/identities/renew` when its token is due
//! ([`session::identity`](crate::session::identity) decides when that is,
//! and what the answers mean); kept in `localStorage`, shared by the tabs.
//! Also asks whether the server still knows it, and whether it refuses it
//! a direct message room.

use std::future::Future;

use futures_util::future::{select, Either};
use gloo_net::http::{Request, Response};
use gloo_timers::future::TimeoutFuture;

use crate::net::tabs;
use crate::session::{Answer, Direct, Identity};
use crate::storage;

/// Why no identity could be had (the server is unreachable, or refuses).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("could not get an identity from the server ({0})")]
pub struct IdentityError(String);

/// A new identity from the server, stored for the next visits.
pub async fn create() -> Result<Identity, IdentityError> {
    let failed = |err: gloo_net::Error| IdentityError(err.to_string());
    let response = Request::post("/api/identities").json(&serde_json::json!({})).map_err(failed)?.send().await;
    let response = response.map_err(failed)?;
    if response.status() != 201 {
        return Err(IdentityError(format!("HTTP {}", response.status())));
    }
    let identity = response.json::<Identity>().await.map_err(failed)?.received(js_sys::Date::now());
    storage::remember_identity(&identity);
    Ok(identity)
}

/// Renews `current`: what the answer means, and the identity to use now
/// (the renewed one, stored; else `current`, which the caller replaces if
/// the answer is [`Answer::Refused`]).
///
/// One tab at a time renews: the others wait for it under a Web Lock, then
/// find its renewal in storage and take that, instead of each asking the
/// server for a token of its own (which would work too, only wastefully).
pub async fn renew(current: Identity) -> (Answer, Identity) {
    let _lock = tabs::hold(RENEW_LOCK, RENEW_PATIENCE_MS).await;
    if let Some(stored) = storage::identity().filter(|stored| stored.replaces(&current, js_sys::Date::now())) {
        return (Answer::Renewed, stored);
    }
    let request =
        Request::post("/api/identities/renew").header("Authorization", &current.bearer()).json(&serde_json::json!({}));
    let response = match request {
        Ok(request) => in_time(request.send()).await,
        Err(_) => None,
    };
    let Some(response) = response else { return (Answer::Later, current) };
    match Answer::of_status(response.status()) {
        Answer::Renewed => match response.json::<Identity>().await {
            Ok(renewed) => {
                let renewed = renewed.received(js_sys::Date::now());
                storage::remember_identity(&renewed);
                (Answer::Renewed, renewed)
            }
            Err(_) => (Answer::Later, current),
        },
        answer => (answer, current),
    }
}

/// Whether the server refuses `identity` for good (its secret changed, or
/// it restarted with its history in memory): a browser sees only 1006 for a
/// refused handshake, so the app asks. Unreachable counts as not refused.
pub async fn is_refused(identity: &Identity) -> bool {
    let ask = Request::get("/api/identities/me").header("Authorization", &identity.bearer()).send();
    in_time(ask).await.is_some_and(|response| response.status() == 401)
}

/// Whether the server refuses `identity` the direct message `direct` for
/// good: its socket's refusal shows only as a socket that never opened, so
/// the app asks the history API, which admits exactly as the socket does
/// (403: not one of its participants, or no direct messages for this
/// token). Unreachable counts as not refused.
pub async fn is_refused_room(identity: &Identity, direct: &Direct) -> bool {
    let url = format!("/api/groups/{}/messages?limit=1{}", direct.group, direct.query());
    let ask = Request::get(&url).header("Authorization", &identity.bearer()).send();
    in_time(ask).await.is_some_and(|response| response.status() == 403)
}

/// The response, if one came within [`ASK_TIMEOUT_MS`]: a server that does
/// not answer by then counts as unreachable.
async fn in_time(request: impl Future<Output = Result<Response, gloo_net::Error>>) -> Option<Response> {
    match select(Box::pin(request), TimeoutFuture::new(ASK_TIMEOUT_MS)).await {
        Either::Left((response, _)) => response.ok(),
        Either::Right(_) => None,
    }
}

/// How long the app waits for `GET /api/identities/me` and for a renewal.
const ASK_TIMEOUT_MS: u32 = 5_000;

/// The Web Lock a tab holds while it renews the identity.
const RENEW_LOCK: &str = "roomcast.identity.renew";

/// How long a tab waits for another's renewal (which gives up after
/// [`ASK_TIMEOUT_MS`]) before it renews by itself.
const RENEW_PATIENCE_MS: u32 = 2 * ASK_TIMEOUT_MS;
