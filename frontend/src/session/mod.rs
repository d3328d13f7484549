//! The client's connection logic as plain Rust: no browser types, no clocks
//! and no randomness of its own (callers pass `now` in milliseconds and a
//! random number), so that every rule is unit-tested natively.
//!
//! - [`link`]: the reconnect state machine (connecting / open / waiting /
//!   offline / stopped) with exponential backoff and full jitter.
//! - [`attempt`]: a connection attempt's deadline.
//! - [`credentials`]: which identity a connection uses, replacing one the
//!   server refuses for good, and keeping one an operator banned.
//! - [`removal`]: an operator's disconnect or ban, as the server tells it.
//! - [`heartbeat`]: application-level ping/pong and dead-link detection.
//! - [`identity`]: this browser's identity and when its token is renewed
//!   (before use, ahead of an open connection's expiry, after 4001).
//! - [`outbox`]: messages typed but not yet acknowledged, one in flight, and
//!   what became of each (sending, retrying, failed).
//! - [`tabs`]: one outbox per tab and room in shared storage, and when a tab
//!   adopts another's.
//! - [`resume`]: where a reconnect resumes (`since`, `epoch`).
//! - [`batcher`]: when received messages are handed to the view.
//! - [`lines`]: what the status and the timeline say about the connection.
//! - [`typing`]: when `typing` is sent, and who is shown as typing.
//! - [`presence`]: who is in the room, from the server's snapshot, joins
//!   and leaves.
//! - [`rooms`]: this identity's room list, from its rooms stream, with the
//!   unread counts and the title's total.
//! - [`direct`]: direct messages: a room of two, what its header calls the
//!   other person, why one is refused for good.
//! - [`reading`]: read cursors: when `read` goes, what `cursor` does, and
//!   where the "New messages" divider goes when the room opens.
//! - [`seen_by`]: "Seen by Alice, Bob" under one's own latest message, from
//!   the other readers' cursors (small groups only).
//! - [`transport`]: WebSocket, else the HTTP event stream, else long
//!   polling, and back to WebSocket once it opens again.
//! - [`sse`]: the HTTP event stream's Server-Sent Events, parsed.
//! - [`shared_stream`]: the browser's one HTTP stream: its members, the
//!   query that asks for each from where it is, whose each event is.

pub mod attempt;
pub mod batcher;
pub mod credentials;
pub mod direct;
pub mod heartbeat;
pub mod identity;
pub mod lines;
pub mod link;
pub mod outbox;
pub mod presence;
pub mod reading;
pub mod removal;
pub mod resume;
pub mod rooms;
pub mod seen_by;
pub mod shared_stream;
pub mod sse;
pub mod tabs;
pub mod transport;
pub mod typing;

pub use attempt::{Attempt, Opening, Reached};
pub use batcher::Batcher;
pub use credentials::{choose_identity, BeforeUse, Choice, RefusalCheck, RoomCheck, Standing};
pub use direct::{guest_name, Direct, Refusal};
pub use heartbeat::{Beat, Heartbeat};
pub use identity::{Answer, ConnectionToken, Identity, OnConnection, Renewals};
pub use link::{Backoff, Link, Phase, Stop};
pub use outbox::{Delivery, Outbox, Pending, Saved};
pub use presence::{People, PeopleShown};
pub use reading::{Reading, READ_EVERY_MS};
pub use removal::{Ban, Removal};
pub use resume::ResumeCursor;
pub use rooms::{RoomList, RoomsShown};
pub use seen_by::{SeenBy, SeenByLine};
pub use shared_stream::{SharedMembers, Want};
pub use sse::{SseItem, SseParser};
pub use tabs::{Owner, TabOutbox};
pub use transport::{InUse, Transport, TransportConfig, Transports};
pub use typing::{TypingLine, TypingPeople, TypingSender};
