//! Revoking an identity (`POST /api/identities/{sub}/revoke`, with the API
//! key): its tokens issued until a second from now are refused from then
//! on, on every node and after restarts, and its live sockets are closed
//! with 4403. Tokens issued afterwards (a new identity for the same person,
//! by the application) are not affected.
//!
//! The revocation is stored with the history and noted in this node's copy
//! ([`Revocations`]) at once; in Redis mode, the other nodes learn it by
//! reading the stored revocations every [`WATCH_INTERVAL`] and close their
//! own sockets of that identity.

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use roomcast_shared::ClientId;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::auth::token::unix_seconds;
use crate::auth::Revocations;
use crate::history::{HistoryError, Store};
use crate::http_error::HttpError;
use crate::registry::Registry;

/// How often a node of a cluster reads the stored revocations.
pub const WATCH_INTERVAL: Duration = Duration::from_secs(1);

/// Why a revocation was not made.
#[derive(Debug, thiserror::Error)]
pub enum RevokeError {
    #[error("not a client id (a UUID)")]
    BadSub,
    #[error("the revocation could not be stored now; try again")]
    Unavailable(#[source] HistoryError),
}

impl warp::reject::Reject for RevokeError {}

impl HttpError for RevokeError {
    fn status(&self) -> StatusCode {
        match self {
            Self::BadSub => StatusCode::BAD_REQUEST,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// What a revocation did.
#[derive(Debug, Serialize)]
pub struct Revoked {
    pub sub: ClientId,
    /// Tokens of `sub` issued before this (Unix seconds) are refused.
    pub min_iat: u64,
    /// Sockets of `sub` this node closed (other nodes close theirs).
    pub closed_here: usize,
}

/// Revocations: the store, this node's copy, and its connections.
#[derive(Clone)]
pub struct Revoker {
    store: Arc<dyn Store>,
    revocations: Arc<Revocations>,
    registry: Arc<Registry>,
}

impl std::fmt::Debug for Revoker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Revoker")
    }
}

impl Revoker {
    pub fn new(store: Arc<dyn Store>, revocations: Arc<Revocations>, registry: Arc<Registry>) -> Self {
        Self { store, revocations, registry }
    }

    /// This node's copy of the stored revocations (at start).
    pub fn load(&self) -> Result<(), HistoryError> {
        for (sub, min_iat) in self.store.revocations()? {
            self.revocations.note(sub, min_iat);
        }
        Ok(())
    }

    /// Revokes `sub`, the raw path segment.
    pub async fn revoke(&self, sub: &str) -> Result<Revoked, RevokeError> {
        let sub: ClientId = sub.parse().map_err(|_| RevokeError::BadSub)?;
        // A second on, so that a token issued within this second, before
        // the revocation, is refused too (`iat` has whole seconds).
        let min_iat = unix_seconds() + 1;
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.revoke(sub, min_iat))
            .await
            .map_err(|err| RevokeError::Unavailable(HistoryError::Task(err.to_string())))?
            .map_err(RevokeError::Unavailable)?;
        self.revocations.note(sub, min_iat);
        let closed_here = self.registry.revoke(sub);
        tracing::info!(%sub, closed_here, "identity revoked");
        Ok(Revoked { sub, min_iat, closed_here })
    }

    /// Learns what other nodes revoked, every [`WATCH_INTERVAL`] until
    /// `shutdown`, and closes this node's sockets of those identities.
    pub async fn watch(self, shutdown: CancellationToken) {
        let mut ticks = tokio::time::interval(WATCH_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = ticks.tick() => {}
            }
            let store = self.store.clone();
            let stored = match tokio::task::spawn_blocking(move || store.revocations()).await {
                Ok(Ok(stored)) => stored,
                // Redis is away: readiness says so; try again next tick.
                Ok(Err(_)) | Err(_) => continue,
            };
            for (sub, min_iat) in stored {
                if self.revocations.note(sub, min_iat) {
                    let closed_here = self.registry.revoke(sub);
                    tracing::info!(%sub, closed_here, "identity revoked on another node");
                }
            }
        }
    }
}
