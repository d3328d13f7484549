//! Custom hooks.

mod use_room;

pub use use_room::{use_room, RoomHandle};
