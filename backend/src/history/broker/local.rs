//! The local broker (SQLite, memory): this node is the only writer, so the
//! sequencer's commits are all there is to deliver; each goes to the
//! members in order ([`deliver_in_order`]), then its `ack`.

use std::sync::Arc;

use roomcast_shared::ChatMessage;

use super::contract::{Ack, Broker};
use crate::history::delivery::deliver_in_order;
use crate::history::store::Store;
use crate::registry::Registry;

pub struct LocalBroker {
    store: Arc<dyn Store>,
    registry: Arc<Registry>,
}

impl std::fmt::Debug for LocalBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LocalBroker")
    }
}

impl LocalBroker {
    /// Delivers to `registry`, filling holes from `store`.
    pub fn new(store: Arc<dyn Store>, registry: Arc<Registry>) -> Self {
        Self { store, registry }
    }
}

impl Broker for LocalBroker {
    fn committed(&self, message: ChatMessage, epoch: &str, ack: Option<Ack>) {
        let _filled = deliver_in_order(&self.registry, self.store.as_ref(), message, epoch);
        if let Some(ack) = ack {
            ack.send();
        }
    }
}
