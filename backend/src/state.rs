//! What routes share. Each route takes only the parts it uses.

use std::sync::Arc;

use crate::access::Access;
use crate::auth::Auth;
use crate::drain::Drain;
use crate::history::History;
use crate::http_session::polls::Polls;
use crate::identities::Issuer;
use crate::identity_control::IdentityControl;
use crate::metrics::Metrics;
use crate::net::admission::Admission;
use crate::net::client_ip::TrustedProxies;
use crate::new_groups::NewGroupLimits;
use crate::registry::Registry;
use crate::upgrade::Upgrades;

#[derive(Debug, Clone)]
pub struct AppState {
    pub registry: Arc<Registry>,
    /// History pages for the API.
    pub history: History,
    /// WebSocket upgrades: where connections join and what they share.
    pub upgrades: Upgrades,
    /// Who may connect and read: tokens and the mode.
    pub auth: Arc<Auth>,
    /// Which hosts and origins are answered.
    pub access: Arc<Access>,
    /// Self-service identities.
    pub issuer: Arc<Issuer>,
    /// Connection caps: a client behind a trusted proxy is counted against
    /// its own address when it upgrades.
    pub admission: Arc<Admission>,
    /// Whose `X-Forwarded-For` is believed.
    pub proxies: Arc<TrustedProxies>,
    /// The publish API's key (`None`: the API is off); it also revokes
    /// identities.
    pub api_key: Option<Arc<str>>,
    /// Revokes, disconnects and bans identities (and addresses).
    pub identities: IdentityControl,
    /// New rooms per identity and address.
    pub new_groups: Arc<NewGroupLimits>,
    /// A rolling restart's drain: `/readyz` says 503 once it begins.
    pub drain: Drain,
    /// What the node counts for its operator.
    pub metrics: Arc<Metrics>,
    /// The HTTP fallback's long-poll sessions held here.
    pub polls: Arc<Polls>,
}
