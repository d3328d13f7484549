//! This node's rooms streams, by identity, and the rooms each watches: a
//! stream gets an `activity` per message of a room it watches (through
//! the registry, [`Registry::watch`]) and what its identity's other
//! devices change in the list ([`RoomsHub::tell`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use roomcast_shared::{ClientId, GroupName};

use crate::frame::Frame;
use crate::locks::lock;
use crate::queue::{MemberQueue, Outbound};
use crate::registry::{Membership, Registry};

/// Most rooms one stream watches: the store lists at most 200 per
/// identity; the margin is for rooms added while the list was read.
pub const MAX_WATCHED: usize = 256;

#[derive(Debug)]
pub struct RoomsHub {
    registry: Arc<Registry>,
    streams: Mutex<HashMap<ClientId, Vec<Weak<Stream>>>>,
}

/// One rooms stream: its connection's queue and its watches.
#[derive(Debug)]
pub struct Stream {
    queue: Arc<MemberQueue>,
    watches: Mutex<HashMap<GroupName, Membership>>,
}

/// A stream's place in the hub; dropping it ends its watches.
#[derive(Debug)]
pub struct Open {
    hub: Arc<RoomsHub>,
    sub: ClientId,
    stream: Arc<Stream>,
}

impl RoomsHub {
    pub fn new(registry: Arc<Registry>) -> Arc<Self> {
        Arc::new(Self { registry, streams: Mutex::default() })
    }

    /// A rooms stream of `sub` whose connection reads `queue`.
    pub fn open(self: &Arc<Self>, sub: ClientId, queue: Arc<MemberQueue>) -> Open {
        let stream = Arc::new(Stream { queue, watches: Mutex::default() });
        let mut streams = lock(&self.streams);
        let own = streams.entry(sub).or_default();
        own.retain(|stream| stream.strong_count() > 0);
        own.push(Arc::downgrade(&stream));
        Open { hub: self.clone(), sub, stream }
    }

    /// `sub`'s streams here watch `group` from now on.
    pub fn watch(&self, sub: ClientId, group: &GroupName) {
        for stream in self.streams_of(sub) {
            let mut watches = lock(&stream.watches);
            if watches.len() < MAX_WATCHED && !watches.contains_key(group) {
                let membership = self.registry.watch(group, sub, stream.queue.clone());
                watches.insert(group.clone(), membership);
            }
        }
    }

    /// `sub`'s streams here stop watching `group`.
    pub fn unwatch(&self, sub: ClientId, group: &GroupName) {
        for stream in self.streams_of(sub) {
            // Left outside the lock: leaving takes the registry's.
            let gone = lock(&stream.watches).remove(group);
            drop(gone);
        }
    }

    /// Pushes `frame` to `sub`'s streams here, like a delivery: a stream
    /// that cannot take it is evicted (its client connects again and gets
    /// the whole list).
    pub fn tell(&self, sub: ClientId, frame: &Frame) {
        for stream in self.streams_of(sub) {
            stream.queue.push_or_evict(Outbound::unsequenced(frame.clone()));
        }
    }

    fn streams_of(&self, sub: ClientId) -> Vec<Arc<Stream>> {
        lock(&self.streams).get(&sub).map_or_else(Vec::new, |own| own.iter().filter_map(Weak::upgrade).collect())
    }

    /// Streams open here (for tests and health).
    pub fn open_streams(&self) -> usize {
        lock(&self.streams).values().map(|own| own.iter().filter(|stream| stream.strong_count() > 0).count()).sum()
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        let mut streams = lock(&self.hub.streams);
        if let Some(own) = streams.get_mut(&self.sub) {
            own.retain(|stream| stream.strong_count() > 0 && !std::ptr::eq(stream.as_ptr(), Arc::as_ptr(&self.stream)));
            if own.is_empty() {
                streams.remove(&self.sub);
            }
        }
        drop(streams);
        // The watches leave their groups now, outside the hub's lock.
        let watches = std::mem::take(&mut *lock(&self.stream.watches));
        drop(watches);
    }
}
