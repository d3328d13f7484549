//! What an inbound frame means, then what it does: [`Inbound::parse`] sorts
//! a frame by the connection's wire mode, and [`Connection::apply`] carries
//! it out, one arm per command.

use roomcast_shared::protocol::{check_text, fits_the_limit};
use roomcast_shared::{ChatMessage, ClientCommand, CommandError, ErrorCode, GroupName, MessageId, Sender, ServerEvent};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use super::close::CloseReason;
use super::context::Role;
use super::state::Connection;
use super::writes::event_frame;
use crate::auth::TokenError;
use crate::frame::Frame;
use crate::history::sequencer::{Publish, Reply, Stopped, Submitted};
use crate::history::Cursor;
use crate::registry::WireMode;

/// Who hears that a publish was stored: a JSON sender (its `ack`, or an
/// error), or nobody (a raw sender gets no acknowledgement).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AckTo {
    Sender,
    Nobody,
}

/// Why a `refresh` was not taken (the connection stays, with its old
/// token).
#[derive(Debug, thiserror::Error)]
enum RefreshRefused {
    #[error("this connection has no token to refresh")]
    NoToken,
    #[error("the token is not valid: {0}")]
    Token(TokenError),
    #[error("the token is for another identity")]
    OtherIdentity,
    #[error("the token does not allow this group")]
    OtherGroup,
}

/// An inbound frame, sorted.
#[derive(Debug)]
pub(super) enum Inbound {
    /// Control frames: answered by the WebSocket layer itself; here they
    /// count as signs of life and against the control-frame rate.
    Control,
    Command(Result<ClientCommand, CommandError>),
    /// A binary frame on a JSON connection.
    BinaryInJson,
    /// A raw text to store and relay as a group message.
    RawText(String),
    /// A raw frame relayed as it came to raw members only, outside the
    /// sequence: binary frames, blank texts and texts with control
    /// characters, which a message may not hold (control characters would
    /// reach JSON members six times as large).
    RawRelay(Frame),
}

impl Inbound {
    pub(super) fn parse(mode: WireMode, message: Message) -> Self {
        match (mode, message) {
            (_, Message::Ping(_) | Message::Pong(_) | Message::Close(_) | Message::Frame(_)) => Self::Control,
            (WireMode::Json, Message::Text(text)) => Self::Command(ClientCommand::decode(&text)),
            (WireMode::Json, Message::Binary(_)) => Self::BinaryInJson,
            // The rule every text is held to (not blank, no control
            // characters), whoever sends it.
            (WireMode::Raw, Message::Text(text)) if check_text(&text).is_ok() => {
                Self::RawText(text.as_str().to_owned())
            }
            // Relayed as it came, its bytes moved into the frame (control
            // frames were sorted out above).
            (WireMode::Raw, message) => Frame::try_from(message).map_or(Self::Control, Self::RawRelay),
        }
    }
}

