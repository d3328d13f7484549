use std::rc::Rc;

use roomcast_shared::ClientId;
use web_sys::Element;
use yew::prelude::*;

use crate::session::{Pending, PendingState};
use crate::state::{Entry, Older};

#[derive(Properties, PartialEq)]
pub struct MessageListProps {
    pub entries: Vec<Rc<Entry>>,
    pub pending: Vec<Pending>,
    pub me: ClientId,
    pub older: Older,
    pub can_load_older: bool,
    /// Asked when the user reaches the top (or presses the button).
    pub on_load_older: Callback<()>,
}

/// Distance from the top, in pixels, at which older history is loaded.
const NEAR_TOP: i32 = 40;

/// The timeline: system lines, messages (own ones set apart), then what is
/// still pending. Text is always rendered as text, never as HTML.
#[function_component]
pub fn MessageList(props: &MessageListProps) -> Html {
    let list = use_node_ref();
    {
        // Keep the newest line in view when one arrives (not when older
        // history is put in front).
        let list = list.clone();
        let newest = (props.entries.last().map(|entry| Rc::as_ptr(entry) as usize), props.pending.len());
        use_effect_with(newest, move |_| {
            if let Some(element) = list.cast::<Element>() {
                element.set_scroll_top(element.scroll_height());
            }
        });
    }
    let on_scroll = {
        let (list, can_load, on_load_older) = (list.clone(), props.can_load_older, props.on_load_older.clone());
        Callback::from(move |_: Event| {
            if can_load && list.cast::<Element>().is_some_and(|element| element.scroll_top() < NEAR_TOP) {
                on_load_older.emit(());
            }
        })
    };
    let older = match (props.older, props.can_load_older) {
        (Older::Loading, _) => html! { <li class="system older">{ "loading older messages…" }</li> },
        (_, true) => html! {
            <li class="system older">
                <button data-testid="load-older" onclick={props.on_load_older.reform(|_: MouseEvent| ())}>
                    { "Load older messages" }
                </button>
            </li>
        },
        (Older::Exhausted, false) => html! { <li class="system older">{ "beginning of the room" }</li> },
        _ => html! {},
    };
    html! {
        <ol class="timeline" ref={list} data-testid="timeline" aria-live="polite" onscroll={on_scroll}>
            { older }
            { for props.entries.iter().map(|entry| entry_view(entry, props.me)) }
            { for props.pending.iter().map(pending_view) }
        </ol>
    }
}

fn entry_view(entry: &Entry, me: ClientId) -> Html {
    match entry {
        Entry::System { text, at_ms } => html! {
            <li class="system" data-testid="system">
                <time>{ clock(*at_ms) }</time>{ " " }{ text }
            </li>
        },
        Entry::Message(message) => {
            let mine = message.from.client_id == me;
            let sender = message
                .from
                .name
                .as_ref()
                .map_or_else(|| format!("guest-{}", &message.from.client_id.to_string()[..4]), |n| n.to_string());
            html! {
                <li class={classes!("message", mine.then_some("mine"))} data-testid="message"
                    data-seq={message.seq.to_string()}>
                    <div class="meta">
                        <span class="sender">{ if mine { "You".to_owned() } else { sender } }</span>
                        <time>{ clock(message.ts as f64) }</time>
                    </div>
                    <div class="text">{ &message.text }</div>
                </li>
            }
        }
    }
}

fn pending_view(pending: &Pending) -> Html {
    let label = match pending.state {
        PendingState::Queued => "waiting for connection",
        PendingState::Sent => "sending…",
    };
    html! {
        <li class="message mine pending" data-testid="pending">
            <div class="meta"><span class="sender">{ "You" }</span><span class="state">{ label }</span></div>
            <div class="text">{ &pending.text }</div>
        </li>
    }
}

/// `HH:MM` in the browser's time zone.
fn clock(unix_ms: f64) -> String {
    let date = js_sys::Date::new(&unix_ms.into());
    format!("{:02}:{:02}", date.get_hours(), date.get_minutes())
}
