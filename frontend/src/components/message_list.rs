use std::rc::Rc;

use roomcast_shared::ClientId;
use web_sys::Element;
use yew::prelude::*;

use crate::session::{Pending, PendingState};
use crate::state::Entry;

#[derive(Properties, PartialEq)]
pub struct MessageListProps {
    pub entries: Vec<Rc<Entry>>,
    pub pending: Vec<Pending>,
    pub me: ClientId,
}

/// The timeline: system lines, messages (own ones set apart), then what is
/// still pending. Text is always rendered as text, never as HTML.
#[function_component]
pub fn MessageList(props: &MessageListProps) -> Html {
    let list = use_node_ref();
    {
        // Keep the newest line in view.
        let list = list.clone();
        let count = props.entries.len() + props.pending.len();
        use_effect_with(count, move |_| {
            if let Some(element) = list.cast::<Element>() {
                element.set_scroll_top(element.scroll_height());
            }
        });
    }
    html! {
        <ol class="timeline" ref={list} data-testid="timeline" aria-live="polite">
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
