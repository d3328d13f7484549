//! Identity control: what an operator (or the application, with the API
//! key) does to an identity, an address or a network, on every node:
//!
//! - **revoke** (`POST /api/identities/{sub}/revoke`, API key): the
//!   identity's tokens issued until a second from now are refused for
//!   good; its sockets close with 4403;
//! - **disconnect** (admin API): its sockets close with 4010 and a
//!   `removed` event with the operator's reason; it may connect again;
//! - **ban** (admin API): an identity, and/or an address or network, is
//!   refused until a time (403 at the handshake and on the API); its
//!   sockets close with 4403 after a `removed` event saying until when;
//!   a ban can be **lifted**.
//!
//! One store and one signal for all of it: a revocation and a ban are
//! stored with the history ([`Store::revoke`], [`Store::ban`]) and noted
//! in this node's copies ([`Revocations`], [`Bans`]) at once, then every
//! node hears one [`Sanction`] on the control channel ([`Heard`]) and
//! closes its own sockets. A node that was not listening (its channel lost,
//! or starting) reads the stored ones again when it listens
//! ([`Heard::listening`]): pub/sub keeps nothing for it. A disconnect is
//! not stored: it is lost with the channel, as typing is; its answer counts
//! this node's closes, and the operator can send it again.

mod enforce;
mod heard;

use std::sync::Arc;

use http::StatusCode;
use roomcast_shared::ClientId;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use enforce::enforce;
pub use heard::Heard;

use crate::auth::token::unix_seconds;
use crate::auth::{Bans, Revocations, MAX_BANS};
use crate::ban::{Ban, Network, MAX_REASON_CHARS};
use crate::clock::unix_millis;
use crate::history::{HistoryError, Store};
use crate::http_error::HttpError;
use crate::queue::Removal;
use crate::registry::Registry;
use crate::signals::{Control, NodeId, Sanction, SignalError, Signals};

/// Longest ban: a year (a ban without end is a revocation, or a firewall
/// rule).
pub const MAX_BAN_SECONDS: u64 = 366 * 86_400;

