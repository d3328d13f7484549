//! Custom hooks.

mod use_admin;
mod use_room;
mod use_rooms;

pub use use_admin::{use_admin, AdminHandle};
pub use use_room::{use_room, RoomHandle};
pub use use_rooms::{use_rooms, RoomsHandle};
