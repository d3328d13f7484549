use uuid::Uuid;
use web_sys::{HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;

use crate::admin::forms::{BanRequest, DURATIONS};

#[derive(Properties, PartialEq)]
pub struct BanFormProps {
    /// The identity looked up, which the ban is of unless unticked.
    pub sub: Option<Uuid>,
    pub on_ban: Callback<BanRequest>,
}

/// A new ban: of the identity looked up, of an address or network, or
/// both; for a time, with a reason the user is shown.
#[function_component]
pub fn BanForm(props: &BanFormProps) -> Html {
    let (this_client, network, duration, reason) = (use_node_ref(), use_node_ref(), use_node_ref(), use_node_ref());
    let error = use_state(|| None::<String>);
    let on_submit = {
        let fields = (this_client.clone(), network.clone(), duration.clone(), reason.clone(), error.clone());
        use_callback((props.sub, props.on_ban.clone()), move |event: SubmitEvent, (sub, on_ban)| {
            event.prevent_default();
            let (this_client, network, duration, reason, error) = &fields;
            let text = |node: &NodeRef| node.cast::<HtmlInputElement>().map(|field| field.value()).unwrap_or_default();
            let ticked = this_client.cast::<HtmlInputElement>().is_some_and(|field| field.checked());
            let seconds = duration.cast::<HtmlSelectElement>().and_then(|field| field.value().parse().ok());
            let sub = sub.filter(|_| ticked);
            match BanRequest::new(sub, &text(network), seconds.unwrap_or_default(), &text(reason)) {
                Ok(request) => {
                    error.set(None);
                    on_ban.emit(request);
                }
                Err(problem) => error.set(Some(problem)),
            }
        })
    };
    html! {
        <section class="admin-section" aria-labelledby="ban-heading">
            <h2 id="ban-heading">{ "Ban" }</h2>
            <form class="ban-form" onsubmit={on_submit}>
                if let Some(sub) = props.sub {
                    <label class="check">
                        <input key={sub.to_string()} ref={this_client} type="checkbox" checked=true />
                        { format!("Ban client {sub}") }
                    </label>
                } else {
                    <p class="more">{ "Look up a client to ban it; or ban an address or network." }</p>
                }
                <label>{ "Address or network" }
                    <input ref={network} autocomplete="off" spellcheck="false"
                           placeholder="203.0.113.7 or 203.0.113.0/24 (optional)" />
                </label>
                <label>{ "Duration" }
                    <select ref={duration}>
                        { for DURATIONS.iter().enumerate().map(|(index, (name, seconds))| html! {
                            <option value={seconds.to_string()} selected={index == 1}>{ *name }</option>
                        }) }
                    </select>
                </label>
                <label>{ "Ban reason" }
                    <input ref={reason} autocomplete="off" maxlength="200" placeholder="shown to the user" />
                </label>
                if let Some(problem) = &*error {
                    <p class="error" role="alert">{ problem.clone() }</p>
                }
                <button type="submit">{ "Ban" }</button>
            </form>
        </section>
    }
}
