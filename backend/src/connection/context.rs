//! What a connection is given: who its peer is ([`Peer`]), and what every
//! connection of the server shares ([`Context`], with its [`Settings`]).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use roomcast_shared::{ClientId, DisplayName, GroupName};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::auth::Auth;
use crate::cursors::Cursors;
use crate::drain::Drain;
use crate::history::sequencer::Sequencer;
use crate::history::{History, Start};
use crate::metrics::Metrics;
use crate::rate::PublishLimits;
use crate::registry::WireMode;
use crate::rooms::RoomsHub;
use crate::typing::Typing;

/// Who is on the other end, as established by the upgrade.
#[derive(Debug, Clone)]
pub struct Peer {
    pub connection_id: Uuid,
    pub client_id: ClientId,
    pub name: Option<DisplayName>,
    /// The connection presented a valid token for `client_id`.
    pub verified: bool,
    /// When its token expires (Unix seconds), unless a `refresh` brings a
    /// newer one; `None`: never.
    pub token_expires_at: Option<u64>,
    /// The client's address (the socket's, or a trusted proxy's word).
    pub ip: IpAddr,
    pub group: GroupName,
    pub mode: WireMode,
    /// What the connection is for.
    pub role: Role,
    /// Where the replay starts (JSON mode).
    pub start: Start,
}

/// What a connection is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A member of its group; `with`: the other participant of a direct
    /// message group (who is invited to it when this one writes).
    Member { with: Option<ClientId> },
    /// The identity's rooms stream: its room list, kept up to date; no
    /// history, no publishing.
    Rooms,
}

/// Connection settings taken from the server configuration.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub ping_interval: Duration,
    pub idle_timeout: Duration,
    pub close_grace: Duration,
    pub max_message_bytes: usize,
    /// Messages replayed to a client that joins without `since`.
    pub history_on_join: usize,
    /// Groups with at most this many readers get "seen by" (0: off).
    pub seen_max: usize,
}

/// What every connection shares; built once per server.
#[derive(Debug)]
pub struct Context {
    pub history: History,
    pub sequencer: Sequencer,
    pub limits: PublishLimits,
    /// Passes on `typing` (its own rate, per identity) to every node.
    pub typing: Typing,
    /// Takes verified members' `read`s, written and told to every node
    /// off the connection loop.
    pub cursors: Cursors,
    /// Checks the token of a `refresh`.
    pub auth: Arc<Auth>,
    /// This node's rooms streams (what a rooms stream watches).
    pub rooms: Arc<RoomsHub>,
    pub settings: Settings,
    /// Cancelled once when the server begins to shut down.
    pub shutdown: CancellationToken,
    /// Begun when the node drains for a rolling restart: each connection
    /// closes at its own moment of the period.
    pub drain: Drain,
    /// Cancelled when the close grace is over at shutdown: connection tasks
    /// still running then are dropped, and their sockets with them.
    pub abandon: CancellationToken,
    /// Closes, replays and limits, counted for the operator.
    pub metrics: Arc<Metrics>,
}
