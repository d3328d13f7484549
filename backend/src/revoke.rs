//! Revoking an identity (`POST /api/identities/{sub}/revoke`, with the API
//! key): its tokens issued until a second from now are refused from then
//! on, on every node and after restarts, and its live sockets are closed
//! with 4403. Tokens issued afterwards (a new identity for the same person,
//! by the application) are not affected.
//!
//! The revocation is stored with the history and noted in this node's copy
//! ([`Revocations`]) at once, then broadcast ([`Control::Revoke`]): every
//! node closes its own sockets of that identity as it hears it. A node that
//! was not listening (its control channel lost, or it was starting) reads
//! the stored revocations again when it listens ([`Heard::listening`]):
//! pub/sub keeps nothing for it.

use std::sync::Arc;

use http::StatusCode;
use roomcast_shared::ClientId;
use serde::Serialize;

use crate::auth::token::unix_seconds;
use crate::auth::Revocations;
use crate::history::{HistoryError, Store};
use crate::http_error::HttpError;
use crate::registry::Registry;
use crate::signals::{Control, NotHandled, SignalError, Signals};

/// Why a revocation was not made.
#[derive(Debug, thiserror::Error)]
pub enum RevokeError {
    #[error("not a client id (a UUID)")]
    BadSub,
    #[error("the revocation could not be stored now; try again")]
    Unavailable(#[source] HistoryError),
    #[error("the revocation is stored, but other nodes could not be told now; try again")]
    NotAnnounced(#[source] SignalError),
}

impl warp::reject::Reject for RevokeError {}

impl HttpError for RevokeError {
    fn status(&self) -> StatusCode {
        match self {
            Self::BadSub => StatusCode::BAD_REQUEST,
            Self::Unavailable(_) | Self::NotAnnounced(_) => StatusCode::SERVICE_UNAVAILABLE,
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

/// Revocations: the store, this node's copy, its connections, and the
/// other nodes.
#[derive(Clone)]
pub struct Revoker {
    store: Arc<dyn Store>,
    revocations: Arc<Revocations>,
    registry: Arc<Registry>,
    signals: Arc<dyn Signals>,
}

impl std::fmt::Debug for Revoker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Revoker")
    }
}

impl Revoker {
    pub fn new(
        store: Arc<dyn Store>,
        revocations: Arc<Revocations>,
        registry: Arc<Registry>,
        signals: Arc<dyn Signals>,
    ) -> Self {
        Self { store, revocations, registry, signals }
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
        // This node hears it too, and finds it is no news.
        let signals = self.signals.clone();
        let control = Control::Revoke { sub, issued_before: min_iat };
        tokio::task::spawn_blocking(move || signals.broadcast(&control))
            .await
            .map_err(|err| RevokeError::NotAnnounced(SignalError::Unavailable(Box::new(err))))?
            .map_err(RevokeError::NotAnnounced)?;
        Ok(Revoked { sub, min_iat, closed_here })
    }
}

/// What this node does with revocations the nodes announce: it closes the
/// sockets of an identity revoked on any node, and whenever it starts
/// listening (what was broadcast before is lost to it) it reads the stored
/// revocations again. The node's signal handler calls it.
#[derive(Clone)]
pub struct Heard {
    store: Arc<dyn Store>,
    revocations: Arc<Revocations>,
    registry: Arc<Registry>,
}

impl Heard {
    pub fn new(store: Arc<dyn Store>, revocations: Arc<Revocations>, registry: Arc<Registry>) -> Self {
        Self { store, revocations, registry }
    }

    /// `sub`'s tokens issued before `issued_before` were revoked on a node.
    pub fn revoked(&self, sub: ClientId, issued_before: u64) {
        take(&self.revocations, &self.registry, sub, issued_before);
    }

    /// The node listens (again): the stored revocations are read.
    pub fn listening(&self) -> Result<(), NotHandled> {
        for (sub, min_iat) in self.store.revocations().map_err(|err| NotHandled(Box::new(err)))? {
            take(&self.revocations, &self.registry, sub, min_iat);
        }
        Ok(())
    }
}

/// Notes a revocation; if it is news here, closes this node's sockets of
/// that identity.
fn take(revocations: &Revocations, registry: &Registry, sub: ClientId, min_iat: u64) {
    if revocations.note(sub, min_iat) {
        let closed_here = registry.revoke(sub);
        tracing::info!(%sub, closed_here, "identity revoked on another node");
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::auth::Claims;
    use crate::history::memory::MemoryStore;
    use crate::queue::Capacity;

    fn listening_to(store: &Arc<dyn Store>) -> Arc<Revocations> {
        let revocations = Arc::new(Revocations::default());
        let registry = Registry::new(Capacity { messages: 8, bytes: 1 << 16 });
        Heard::new(store.clone(), revocations.clone(), registry).listening().expect("the memory store answers");
        revocations
    }

    #[test]
    fn a_node_that_starts_listening_reads_the_stored_revocations() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::with_max_groups(None));
        let sub = ClientId(Uuid::new_v4());
        assert!(!listening_to(&store).refuses(&Claims::for_client(sub)));
        store.revoke(sub, 1_000).unwrap();
        let revocations = listening_to(&store);
        assert!(revocations.refuses(&Claims { iat: Some(999), ..Claims::for_client(sub) }));
        assert!(!revocations.refuses(&Claims { iat: Some(1_000), ..Claims::for_client(sub) }));
    }
}
