//! An identity's rooms stream (`/ws/_me/{client_id}`): one socket per
//! browser that lists the identity's rooms (every group it has a read
//! cursor in, direct messages included) and keeps the list up to date
//! without a socket per room.
//!
//! - [`entry`]: a room as the store has it (latest message, cursor, exact
//!   unread count up to 100, a direct message's other participant), read
//!   when the list is sent and when a cursor moves;
//! - [`hub`]: this node's streams and the rooms each watches; a watched
//!   room's messages reach the stream as `activity` events through the
//!   registry ([`Registry::watch`](crate::registry::Registry::watch)), so
//!   every node that has a stream of the identity hears them, Redis or not;
//! - [`Heard`]: what a node does when the nodes say a room of an identity
//!   changed (a cursor moved, a direct message began, a room was
//!   forgotten): its streams watch (or stop watching) and are told.
//!
//! The stream is a JSON connection like a room's (the same loop, bounds,
//! heartbeat and close codes) in the reserved group `_me`, which has no
//! history: after `welcome` it sends `rooms`, then goes live.

pub mod entry;
pub mod hub;

use std::sync::Arc;

use roomcast_shared::{ClientId, GroupName, RoomEntry, ServerEvent};

pub use hub::RoomsHub;

use crate::frame::Frame;

/// The hearing half: what a node does with the rooms controls.
#[derive(Debug, Clone)]
pub struct Heard {
    hub: Arc<RoomsHub>,
}

impl Heard {
    pub fn new(hub: Arc<RoomsHub>) -> Self {
        Self { hub }
    }

    /// `sub`'s room is now `room` (its cursor moved, or it is new to the
    /// list): its streams here watch it and are told.
    pub fn room(&self, sub: ClientId, room: RoomEntry) {
        self.hub.watch(sub, &room.group);
        self.hub.tell(sub, &Frame::text(ServerEvent::Room { room }.encode()));
    }

    /// `sub` forgot `group`: its streams here stop watching it and are
    /// told.
    pub fn forgotten(&self, sub: ClientId, group: GroupName) {
        self.hub.unwatch(sub, &group);
        self.hub.tell(sub, &Frame::text(ServerEvent::Forgotten { group }.encode()));
    }
}
