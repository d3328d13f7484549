use web_sys::HtmlInputElement;
use yew::prelude::*;

use crate::admin::AdminKey;

#[derive(Properties, PartialEq)]
pub struct KeyPromptProps {
    /// The server refused the last key.
    pub wrong: bool,
    pub on_open: Callback<AdminKey>,
}

/// Asks for the admin key (kept for this tab only).
#[function_component]
pub fn KeyPrompt(props: &KeyPromptProps) -> Html {
    let input = use_node_ref();
    let empty = use_state(|| false);
    let on_submit = {
        let (input, empty) = (input.clone(), empty.clone());
        use_callback(props.on_open.clone(), move |event: SubmitEvent, on_open| {
            event.prevent_default();
            let typed = input.cast::<HtmlInputElement>().map(|field| field.value()).unwrap_or_default();
            match AdminKey::new(&typed) {
                Some(key) => on_open.emit(key),
                None => empty.set(true),
            }
        })
    };
    html! {
        <main class="card">
            <h1>{ "Roomcast admin" }</h1>
            <form onsubmit={on_submit}>
                <label>{ "Admin key" }
                    <input ref={input} type="password" autocomplete="off" required=true />
                </label>
                if props.wrong {
                    <p class="error" role="alert">{ "wrong key" }</p>
                } else if *empty {
                    <p class="error" role="alert">{ "enter the admin key" }</p>
                }
                <button type="submit">{ "Open" }</button>
            </form>
        </main>
    }
}
