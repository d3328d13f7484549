//! The admin page's rules as plain Rust (the page is `/admin` on the
//! server's admin address; see [`components::admin`](crate::components)):
//! unit-tested natively, like [`session`](crate::session).
//!
//! - [`wire`]: the admin API's answers.
//! - [`answer`]: what an answer's status means (a refused key, the
//!   server's error).
//! - [`forms`]: what the operator types, checked (a client id, a ban).
//! - [`chart`]: the traffic chart's scales and lines.
//! - [`show`]: how numbers, ages and bans are written.
//! - [`state`]: the page's `Reducible` state and its actions.

pub mod answer;
pub mod chart;
pub mod forms;
pub mod show;
pub mod state;
pub mod wire;

pub use answer::Problem;
pub use state::{AdminAction, AdminKey, AdminState, Outcome};