/// Why an identity control was not done.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("not a client id (a UUID)")]
    BadSub,
    #[error("not a ban id (a UUID)")]
    BadId,
    #[error("{0}")]
    BadRequest(String),
    #[error("no such ban")]
    NoSuchBan,
    #[error("{MAX_BANS} bans are in force already; lift some first")]
    TooManyBans,
    #[error("it could not be stored now; try again")]
    Unavailable(#[source] HistoryError),
    #[error("it is stored, but other nodes could not be told now; try again")]
    NotAnnounced(#[source] SignalError),
}

impl warp::reject::Reject for ControlError {}

impl HttpError for ControlError {
    fn status(&self) -> StatusCode {
        match self {
            Self::BadSub | Self::BadId | Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NoSuchBan => StatusCode::NOT_FOUND,
            Self::TooManyBans => StatusCode::CONFLICT,
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

/// What a disconnect did.
#[derive(Debug, Serialize)]
pub struct Disconnected {
    pub sub: ClientId,
    /// Sockets of `sub` this node closed (other nodes close theirs).
    pub closed_here: usize,
}

/// An operator's ban, as the admin API takes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BanRequest {
    #[serde(default)]
    pub sub: Option<ClientId>,
    /// An address (`203.0.113.7`) or network (`203.0.113.0/24`).
    #[serde(default)]
    pub network: Option<String>,
    pub duration_s: u64,
    #[serde(default)]
    pub reason: String,
}

/// Identity control on this node: the store, this node's copies, its
/// connections, and the other nodes.
#[derive(Clone)]
pub struct IdentityControl {
    node: NodeId,
    store: Arc<dyn Store>,
    revocations: Arc<Revocations>,
    bans: Arc<Bans>,
    registry: Arc<Registry>,
    signals: Arc<dyn Signals>,
}

impl std::fmt::Debug for IdentityControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdentityControl")
    }
}

impl IdentityControl {
    pub fn new(
        node: NodeId,
        store: Arc<dyn Store>,
        (revocations, bans): (Arc<Revocations>, Arc<Bans>),
        registry: Arc<Registry>,
        signals: Arc<dyn Signals>,
    ) -> Self {
        Self { node, store, revocations, bans, registry, signals }
    }

    /// This node's copies of the stored revocations and bans (at start).
    pub fn load(&self) -> Result<(), HistoryError> {
        for (sub, min_iat) in self.store.revocations()? {
            self.revocations.note(sub, min_iat);
        }
        for ban in self.store.bans(unix_millis())? {
            self.bans.note(ban);
        }
        Ok(())
    }

    /// Revokes `sub`, the raw path segment.
    pub async fn revoke(&self, sub: &str) -> Result<Revoked, ControlError> {
        let sub: ClientId = sub.parse().map_err(|_| ControlError::BadSub)?;
        // A second on, so that a token issued within this second, before
        // the revocation, is refused too (`iat` has whole seconds).
        let min_iat = unix_seconds() + 1;
        self.blocking(move |store| store.revoke(sub, min_iat)).await?;
        self.revocations.note(sub, min_iat);
        let closed_here = self.registry.remove(|client, _| client == sub, &Removal::Revoked);
        tracing::info!(%sub, closed_here, "identity revoked");
        // This node hears it too, and finds it is no news.
        self.announce(Sanction::Revoke { sub, issued_before: min_iat }).await?;
        Ok(Revoked { sub, min_iat, closed_here })
    }

    /// Disconnects `sub` (the raw path segment) on every node, telling its
    /// connections `reason`.
    pub async fn disconnect(&self, sub: &str, reason: String) -> Result<Disconnected, ControlError> {
        let sub: ClientId = sub.parse().map_err(|_| ControlError::BadSub)?;
        let reason = checked_reason(reason)?;
        let removal = Removal::Disconnected { reason: reason.as_str().into() };
        let closed_here = self.registry.remove(|client, _| client == sub, &removal);
        tracing::info!(%sub, closed_here, "identity disconnected by an operator");
        self.announce(Sanction::Disconnect { sub, reason, by: self.node }).await?;
        Ok(Disconnected { sub, closed_here })
    }

    /// Bans what `request` names for its duration, on every node.
    pub async fn ban(&self, request: BanRequest) -> Result<Ban, ControlError> {
        let network = request
            .network
            .filter(|network| !network.trim().is_empty())
            .map(|network| network.parse::<Network>())
            .transpose()
            .map_err(|err| ControlError::BadRequest(err.to_string()))?;
        if request.sub.is_none() && network.is_none() {
            return Err(ControlError::BadRequest("a ban names a sub, a network, or both".into()));
        }
        if request.duration_s == 0 || request.duration_s > MAX_BAN_SECONDS {
            return Err(ControlError::BadRequest(format!("duration_s must be 1 to {MAX_BAN_SECONDS}")));
        }
        if self.bans.active().len() >= MAX_BANS {
            return Err(ControlError::TooManyBans);
        }
        let now_ms = unix_millis();
        let ban = Ban {
            id: Uuid::new_v4(),
            sub: request.sub,
            network,
            until_ms: now_ms + request.duration_s * 1_000,
            reason: checked_reason(request.reason)?,
            created_ms: now_ms,
        };
        let stored = ban.clone();
        self.blocking(move |store| store.ban(&stored)).await?;
        let closed_here = enforce(&self.bans, &self.registry, ban.clone());
        tracing::info!(id = %ban.id, closed_here, until_ms = ban.until_ms, "ban in force");
        self.announce(Sanction::Ban { ban: ban.clone() }).await?;
        Ok(ban)
    }

    /// Lifts the ban `id` (the raw path segment) on every node.
    pub async fn lift(&self, id: &str) -> Result<(), ControlError> {
        let id: Uuid = id.parse().map_err(|_| ControlError::BadId)?;
        let held_here = self.bans.lift(id);
        let stored = self.blocking(move |store| store.lift(id)).await?;
        if !(stored || held_here) {
            return Err(ControlError::NoSuchBan);
        }
        tracing::info!(%id, "ban lifted");
        self.announce(Sanction::Lift { id }).await
    }

    /// The bans in force, as this node holds them.
    pub fn bans(&self) -> Vec<Ban> {
        self.bans.active()
    }

    /// The bans in force that name `sub`.
    pub fn bans_of(&self, sub: ClientId) -> Vec<Ban> {
        self.bans.active().into_iter().filter(|ban| ban.sub == Some(sub)).collect()
    }

    async fn blocking<T: Send + 'static>(
        &self,
        write: impl FnOnce(&dyn Store) -> Result<T, HistoryError> + Send + 'static,
    ) -> Result<T, ControlError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || write(store.as_ref()))
            .await
            .map_err(|err| ControlError::Unavailable(HistoryError::Task(err.to_string())))?
            .map_err(ControlError::Unavailable)
    }

    async fn announce(&self, sanction: Sanction) -> Result<(), ControlError> {
        let signals = self.signals.clone();
        let control = Control::Identity(sanction);
        tokio::task::spawn_blocking(move || signals.broadcast(&control))
            .await
            .map_err(|err| ControlError::NotAnnounced(SignalError::Unavailable(Box::new(err))))?
            .map_err(ControlError::NotAnnounced)
    }
}

/// An operator's reason, trimmed, within [`MAX_REASON_CHARS`].
fn checked_reason(reason: String) -> Result<String, ControlError> {
    let reason = reason.trim();
    if reason.chars().count() > MAX_REASON_CHARS || reason.chars().any(char::is_control) {
        return Err(ControlError::BadRequest(format!("reason: at most {MAX_REASON_CHARS} characters, on one line")));
    }
    Ok(reason.to_owned())
}
