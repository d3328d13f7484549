//! `use_room`: joins a room for as long as the calling component is mounted.

use std::cell::RefCell;
use std::rc::Rc;

use futures_channel::mpsc::{self, UnboundedSender};
use gloo_events::EventListener;
use gloo_net::http::Request;
use roomcast_shared::{limits, DisplayName, GroupName, MessageId, MessagePage};
use yew::prelude::*;

use crate::net::socket::{self, SocketTarget};
use crate::net::{tabs, Command, Driver};
use crate::session::Direct;
use crate::state::{Action, RoomState};
use crate::storage;
use crate::timeline::{Ask, Page, Paging};

/// Messages per page of history (older or newer).
const PAGE: usize = limits::HISTORY_ON_JOIN;

/// What a room view gets: the state to render and the user's actions.
#[derive(Clone, PartialEq)]
pub struct RoomHandle {
    pub state: UseReducerHandle<RoomState>,
    pub send: Callback<String>,
    /// The user changed the composer's text: whether it is not blank.
    pub typing: Callback<bool>,
    pub retry: Callback<MessageId>,
    pub delete: Callback<MessageId>,
    pub close: Callback<()>,
    pub reconnect: Callback<()>,
    /// Loads the page of history before the oldest message shown.
    pub load_older: Callback<()>,
    /// Loads the page of history after the newest message shown.
    pub load_newer: Callback<()>,
    /// Shows the newest messages and follows them.
    pub jump_to_newest: Callback<()>,
    /// The user reached the bottom (`true`) or left it.
    pub following: Callback<bool>,
    /// The user has seen the message of this number.
    pub seen: Callback<u64>,
}

/// What lives as long as one connection of the view: the command sender and
/// the watcher of other tabs.
#[derive(Default)]
struct Session {
    commands: Option<UnboundedSender<Command>>,
    watcher: Option<tabs::Watcher>,
    ended: bool,
}

/// Connects to `group` named `name` (with this browser's identity; a direct
/// message with `direct`), reconnecting as needed, and disconnects when the
/// component unmounts or the arguments change.
#[hook]
pub fn use_room(group: &GroupName, name: &DisplayName, direct: Option<&Direct>) -> RoomHandle {
    let state = use_reducer(|| RoomState::new(storage::max_message_bytes()));
    let session: Rc<RefCell<Session>> = use_mut_ref(Session::default);
    {
        let dispatcher = state.dispatcher();
        let session = session.clone();
        use_effect_with((group.clone(), name.clone(), direct.cloned()), move |(group, name, direct)| {
            let (sender, receiver) = mpsc::unbounded();
            *session.borrow_mut() = Session { commands: Some(sender.clone()), watcher: None, ended: false };
            let target = socket_target(group, name, direct.as_ref());
            let listeners = browser_listeners(&sender);
            {
                let (session, group, direct) = (session.clone(), group.clone(), direct.clone());
                wasm_bindgen_futures::spawn_local(async move {
                    let claim = tabs::claim(&group).await;
                    if session.borrow().ended {
                        return;
                    }
                    session.borrow_mut().watcher = Some(tabs::watch(group.clone(), claim.tab, sender));
                    Driver::new(group, direct, claim.tab, target, receiver, dispatcher).run().await;
                    drop(claim);
                });
            }
            // Dropping every sender ends the driver, which closes the socket.
            move || {
                drop(listeners);
                let mut session = session.borrow_mut();
                *session = Session { ended: true, ..Session::default() };
            }
        });
    }
    let issue = {
        let session = session.clone();
        Rc::new(move |command: Command| {
            if let Some(sender) = session.borrow().commands.as_ref() {
                let _ = sender.unbounded_send(command);
            }
        })
    };
    let command = |make: fn(()) -> Command| {
        let issue = issue.clone();
        Callback::from(move |()| issue(make(())))
    };
    let history = history_url(group, direct);
    let jump_to_newest = paging(&state, &history, Paging::Latest);
    // Sending shows the newest messages, as chat apps do.
    let send = {
        let (issue, jump_to_newest) = (issue.clone(), jump_to_newest.clone());
        Callback::from(move |text| {
            jump_to_newest.emit(());
            issue(Command::Send(text));
        })
    };
    // The same callbacks for the whole view (the command sender they reach
    // lives in `session`): a pending row re-renders only when it changes.
    let retry = {
        let issue = issue.clone();
        use_callback((), move |id, ()| issue(Command::Retry(id)))
    };
    let delete = {
        let issue = issue.clone();
        use_callback((), move |id, ()| issue(Command::Delete(id)))
    };
    let typing = {
        let issue = issue.clone();
        Callback::from(move |has_text| issue(Command::Typing { has_text }))
    };
    let close = command(|()| Command::Close);
    let reconnect = command(|()| Command::Reconnect);
    let load_older = paging(&state, &history, Paging::Older);
    let load_newer = paging(&state, &history, Paging::Newer);
    let following = {
        let state = state.clone();
        Callback::from(move |following| state.dispatch(Action::Following(following)))
    };
    let seen = {
        let issue = issue.clone();
        use_callback((), move |seq, ()| issue(Command::Seen(seq)))
    };
    RoomHandle {
        state,
        send,
        typing,
        retry,
        delete,
        close,
        reconnect,
        load_older,
        load_newer,
        jump_to_newest,
        following,
        seen,
    }
}

