//! What this node does with the sanctions the nodes announce (its signal
//! handler calls it): it keeps its copies of the revocations and bans as
//! the store has them, and closes its own sockets of whoever they name.

use std::sync::Arc;

use roomcast_shared::ClientId;

use super::enforce::enforce;
use crate::auth::{Bans, Revocations};
use crate::clock::unix_millis;
use crate::history::Store;
use crate::queue::Removal;
use crate::registry::Registry;
use crate::signals::{NodeId, NotHandled, Sanction};

#[derive(Clone)]
pub struct Heard {
    node: NodeId,
    store: Arc<dyn Store>,
    revocations: Arc<Revocations>,
    bans: Arc<Bans>,
    registry: Arc<Registry>,
}

impl Heard {
    pub fn new(
        node: NodeId,
        store: Arc<dyn Store>,
        (revocations, bans): (Arc<Revocations>, Arc<Bans>),
        registry: Arc<Registry>,
    ) -> Self {
        Self { node, store, revocations, bans, registry }
    }

    /// A node announced `sanction` (this one too).
    pub fn sanction(&self, sanction: Sanction) {
        match sanction {
            Sanction::Revoke { sub, issued_before } => revoke(&self.revocations, &self.registry, sub, issued_before),
            Sanction::Disconnect { sub, reason, by } if by != self.node => {
                let closed_here =
                    self.registry.remove(|client, _| client == sub, &Removal::Disconnected { reason: reason.into() });
                tracing::info!(%sub, closed_here, "identity disconnected on another node");
            }
            Sanction::Disconnect { .. } => {}
            Sanction::Ban { ban } => {
                let id = ban.id;
                let closed_here = enforce(&self.bans, &self.registry, ban);
                if closed_here > 0 {
                    tracing::info!(%id, closed_here, "ban from another node");
                }
            }
            Sanction::Lift { id } => {
                self.bans.lift(id);
            }
        }
    }

    /// The node listens (again): the stored revocations and bans are read,
    /// those lifted meanwhile dropped.
    pub fn listening(&self) -> Result<(), NotHandled> {
        for (sub, min_iat) in self.store.revocations().map_err(|err| NotHandled(Box::new(err)))? {
            revoke(&self.revocations, &self.registry, sub, min_iat);
        }
        let stored = self.store.bans(unix_millis()).map_err(|err| NotHandled(Box::new(err)))?;
        for held in self.bans.active() {
            if !stored.iter().any(|ban| ban.id == held.id) {
                self.bans.lift(held.id);
            }
        }
        for ban in stored {
            enforce(&self.bans, &self.registry, ban);
        }
        Ok(())
    }
}

/// Notes a revocation; if it is news here, closes this node's sockets of
/// that identity.
fn revoke(revocations: &Revocations, registry: &Registry, sub: ClientId, min_iat: u64) {
    if revocations.note(sub, min_iat) {
        let closed_here = registry.remove(|client, _| client == sub, &Removal::Revoked);
        tracing::info!(%sub, closed_here, "identity revoked on another node");
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::auth::Claims;
    use crate::ban::Ban;
    use crate::history::memory::MemoryStore;
    use crate::queue::Capacity;

    fn listening_to(store: &Arc<dyn Store>) -> (Arc<Revocations>, Arc<Bans>) {
        let copies = (Arc::new(Revocations::default()), Arc::new(Bans::default()));
        let registry = Registry::new(Capacity { messages: 8, bytes: 1 << 16 });
        Heard::new(NodeId::random(), store.clone(), copies.clone(), registry)
            .listening()
            .expect("the memory store answers");
        copies
    }

    #[test]
    fn a_node_that_starts_listening_reads_the_stored_revocations_and_bans() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::with_max_groups(None));
        let sub = ClientId(Uuid::new_v4());
        assert!(!listening_to(&store).0.refuses(&Claims::for_client(sub)));
        store.revoke(sub, 1_000).unwrap();
        let ban = Ban {
            id: Uuid::new_v4(),
            sub: Some(ClientId(Uuid::new_v4())),
            network: None,
            until_ms: unix_millis() + 60_000,
            reason: String::new(),
            created_ms: 0,
        };
        store.ban(&ban).unwrap();
        let (revocations, bans) = listening_to(&store);
        assert!(revocations.refuses(&Claims { iat: Some(999), ..Claims::for_client(sub) }));
        assert!(!revocations.refuses(&Claims { iat: Some(1_000), ..Claims::for_client(sub) }));
        assert_eq!(bans.active(), [ban]);
    }
}
