use gloo_timers::callback::Timeout;
use roomcast_shared::GroupName;
use wasm_bindgen_futures::{spawn_local, JsFuture};
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct CopyLinkProps {
    pub group: GroupName,
}

#[derive(Clone, PartialEq)]
enum Copied {
    No,
    Yes,
    /// The clipboard refused (no permission, or a page served over plain
    /// HTTP): the link is shown to be copied by hand.
    ByHand(String),
}

/// "Copy link": copies the room's link, without anyone's name in it.
#[function_component]
pub fn CopyLink(props: &CopyLinkProps) -> Html {
    let copied = use_state(|| Copied::No);
    let onclick = {
        let (copied, group) = (copied.clone(), props.group.clone());
        Callback::from(move |_: MouseEvent| {
            let Some(window) = web_sys::window() else { return };
            let origin = window.location().origin().unwrap_or_default();
            let link = format!("{origin}/room/{group}");
            let clipboard = window.navigator().clipboard();
            let copied = copied.clone();
            spawn_local(async move {
                let result = JsFuture::from(clipboard.write_text(&link)).await;
                copied.set(if result.is_ok() { Copied::Yes } else { Copied::ByHand(link) });
                if result.is_ok() {
                    Timeout::new(2_000, move || copied.set(Copied::No)).forget();
                }
            });
        })
    };
    html! {
        <>
            <button {onclick} data-testid="copy-link">
                { if *copied == Copied::Yes { "Link copied" } else { "Copy link" } }
            </button>
            if let Copied::ByHand(link) = &*copied {
                <input class="link-by-hand" readonly=true value={link.clone()} aria-label="Room link"
                       data-testid="room-link" />
            }
            <span class="visually-hidden" role="status">
                { if *copied == Copied::Yes { "Link copied" } else { "" } }
            </span>
        </>
    }
}
