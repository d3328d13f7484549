//! Browser glue for the connection: opening the socket and running the
//! [`session`](crate::session) logic against it, and the Web Locks that let
//! tabs share storage. Each file does one job and decides nothing itself:
//! every rule is a call into [`session`](crate::session) or
//! [`timeline`](crate::timeline). Also the admin page's requests
//! ([`admin`]), whose rules are in [`crate::admin`].

pub mod admin;
pub mod attention;
pub mod carrier;
pub mod clock;
pub mod command;
pub mod connection;
pub mod credentials;
pub mod driver;
pub mod events;
pub mod http;
pub mod identity;
pub mod request;
pub mod rooms_stream;
pub mod sending;
pub mod shared_stream;
pub mod socket;
pub mod tabs;
pub mod timeout;
pub mod view;

pub use command::Command;
pub use driver::Driver;
