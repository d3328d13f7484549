use std::rc::Rc;

use yew::prelude::*;

use crate::admin::show;
use crate::admin::wire::{GroupLoad, Overview};

#[derive(Properties, PartialEq)]
pub struct BusiestProps {
    pub overview: Option<Rc<Overview>>,
}

/// The busiest groups, by members and by message rate.
#[function_component]
pub fn Busiest(props: &BusiestProps) -> Html {
    let (by_members, by_rate) = props.overview.as_ref().map_or_else(Default::default, |overview| {
        (overview.groups_by_members.clone(), overview.groups_by_rate.clone())
    });
    html! {
        <section class="admin-section" aria-labelledby="busiest-heading">
            <h2 id="busiest-heading">{ "Busiest rooms" }</h2>
            <div class="busiest">
                <Groups title="By members" testid="by-members" groups={by_members} />
                <Groups title="By message rate" testid="by-rate" groups={by_rate} />
            </div>
        </section>
    }
}

#[derive(Properties, PartialEq)]
struct GroupsProps {
    title: AttrValue,
    testid: AttrValue,
    groups: Vec<GroupLoad>,
}

#[function_component]
fn Groups(props: &GroupsProps) -> Html {
    html! {
        <div>
            <h3>{ props.title.clone() }</h3>
            if props.groups.is_empty() {
                <p class="more">{ "No rooms in use." }</p>
            } else {
                <div class="table-scroll">
                    <table data-testid={props.testid.clone()}>
                        <thead>
                            <tr>
                                <th scope="col">{ "Room" }</th>
                                <th scope="col" class="number">{ "Members" }</th>
                                <th scope="col" class="number">{ "Messages/s" }</th>
                            </tr>
                        </thead>
                        <tbody>
                            { for props.groups.iter().map(|group| html! {
                                <GroupRow key={group.group.clone()} group={group.clone()} />
                            }) }
                        </tbody>
                    </table>
                </div>
            }
        </div>
    }
}

#[derive(Properties, PartialEq)]
struct GroupRowProps {
    group: GroupLoad,
}

#[function_component]
fn GroupRow(props: &GroupRowProps) -> Html {
    let group = &props.group;
    html! {
        <tr data-group={group.group.clone()}>
            <th scope="row" class="id" dir="auto">{ group.group.clone() }</th>
            <td class="number">{ group.members }</td>
            <td class="number">{ show::rate(group.messages_per_s) }</td>
        </tr>
    }
}
