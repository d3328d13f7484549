//! The admin page (`/admin`, served on the server's admin address): the
//! key prompt, then the cluster live (nodes, traffic, busiest rooms), an
//! identity's connections and bans, and the active bans. Thin views: what
//! an answer means, the chart's arithmetic and the page's state are in
//! [`crate::admin`]; the requests in [`crate::net::admin`].

mod ban_form;
mod bans;
mod busiest;
mod key_prompt;
mod lookup;
mod nodes;
mod traffic;

use yew::prelude::*;

use crate::admin::show;
use crate::admin::Outcome;
use crate::hooks::use_admin;
use crate::net::clock::local_time;

use ban_form::BanForm;
use bans::Bans;
use busiest::Busiest;
use key_prompt::KeyPrompt;
use lookup::Lookup;
use nodes::Nodes;
use traffic::Traffic;

#[function_component]
pub fn AdminPage() -> Html {
    let admin = use_admin();
    use_effect_with((), |()| {
        if let Some(document) = web_sys::window().and_then(|window| window.document()) {
            document.set_title("Roomcast admin");
        }
    });
    let on_forget = use_callback(admin.forget.clone(), |_: MouseEvent, forget| forget.emit(()));
    let state = &*admin.state;
    if state.key.is_none() {
        return html! { <KeyPrompt wrong={state.wrong_key} on_open={admin.open.clone()} /> };
    }
    let overview = state.overview.clone();
    html! {
        <main class="admin">
            <header class="admin-head">
                <h1>{ "Roomcast admin" }</h1>
                <button onclick={on_forget}>{ "Forget key" }</button>
            </header>
            if let Some(problem) = &state.poll_problem {
                <p class="error" role="alert" data-testid="admin-problem">{ problem.clone() }</p>
            }
            <Nodes overview={overview.clone()} />
            <Traffic overview={overview.clone()} />
            <Busiest {overview} />
            <Lookup report={state.report.clone()} on_look_up={admin.look_up.clone()}
                    on_disconnect={admin.disconnect.clone()} />
            <BanForm sub={state.report.as_ref().map(|report| report.sub)} on_ban={admin.ban.clone()} />
            <Bans bans={state.bans.clone()} on_lift={admin.lift.clone()} />
            if let Some(outcome) = &state.outcome {
                <OutcomeLine outcome={outcome.clone()} />
            }
        </main>
    }
}

#[derive(Properties, PartialEq)]
struct OutcomeLineProps {
    outcome: Outcome,
}

/// What the operator's last action did, kept in view at the bottom.
#[function_component]
fn OutcomeLine(props: &OutcomeLineProps) -> Html {
    let failed = matches!(props.outcome, Outcome::Failed(_));
    html! {
        <p class={classes!("outcome", failed.then_some("error"))} role={if failed { "alert" } else { "status" }}
           data-testid="admin-outcome">
            { show::outcome(&props.outcome, local_time) }
        </p>
    }
}
