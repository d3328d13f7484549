//! Routes: `/` is the join screen, `/room/{group}` a room (shareable;
//! `?name=Alice` presets the display name of a visitor who has none yet),
//! beside this identity's room list, which lives above the routes (one
//! rooms stream for the whole visit, whatever room is open). A direct
//! message is `/room/{dm name}?with={the other's client id}`.
//!
//! `/admin` is the operators' page, on the server's admin address (which
//! serves this same app). It is a surface of its own, beside the chat's
//! routes rather than under them: nothing of the chat runs there (no
//! identity, no socket, no rooms stream).

use roomcast_shared::{ClientId, DisplayName, GroupName};
use serde::{Deserialize, Serialize};
use yew::prelude::*;
use yew_router::prelude::*;

use crate::components::{AdminPage, Join, NamePrompt, Room, RoomList};
use crate::hooks::{use_rooms, RoomsHandle};
use crate::session::rooms::badge;
use crate::session::Direct;
use crate::storage;

#[derive(Debug, Clone, PartialEq, Routable)]
pub enum Route {
    #[at("/")]
    Home,
    #[at("/room/:group")]
    Room { group: String },
    #[not_found]
    #[at("/404")]
    NotFound,
}

/// Which app a path belongs to: the operators' page, or the chat.
#[derive(Debug, Clone, PartialEq, Routable)]
pub enum Surface {
    #[at("/admin")]
    Admin,
    /// Every other path: [`Route`] tells them apart.
    #[not_found]
    #[at("/")]
    Chat,
}

#[function_component]
pub fn App() -> Html {
    html! {
        <BrowserRouter>
            <Switch<Surface> render={surface} />
        </BrowserRouter>
    }
}

fn surface(surface: Surface) -> Html {
    match surface {
        Surface::Admin => html! { <AdminPage /> },
        // The same provider for every chat route: the rooms stream lives
        // across them.
        Surface::Chat => html! {
            <RoomsProvider>
                <Switch<Route> render={switch} />
            </RoomsProvider>
        },
    }
}

fn switch(route: Route) -> Html {
    match route {
        Route::Home => html! { <HomePage /> },
        Route::Room { group } => match group.parse::<GroupName>() {
            Ok(group) => html! { <RoomPage key={group.to_string()} group={group.clone()} /> },
            Err(err) => {
                // A link's name is never left in the address bar.
                let _ = take_query_name();
                html! { <Problem text={err.to_string()} /> }
            }
        },
        Route::NotFound => html! { <Problem text="There is nothing here." /> },
    }
}

#[derive(Properties, PartialEq)]
struct RoomsProviderProps {
    children: Html,
}

/// This identity's room list, for every route below.
#[function_component]
fn RoomsProvider(props: &RoomsProviderProps) -> Html {
    let rooms = use_rooms();
    html! {
        <ContextProvider<RoomsHandle> context={rooms}>{ props.children.clone() }</ContextProvider<RoomsHandle>>
    }
}

#[function_component]
fn HomePage() -> Html {
    let navigator = use_navigator();
    let on_join = Callback::from(move |(name, group): (DisplayName, GroupName)| {
        storage::remember_display_name(&name);
        if let Some(navigator) = &navigator {
            navigator.push(&Route::Room { group: group.to_string() });
        }
    });
    html! { <Join name={storage::display_name()} {on_join} /> }
}

#[derive(Properties, PartialEq)]
struct RoomPageProps {
    group: GroupName,
}

/// A direct message's query: who it is with.
#[derive(Serialize, Deserialize)]
struct WithQuery {
    with: ClientId,
}

/// The room's direct message, read from the address: `Ok(None)` for an
/// ordinary room, an error for a direct message that does not say with
/// whom.
fn direct_of(group: &GroupName, location: Option<&Location>) -> Result<Option<Direct>, &'static str> {
    if !group.is_direct() {
        return Ok(None);
    }
    let with = location.and_then(|location| location.query::<WithQuery>().ok());
    let with = with.ok_or("This direct message link is incomplete: it does not say who it is with.")?;
    Ok(Some(Direct { group: group.clone(), with: with.with }))
}

