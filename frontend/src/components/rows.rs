//! One component per timeline row. Each takes `PartialEq` props, so a new
//! message renders its own row and leaves the others alone.

use std::rc::Rc;

use roomcast_shared::{ChatMessage, ClientId, MessageId};
use yew::prelude::*;

use crate::session::{guest_name, Delivery, Pending, SeenByLine};
use crate::timeline::{LineKind, Row, SystemLine};

#[derive(Properties, PartialEq)]
pub struct RowChunkProps {
    pub rows: Rc<[Row]>,
    /// This browser's client id, once it has an identity.
    pub me: Option<ClientId>,
    /// Opens a direct message with a sender (none in a direct message).
    pub on_direct: Option<Callback<ClientId>>,
    /// "Seen by …", given only to the run holding the message it goes
    /// under.
    #[prop_or_default]
    pub seen_by: Option<Rc<SeenByLine>>,
}

/// A run of rows (see [`crate::timeline::chunked`]): only the run that
/// changed renders; the rows stay direct children of the list.
#[function_component]
pub fn RowChunk(props: &RowChunkProps) -> Html {
    let me = props.me;
    html! {
        <>
            { for props.rows.iter().map(|row| match row {
                Row::Message(message) => {
                    let mine = message.from.verified && Some(message.from.client_id) == me;
                    // Only someone the server vouches for can be written to.
                    let on_direct = props.on_direct.clone().filter(|_| message.from.verified && !mine);
                    let seen_by = props.seen_by.clone().filter(|line| mine && line.under == message.seq);
                    html! {
                        <MessageRow key={row_key_message(message.seq)} message={message.clone()} {mine} {on_direct}
                                    {seen_by} />
                    }
                }
                Row::Line { key, line } => html! {
                    <SystemRow key={row_key_line(key.line)} line={line.clone()} number={key.line} />
                },
                Row::Divider { .. } => html! { <NewMessagesRow key={DIVIDER_KEY} /> },
            }) }
        </>
    }
}

#[derive(Properties, PartialEq)]
pub struct MessageRowProps {
    pub message: Rc<ChatMessage>,
    /// Sent by this browser's verified identity: shown as "You", set
    /// apart, and marked sent. (An unverified sender is never "You".)
    pub mine: bool,
    /// Opens a direct message with the sender: their name is a button.
    pub on_direct: Option<Callback<ClientId>>,
    /// Who has seen it, under one's own latest message.
    #[prop_or_default]
    pub seen_by: Option<Rc<SeenByLine>>,
}

/// A delivered message. Text is always rendered as text, never as HTML.
#[function_component]
pub fn MessageRow(props: &MessageRowProps) -> Html {
    let message = &props.message;
    let sender = match (&message.from.name, props.mine) {
        (_, true) => "You".to_owned(),
        (Some(name), false) => name.to_string(),
        (None, false) => guest_name(message.from.client_id),
    };
    let sender = match &props.on_direct {
        Some(on_direct) => {
            let client_id = message.from.client_id;
            let onclick = on_direct.reform(move |_: MouseEvent| client_id);
            let title = format!("Send {sender} a direct message");
            html! { <button class="sender" dir="auto" {title} {onclick} data-testid="sender">{ sender }</button> }
        }
        None => html! { <span class="sender" dir="auto">{ sender }</span> },
    };
    html! {
        <li class={classes!("message", props.mine.then_some("mine"))} data-testid="message"
            data-seq={message.seq.to_string()} data-key={row_key_message(message.seq)}>
            <div class="meta">
                { sender }
                if !message.from.verified {
                    <span class="unverified" data-testid="unverified"
                          title="This sender's identity was not checked by the server: anyone could have used this name.">
                        { "unverified" }
                    </span>
                }
                <time>{ clock(message.ts as f64) }</time>
                if props.mine {
                    <span class="state sent" title={format!("stored as #{}", message.seq)}>{ "sent" }</span>
                }
            </div>
            <div class="text" dir="auto">{ &message.text }</div>
            if let Some(line) = &props.seen_by {
                <SeenByRow line={line.clone()} />
            }
        </li>
    }
}

#[derive(Properties, PartialEq)]
pub struct SeenByRowProps {
    pub line: Rc<SeenByLine>,
}

