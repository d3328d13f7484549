//! Roomcast's wire contract, shared by the server and the browser client.
//!
//! This crate is the protocol and nothing else: serde types, validation and
//! limits. It has no runtime dependencies (no tokio, warp or yew) so that both
//! sides compile it unchanged and so that it can be read as a specification.
//! Every serializable type here is part of the public protocol documented in
//! `docs/PROTOCOL.md`; changing one means changing [`SUBPROTOCOL`].
//!
//! Layout:
//! - [`names`]: validated identifiers that appear in URLs (group, client id,
//!   display name).
//! - [`message`]: a group's message and its sender.
//! - [`protocol`]: the `roomcast.v1` JSON frames, client → server and
//!   server → client, with decoding that classifies bad input.
//! - [`presence`]: who is in a group (the members and counts of the
//!   `presence`, `join` and `leave` events).
//! - [`rooms`]: an identity's rooms (the events of its rooms stream).
//! - [`seen`]: who has read a small group how far (the `seen` event).
//! - [`close`]: WebSocket close codes the server uses and what a client should
//!   do after each.
//! - [`limits`]: default sizes and timings both sides agree on.

pub mod close;
pub mod limits;
pub mod message;
pub mod names;
pub mod presence;
pub mod protocol;
pub mod rooms;
pub mod seen;

pub use message::{ChatMessage, Sender};
pub use names::{ClientId, DisplayName, GroupName, NameError, DIRECT_PREFIX, ROOMS_STREAM, SERVER_NAME};
pub use presence::{PresenceCount, PresentMember};
pub use protocol::{
    ClientCommand, CommandError, ErrorCode, HeartbeatSettings, MessageId, MessagePage, ServerEvent, Welcome,
};
pub use rooms::{LastMessage, RoomEntry};
pub use seen::Reader;

/// The WebSocket subprotocol a client asks for to speak the JSON protocol.
///
/// A connection that negotiates no subprotocol is in *raw* mode: each text
/// frame is a message and members receive bare text (see `docs/PROTOCOL.md`).
pub const SUBPROTOCOL: &str = "roomcast.v1";

/// A token may ride in `Sec-WebSocket-Protocol` as a second offered
/// subprotocol, `roomcast.token.<jwt>`, which keeps it out of URLs and so
/// out of proxies' logs (as Kubernetes does). The server never echoes it.
pub const TOKEN_SUBPROTOCOL_PREFIX: &str = "roomcast.token.";
