//! Roomcast's server: WebSocket group broadcast on warp and tokio.
//!
//! # Layout
//!
//! From the socket inwards:
//! - [`server`]: binds, serves, and shuts down (used by `main` and by tests);
//!   [`backend`]: the store, delivery half and signal half, opened from the
//!   configuration; [`assembly`]: the server's state on a backend, without a
//!   socket.
//! - [`net`]: accepts sockets and serves HTTP/1.1 with hyper under bounds:
//!   the handshake timeout, connection caps per server and per address, the
//!   client address behind trusted proxies.
//! - [`routes`]: the HTTP surface, one warp filter per route, one `recover`;
//!   `api`: the history API behind it; [`publish_api`]: the server-side
//!   publish; `presence_api`: a group's presence; [`identities`]:
//!   self-service identities; [`http_error`]: how
//!   each error a request can cause is answered (status, headers, reason).
//! - [`access`]: which hosts and origins are answered (before anything else);
//!   `admin`: the admin surface (`/metrics`, `/drain`) on its own address.
//! - [`auth`]: signed identities (JWT), checked at the handshake and on the
//!   API; [`identity_control`]: revoking, disconnecting and banning
//!   identities (and addresses) on every node; [`ban`]: what a ban is.
//! - [`signals`]: what nodes tell each other beside the messages (a control
//!   channel: revocations and typing now) and which nodes are live; in
//!   memory or over Redis. `node_signals`: this node's one handler of them;
//!   `typing`: typing indicators, rate-limited, across nodes; `cursors`:
//!   read cursors, written off the connection loop and told across nodes;
//!   [`presence`]: who is in each group, across tabs, devices and nodes;
//!   `rooms`: an identity's rooms stream (its room list, unread counts).
//! - [`upgrade`]: validates a WebSocket handshake and hands the upgraded
//!   socket, with Roomcast's small-buffer settings, to a connection task;
//!   `stripped_upgrades`: handshakes that came without `Upgrade`, which the
//!   app asks after; [`http_session`]: the same member over plain HTTP.
//! - `batched_io`: one socket write per batch of frames, memory freed after.
//! - [`connection`]: the per-connection loop: frames in, group operations,
//!   batched writes out, heartbeat, close codes.
//! - [`history`]: the durable log (SQLite, memory or Redis), the single
//!   writer that sequences and stores every message before fan-out,
//!   retention, and delivery across nodes in Redis mode.
//! - [`registry`]: groups, membership and fan-out; `direct_writes`: the fan-out's
//!   writes straight to the sockets of members waiting for them.
//! - [`queue`]: a member's bounded outbound queue (and who writes to its
//!   socket); [`rate`]: publish
//!   limits per identity and per address, kept across reconnects;
//!   [`new_groups`]: rooms opened per identity and address.
//! - [`metrics`]: what a node counts for its operator (`/metrics`), never
//!   per delivery.
//! - [`config`]: flags and environment; [`check_config`]: what
//!   `--check-config` prints; [`state`]: what routes share;
//!   [`shutdown`]: the stop signal; [`drain`]: a rolling restart's drain; `hex`: bytes as text; `owner_only`:
//!   the data directory and database files, its user's alone.
//!
//! The wire types live in `roomcast-shared`; `docs/PROTOCOL.md` describes
//! them and `ARCHITECTURE.md` the invariants this crate keeps.
//!
//! Public are the modules the binary, the integration tests, `bench/` and
//! `fuzz/` use; the rest is private. Test-only code lives in
//! `roomcast-testkit`, a dev-dependency.

pub mod access;
mod admin;
mod api;
pub mod assembly;
pub mod auth;
pub mod backend;
pub mod ban;
mod batched_io;
pub mod check_config;
pub mod clock;
pub mod config;
mod connection;
mod cursors;
mod direct_writes;
pub mod drain;
mod frame;
mod hex;
pub mod history;
pub mod http_error;
pub mod http_session;
pub mod identities;
pub mod identity_control;
mod locks;
pub mod metrics;
pub mod net;
mod new_groups;
mod node_report;
mod node_signals;
mod owner_only;
pub mod presence;
mod presence_api;
pub mod publish_api;
mod queue;
mod rate;
mod redis_commands;
mod registry;
mod rooms;
pub mod routes;
mod seen;
pub mod server;
pub mod shutdown;
pub mod signals;
pub mod state;
mod stripped_upgrades;
mod typing;
pub mod upgrade;

pub use config::Config;
pub use server::{Failure, Server, StartError};
