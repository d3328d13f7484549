//! This node's copy of the bans in force: checked at every handshake and
//! on the API, so kept in memory; the store holds them across restarts and
//! nodes (`identity_control` keeps the two alike).

use std::net::IpAddr;
use std::sync::RwLock;

use roomcast_shared::ClientId;
use uuid::Uuid;

use crate::ban::Ban;
use crate::clock::unix_millis;

/// Most bans in force at once: each handshake looks at all of them.
pub const MAX_BANS: usize = 10_000;

#[derive(Debug, Default)]
pub struct Bans {
    list: RwLock<Vec<Ban>>,
}

impl Bans {
    /// The ban that refuses `sub` or `ip` now, the one that ends last.
    pub fn refusing(&self, sub: Option<ClientId>, ip: Option<IpAddr>) -> Option<Ban> {
        let now_ms = unix_millis();
        let list = self.list.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        list.iter().filter(|ban| ban.refuses(sub, ip, now_ms)).max_by_key(|ban| ban.until_ms).cloned()
    }

    /// Notes `ban` (replacing one of the same id); returns whether that is
    /// news to this node.
    pub fn note(&self, ban: Ban) -> bool {
        let mut list = self.write();
        match list.iter_mut().find(|held| held.id == ban.id) {
            Some(held) if *held == ban => false,
            Some(held) => {
                *held = ban;
                true
            }
            None => {
                list.push(ban);
                true
            }
        }
    }

    /// Lifts the ban `id`; whether it was held here.
    pub fn lift(&self, id: Uuid) -> bool {
        let mut list = self.write();
        let before = list.len();
        list.retain(|ban| ban.id != id);
        list.len() < before
    }

    /// The bans in force now (those over are dropped on the way).
    pub fn active(&self) -> Vec<Ban> {
        let now_ms = unix_millis();
        let mut list = self.write();
        list.retain(|ban| ban.until_ms > now_ms);
        list.clone()
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Vec<Ban>> {
        self.list.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ban(sub: Option<ClientId>, network: Option<&str>, until_ms: u64) -> Ban {
        Ban {
            id: Uuid::new_v4(),
            sub,
            network: network.map(|network| network.parse().unwrap()),
            until_ms,
            reason: String::new(),
            created_ms: 0,
        }
    }

    #[test]
    fn the_ban_that_ends_last_answers_and_a_lifted_or_ended_one_is_gone() {
        let bans = Bans::default();
        let sub = ClientId(Uuid::new_v4());
        let far = unix_millis() + 3_600_000;
        let (short, long) = (ban(Some(sub), None, far), ban(None, Some("192.0.2.0/24"), far + 1));
        assert!(bans.note(short.clone()) && bans.note(long.clone()));
        assert!(!bans.note(long.clone()), "no news");
        let ip = Some("192.0.2.1".parse().unwrap());
        assert_eq!(bans.refusing(Some(sub), ip), Some(long.clone()), "the one that ends last");
        assert_eq!(bans.refusing(Some(sub), None), Some(short.clone()));
        assert_eq!(bans.refusing(Some(ClientId(Uuid::new_v4())), None), None);
        assert!(bans.lift(long.id) && !bans.lift(long.id));
        assert_eq!(bans.refusing(None, ip), None);
        bans.note(ban(Some(sub), None, 1));
        assert_eq!(bans.active(), [short], "an ended ban is dropped");
    }
}
