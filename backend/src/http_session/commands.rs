//! An HTTP session's commands: a batch posted at once (`POST
//! /api/events/{group}/{client_id}`), each answered in the response, in
//! order: a `send` with its `ack` (or an `error`) once stored, a `ping`
//! with `pong`, and `null` for what a socket leaves unanswered (`typing`,
//! `read`). The message itself comes on the event stream as for everyone.
//! Nothing here is the session's own: any node takes a session's posts
//! (a resend after a lost answer is recognized by its id, as a socket's).
//! One place per command, as the socket's `Connection::apply` has.

use std::net::IpAddr;

use roomcast_shared::protocol::fits_the_limit;
use roomcast_shared::{ChatMessage, ClientCommand, ClientId, CommandError, ErrorCode, GroupName, Sender, ServerEvent};
use tokio::time::Instant;

use crate::connection::{Context, Role};
use crate::history::sequencer::Answer;
use crate::history::Cursor;

/// Most commands in one post.
pub const MAX_COMMANDS: usize = 64;

/// Who posts, as the gate let it through.
#[derive(Debug, Clone)]
pub struct Poster {
    pub group: GroupName,
    pub from: Sender,
    pub ip: IpAddr,
    /// A group's member (with a direct message's other participant, invited
    /// when this one writes), or an identity's rooms stream.
    pub role: Role,
}

/// Carries out `commands` in order; the answer to each.
pub async fn apply(
    commands: Vec<Result<ClientCommand, CommandError>>,
    poster: &Poster,
    context: &Context,
) -> Vec<Option<ServerEvent>> {
    let mut answers = Vec::with_capacity(commands.len());
    for command in commands {
        answers.push(match command {
            Err(err) => Some(ServerEvent::from_command_error(&err)),
            Ok(command) => one(command, poster, context).await,
        });
    }
    answers
}

async fn one(command: ClientCommand, poster: &Poster, context: &Context) -> Option<ServerEvent> {
    let identity = poster.from.verified.then_some(poster.from.client_id);
    match (poster.role, command) {
        // A rooms stream takes `ping` and `forget` (of a room, not of
        // itself); a group's member all but `forget`.
        (Role::Rooms, ClientCommand::Forget { group }) if group != GroupName::rooms_stream() => {
            context.cursors.forget(poster.from.client_id, &group);
            None
        }
        (Role::Rooms, ClientCommand::Ping) | (Role::Member { .. }, ClientCommand::Ping) => Some(ServerEvent::Pong),
        (Role::Rooms, command) | (Role::Member { .. }, command @ ClientCommand::Forget { .. }) => Some(error(
            ErrorCode::InvalidMessage,
            &format!("{}: not on this connection", command.kind()),
            command.message_id(),
        )),
        (Role::Member { with }, command) => member(command, with, identity, poster, context).await,
    }
}

/// A group member's command.
async fn member(
    command: ClientCommand,
    with: Option<ClientId>,
    identity: Option<ClientId>,
    poster: &Poster,
    context: &Context,
) -> Option<ServerEvent> {
    match command {
        ClientCommand::Send { id, text } => {
            if !context.limits.try_take(identity, poster.ip, text.len(), Instant::now()) {
                return Some(error(ErrorCode::RateLimited, "too many messages; send this one again later", Some(id)));
            }
            if !fits_the_limit(&text, context.settings.max_message_bytes) {
                return Some(error(ErrorCode::InvalidMessage, "too big once JSON-escaped", Some(id)));
            }
            let message =
                ChatMessage { group: poster.group.clone(), seq: 0, id, from: poster.from.clone(), text, ts: 0 };
            let answer = match context.sequencer.publish_and_wait(message).await {
                Ok(answer) => answer,
                Err(stopped) => return Some(error(ErrorCode::Unavailable, &stopped.to_string(), Some(id))),
            };
            if let (Answer::Stored { duplicate: false, .. }, Some(other)) = (&answer, with) {
                context.cursors.invite(other, &poster.group, poster.from.client_id);
            }
            Some(answer.event(id))
        }
        ClientCommand::Typing => {
            context.typing.announce(&poster.group, &poster.from, Instant::now());
            None
        }
        ClientCommand::Read { epoch, seq } if poster.from.verified => {
            context.cursors.mark(poster.from.client_id, &poster.group, Cursor { epoch, seq });
            None
        }
        ClientCommand::Read { .. } => Some(error(
            ErrorCode::InvalidMessage,
            "read: only a verified identity (a request with a token) has read cursors",
            None,
        )),
        command @ (ClientCommand::Refresh { .. } | ClientCommand::Forget { .. } | ClientCommand::Ping) => Some(error(
            ErrorCode::InvalidMessage,
            &format!("{}: not on an HTTP session (each request carries its own token)", command.kind()),
            command.message_id(),
        )),
    }
}

fn error(code: ErrorCode, message: &str, id: Option<roomcast_shared::MessageId>) -> ServerEvent {
    ServerEvent::Error { code, message: message.to_owned(), id }
}
