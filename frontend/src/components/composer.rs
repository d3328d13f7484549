use roomcast_shared::ClientCommand;
use wasm_bindgen::JsCast;
use web_sys::{HtmlInputElement, InputEvent};
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct ComposerProps {
    pub on_send: Callback<String>,
    /// The text changed by the user's input: whether it is not blank.
    pub on_typing: Callback<bool>,
    /// The largest `send` frame the server accepts, in bytes.
    pub max_bytes: usize,
}

/// The message input: Enter sends (also while disconnected: the message is
/// queued and shown as pending). Text whose `send` frame would exceed the
/// server's limit is refused here, with the reason, instead of being sent to
/// be refused. The input has focus on entering the room and after sending.
/// Each input by the user is told (`on_typing`); sending clears the field
/// without an input event, so it tells nothing.
#[function_component]
pub fn Composer(props: &ComposerProps) -> Html {
    let input = use_node_ref();
    let text = use_state(String::new);
    {
        let input = input.clone();
        use_effect_with((), move |()| focus(&input));
    }
    let frame_len = ClientCommand::send_frame_len(&text);
    let too_long = frame_len > props.max_bytes;
    let on_input = {
        let (text, on_typing) = (text.clone(), props.on_typing.clone());
        Callback::from(move |event: InputEvent| {
            if let Some(field) = event.target().and_then(|t| t.dyn_into::<HtmlInputElement>().ok()) {
                let value = field.value();
                // Whether a `typing` goes is the driver's to decide.
                on_typing.emit(!value.trim().is_empty());
                text.set(value);
            }
        })
    };
    let submit = {
        let (input, text, on_send, max_bytes) = (input.clone(), text.clone(), props.on_send.clone(), props.max_bytes);
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            let Some(field) = input.cast::<HtmlInputElement>() else { return };
            // The field, not the state: several submits may come before the
            // next render (a paste and Enter, or a script).
            let value = field.value();
            if ClientCommand::send_frame_len(&value) > max_bytes {
                text.set(value);
            } else if !value.trim().is_empty() {
                on_send.emit(value);
                field.set_value("");
                text.set(String::new());
            }
            let _ = field.focus();
        })
    };
    html! {
        <form class="composer" onsubmit={submit}>
            <div class="composer-row">
                <input ref={input} type="text" placeholder="Write a message…" aria-label="Message"
                       data-testid="composer" autocomplete="off" value={(*text).clone()} oninput={on_input}
                       aria-invalid={too_long.to_string()} aria-describedby="composer-error" />
                <button type="submit" data-testid="send" disabled={too_long}>{ "Send" }</button>
            </div>
            // Announced once when the text becomes too long; the byte count
            // beside it changes with every key and is not announced.
            <p class="visually-hidden" role="status">{ if too_long { "Too long to send." } else { "" } }</p>
            if too_long {
                <p id="composer-error" class="error" data-testid="composer-error" aria-hidden="true">
                    { format!("Too long to send: {} bytes, and this server accepts at most {}.",
                              group_digits(frame_len), group_digits(props.max_bytes)) }
                </p>
            }
        </form>
    }
}

fn focus(input: &NodeRef) {
    if let Some(field) = input.cast::<HtmlInputElement>() {
        let _ = field.focus();
    }
}

/// `12345` → `12,345`.
fn group_digits(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}
