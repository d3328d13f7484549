//! This browser's identity from the server: `POST /api/identities` on the
//! first visit, `POST /api/identities/renew` when its token is due
//! ([`session::identity`](crate::session::identity) decides when that is,
//! and what the answers mean); kept in `localStorage`, shared by the tabs.
//! Also asks whether the server still knows it (or bans it), and whether it
//! refuses it a direct message room.

use std::future::Future;

use gloo_net::http::Request;

use crate::net::tabs;
use crate::net::timeout::within;
use crate::session::{Answer, Ban, Direct, Identity, Standing};
use crate::storage;

/// Why no identity could be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// The server is unreachable, or refuses for now.
    #[error("could not get an identity from the server ({0})")]
    Failed(String),
    /// An operator banned this browser's address: asking again before the
    /// ban ends cannot help.
    #[error("this address is banned from the server")]
    Banned(Ban),
}

/// A new identity from the server, stored for the next visits.
pub async fn create() -> Result<Identity, IdentityError> {
    let failed = |err: gloo_net::Error| IdentityError::Failed(err.to_string());
    let response = Request::post("/api/identities").json(&serde_json::json!({})).map_err(failed)?.send().await;
    let response = response.map_err(failed)?;
    if response.status() != 201 {
        let body = response.text().await.unwrap_or_default();
        return Err(match Standing::of_answer(response.status(), &body) {
            Standing::Banned(ban) => IdentityError::Banned(ban),
            _ => IdentityError::Failed(format!("HTTP {}", response.status())),
        });
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
    // A refusal's body says whether it is a ban; a success's is read below.
    let body =
        if response.status() == 200 { String::new() } else { in_time(response.text()).await.unwrap_or_default() };
    match Answer::of_answer(response.status(), &body) {
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

/// What the server says of `identity`: refused for good (its secret
/// changed, or it restarted with its history in memory), banned by an
/// operator until a time, or known. A browser sees only 1006 for a refused
/// handshake, so the app asks. Unreachable counts as known.
pub async fn standing(identity: &Identity) -> Standing {
    let ask = Request::get("/api/identities/me").header("Authorization", &identity.bearer()).send();
    let Some(response) = in_time(ask).await else { return Standing::Known };
    let body = in_time(response.text()).await.unwrap_or_default();
    Standing::of_answer(response.status(), &body)
}

/// Whether the server got a WebSocket handshake of `identity` without its
/// `Upgrade` lately (a proxy on the way strips it): a socket that never
/// opened tells the browser nothing, so the app asks, and moves to the HTTP
/// fallback at once. Unreachable, or another node's, counts as no.
pub async fn upgrade_stripped(identity: &Identity) -> bool {
    #[derive(serde::Deserialize)]
    struct Transport {
        upgrade_stripped: bool,
    }
    let ask = Request::get("/api/identities/me/transport").header("Authorization", &identity.bearer()).send();
    let Some(response) = in_time(ask).await.filter(|response| response.status() == 200) else { return false };
    in_time(response.json::<Transport>()).await.is_some_and(|answer| answer.upgrade_stripped)
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

/// The response (or its body), if it came within [`ASK_TIMEOUT_MS`]: a
/// server that does not answer by then counts as unreachable.
async fn in_time<T>(request: impl Future<Output = Result<T, gloo_net::Error>>) -> Option<T> {
    within(ASK_TIMEOUT_MS, request).await?.ok()
}

/// How long the app waits for `GET /api/identities/me` and for a renewal.
const ASK_TIMEOUT_MS: u32 = 5_000;

/// The Web Lock a tab holds while it renews the identity.
const RENEW_LOCK: &str = "roomcast.identity.renew";

/// How long a tab waits for another's renewal (which gives up after
/// [`ASK_TIMEOUT_MS`]) before it renews by itself.
const RENEW_PATIENCE_MS: u32 = 2 * ASK_TIMEOUT_MS;