/// "Seen by Alice, Bob and 3 others", each name isolated (as the typing
/// line's) so that one written right to left cannot reorder the rest.
#[function_component]
pub fn SeenByRow(props: &SeenByRowProps) -> Html {
    let line = &props.line;
    let others = match line.others {
        0 => String::new(),
        1 => " and 1 other".to_owned(),
        others => format!(" and {others} others"),
    };
    html! {
        <div class="seen-by" data-testid="seen-by" aria-label={line.to_string()}>
            { "Seen by " }
            { for line.names.iter().enumerate().map(|(index, name)| html! {
                <>{ if index > 0 { ", " } else { "" } }<span class="reader" dir="auto">{ name }</span></>
            }) }
            { others }
        </div>
    }
}

#[derive(Properties, PartialEq)]
pub struct SystemRowProps {
    pub line: Rc<SystemLine>,
    pub number: u64,
}

/// A connection event, a reconnect attempt (updated in place) or a gap.
#[function_component]
pub fn SystemRow(props: &SystemRowProps) -> Html {
    let kind = match props.line.kind {
        LineKind::Event => "event",
        LineKind::Retry => "retry",
        LineKind::Gap => "gap",
        LineKind::Notice => "notice",
    };
    html! {
        <li class={classes!("system", kind)} data-testid="system" data-kind={kind}
            data-key={row_key_line(props.number)}>
            <time>{ clock(props.line.at_ms) }</time>{ " " }{ &props.line.text }
        </li>
    }
}

/// The `data-key` of the "New messages" divider (one per timeline).
const DIVIDER_KEY: &str = "divider";

/// "New messages": where the unread part began when the room opened.
#[function_component]
pub fn NewMessagesRow() -> Html {
    html! {
        <li class="system divider" data-testid="divider" data-key={DIVIDER_KEY} role="separator"
            aria-label="New messages">
            <span>{ "New messages" }</span>
        </li>
    }
}

#[derive(Properties, PartialEq)]
pub struct PendingRowProps {
    pub pending: Pending,
    pub on_retry: Callback<MessageId>,
    pub on_delete: Callback<MessageId>,
}

/// A message of ours not stored yet: its state, and for a failed one the
/// reason with Retry and Delete.
#[function_component]
pub fn PendingRow(props: &PendingRowProps) -> Html {
    let pending = &props.pending;
    let id = pending.id;
    let (label, actions) = match &pending.delivery {
        Delivery::Queued => ("waiting to be sent".to_owned(), false),
        Delivery::Sending => ("sending…".to_owned(), false),
        // The server's reason asks a client to resend; the app does that
        // itself, so the label says what happens instead.
        Delivery::Retrying { .. } => ("the server asked to wait; it goes out again shortly".to_owned(), false),
        Delivery::Failed { reason } => (format!("not sent: {reason}"), true),
    };
    let on_retry = props.on_retry.reform(move |_: MouseEvent| id);
    let on_delete = props.on_delete.reform(move |_: MouseEvent| id);
    html! {
        <li class={classes!("message", "mine", "pending", pending.delivery.key())} data-testid="pending"
            data-state={pending.delivery.key()} data-key={format!("p{}", id.0)}>
            <div class="meta"><span class="sender">{ "You" }</span><span class="state">{ label }</span></div>
            <div class="text" dir="auto">{ &pending.text }</div>
            if actions {
                <div class="pending-actions">
                    <button data-testid="pending-retry" onclick={on_retry}>{ "Retry" }</button>
                    <button data-testid="pending-delete" onclick={on_delete}>{ "Delete" }</button>
                </div>
            } else if !matches!(pending.delivery, Delivery::Sending) {
                <div class="pending-actions">
                    <button data-testid="pending-delete" onclick={on_delete}>{ "Delete" }</button>
                </div>
            }
        </li>
    }
}

/// The `data-key` of a message row, as the scroll anchor finds it.
pub fn row_key_message(seq: u64) -> String {
    format!("m{seq}")
}

pub fn row_key_line(number: u64) -> String {
    format!("l{number}")
}

/// `HH:MM` in the browser's time zone.
fn clock(unix_ms: f64) -> String {
    let date = js_sys::Date::new(&unix_ms.into());
    format!("{:02}:{:02}", date.get_hours(), date.get_minutes())
}
