use roomcast_shared::{DisplayName, GroupName};
use web_sys::HtmlInputElement;
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct JoinProps {
    pub name: Option<DisplayName>,
    /// Called with a valid name and room.
    pub on_join: Callback<(DisplayName, GroupName)>,
}

/// The start screen: display name and room.
#[function_component]
pub fn Join(props: &JoinProps) -> Html {
    let name = use_node_ref();
    let room = use_node_ref();
    let error = use_state(|| None::<String>);
    let submit = {
        let (name, room, error, on_join) = (name.clone(), room.clone(), error.clone(), props.on_join.clone());
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            let value = |node: &NodeRef| node.cast::<HtmlInputElement>().map(|i| i.value()).unwrap_or_default();
            match (value(&name).parse::<DisplayName>(), value(&room).trim().parse::<GroupName>()) {
                (Ok(name), Ok(room)) => on_join.emit((name, room)),
                (Err(err), _) | (_, Err(err)) => error.set(Some(err.to_string())),
            }
        })
    };
    html! {
        <main class="card">
            <h1>{ "Roomcast" }</h1>
            <p class="lead">{ "Real-time rooms. Pick a name and a room; share the room's link to invite others." }</p>
            <form onsubmit={submit}>
                <label>{ "Your name" }
                    <input ref={name} data-testid="name" required=true maxlength="32"
                           value={props.name.as_ref().map(|n| n.to_string()).unwrap_or_default()} />
                </label>
                <label>{ "Room" }
                    <input ref={room} data-testid="room" required=true maxlength="64" value="lobby"
                           pattern="[A-Za-z0-9_\\-]{1,64}" />
                </label>
                if let Some(message) = &*error { <p class="error" role="alert">{ message }</p> }
                <button type="submit" data-testid="join">{ "Join" }</button>
            </form>
        </main>
    }
}

#[derive(Properties, PartialEq)]
pub struct NamePromptProps {
    pub group: GroupName,
    pub on_name: Callback<DisplayName>,
}

/// Asked once when a shared room link is opened without a known name.
#[function_component]
pub fn NamePrompt(props: &NamePromptProps) -> Html {
    let input = use_node_ref();
    let error = use_state(|| None::<String>);
    let submit = {
        let (input, error, on_name) = (input.clone(), error.clone(), props.on_name.clone());
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            let value = input.cast::<HtmlInputElement>().map(|i| i.value()).unwrap_or_default();
            match value.parse::<DisplayName>() {
                Ok(name) => on_name.emit(name),
                Err(err) => error.set(Some(err.to_string())),
            }
        })
    };
    html! {
        <main class="card">
            <h1>{ "Join #" }{ props.group.as_str() }</h1>
            <form onsubmit={submit}>
                <label>{ "Your name" }<input ref={input} data-testid="name" required=true maxlength="32" /></label>
                if let Some(message) = &*error { <p class="error" role="alert">{ message }</p> }
                <button type="submit" data-testid="join">{ "Enter room" }</button>
            </form>
        </main>
    }
}
