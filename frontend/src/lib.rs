//! Roomcast's browser client, a Yew single-page app.
//!
//! Layout:
//! - [`session`]: connection logic as plain Rust (reconnect machine,
//!   heartbeat, outbox and its delivery states, tabs, which identity a
//!   connection uses and when its token is renewed, where a reconnect
//!   resumes, when messages are handed to the view), unit-tested natively.
//! - [`timeline`]: the ordered, bounded timeline as plain Rust (what a gap
//!   means, which page to load next, the scrolling rules), unit- and
//!   property-tested natively.
//! - [`state`]: the room's `Reducible` state and its `Action`s.
//! - [`net`]: thin browser glue: the WebSocket driver that runs the session
//!   logic against a real socket and dispatches actions; Web Locks for tabs.
//! - [`hooks`]: `use_room`, which owns a driver for the lifetime of a room
//!   view and returns a handle with the user's actions (send, retry, delete,
//!   close, reconnect, paging).
//! - [`components`]: the views; [`app`]: routes.
//! - [`storage`]: the identity, display name and outboxes kept in
//!   localStorage; the admin key in sessionStorage.
//! - [`admin`]: the admin page's rules (`/admin`, served on the server's
//!   admin address) as plain Rust: its answers, forms, chart and state.

pub mod admin;
pub mod app;
pub mod components;
pub mod hooks;
pub mod net;
pub mod session;
pub mod state;
pub mod storage;
pub mod timeline;

#[cfg(test)]
mod test_support;

/// Mounts the app on the document body.
pub fn run() {
    yew::Renderer::<app::App>::new().render();
}
