//! The connection driver: one async task per room view that follows the
//! reconnect machine ([`Link`](crate::session::Link)): a connection while
//! one is wanted ([`connection`](super::connection)), and otherwise a wait
//! for the time or the command that changes the link's phase. It is glue:
//! when to reconnect, when to ping, where a reconnect resumes, when
//! messages are handed over, what to send and what became of each message
//! are decided in [`crate::session`]; where a row goes and what a gap
//! means, in [`crate::timeline`]. Its parts: the socket
//! ([`socket`](super::socket)), what it waits on ([`events`](super::events)),
//! the outbox ([`sending`](super::sending)), the identity
//! ([`credentials`](super::credentials)), the view ([`view`](super::view)).
//!
//! An open connection's token is renewed in the background, as an event
//! like the socket's, and handed to the connection with `refresh`.

use futures_channel::mpsc::UnboundedReceiver;
use roomcast_shared::GroupName;
use uuid::Uuid;
use yew::UseReducerDispatcher;

use crate::net::clock;
use crate::net::command::Command;
use crate::net::connection::{Flow, Room};
use crate::net::events::{arm, next_event, now_ms, Event, Waited};
use crate::net::socket::SocketTarget;
use crate::net::view::View;
use crate::session::{lines, Direct, Phase, Stop};
use crate::state::{Action, RoomState, Status};

pub struct Driver {
    room: Room,
}

impl Driver {
    /// A driver for `group` (a direct message with `direct`) at `target`,
    /// as tab `tab`, with the outbox this tab left (a reload keeps its tab
    /// id).
    pub fn new(
        group: GroupName,
        direct: Option<Direct>,
        tab: Uuid,
        target: SocketTarget,
        commands: UnboundedReceiver<Command>,
        dispatch: UseReducerDispatcher<RoomState>,
    ) -> Self {
        Self { room: Room::new(group, direct, tab, target, commands, View::new(dispatch)) }
    }

    /// Runs until the view drops its command sender.
    pub async fn run(mut self) {
        let room = &mut self.room;
        room.sending.publish();
        loop {
            let flow = match room.link.phase().clone() {
                Phase::Connecting { attempt } => {
                    room.view.act(Action::Status(Status::Connecting { attempt }));
                    room.connect().await
                }
                Phase::Waiting { attempt, at_ms } => {
                    room.view.act(Action::Status(Status::Reconnecting { attempt, at_ms }));
                    wait(room, Some(at_ms)).await
                }
                Phase::Offline => {
                    room.view.act(Action::Status(Status::Offline));
                    wait(room, None).await
                }
                Phase::Stopped(stop) => {
                    let reason = lines::stopped(&stop, clock::local_time);
                    let status = match stop {
                        Stop::Refused(_) => Status::Refused { reason },
                        _ => Status::Closed { reason },
                    };
                    room.view.act(Action::Status(status));
                    wait(room, None).await
                }
                // connect() returns only once the connection is gone again.
                Phase::Open { .. } => Flow::Continue,
            };
            if let Flow::Quit = flow {
                return;
            }
        }
    }
}

/// Waits while no connection is wanted: until `until_ms` (if any) or a
/// command that changes the link's phase.
async fn wait(room: &mut Room, until_ms: Option<f64>) -> Flow {
    let phase = room.link.phase().clone();
    let mut timer = None;
    while *room.link.phase() == phase {
        arm(&mut timer, until_ms);
        match next_event(&mut room.commands, Waited::Nothing, &mut None, &mut None, &mut timer).await {
            Event::Timer => {
                room.link.tick(now_ms());
            }
            Event::Command(None) => return Flow::Quit,
            Event::Command(Some(Command::Online)) => {
                room.link.online();
            }
            Event::Command(Some(Command::Offline)) => {
                room.link.offline();
            }
            Event::Command(Some(Command::Reconnect)) => room.link.reconnect_by_user(),
            // A stopped link keeps its reason (Link::close_by_user).
            Event::Command(Some(Command::Close)) => room.link.close_by_user(),
            Event::Command(Some(Command::Seen(seq))) => room.reading.seen(seq),
            Event::Command(Some(command)) => room.sending.command(command),
            Event::Opened | Event::Socket(_) | Event::Probe(_) | Event::Renewed(..) => {}
        }
    }
    Flow::Continue
}