impl Connection {
    /// Carries out one inbound frame.
    pub(super) fn apply(&mut self, inbound: Inbound) -> Result<(), CloseReason> {
        // Nothing more is taken on an expired token (the heartbeat closes
        // an idle one within a quarter of the idle timeout).
        if !matches!(inbound, Inbound::Control | Inbound::Command(Ok(ClientCommand::Refresh { .. })))
            && self.token_expired()
        {
            return Err(CloseReason::TokenExpired);
        }
        match inbound {
            Inbound::Control if self.take_control_frame(Instant::now()) => Ok(()),
            Inbound::Control => Err(CloseReason::ControlFlood),
            Inbound::Command(Ok(command)) if !self.takes(&command) => self.reply(&ServerEvent::Error {
                code: ErrorCode::InvalidMessage,
                message: format!("{}: not on this connection", command.kind()),
                id: command.message_id(),
            }),
            // Unanswered when taken: the identity's rooms streams (every
            // node) hear `forgotten` once it is.
            Inbound::Command(Ok(ClientCommand::Forget { group })) => {
                self.context().cursors.forget(self.peer().client_id, &group);
                Ok(())
            }
            Inbound::Command(Ok(ClientCommand::Send { id, ref text })) if !self.within_limit(text.len()) => {
                self.reply(&ServerEvent::Error {
                    code: ErrorCode::RateLimited,
                    message: "too many messages; send this one again later".into(),
                    id: Some(id),
                })
            }
            // The ack (or an error) comes from the sequencer, once stored.
            Inbound::Command(Ok(ClientCommand::Send { id, text })) => match self.publish(id, text, AckTo::Sender) {
                Ok(()) => {
                    self.invite_the_other_side();
                    Ok(())
                }
                Err(stopped) => self.refuse(id, stopped),
            },
            Inbound::Command(Ok(ClientCommand::Ping)) => self.reply(&ServerEvent::Pong),
            // Best-effort and unanswered: one per identity per interval
            // passes, the rest are dropped without a word.
            Inbound::Command(Ok(ClientCommand::Typing)) => {
                self.announce_typing();
                Ok(())
            }
            // Unanswered when taken: the identity's connections to the group
            // (this one too) hear the cursor once it is stored.
            Inbound::Command(Ok(ClientCommand::Read { epoch, seq })) if self.peer().verified => {
                let peer = self.peer();
                self.context().cursors.mark(peer.client_id, &peer.group, Cursor { epoch, seq });
                Ok(())
            }
            Inbound::Command(Ok(ClientCommand::Read { .. })) => self.reply(&ServerEvent::Error {
                code: ErrorCode::InvalidMessage,
                message: "read: only a verified identity (a connection with a token) has read cursors".into(),
                id: None,
            }),
            Inbound::Command(Ok(ClientCommand::Refresh { token })) => match self.take_refresh(&token) {
                Ok(()) => self.reply(&ServerEvent::Refreshed { token_expires_at: self.peer().token_expires_at }),
                Err(reason) => self.reply(&ServerEvent::Error {
                    code: ErrorCode::TokenRefused,
                    message: format!("refresh: {reason}"),
                    id: None,
                }),
            },
            Inbound::Command(Err(err)) => {
                tracing::debug!(conn = %self.peer().connection_id, code = ?err.code(), "refused a command");
                self.reply(&ServerEvent::from_command_error(&err))
            }
            Inbound::BinaryInJson => self.reply(&ServerEvent::Error {
                code: ErrorCode::BinaryNotSupported,
                message: "binary frames carry nothing in roomcast.v1; send JSON text".into(),
                id: None,
            }),
            // Every raw frame counts against the limit, relayed ones too:
            // a flood of empty or binary frames would otherwise reach every
            // raw member unchecked.
            Inbound::RawText(text) => {
                self.count_raw_frame(text.len())?;
                // The frame was within the limit; JSON members would get
                // its text up to twice as large.
                if !fits_the_limit(&text, self.context().settings.max_message_bytes) {
                    return Err(CloseReason::TooBigForJson);
                }
                // Raw clients get no acknowledgement; a refused publish is
                // logged by the sequencer, and a stopped one is the
                // shutdown this connection is about to see. Time-ordered
                // ids (v7) keep the store's id index appending at its end
                // (random ones dirtied a page of it per message: see
                // docs/BENCHMARKS.md).
                if self.publish(MessageId(Uuid::now_v7()), text, AckTo::Nobody).is_ok() {
                    self.invite_the_other_side();
                }
                Ok(())
            }
            Inbound::RawRelay(frame) => {
                self.count_raw_frame(frame.len())?;
                self.membership().relay(frame);
                Ok(())
            }
        }
    }

    /// Whether this connection takes `command`: a rooms stream takes
    /// `ping`, `refresh` and `forget` (of a room, not of itself); a group's
    /// member all but `forget`.
    fn takes(&self, command: &ClientCommand) -> bool {
        match (self.peer().role, command) {
            (Role::Rooms, ClientCommand::Forget { group }) => *group != GroupName::rooms_stream(),
            (Role::Rooms, ClientCommand::Ping | ClientCommand::Refresh { .. }) => true,
            (Role::Rooms, _) | (Role::Member { .. }, ClientCommand::Forget { .. }) => false,
            (Role::Member { .. }, _) => true,
        }
    }

