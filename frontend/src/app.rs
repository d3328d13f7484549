//! Routes: `/` is the join screen, `/room/{group}` a room (shareable;
//! `?name=Alice` presets the display name).

use roomcast_shared::{DisplayName, GroupName};
use yew::prelude::*;
use yew_router::prelude::*;

use crate::components::{Join, NamePrompt, Room};
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

#[function_component]
pub fn App() -> Html {
    html! {
        <BrowserRouter>
            <Switch<Route> render={switch} />
        </BrowserRouter>
    }
}

fn switch(route: Route) -> Html {
    match route {
        Route::Home => html! { <HomePage /> },
        Route::Room { group } => match group.parse::<GroupName>() {
            Ok(group) => html! { <RoomPage key={group.to_string()} group={group.clone()} /> },
            Err(err) => html! { <Problem text={err.to_string()} /> },
        },
        Route::NotFound => html! { <Problem text="There is nothing here." /> },
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

/// A room by URL: takes the name from `?name=`, else the remembered one,
/// else asks once.
#[function_component]
fn RoomPage(props: &RoomPageProps) -> Html {
    let name = use_state(|| {
        let from_query = query_name();
        if let Some(name) = &from_query {
            storage::remember_display_name(name);
        }
        from_query.or_else(storage::display_name)
    });
    let client_id = use_memo((), |()| storage::client_id());
    match &*name {
        Some(display_name) => html! {
            <Room group={props.group.clone()} client_id={*client_id} name={display_name.clone()} />
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

fn query_name() -> Option<DisplayName> {
    let search = web_sys::window()?.location().search().ok()?;
    let params = web_sys::UrlSearchParams::new_with_str(&search).ok()?;
    params.get("name")?.parse().ok()
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