/// A room by URL: with the remembered name, else the one in `?name=` (a
/// link someone shared), else asks once. A link's name never replaces the
/// visitor's own, and it is taken out of the address bar either way, so that
/// a link copied from there carries nobody's name.
#[function_component]
fn RoomPage(props: &RoomPageProps) -> Html {
    let name = use_state(|| {
        let from_link = take_query_name();
        storage::display_name().or_else(|| from_link.inspect(storage::remember_display_name))
    });
    let location = use_location();
    let navigator = use_navigator();
    // Another room without a page load.
    let on_open_direct = use_callback(navigator.clone(), |direct: Direct, navigator| {
        if let Some(navigator) = navigator {
            let route = Route::Room { group: direct.group.to_string() };
            let _ = navigator.push_with_query(&route, &WithQuery { with: direct.with });
        }
    });
    let on_open_room = use_callback(navigator, |(group, with): (GroupName, Option<ClientId>), navigator| {
        let Some(navigator) = navigator else { return };
        let route = Route::Room { group: group.to_string() };
        match with {
            Some(with) => drop(navigator.push_with_query(&route, &WithQuery { with })),
            None => navigator.push(&route),
        }
    });
    let drawer = use_state(|| false);
    let toggle_drawer = use_callback(drawer.clone(), |_: MouseEvent, drawer| drawer.set(!**drawer));
    let close_drawer = use_callback(drawer.clone(), |(), drawer| drawer.set(false));
    let unread = use_context::<RoomsHandle>().and_then(|rooms| badge(rooms.shown.total_unread));
    let direct = match direct_of(&props.group, location.as_ref()) {
        Ok(direct) => direct,
        Err(problem) => return html! { <Problem text={problem} /> },
    };
    let key = direct.as_ref().map(|direct| direct.with.to_string()).unwrap_or_default();
    match &*name {
        Some(display_name) => html! {
            <div class="shell">
                <button class="rooms-toggle" onclick={toggle_drawer} aria-expanded={(*drawer).to_string()}
                        data-testid="rooms-toggle">
                    { "Rooms" }
                    if let Some(unread) = unread {
                        <span class="badge">{ unread }</span>
                    }
                </button>
                <RoomList current={props.group.clone()} me={storage::identity().map(|identity| identity.client_id)}
                          open={*drawer} on_close={close_drawer} on_open={on_open_room} />
                <Room {key} group={props.group.clone()} name={display_name.clone()} {direct} {on_open_direct} />
            </div>
        },
        None => {
            let on_name = Callback::from(move |chosen: DisplayName| {
                storage::remember_display_name(&chosen);
                name.set(Some(chosen));
            });
            html! { <NamePrompt group={props.group.clone()} {on_name} /> }
        }
    }
}

/// The `name` of the page's query, removed from the address bar (without a
/// new history entry).
fn take_query_name() -> Option<DisplayName> {
    let window = web_sys::window()?;
    let location = window.location();
    let params = web_sys::UrlSearchParams::new_with_str(&location.search().ok()?).ok()?;
    let name = params.get("name")?;
    params.delete("name");
    let query = String::from(params.to_string());
    let query = if query.is_empty() { query } else { format!("?{query}") };
    let address = format!("{}{query}{}", location.pathname().ok()?, location.hash().ok()?);
    if let Ok(history) = window.history() {
        let _ = history.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&address));
    }
    name.parse().ok()
}

#[derive(Properties, PartialEq)]
struct ProblemProps {
    text: AttrValue,
}

#[function_component]
fn Problem(props: &ProblemProps) -> Html {
    html! {
        <main class="card">
            <h1>{ "Roomcast" }</h1>
            <p class="error">{ props.text.clone() }</p>
            <Link<Route> to={Route::Home}>{ "Back to the start" }</Link<Route>>
        </main>
    }
}
