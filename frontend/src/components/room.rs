use std::rc::Rc;

use roomcast_shared::{ClientId, DisplayName, GroupName};
use yew::prelude::*;

use crate::components::composer::Composer;
use crate::components::copy_link::CopyLink;
use crate::components::message_list::MessageList;
use crate::components::people::{online, People};
use crate::components::status_bar::StatusBar;
use crate::components::typing::Typing;
use crate::hooks::use_room;
use crate::session::Direct;
use crate::state::Status;
use crate::timeline::chunked;

#[derive(Properties, PartialEq)]
pub struct RoomProps {
    pub group: GroupName,
    pub name: DisplayName,
    /// The other participant, in a direct message room.
    pub direct: Option<Direct>,
    /// Opens a direct message (the page's route).
    pub on_open_direct: Callback<Direct>,
}

/// A joined room: header with status and connection buttons, the timeline,
/// who else is typing, and the composer. A direct message's header names
/// the other person; a room refused for good says why instead of a
/// timeline.
#[function_component]
pub fn Room(props: &RoomProps) -> Html {
    let room = use_room(&props.group, &props.name, props.direct.as_ref());
    let state = &*room.state;
    let closed = matches!(state.status, Status::Closed { .. });
    let on_close = room.close.reform(|_: MouseEvent| ());
    let on_reconnect = room.reconnect.reform(|_: MouseEvent| ());
    let timeline = state.timeline();
    let chunks = Rc::new(chunked(timeline.rows()));
    let sheet = use_state(|| false);
    let toggle_sheet = use_callback(sheet.clone(), |_: MouseEvent, sheet| sheet.set(!**sheet));
    let close_sheet = use_callback(sheet.clone(), |(), sheet| sheet.set(false));
    let open_direct = use_open_direct(state.me, &props.on_open_direct);
    // In a direct message, the only other person is the one it is with.
    let on_direct = open_direct.filter(|_| props.direct.is_none());
    let title = match &props.direct {
        Some(direct) => direct.title(&state.people.members, timeline.last_name_of(direct.with)),
        None => format!("#{}", props.group),
    };
    let refused = match &state.status {
        Status::Refused { reason } => Some(reason.clone()),
        _ => None,
    };
    html! {
        <main class="room">
            <header>
                <div class="title">
                    <h1 data-testid="room-title" dir="auto">{ title }</h1>
                    <StatusBar status={state.status.clone()} />
                </div>
                <div class="actions">
                    <button class="people-toggle" onclick={toggle_sheet} aria-expanded={(*sheet).to_string()}
                            data-testid="people-toggle">{ online(state.people.count.people) }</button>
                    // A direct message's link opens it for its two people only.
                    if props.direct.is_none() {
                        <CopyLink group={props.group.clone()} />
                    }
                    <button onclick={on_close} disabled={closed} data-testid="close">{ "Close connection" }</button>
                    <button onclick={on_reconnect} data-testid="reconnect">{ "Reconnect" }</button>
                </div>
            </header>
            // Refused for good: nothing to show, nowhere to write.
            if let Some(reason) = refused {
                <div class="timeline-frame">
                    <p class="refusal" role="alert" data-testid="refusal">{ reason }</p>
                </div>
            } else {
                <MessageList {chunks} live={timeline.is_live()} pending={state.outbox.clone()} me={state.me}
                             older={timeline.older()} newer={timeline.newer()} following={timeline.following()}
                             unseen={timeline.unseen()}
                             on_load_older={room.load_older.clone()} on_load_newer={room.load_newer.clone()}
                             on_jump_to_newest={room.jump_to_newest.clone()} on_following={room.following.clone()}
                             on_retry={room.retry.clone()} on_delete={room.delete.clone()}
                             on_seen={room.seen.clone()} on_direct={on_direct.clone()}
                             seen_by={state.seen_by.clone()} />
                <Typing line={state.typing.clone()} />
                <Composer on_send={room.send.clone()} on_typing={room.typing.clone()}
                          max_bytes={state.max_message_bytes} />
            }
            <People people={state.people.clone()} me={state.me} open={*sheet} on_close={close_sheet} {on_direct} />
            <footer>{ "Signed in as " }<strong>{ props.name.as_str() }</strong></footer>
        </main>
    }
}

/// Opens the direct message of `me` with someone through `open`; none
/// before this browser has an identity.
#[hook]
fn use_open_direct(me: Option<ClientId>, open: &Callback<Direct>) -> Option<Callback<ClientId>> {
    let with_them = use_callback((me, open.clone()), |them: ClientId, (me, open)| {
        if let Some(me) = me {
            open.emit(Direct::between(*me, them));
        }
    });
    me.map(|_| with_them)
}
