//! The admin surface: served on `--admin-listen` only, never on the public
//! port, every API request behind `--admin-key` (`Authorization: Bearer
//! …`; the app's `/admin` page asks for it):
//!
//! - `GET /metrics`: Prometheus text ([`scrape`]);
//! - `POST /drain`: the node drains for a rolling restart and stops (as
//!   SIGTERM does with `--drain-period`);
//! - `GET /admin/api/overview`: every live node, the busiest groups and
//!   the last minutes' deliveries and connections ([`views::Overview`],
//!   from each node's [`sampler`], asked over the control channel:
//!   [`cluster`]);
//! - `GET /admin/api/identities/{sub}`: one identity's connections on
//!   every node and its bans; `POST …/{sub}/disconnect`; `GET`/`POST
//!   /admin/api/bans`, `DELETE /admin/api/bans/{id}` (through
//!   [`IdentityControl`]).
//!
//! The page itself (the app's `/admin` route) is the app's files, served
//! without the key: it holds no data until the key is given.

pub mod cluster;
pub mod sampler;
mod scrape;
pub mod views;

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use roomcast_shared::ClientId;
use tokio_util::sync::CancellationToken;

use crate::ban::Ban;
use crate::drain::Drain;
use crate::http_error::HttpError;
use crate::identity_control::{BanRequest, ControlError, Disconnected, IdentityControl};
use crate::metrics::Metrics;
use crate::node_report::Question;
use crate::registry::Registry;
use crate::rooms::RoomsHub;
use cluster::{AskError, Cluster};
use scrape::Scrape;
use views::{IdentityView, Overview};

/// Why an admin request was refused.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("the admin key is required: Authorization: Bearer {{--admin-key}}")]
    NoKey,
    #[error("the body is not what this takes: {0}")]
    BadBody(String),
    #[error(transparent)]
    Control(#[from] ControlError),
    #[error(transparent)]
    Ask(#[from] AskError),
}

impl warp::reject::Reject for AdminError {}

impl HttpError for AdminError {
    fn status(&self) -> StatusCode {
        match self {
            Self::NoKey => StatusCode::UNAUTHORIZED,
            Self::BadBody(_) => StatusCode::BAD_REQUEST,
            Self::Control(err) => err.status(),
            Self::Ask(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// What the server gives the admin surface.
#[derive(Debug)]
pub struct Parts {
    pub registry: Arc<Registry>,
    pub rooms: Arc<RoomsHub>,
    pub drain: Drain,
    /// What `POST /drain` drains over.
    pub drain_period: Duration,
    pub identities: IdentityControl,
    pub cluster: Arc<Cluster>,
}

/// What the admin surface reads and acts on.
#[derive(Debug, Clone)]
pub struct Admin {
    key: Arc<str>,
    scrape: Arc<Scrape>,
    identities: IdentityControl,
    cluster: Arc<Cluster>,
    drain: Drain,
    drain_period: Duration,
    /// Cancelled by `POST /drain`: the process drains, then stops.
    pub drain_requested: CancellationToken,
}

impl Admin {
    pub fn new(key: &str, parts: Parts, counted: &Metrics) -> Self {
        let Parts { registry, rooms, drain, drain_period, identities, cluster } = parts;
        Self {
            key: Arc::from(key),
            scrape: Arc::new(Scrape::new(registry, rooms, drain.clone(), counted)),
            identities,
            cluster,
            drain,
            drain_period,
            drain_requested: CancellationToken::new(),
        }
    }

    /// `POST /drain`: the drain begins before the answer (`/readyz` says
    /// 503 from then on), and the process is asked to stop after it.
    pub fn drain(&self) {
        if self.drain.begin(self.drain_period) {
            tracing::info!(period_ms = self.drain_period.as_millis() as u64, "draining (asked by the admin surface)");
        }
        self.drain_requested.cancel();
    }

    /// Checks the request's key (in constant time).
    pub fn check(&self, authorization: Option<&str>) -> Result<(), AdminError> {
        let presented = authorization.and_then(|value| value.strip_prefix("Bearer ")).map(str::trim);
        match presented {
            Some(presented) if crate::publish_api::keys_match(presented, &self.key) => Ok(()),
            _ => Err(AdminError::NoKey),
        }
    }

    /// The metrics as Prometheus text, read now.
    pub fn metrics(&self) -> String {
        self.scrape.text()
    }

    /// Every live node's report, merged.
    pub async fn overview(&self) -> Result<Overview, AdminError> {
        let answers = self.cluster.ask(Question::Report).await?;
        Ok(Overview::of(self.cluster.node(), answers))
    }

    /// `sub` (the raw path segment): its connections on every node, and
    /// its bans.
    pub async fn identity(&self, sub: &str) -> Result<IdentityView, AdminError> {
        let sub: ClientId = sub.parse().map_err(|_| ControlError::BadSub)?;
        let answers = self.cluster.ask(Question::Connections { sub }).await?;
        Ok(IdentityView::of(sub, answers, self.identities.bans_of(sub)))
    }

    pub async fn disconnect(&self, sub: &str, reason: String) -> Result<Disconnected, AdminError> {
        Ok(self.identities.disconnect(sub, reason).await?)
    }

    pub async fn ban(&self, request: BanRequest) -> Result<Ban, AdminError> {
        Ok(self.identities.ban(request).await?)
    }

    pub async fn lift(&self, id: &str) -> Result<(), AdminError> {
        Ok(self.identities.lift(id).await?)
    }

    pub fn bans(&self) -> Vec<Ban> {
        self.identities.bans()
    }
}
