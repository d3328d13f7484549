//! This identity's rooms: newest activity first, each with its latest
//! message and an unread badge; open one (no page load), forget one, or
//! join one by name. Beside the room on wide screens, a drawer on phones.

use roomcast_shared::{ClientId, GroupName, RoomEntry};
use yew::prelude::*;

use crate::hooks::RoomsHandle;
use crate::session::guest_name;
use crate::session::rooms::badge;

#[derive(Properties, PartialEq)]
pub struct RoomListProps {
    /// The room shown beside the list.
    pub current: GroupName,
    pub me: Option<ClientId>,
    /// Shown as a drawer (phones; the list is always shown on wide
    /// screens).
    pub open: bool,
    pub on_close: Callback<()>,
    /// Opens a room (a direct message: with the other participant),
    /// without a page load.
    pub on_open: Callback<(GroupName, Option<ClientId>)>,
}

#[function_component]
pub fn RoomList(props: &RoomListProps) -> Html {
    let Some(rooms) = use_context::<RoomsHandle>() else { return html! {} };
    // The drawer closes on the way.
    let on_open = use_callback((props.on_open.clone(), props.on_close.clone()), |room, (on_open, on_close)| {
        on_close.emit(());
        on_open.emit(room);
    });
    let on_close = props.on_close.reform(|_: MouseEvent| ());
    html! {
        <nav class={classes!("rooms", props.open.then_some("open"))} data-testid="rooms" aria-label="Your rooms">
            <div class="rooms-head">
                <h2>{ "Rooms" }</h2>
                <button class="rooms-close" onclick={on_close} aria-label="Close the list of rooms">{ "✕" }</button>
            </div>
            <JoinByName on_open={on_open.clone()} />
            <ul>
                { for rooms.shown.rooms.iter().map(|room| html! {
                    <RoomRow key={room.group.to_string()} room={room.clone()} me={props.me}
                             current={room.group == props.current}
                             on_open={on_open.clone()} on_forget={rooms.forget.clone()} />
                }) }
            </ul>
            if rooms.shown.known && rooms.shown.rooms.is_empty() {
                <p class="more">{ "Rooms you read show up here." }</p>
            }
        </nav>
    }
}

#[derive(Properties, PartialEq)]
struct JoinByNameProps {
    on_open: Callback<(GroupName, Option<ClientId>)>,
}

/// A room by its name.
#[function_component]
fn JoinByName(props: &JoinByNameProps) -> Html {
    let error = use_state(|| None::<String>);
    let input = use_node_ref();
    let on_submit = {
        let (error, input) = (error.clone(), input.clone());
        use_callback(props.on_open.clone(), move |event: SubmitEvent, on_open| {
            event.prevent_default();
            let Some(field) = input.cast::<web_sys::HtmlInputElement>() else { return };
            match field.value().trim().parse::<GroupName>() {
                Ok(group) => {
                    error.set(None);
                    field.set_value("");
                    on_open.emit((group, None));
                }
                Err(err) => error.set(Some(err.to_string())),
            }
        })
    };
    html! {
        <form class="join-room" onsubmit={on_submit}>
            <label class="visually-hidden" for="join-room">{ "Join a room by name" }</label>
            <input id="join-room" ref={input} placeholder="Join a room by name" data-testid="join-room"
                   autocomplete="off" maxlength="64" />
            if let Some(error) = &*error {
                <p class="error">{ error.clone() }</p>
            }
        </form>
    }
}

#[derive(Properties, PartialEq)]
struct RoomRowProps {
    room: RoomEntry,
    me: Option<ClientId>,
    current: bool,
    on_open: Callback<(GroupName, Option<ClientId>)>,
    on_forget: Callback<GroupName>,
}

#[function_component]
fn RoomRow(props: &RoomRowProps) -> Html {
    let room = &props.room;
    let target = (room.group.clone(), room.with);
    let on_open = props.on_open.reform(move |_: MouseEvent| target.clone());
    let group = room.group.clone();
    let on_forget = props.on_forget.reform(move |_: MouseEvent| group.clone());
    let title = room_title(room);
    let preview = room.last.as_ref().map(|last| {
        let sender = match (&last.from.name, Some(last.from.client_id) == props.me) {
            (_, true) => "You".to_owned(),
            (Some(name), false) => name.to_string(),
            (None, false) => guest_name(last.from.client_id),
        };
        format!("{sender}: {}", last.preview)
    });
    html! {
        <li class={classes!("room-row", props.current.then_some("current"))} data-testid="room-row"
            data-group={room.group.to_string()}>
            <button class="open" onclick={on_open} aria-current={props.current.then_some("page")}>
                <span class="name" dir="auto">{ title }</span>
                if let Some(preview) = preview {
                    <span class="preview" dir="auto">{ preview }</span>
                }
            </button>
            if let Some(count) = badge(room.unread) {
                <span class="badge" data-testid="unread" aria-label={format!("{count} unread")}>{ count }</span>
            }
            <button class="forget" onclick={on_forget} aria-label={format!("Forget {}", room.group)}
                    title="Take it off the list">{ "×" }</button>
        </li>
    }
}

/// How a room is named in the list: `#name`, or for a direct message the
/// other person (as their latest message names them).
fn room_title(room: &RoomEntry) -> String {
    let Some(with) = room.with else {
        return if room.group.is_direct() { "Direct message".to_owned() } else { format!("#{}", room.group) };
    };
    let named = room.last.as_ref().filter(|last| last.from.client_id == with).and_then(|last| last.from.name.clone());
    named.map_or_else(|| guest_name(with), |name| name.to_string())
}
