//! The timeline view: keyed rows, loaders at both ends, and the scrolling
//! rules ([`timeline::scroll`](crate::timeline::scroll) decides them). It
//! follows the newest message only while the user is at the bottom;
//! otherwise it keeps the row the user is looking at in place, whatever is
//! added or dropped above it, and offers "N new messages ↓". After every
//! render and scroll, and when the tab becomes visible or focused, it
//! tells which is the newest message in view (read cursors: only while
//! the tab is attended).

use std::cell::RefCell;
use std::rc::Rc;

use roomcast_shared::{ClientId, MessageId};
use wasm_bindgen::JsCast;
use web_sys::HtmlElement;
use yew::prelude::*;

use crate::components::rows::{PendingRow, RowChunk};
use crate::net::attention;
use crate::session::{Pending, SeenByLine};
use crate::timeline::scroll::{self, Follow, Metrics, Shown};
use crate::timeline::{Chunk, Edge, Row};

#[derive(Properties, PartialEq)]
pub struct MessageListProps {
    pub chunks: Rc<Vec<Chunk>>,
    /// The window holds the newest message (live messages are appended).
    pub live: bool,
    pub pending: Rc<[Pending]>,
    /// This browser's client id, once it has an identity.
    pub me: Option<ClientId>,
    pub older: Edge,
    pub newer: Edge,
    pub following: bool,
    pub unseen: u64,
    pub on_load_older: Callback<()>,
    pub on_load_newer: Callback<()>,
    pub on_jump_to_newest: Callback<()>,
    /// The user reached the bottom (`true`) or left it.
    pub on_following: Callback<bool>,
    pub on_retry: Callback<MessageId>,
    pub on_delete: Callback<MessageId>,
    /// The user has seen the message of this number (the newest in view).
    pub on_seen: Callback<u64>,
    /// Opens a direct message with a sender (none in a direct message).
    pub on_direct: Option<Callback<ClientId>>,
    /// "Seen by …" under one's own latest message.
    #[prop_or_default]
    pub seen_by: Option<Rc<SeenByLine>>,
}

/// The `data-key`s of the loader rows at both ends.
const EDGE_KEYS: [&str; 2] = ["older", "newer"];

/// The row at the top of the view and its distance from the view's top.
type Anchor = Rc<RefCell<Option<(String, i32)>>>;

