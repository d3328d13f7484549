//! WebSocket handshakes that reached this node without their `Upgrade`
//! (a proxy on the way strips it: nginx does, unless told to pass it on),
//! noted per verified identity, so that the app can ask after a socket
//! that did not open (`GET /api/identities/me/transport`) and move to the
//! HTTP fallback at once, rather than after three failed opens.
//!
//! This node's own: a question that lands on another node hears "no", and
//! the app falls back on its count instead.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use roomcast_shared::ClientId;

/// How long a stripped handshake is remembered.
pub const REMEMBERED_FOR: Duration = Duration::from_secs(60);
/// Identities remembered at once; past it, new ones are not noted until
/// older ones are forgotten (the app then falls back on its count).
pub const MAX_REMEMBERED: usize = 10_000;

/// The identities whose handshakes came stripped lately.
#[derive(Debug, Default)]
pub struct StrippedUpgrades {
    seen: Mutex<HashMap<ClientId, Instant>>,
}

impl StrippedUpgrades {
    /// A handshake of `client` came without `Upgrade` at `now`.
    pub fn note(&self, client: ClientId, now: Instant) {
        let mut seen = self.seen.lock().expect("stripped upgrades lock");
        if seen.len() >= MAX_REMEMBERED && !seen.contains_key(&client) {
            seen.retain(|_, at| now.duration_since(*at) < REMEMBERED_FOR);
            if seen.len() >= MAX_REMEMBERED {
                return;
            }
        }
        seen.insert(client, now);
    }

    /// Whether a handshake of `client` came stripped within
    /// [`REMEMBERED_FOR`] before `now`.
    pub fn seen(&self, client: ClientId, now: Instant) -> bool {
        let seen = self.seen.lock().expect("stripped upgrades lock");
        seen.get(&client).is_some_and(|at| now.duration_since(*at) < REMEMBERED_FOR)
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    #[test]
    fn a_stripped_handshake_is_remembered_for_a_minute() {
        let (stripped, now) = (StrippedUpgrades::default(), Instant::now());
        let (ann, bob) = (ClientId(Uuid::new_v4()), ClientId(Uuid::new_v4()));
        stripped.note(ann, now);
        assert!(stripped.seen(ann, now + REMEMBERED_FOR - Duration::from_millis(1)));
        assert!(!stripped.seen(ann, now + REMEMBERED_FOR), "forgotten after a minute");
        assert!(!stripped.seen(bob, now), "someone else's");
    }

    #[test]
    fn at_most_so_many_identities_are_remembered() {
        let (stripped, now) = (StrippedUpgrades::default(), Instant::now());
        for _ in 0..MAX_REMEMBERED {
            stripped.note(ClientId(Uuid::new_v4()), now);
        }
        let late = ClientId(Uuid::new_v4());
        stripped.note(late, now);
        assert!(!stripped.seen(late, now), "full: not noted");
        stripped.note(late, now + REMEMBERED_FOR);
        assert!(stripped.seen(late, now + REMEMBERED_FOR), "noted once the others are forgotten");
        assert_eq!(stripped.seen.lock().unwrap().len(), 1);
    }
}
