use std::rc::Rc;

use uuid::Uuid;
use web_sys::HtmlInputElement;
use yew::prelude::*;

use crate::admin::forms::{client_id, DisconnectRequest};
use crate::admin::show;
use crate::admin::wire::{IdentityReport, LiveConnection};
use crate::net::clock::local_time;

#[derive(Properties, PartialEq)]
pub struct LookupProps {
    /// The identity looked up last.
    pub report: Option<Rc<IdentityReport>>,
    pub on_look_up: Callback<Uuid>,
    pub on_disconnect: Callback<(Uuid, DisconnectRequest)>,
}

/// An identity by its client id: its live connections (which the operator
/// may disconnect) and its bans.
#[function_component]
pub fn Lookup(props: &LookupProps) -> Html {
    let input = use_node_ref();
    let error = use_state(|| None::<String>);
    let on_submit = {
        let (input, error) = (input.clone(), error.clone());
        use_callback(props.on_look_up.clone(), move |event: SubmitEvent, on_look_up| {
            event.prevent_default();
            let typed = input.cast::<HtmlInputElement>().map(|field| field.value()).unwrap_or_default();
            match client_id(&typed) {
                Ok(sub) => {
                    error.set(None);
                    on_look_up.emit(sub);
                }
                Err(problem) => error.set(Some(problem)),
            }
        })
    };
    html! {
        <section class="admin-section" aria-labelledby="lookup-heading">
            <h2 id="lookup-heading">{ "Look up a client" }</h2>
            <form class="inline-form" onsubmit={on_submit}>
                <label for="client-id">{ "Client id" }</label>
                <input id="client-id" ref={input} autocomplete="off" spellcheck="false"
                       placeholder="00000000-0000-0000-0000-000000000000" />
                <button type="submit">{ "Look up" }</button>
            </form>
            if let Some(problem) = &*error {
                <p class="error" role="alert">{ problem.clone() }</p>
            }
            if let Some(report) = &props.report {
                <Report key={report.sub.to_string()} report={report.clone()} on_disconnect={props.on_disconnect.clone()} />
            }
        </section>
    }
}

#[derive(Properties, PartialEq)]
struct ReportProps {
    report: Rc<IdentityReport>,
    on_disconnect: Callback<(Uuid, DisconnectRequest)>,
}

/// One identity: its connections, a disconnect with a reason, its bans.
#[function_component]
fn Report(props: &ReportProps) -> Html {
    let report = &props.report;
    let reason = use_node_ref();
    let on_submit = {
        let (reason, sub) = (reason.clone(), report.sub);
        use_callback(props.on_disconnect.clone(), move |event: SubmitEvent, on_disconnect| {
            event.prevent_default();
            let typed = reason.cast::<HtmlInputElement>().map(|field| field.value()).unwrap_or_default();
            on_disconnect.emit((sub, DisconnectRequest::new(&typed)));
        })
    };
    html! {
        <div class="report" data-testid="identity-report" data-sub={report.sub.to_string()}>
            <h3 class="id">{ format!("Client {}", report.sub) }</h3>
            if let Some(warning) = show::missing_nodes(report.missing_nodes) {
                <p class="warning" role="status">{ warning }</p>
            }
            if report.connections.is_empty() {
                <p class="more">{ "No live connections." }</p>
            } else {
                <div class="table-scroll">
                    <table data-testid="live-connections">
                        <caption>{ "Live connections" }</caption>
                        <thead>
                            <tr>
                                <th scope="col">{ "Room" }</th>
                                <th scope="col">{ "Node" }</th>
                                <th scope="col">{ "Mode" }</th>
                            </tr>
                        </thead>
                        <tbody>
                            { for report.connections.iter().enumerate().map(|(index, connection)| html! {
                                <ConnectionRow key={index} connection={connection.clone()} />
                            }) }
                        </tbody>
                    </table>
                </div>
            }
            <form class="inline-form" onsubmit={on_submit}>
                <label for="disconnect-reason">{ "Disconnect reason" }</label>
                <input id="disconnect-reason" ref={reason} autocomplete="off" maxlength="200"
                       placeholder="shown to the user" />
                <button type="submit">{ "Disconnect" }</button>
            </form>
            if !report.bans.is_empty() {
                <ul class="report-bans">
                    { for report.bans.iter().map(|ban| html! {
                        <li key={ban.id.to_string()}>{ show::banned_until(ban, local_time) }</li>
                    }) }
                </ul>
            }
        </div>
    }
}

#[derive(Properties, PartialEq)]
struct ConnectionRowProps {
    connection: LiveConnection,
}

#[function_component]
fn ConnectionRow(props: &ConnectionRowProps) -> Html {
    let connection = &props.connection;
    html! {
        <tr>
            <td class="id" dir="auto">{ show::room_of_connection(&connection.group) }</td>
            <td class="id">{ connection.node.clone() }</td>
            <td>{ connection.mode.clone() }</td>
        </tr>
    }
}
