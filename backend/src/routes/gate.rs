//! What every member connection passes before it joins, whatever carries
//! it (a WebSocket, an HTTP session): its token (or, under `--auth open`,
//! none), the node's store, bans of its address, the hourly allowance of
//! new rooms, and behind a trusted proxy the client address's own cap.

use std::net::IpAddr;
use std::sync::Arc;

use roomcast_shared::GroupName;
use warp::Rejection;

use super::extract::client_address;
use crate::auth::{Admitted, Auth};
use crate::history::History;
use crate::net::admission::{Admission, Refusal};
use crate::net::client_ip::TrustedProxies;
use crate::net::{Place, Remote};
use crate::new_groups::NewGroupLimits;
use crate::stripped_upgrades::StrippedUpgrades;
use crate::upgrade::Upgrades;

/// The parts the gate asks.
#[derive(Debug, Clone)]
pub struct Gate {
    pub auth: Arc<Auth>,
    pub upgrades: Upgrades,
    pub admission: Arc<Admission>,
    pub proxies: Arc<TrustedProxies>,
    pub history: History,
    pub new_groups: Arc<NewGroupLimits>,
    /// Handshakes that came without `Upgrade`, as the app asks after them.
    pub stripped: Arc<StrippedUpgrades>,
}

/// Who asks to join: the raw path segments and what came with them.
#[derive(Debug)]
pub struct Knock<'a> {
    pub group: &'a str,
    pub client: &'a str,
    pub token: Option<&'a str>,
    /// A session ticket instead of a token (an event stream's `?ticket=`).
    pub ticket: Option<&'a str>,
    /// A direct message's other participant.
    pub with: Option<&'a str>,
    pub headers: &'a http::HeaderMap,
    pub remote: Option<Remote>,
}

/// Let through: what the token proved, the client's address, and its
/// places in the admission counts (kept while it is connected).
#[derive(Debug)]
pub struct Passed {
    pub admitted: Admitted,
    pub ip: IpAddr,
    pub place: Place,
}

impl Gate {
    /// The token (or ticket) before the request's own validity; then whether this
    /// node can take anyone now, the address, new rooms, the proxy's cap.
    pub async fn pass(&self, knock: Knock<'_>) -> Result<Passed, Rejection> {
        let Knock { group, client, token, ticket, with, headers, remote } = knock;
        let ip = client_address(&self.proxies, remote.as_ref(), headers);
        let admitted = match ticket.filter(|_| token.is_none()) {
            // The browser's own reconnect names where it was.
            Some(ticket) => {
                let resuming = headers.contains_key("last-event-id");
                self.auth.admit_ticket(ticket, client, group, ip, resuming)
            }
            None => self.auth.admit_connection(token, client, group, with),
        }
        .map_err(warp::reject::custom)?;
        // A node that cannot reach its store takes no one: the client tries
        // again (or another node).
        if !self.history.ready() {
            return Err(warp::reject::custom(Refusal::StoreUnavailable));
        }
        self.auth.check_address(ip).map_err(warp::reject::custom)?;
        // Opening a room nobody has written to (or is in) counts against the
        // identity's and the address's hourly allowance.
        if let Ok(name) = group.parse::<GroupName>() {
            if self.upgrades.registry.members(&name) == 0
                && !self
                    .history
                    .holds(name.clone())
                    .await
                    .map_err(|_| warp::reject::custom(Refusal::StoreUnavailable))?
            {
                let identity = admitted.claims.as_ref().map(|claims| claims.sub);
                self.new_groups.try_open(identity, ip, &name).map_err(warp::reject::custom)?;
            }
        }
        // Behind a trusted proxy, the client's own address has a cap.
        let behind_proxy = remote.as_ref().is_some_and(|remote| self.proxies.trusts(remote.addr.ip()));
        let forwarded =
            behind_proxy.then(|| self.admission.admit_forwarded(ip)).transpose().map_err(warp::reject::custom)?;
        let place = Place { socket: remote.map(|remote| remote.ticket), forwarded };
        Ok(Passed { admitted, ip, place })
    }
}
