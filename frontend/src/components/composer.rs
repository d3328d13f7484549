use web_sys::HtmlInputElement;
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct ComposerProps {
    pub on_send: Callback<String>,
}

/// The message input: Enter sends (also while disconnected: the message is
/// queued and shown as pending).
#[function_component]
pub fn Composer(props: &ComposerProps) -> Html {
    let input = use_node_ref();
    let submit = {
        let input = input.clone();
        let on_send = props.on_send.clone();
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            let Some(field) = input.cast::<HtmlInputElement>() else { return };
            let text = field.value();
            if !text.trim().is_empty() {
                on_send.emit(text);
                field.set_value("");
            }
        })
    };
    html! {
        <form class="composer" onsubmit={submit}>
            <input ref={input} type="text" placeholder="Write a message…" aria-label="Message"
                   data-testid="composer" autocomplete="off" maxlength="16000" />
            <button type="submit">{ "Send" }</button>
        </form>
    }
}
