//! This browser's identity: a client id and the server's token for it,
//! obtained from `POST /api/identities` on the first visit and kept in
//! `localStorage` (shared by the tabs) with when its token expires.

use futures_util::future::{select, Either};
use gloo_net::http::Request;
use gloo_timers::future::TimeoutFuture;

use crate::session::Identity;
use crate::storage;

/// Why no identity could be had (the server is unreachable, or refuses).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("could not get an identity from the server ({0})")]
pub struct IdentityError(String);

/// The stored identity, or a new one from the server.
pub async fn obtain() -> Result<Identity, IdentityError> {
    match storage::identity() {
        Some(identity) => Ok(identity),
        None => create().await,
    }
}

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

/// Whether the server refuses `identity` for good (its secret changed, or
/// it restarted with its history in memory): a browser sees only 1006 for a
/// refused handshake, so the app asks. Unreachable counts as not refused.
/// A server that does not answer within [`ASK_TIMEOUT_MS`] counts as
/// unreachable.
pub async fn is_refused(identity: &Identity) -> bool {
    let ask = Request::get("/api/identities/me").header("Authorization", &identity.bearer()).send();
    match select(Box::pin(ask), TimeoutFuture::new(ASK_TIMEOUT_MS)).await {
        Either::Left((response, _)) => response.is_ok_and(|response| response.status() == 401),
        Either::Right(_) => false,
    }
}

/// How long the app waits for `GET /api/identities/me`.
const ASK_TIMEOUT_MS: u32 = 5_000;
