//! Revoked identities: for each revoked `sub`, the earliest `iat` still
//! accepted. A token issued before it, or without `iat` (tokens from
//! before expiry existed), is refused. The store keeps them with the
//! history, so a revocation survives restarts; this is each node's copy.

use std::collections::HashMap;
use std::sync::RwLock;

use roomcast_shared::ClientId;

use super::token::Claims;

#[derive(Debug, Default)]
pub struct Revocations {
    min_iat: RwLock<HashMap<ClientId, u64>>,
}

impl Revocations {
    /// Whether `claims` were issued before their identity's revocation.
    pub fn refuses(&self, claims: &Claims) -> bool {
        let map = self.min_iat.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        map.get(&claims.sub).is_some_and(|min_iat| claims.iat.unwrap_or(0) < *min_iat)
    }

    /// Notes that tokens of `sub` issued before `min_iat` are refused (the
    /// later of this and an earlier revocation). Returns whether that is
    /// news to this node.
    pub fn note(&self, sub: ClientId, min_iat: u64) -> bool {
        let mut map = self.min_iat.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        let entry = map.entry(sub).or_insert(0);
        let news = min_iat > *entry;
        *entry = (*entry).max(min_iat);
        news
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    #[test]
    fn tokens_issued_before_the_revocation_are_refused() {
        let revocations = Revocations::default();
        let sub = ClientId(Uuid::new_v4());
        let at = |iat: Option<u64>| Claims { iat, ..Claims::for_client(sub) };
        assert!(!revocations.refuses(&at(None)), "nothing revoked yet");
        assert!(revocations.note(sub, 1_000));
        assert!(revocations.refuses(&at(None)), "a token without iat predates any revocation");
        assert!(revocations.refuses(&at(Some(999))));
        assert!(!revocations.refuses(&at(Some(1_000))));
        assert!(!revocations.note(sub, 500), "an earlier revocation changes nothing");
        assert!(revocations.refuses(&at(Some(999))));
        let other = Claims::for_client(ClientId(Uuid::new_v4()));
        assert!(!revocations.refuses(&other), "only that identity");
    }
}
