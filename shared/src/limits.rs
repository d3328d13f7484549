//! Defaults both sides agree on. The server may be configured differently; it
//! tells each client the values in force in its `welcome` event.

/// Largest WebSocket message (after reassembly of fragments) a server accepts
/// by default. Larger ones close the connection with
/// [`close::MESSAGE_TOO_BIG`](crate::close::MESSAGE_TOO_BIG).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// Interval at which the server pings (WebSocket Ping frames) and at which a
/// JSON client should send its application-level `ping`.
pub const PING_INTERVAL_MS: u64 = 15_000;

/// A connection with no inbound traffic for this long is considered dead.
pub const IDLE_TIMEOUT_MS: u64 = 45_000;

/// Longest display name, in characters.
pub const MAX_DISPLAY_NAME_CHARS: usize = 32;

/// Longest group name, in bytes (all of them ASCII).
pub const MAX_GROUP_NAME_LEN: usize = 64;

/// Messages a client receives on joining without a `since`.
pub const HISTORY_ON_JOIN: usize = 100;

/// Default and largest page of the history API.
pub const HISTORY_PAGE: usize = 50;
pub const MAX_HISTORY_PAGE: usize = 200;

/// Most bytes of messages (as JSON) in one page of the history API: a page
/// of large messages holds fewer of them (at least one).
pub const MAX_HISTORY_PAGE_BYTES: usize = 1024 * 1024;

/// The server passes on at most one `typing` per identity in this time;
/// clients send no more often either.
pub const TYPING_EVERY_MS: u64 = 2_000;

/// How long a client shows that someone is typing, unless their message
/// arrives first.
pub const TYPING_SHOWN_MS: u64 = 6_000;

/// Most members a `presence` snapshot lists (with the totals): a joiner
/// of a large group gets a bounded frame, not the whole group.
pub const PRESENCE_LISTED: usize = 100;

/// How long an identity stays present after its last connection to a
/// group closed, unless configured otherwise: a reload or a reconnect
/// within it shows no leave.
pub const PRESENCE_GRACE_MS: u64 = 5_000;

/// Unread counts stop here: a client shows this many or more as "99+".
pub const MAX_UNREAD: u64 = 100;
