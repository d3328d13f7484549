//! The views. Props derive `PartialEq`; user actions leave through `on_*`
//! callbacks.

mod admin;
mod composer;
mod copy_link;
mod join;
mod message_list;
mod people;
mod room;
mod room_list;
mod rows;
mod status_bar;
mod typing;

pub use admin::AdminPage;
pub use composer::Composer;
pub use copy_link::CopyLink;
pub use join::{Join, NamePrompt};
pub use message_list::MessageList;
pub use people::People;
pub use room::Room;
pub use room_list::RoomList;
pub use status_bar::StatusBar;
pub use typing::Typing;
