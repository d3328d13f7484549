use roomcast_shared::{ClientId, DisplayName, GroupName};
use yew::prelude::*;

use crate::components::{Composer, MessageList, StatusBar};
use crate::hooks::use_room;
use crate::state::Status;

#[derive(Properties, PartialEq)]
pub struct RoomProps {
    pub group: GroupName,
    pub client_id: ClientId,
    pub name: DisplayName,
}

/// A joined room: header with status and connection buttons, the timeline,
/// and the composer.
#[function_component]
pub fn Room(props: &RoomProps) -> Html {
    let room = use_room(&props.group, props.client_id, &props.name);
    let state = &*room.state;
    let closed = matches!(state.status, Status::Closed { .. });
    let on_close = room.close.reform(|_: MouseEvent| ());
    let on_reconnect = room.reconnect.reform(|_: MouseEvent| ());
    html! {
        <main class="room">
            <header>
                <div class="title">
                    <h1>{ "#" }{ props.group.as_str() }</h1>
                    <StatusBar status={state.status.clone()} />
                </div>
                <div class="actions">
                    <button onclick={on_close} disabled={closed} data-testid="close">{ "Close connection" }</button>
                    <button onclick={on_reconnect} data-testid="reconnect">{ "Reconnect" }</button>
                </div>
            </header>
            <MessageList entries={state.entries.clone()} pending={state.pending.clone()} me={props.client_id}
                         older={state.older} can_load_older={state.can_load_older()}
                         on_load_older={room.load_older.clone()} />
            <Composer on_send={room.send.clone()} />
            <footer>{ "Signed in as " }<strong>{ props.name.as_str() }</strong></footer>
        </main>
    }
}
