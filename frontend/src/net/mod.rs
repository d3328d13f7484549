//! Browser glue for the connection: opening the socket and running the
//! [`session`](crate::session) logic against it.

pub mod driver;

pub use driver::{Command, Driver};
