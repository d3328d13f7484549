//! Browser glue for the connection: opening the socket and running the
//! [`session`](crate::session) logic against it, and the Web Locks that let
//! tabs share storage.

pub mod command;
pub mod driver;
pub mod identity;
pub mod tabs;

pub use command::Command;
pub use driver::Driver;