#[function_component]
pub fn MessageList(props: &MessageListProps) -> Html {
    let list = use_node_ref();
    let anchor: Anchor = use_mut_ref(|| None);
    // Where the app itself last put the view: a scroll event that finds the
    // view there (or further down) is the app's, not the user's.
    let placed_at = use_mut_ref(|| 0);
    let seen = Seen { list: list.clone(), told: use_mut_ref(|| None), on_seen: props.on_seen.clone() };
    {
        // The tab shown again or focused: what is in view is seen now.
        let seen = seen.clone();
        use_effect_with(props.on_seen.clone(), move |_| {
            let listeners = attention::on_change(move || seen.tell());
            move || drop(listeners)
        });
    }
    {
        // After every render: follow the bottom, or put the anchored row
        // back where the user saw it; near the end of a window that lacks
        // the newest messages, ask for the next page.
        let (list, anchor, placed_at) = (list.clone(), anchor.clone(), placed_at.clone());
        let (following, newer, on_load_newer) = (props.following, props.newer, props.on_load_newer.clone());
        let on_following = props.on_following.clone();
        let seen = seen.clone();
        use_effect(move || {
            if let Some(element) = list.cast::<HtmlElement>() {
                if following && scroll::left_bottom(metrics(&element), *placed_at.borrow()) {
                    // The user scrolled up and this render came before the
                    // scroll event: the view stays where the user put it.
                    on_following.emit(false);
                } else if following {
                    element.set_scroll_top(element.scroll_height());
                } else if let Some((key, offset)) = anchor.borrow().clone() {
                    if let Some(row) = find_row(&element, &key) {
                        element.set_scroll_top(row.offset_top() - offset);
                    }
                }
                *placed_at.borrow_mut() = element.scroll_top();
                *anchor.borrow_mut() = top_row(&element);
                if scroll::near_end_of_loadable(metrics(&element), newer) {
                    on_load_newer.emit(());
                }
            }
            seen.tell();
        });
    }
    let on_scroll = {
        let (list, anchor, placed_at, seen) = (list.clone(), anchor.clone(), placed_at.clone(), seen.clone());
        let shown = Shown { following: props.following, live: props.live, older: props.older, newer: props.newer };
        let (on_following, on_load_older, on_load_newer) =
            (props.on_following.clone(), props.on_load_older.clone(), props.on_load_newer.clone());
        Callback::from(move |_: Event| {
            let Some(element) = list.cast::<HtmlElement>() else { return };
            let at = metrics(&element);
            let placed = std::mem::replace(&mut *placed_at.borrow_mut(), at.top);
            let scrolled = scroll::scrolled(at, placed, shown);
            match scrolled.follow {
                Some(Follow::Start) => on_following.emit(true),
                Some(Follow::Stop) => on_following.emit(false),
                None => {}
            }
            if scrolled.load_older {
                on_load_older.emit(());
            }
            if scrolled.load_newer {
                on_load_newer.emit(());
            }
            *anchor.borrow_mut() = top_row(&element);
            seen.tell();
        })
    };
    let busy = props.older == Edge::Loading || props.newer == Edge::Loading;
    let (me, on_direct) = (props.me, props.on_direct.clone());
    html! {
        <div class="timeline-frame">
            <ol class="timeline" ref={list} data-testid="timeline" role="log" aria-live="polite"
                aria-relevant="additions" aria-busy={busy.to_string()} aria-label="Messages" onscroll={on_scroll}>
                { loader(props.older, &props.on_load_older, Side::Older) }
                { for props.chunks.iter().map(|chunk| {
                    // Only the run holding its message changes with it.
                    let seen_by = props.seen_by.clone().filter(|line| holds(chunk, line.under));
                    html! {
                        <RowChunk key={format!("c{}", chunk.id)} rows={chunk.rows.clone()} {me}
                                  on_direct={on_direct.clone()} {seen_by} />
                    }
                }) }
                { loader(props.newer, &props.on_load_newer, Side::Newer) }
                { for props.pending.iter().map(|pending| html! {
                    <PendingRow key={format!("p{}", pending.id.0)} pending={pending.clone()}
                                on_retry={props.on_retry.clone()} on_delete={props.on_delete.clone()} />
                }) }
            </ol>
            if !props.live || (!props.following && props.unseen > 0) {
                <button class="new-messages" data-testid="new-messages"
                        onclick={props.on_jump_to_newest.reform(|_: MouseEvent| ())}>
                    { new_messages_label(props.unseen) }
                </button>
            }
        </div>
    }
}

/// Whether `chunk` holds message `seq`.
fn holds(chunk: &Chunk, seq: u64) -> bool {
    chunk.rows.iter().any(|row| matches!(row, Row::Message(message) if message.seq == seq))
}

