//! A ban in force on this node: noted in its copy, and its sockets closed.

use std::net::IpAddr;

use crate::auth::Bans;
use crate::ban::Ban;
use crate::clock::unix_millis;
use crate::queue::Removal;
use crate::registry::Registry;

/// Notes `ban` here; if it is news, closes this node's sockets it names.
/// Returns how many.
pub fn enforce(bans: &Bans, registry: &Registry, ban: Ban) -> usize {
    if !bans.note(ban.clone()) {
        return 0;
    }
    let removal = Removal::Banned { until_ms: ban.until_ms, reason: ban.reason.as_str().into() };
    let now_ms = unix_millis();
    registry.remove(|client, ip: Option<IpAddr>| ban.refuses(Some(client), ip, now_ms), &removal)
}
