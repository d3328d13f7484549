//! Who is in the room: a side panel on wide screens, a sheet opened from
//! the header on phones. One row per person (a keyed list of components),
//! with their number of connections when more than one, and for the others
//! a button that opens a direct message with them.

use std::rc::Rc;

use roomcast_shared::{ClientId, PresentMember};
use yew::prelude::*;

use crate::session::{guest_name, PeopleShown};

#[derive(Properties, PartialEq)]
pub struct PeopleProps {
    pub people: Rc<PeopleShown>,
    pub me: Option<ClientId>,
    /// Shown as a sheet (phones; the panel is always shown on wide
    /// screens).
    pub open: bool,
    pub on_close: Callback<()>,
    /// Opens a direct message with someone (none in a direct message).
    pub on_direct: Option<Callback<ClientId>>,
}

#[function_component]
pub fn People(props: &PeopleProps) -> Html {
    let people = &props.people;
    let count = people.count;
    let unlisted = people.unlisted();
    let on_close = props.on_close.reform(|_: MouseEvent| ());
    html! {
        <aside class={classes!("people", props.open.then_some("open"))} data-testid="people"
               aria-label="People in this room">
            <div class="people-head">
                <h2 data-testid="online">{ online(count.people) }</h2>
                <button class="people-close" onclick={on_close} aria-label="Close the list of people">{ "✕" }</button>
            </div>
            <ul>
                { for people.members.iter().map(|member| {
                    let me = props.me == Some(member.client_id);
                    let on_direct = props.on_direct.clone().filter(|_| !me);
                    html! { <PersonRow key={member.client_id.to_string()} member={member.clone()} {me} {on_direct} /> }
                }) }
            </ul>
            if unlisted > 0 {
                <p class="more" data-testid="unlisted">{ format!("and {unlisted} more") }</p>
            }
            if count.anonymous > 0 {
                <p class="more" data-testid="anonymous">{ anonymous(count.anonymous) }</p>
            }
        </aside>
    }
}

/// "3 online", "1 online", "nobody online yet".
pub fn online(people: u32) -> String {
    if people == 0 {
        "nobody online yet".to_owned()
    } else {
        format!("{people} online")
    }
}

fn anonymous(connections: u32) -> String {
    match connections {
        1 => "1 anonymous connection".to_owned(),
        n => format!("{n} anonymous connections"),
    }
}

#[derive(Properties, PartialEq)]
struct PersonRowProps {
    member: PresentMember,
    me: bool,
    on_direct: Option<Callback<ClientId>>,
}

#[function_component]
fn PersonRow(props: &PersonRowProps) -> Html {
    let member = &props.member;
    let name = member.name.as_ref().map_or_else(|| guest_name(member.client_id), ToString::to_string);
    let (connections, client_id) = (member.connections, member.client_id);
    let label = format!("Message {name}");
    html! {
        <li data-testid="person" data-client-id={member.client_id.to_string()}>
            <span class="presence-dot" aria-hidden="true"></span>
            <span class="name" dir="auto">{ name }</span>
            if props.me {
                <span class="you">{ " (you)" }</span>
            }
            if connections > 1 {
                <span class="connections" data-testid="connections" title="open connections (tabs, devices)">
                    { format!("×{connections}") }
                </span>
            }
            if let Some(on_direct) = &props.on_direct {
                <button class="message-person" data-testid="message-person" aria-label={label}
                        onclick={on_direct.reform(move |_: MouseEvent| client_id)}>{ "Message" }</button>
            }
        </li>
    }
}