/// The browser's `online` and `offline` events, as commands.
fn browser_listeners(sender: &UnboundedSender<Command>) -> Vec<EventListener> {
    let Some(window) = web_sys::window() else { return Vec::new() };
    [("online", Command::Online), ("offline", Command::Offline)]
        .into_iter()
        .map(|(event, command)| {
            let sender = sender.clone();
            EventListener::new(&window, event, move |_| {
                let _ = sender.unbounded_send(command.clone());
            })
        })
        .collect()
}

/// The history API's address for `group`, up to the page's own query: a
/// direct message's names the other participant.
fn history_url(group: &GroupName, direct: Option<&Direct>) -> String {
    let with = direct.map(Direct::query).unwrap_or_default();
    format!("/api/groups/{group}/messages?limit={PAGE}{with}")
}

/// A callback that loads one page of history from `history` (which page,
/// the timeline decides) and hands its answer to the state.
fn paging(state: &UseReducerHandle<RoomState>, history: &str, paging: Paging) -> Callback<()> {
    let (state, history) = (state.clone(), history.to_owned());
    Callback::from(move |()| {
        let ask = state.timeline().ask(paging);
        let request = match ask {
            Ask::Nothing => return,
            Ask::Follow => return state.dispatch(Action::Following(true)),
            Ask::Load(request) => request,
        };
        if request.shows_loading() {
            state.dispatch(Action::Loading(request));
        }
        let url = format!("{history}{}", request.query());
        let dispatcher = state.dispatcher();
        wasm_bindgen_futures::spawn_local(async move {
            let bearer = storage::identity().map(|identity| identity.bearer()).unwrap_or_default();
            let page =
                async { Request::get(&url).header("Authorization", &bearer).send().await?.json::<MessagePage>().await }
                    .await;
            let page = page.ok().map(|page| Page { messages: page.messages, has_more: page.has_more });
            dispatcher.dispatch(Action::Paged { request, page });
        });
    })
}

/// `ws(s)://<this host>/ws/{group}/` and `name=…` (and a direct message's
/// `with=…`; see [`socket::base`]).
fn socket_target(group: &GroupName, name: &DisplayName, direct: Option<&Direct>) -> SocketTarget {
    let name = String::from(js_sys::encode_uri_component(name.as_str()));
    let with = direct.map(Direct::query).unwrap_or_default();
    SocketTarget { prefix: format!("{}/ws/{group}/", socket::base()), query: format!("name={name}{with}") }
}