    /// Puts a direct message group in the other participant's room list
    /// (unread, unless it is there already): someone wrote to them.
    fn invite_the_other_side(&self) {
        if let Role::Member { with: Some(other) } = self.peer().role {
            self.context().cursors.invite(other, &self.peer().group, self.peer().client_id);
        }
    }

    /// Tells the group's other members (every node) that this peer is
    /// typing, as its messages name it; within its identity's rate.
    fn announce_typing(&self) {
        let peer = self.peer();
        let from = Sender { client_id: peer.client_id, name: peer.name.clone(), verified: peer.verified };
        self.context().typing.announce(&peer.group, &from, Instant::now());
    }

    /// Takes a newer token for this connection's identity and group: its
    /// expiry replaces the connection's.
    fn take_refresh(&mut self, token: &str) -> Result<(), RefreshRefused> {
        if !self.peer().verified {
            return Err(RefreshRefused::NoToken);
        }
        let claims = self.context().auth.verify(token).map_err(RefreshRefused::Token)?;
        if claims.sub != self.peer().client_id {
            return Err(RefreshRefused::OtherIdentity);
        }
        // A rooms stream is its identity's, whatever groups the token
        // allows.
        if self.peer().role != Role::Rooms && !claims.allows(self.peer().group.as_str()) {
            return Err(RefreshRefused::OtherGroup);
        }
        self.extend_token(claims.exp);
        Ok(())
    }

    /// One raw frame against the publish rate limit. A raw client cannot be
    /// told about one refused frame, so a flood closes it (1008).
    fn count_raw_frame(&mut self, bytes: usize) -> Result<(), CloseReason> {
        if self.within_limit(bytes) {
            Ok(())
        } else {
            Err(CloseReason::RateLimited)
        }
    }

    /// Whether one more publish fits the client's and its address's limits.
    fn within_limit(&self, bytes: usize) -> bool {
        let identity = self.peer().verified.then_some(self.peer().client_id);
        self.context().limits.try_take(identity, self.peer().ip, bytes, Instant::now())
    }

    /// Hands a message to the sequencer (`ack`: whether its sender hears
    /// of it). When the writer is far behind, the
    /// publish is held and the connection reads nothing more until it is
    /// handed over: the sender is held back, while this connection's writes
    /// go on, so its own queue keeps draining instead of overflowing.
    fn publish(&mut self, id: MessageId, text: String, ack: AckTo) -> Result<(), Stopped> {
        let peer = self.peer();
        let message = ChatMessage {
            group: peer.group.clone(),
            seq: 0,
            id,
            from: Sender { client_id: peer.client_id, name: peer.name.clone(), verified: peer.verified },
            text,
            ts: 0,
        };
        let reply = match ack {
            AckTo::Sender => Reply::Queue(self.membership().queue().clone()),
            AckTo::Nobody => Reply::Nobody,
        };
        match self.context().sequencer.try_submit(Publish { message, reply })? {
            Submitted::Queued => {}
            Submitted::Backlogged(backlogged) => self.hold(backlogged),
        }
        Ok(())
    }

    /// Tells a JSON sender its message was not taken (the server is
    /// stopping); its app sends it again after reconnecting.
    pub(super) fn refuse(&self, id: MessageId, stopped: Stopped) -> Result<(), CloseReason> {
        self.reply(&ServerEvent::Error { code: ErrorCode::Unavailable, message: stopped.to_string(), id: Some(id) })
    }

    fn reply(&self, event: &ServerEvent) -> Result<(), CloseReason> {
        self.queue(event_frame(event))
    }

    /// Queues a frame for this connection only.
    pub(super) fn queue(&self, frame: Frame) -> Result<(), CloseReason> {
        self.membership().reply(frame).map_err(|_| CloseReason::TooSlow)
    }
}