fn new_messages_label(unseen: u64) -> String {
    match unseen {
        0 => "Newest messages ↓".to_owned(),
        1 => "1 new message ↓".to_owned(),
        n => format!("{n} new messages ↓"),
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Side {
    Older,
    Newer,
}

/// The row at one end of the window: a button, a spinner, an inline retry,
/// or (older side) the beginning of the room.
fn loader(edge: Edge, on_load: &Callback<()>, side: Side) -> Html {
    let (key, noun, testid) = match side {
        Side::Older => ("older", "older", "load-older"),
        Side::Newer => ("newer", "newer", "load-newer"),
    };
    let click = on_load.reform(|_: MouseEvent| ());
    match (edge, side) {
        (Edge::Complete, Side::Older) => html! {
            <li key={key} class="system edge" data-key={key}>{ "beginning of the room" }</li>
        },
        (Edge::Complete, Side::Newer) => html! {},
        (Edge::Loading, _) => html! {
            <li key={key} class="system edge" data-key={key}>{ format!("loading {noun} messages…") }</li>
        },
        (Edge::More, _) => html! {
            <li key={key} class="system edge" data-key={key}>
                <button data-testid={testid} onclick={click}>{ format!("Load {noun} messages") }</button>
            </li>
        },
        (Edge::Failed, _) => html! {
            <li key={key} class="system edge failed" data-key={key} role="alert">
                { format!("Could not load {noun} messages. ") }
                <button data-testid={format!("{testid}-retry")} onclick={click}>{ "Retry" }</button>
            </li>
        },
    }
}

fn metrics(list: &HtmlElement) -> Metrics {
    Metrics { top: list.scroll_top(), height: list.scroll_height(), client_height: list.client_height() }
}

/// Tells the newest message in view, when it changed, while the tab is
/// attended.
#[derive(Clone)]
struct Seen {
    list: NodeRef,
    /// The number last told.
    told: Rc<RefCell<Option<u64>>>,
    on_seen: Callback<u64>,
}

impl Seen {
    fn tell(&self) {
        if !attention::attended() {
            return;
        }
        let Some(seq) = self.list.cast::<HtmlElement>().and_then(|list| newest_seen(&list)) else { return };
        if self.told.borrow_mut().replace(seq) != Some(seq) {
            self.on_seen.emit(seq);
        }
    }
}

/// The number of the newest message row seen in the view
/// ([`scroll::seen`]), if any.
fn newest_seen(list: &HtmlElement) -> Option<u64> {
    let at = metrics(list);
    let bottom = at.top + at.client_height;
    let children = list.children();
    // The first row starting below the view, by bisection (rows are in
    // document order); the newest message above it is the candidate.
    let (mut low, mut high) = (0, children.length());
    while low < high {
        let middle = (low + high) / 2;
        let row: HtmlElement = children.item(middle)?.dyn_into().ok()?;
        if row.offset_top() < bottom {
            low = middle + 1;
        } else {
            high = middle;
        }
    }
    for index in (0..low).rev() {
        let row: HtmlElement = children.item(index)?.dyn_into().ok()?;
        if row.offset_top() + row.offset_height() <= at.top {
            return None;
        }
        let Some(seq) = row.get_attribute("data-seq").and_then(|seq| seq.parse().ok()) else { continue };
        if scroll::seen(row.offset_top(), row.offset_height(), at) {
            return Some(seq);
        }
    }
    None
}

fn find_row(list: &HtmlElement, key: &str) -> Option<HtmlElement> {
    list.query_selector(&format!(r#":scope > [data-key="{key}"]"#)).ok().flatten()?.dyn_into().ok()
}

/// The first row whose bottom is below the top of the view, and how far
/// its top is from the view's top.
fn top_row(list: &HtmlElement) -> Option<(String, i32)> {
    let top = list.scroll_top();
    let children = list.children();
    // Rows are in document order, so the first one reaching below `top` is
    // found by bisection.
    let (mut low, mut high) = (0, children.length());
    while low < high {
        let middle = (low + high) / 2;
        let row: HtmlElement = children.item(middle)?.dyn_into().ok()?;
        if row.offset_top() + row.offset_height() <= top {
            low = middle + 1;
        } else {
            high = middle;
        }
    }
    // Never the loaders at the ends: a page loaded above must push them away,
    // not keep them in view.
    (low..children.length()).find_map(|index| {
        let row: HtmlElement = children.item(index)?.dyn_into().ok()?;
        let key = row.get_attribute("data-key").filter(|key| !EDGE_KEYS.contains(&key.as_str()))?;
        Some((key, row.offset_top() - top))
    })
}
