//! Custom hooks.

mod use_room;
mod use_rooms;

pub use use_room::{use_room, RoomHandle};
pub use use_rooms::{use_rooms, RoomsHandle};
