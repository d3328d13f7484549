use std::rc::Rc;

use roomcast_shared::{DisplayName, GroupName};
use yew::prelude::*;

use crate::components::composer::Composer;
use crate::components::copy_link::CopyLink;
use crate::components::message_list::MessageList;
use crate::components::people::{online, People};
use crate::components::status_bar::StatusBar;
use crate::components::typing::Typing;
use crate::hooks::use_room;
use crate::state::Status;
use crate::timeline::chunked;

#[derive(Properties, PartialEq)]
pub struct RoomProps {
    pub group: GroupName,
    pub name: DisplayName,
}

/// A joined room: header with status and connection buttons, the timeline,
/// who else is typing, and the composer.
#[function_component]
pub fn Room(props: &RoomProps) -> Html {
    let room = use_room(&props.group, &props.name);
    let state = &*room.state;
    let closed = matches!(state.status, Status::Closed { .. });
    let on_close = room.close.reform(|_: MouseEvent| ());
    let on_reconnect = room.reconnect.reform(|_: MouseEvent| ());
    let timeline = state.timeline();
    let chunks = Rc::new(chunked(timeline.rows()));
    let sheet = use_state(|| false);
    let toggle_sheet = use_callback(sheet.clone(), |_: MouseEvent, sheet| sheet.set(!**sheet));
    let close_sheet = use_callback(sheet.clone(), |(), sheet| sheet.set(false));
    html! {
        <main class="room">
            <header>
                <div class="title">
                    <h1>{ "#" }{ props.group.as_str() }</h1>
                    <StatusBar status={state.status.clone()} />
                </div>
                <div class="actions">
                    <button class="people-toggle" onclick={toggle_sheet} aria-expanded={(*sheet).to_string()}
                            data-testid="people-toggle">{ online(state.people.count.people) }</button>
                    <CopyLink group={props.group.clone()} />
                    <button onclick={on_close} disabled={closed} data-testid="close">{ "Close connection" }</button>
                    <button onclick={on_reconnect} data-testid="reconnect">{ "Reconnect" }</button>
                </div>
            </header>
            <MessageList {chunks} live={timeline.is_live()} pending={state.outbox.clone()} me={state.me}
                         older={timeline.older()} newer={timeline.newer()} following={timeline.following()}
                         unseen={timeline.unseen()}
                         on_load_older={room.load_older.clone()} on_load_newer={room.load_newer.clone()}
                         on_jump_to_newest={room.jump_to_newest.clone()} on_following={room.following.clone()}
                         on_retry={room.retry.clone()} on_delete={room.delete.clone()} />
            <Typing line={state.typing.clone()} />
            <Composer on_send={room.send.clone()} on_typing={room.typing.clone()} max_bytes={state.max_message_bytes} />
            <People people={state.people.clone()} me={state.me} open={*sheet} on_close={close_sheet} />
            <footer>{ "Signed in as " }<strong>{ props.name.as_str() }</strong></footer>
        </main>
    }
}
