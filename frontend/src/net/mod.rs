//! Browser glue for the connection: opening the socket and running the
//! [`session`](crate::session) logic against it, and the Web Locks that let
//! tabs share storage.

pub mod driver;
pub mod identity;
pub mod tabs;

pub use driver::{Command, Driver};
