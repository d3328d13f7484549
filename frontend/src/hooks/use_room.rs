//! `use_room`: joins a room for as long as the calling component is mounted.

use std::cell::RefCell;
use std::rc::Rc;

use futures_channel::mpsc::{self, UnboundedSender};
use gloo_events::EventListener;
use gloo_net::http::Request;
use roomcast_shared::{limits, ClientId, DisplayName, GroupName, MessagePage};
use yew::prelude::*;

use crate::net::{Command, Driver};
use crate::state::{Action, RoomState};

/// What a room view gets: the state to render and the user's actions.
#[derive(Clone, PartialEq)]
pub struct RoomHandle {
    pub state: UseReducerHandle<RoomState>,
    pub send: Callback<String>,
    pub close: Callback<()>,
    pub reconnect: Callback<()>,
    /// Loads the page of history before the oldest message shown.
    pub load_older: Callback<()>,
}

/// Connects to `group` as `client_id` named `name`, reconnecting as needed,
/// and disconnects when the component unmounts or the arguments change.
#[hook]
pub fn use_room(group: &GroupName, client_id: ClientId, name: &DisplayName) -> RoomHandle {
    let state = use_reducer(RoomState::default);
    let commands: Rc<RefCell<Option<UnboundedSender<Command>>>> = use_mut_ref(|| None);
    {
        let dispatcher = state.dispatcher();
        let commands = commands.clone();
        use_effect_with((group.clone(), client_id, name.clone()), move |(group, client_id, name)| {
            let (sender, receiver) = mpsc::unbounded();
            let online = sender.clone();
            *commands.borrow_mut() = Some(sender);
            let url = socket_url(group, *client_id, name);
            wasm_bindgen_futures::spawn_local(Driver::new(group.clone(), url, receiver, dispatcher).run());
            let listener = web_sys::window().map(|window| {
                EventListener::new(&window, "online", move |_| {
                    let _ = online.unbounded_send(Command::Online);
                })
            });
            // Dropping every sender ends the driver, which closes the socket.
            move || {
                drop(listener);
                commands.borrow_mut().take();
            }
        });
    }
    let send = {
        let commands = commands.clone();
        Callback::from(move |text| issue(&commands, Command::Send(text)))
    };
    let close = {
        let commands = commands.clone();
        Callback::from(move |()| issue(&commands, Command::Close))
    };
    let reconnect = Callback::from(move |()| issue(&commands, Command::Reconnect));
    let load_older = {
        let state = state.clone();
        let group = group.clone();
        Callback::from(move |()| {
            let Some(before) = state.oldest_seq().filter(|_| state.can_load_older()) else { return };
            state.dispatch(Action::LoadingOlder);
            let dispatcher = state.dispatcher();
            let url = format!("/api/groups/{group}/messages?before={before}&limit={}", limits::HISTORY_PAGE);
            wasm_bindgen_futures::spawn_local(async move {
                let page = async { Request::get(&url).send().await?.json::<MessagePage>().await }.await;
                dispatcher.dispatch(match page {
                    Ok(MessagePage { messages, has_more }) => Action::Older { messages, has_more },
                    Err(_) => Action::OlderFailed,
                });
            });
        })
    };
    RoomHandle { state, send, close, reconnect, load_older }
}

fn issue(commands: &RefCell<Option<UnboundedSender<Command>>>, command: Command) {
    if let Some(sender) = commands.borrow().as_ref() {
        let _ = sender.unbounded_send(command);
    }
}

/// `trunk serve`'s port and the backend's default port (Trunk.toml, config).
const TRUNK_SERVE_PORT: &str = "8080";
const DEV_BACKEND_PORT: u16 = 8000;

/// `ws(s)://<this host>/ws/{group}/{client_id}?name=…`, same origin as the page.
///
/// One exception, in debug builds only: under `trunk serve` the socket goes
/// to the backend directly. trunk 0.21 proxies the WebSocket but drops the
/// negotiated subprotocol from its `101` response, and browsers refuse a
/// connection whose requested subprotocol is not confirmed.
fn socket_url(group: &GroupName, client_id: ClientId, name: &DisplayName) -> String {
    let location = web_sys::window().map(|window| window.location());
    let field = |read: fn(&web_sys::Location) -> Result<String, wasm_bindgen::JsValue>| {
        location.as_ref().and_then(|l| read(l).ok()).unwrap_or_default()
    };
    let scheme = if field(web_sys::Location::protocol) == "https:" { "wss" } else { "ws" };
    let host = if cfg!(debug_assertions) && field(web_sys::Location::port) == TRUNK_SERVE_PORT {
        format!("{}:{DEV_BACKEND_PORT}", field(web_sys::Location::hostname))
    } else {
        field(web_sys::Location::host)
    };
    let name = String::from(js_sys::encode_uri_component(name.as_str()));
    format!("{scheme}://{host}/ws/{group}/{client_id}?name={name}")
}
