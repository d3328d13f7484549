//! The HTTP fallback, for networks where WebSocket cannot get through
//! (proxies that strip `Upgrade`, middleboxes that break it): the same
//! `roomcast.v1` events and commands over plain HTTP, with the same
//! guarantees.
//!
//! - [`stream`]: `GET /api/events/{group}/{client_id}` answers
//!   `text/event-stream`: a member's connection like a socket's (the same
//!   registry, replay, acks, limits, heartbeat, close codes), served over an
//!   in-process pipe whose frames are relayed as Server-Sent Events
//!   ([`events`]: a message's id is `{epoch}:{seq}`, so `Last-Event-ID`
//!   resumes it);
//! - [`polls`]: with `?poll=1`, long polling where a proxy holds streams
//!   back: a session's connection lives between polls on the node that
//!   holds it; any other node opens one from the client's position;
//! - [`commands`]: `POST` to the same path, a batch of commands answered
//!   in order in the response; any node takes it.
//!
//! The token comes in `Authorization: Bearer`, never in the URL; a post
//! needs an allowed `Origin` or, without one, `X-Roomcast: 1` (a form
//! elsewhere cannot set it).

pub mod commands;
pub mod events;
pub mod polls;
pub mod stream;
