use std::rc::Rc;

use uuid::Uuid;
use yew::prelude::*;

use crate::admin::show;
use crate::admin::wire::BanRecord;
use crate::net::clock::local_time;

#[derive(Properties, PartialEq)]
pub struct BansProps {
    /// `None` until the first poll answers.
    pub bans: Option<Rc<[BanRecord]>>,
    pub on_lift: Callback<Uuid>,
}

/// The active bans, each with "Lift".
#[function_component]
pub fn Bans(props: &BansProps) -> Html {
    let content = match &props.bans {
        None => html! { <p class="more">{ "loading…" }</p> },
        Some(bans) if bans.is_empty() => html! { <p class="more">{ "No active bans." }</p> },
        Some(bans) => html! {
            <div class="table-scroll">
                <table data-testid="bans">
                    <thead>
                        <tr>
                            <th scope="col">{ "Banned" }</th>
                            <th scope="col">{ "Until" }</th>
                            <th scope="col">{ "Reason" }</th>
                            <th scope="col">{ "Since" }</th>
                            <th scope="col"><span class="visually-hidden">{ "Action" }</span></th>
                        </tr>
                    </thead>
                    <tbody>
                        { for bans.iter().map(|ban| html! {
                            <BanRow key={ban.id.to_string()} ban={ban.clone()} on_lift={props.on_lift.clone()} />
                        }) }
                    </tbody>
                </table>
            </div>
        },
    };
    html! {
        <section class="admin-section" aria-labelledby="bans-heading">
            <h2 id="bans-heading">{ "Active bans" }</h2>
            { content }
        </section>
    }
}

#[derive(Properties, PartialEq)]
struct BanRowProps {
    ban: BanRecord,
    on_lift: Callback<Uuid>,
}

#[function_component]
fn BanRow(props: &BanRowProps) -> Html {
    let ban = &props.ban;
    let on_lift = use_callback((ban.id, props.on_lift.clone()), |_: MouseEvent, (id, on_lift)| on_lift.emit(*id));
    html! {
        <tr data-ban-id={ban.id.to_string()}>
            <td class="id">{ show::ban_target(ban) }</td>
            <td>{ local_time(ban.until_ms) }</td>
            <td dir="auto">{ ban.reason.clone() }</td>
            <td>{ local_time(ban.created_ms) }</td>
            <td><button onclick={on_lift}>{ "Lift" }</button></td>
        </tr>
    }
}
