use std::rc::Rc;

use yew::prelude::*;

use crate::admin::show;
use crate::admin::wire::{Node, Overview};
use crate::net::clock::local_time;

#[derive(Properties, PartialEq)]
pub struct NodesProps {
    pub overview: Option<Rc<Overview>>,
}

/// The cluster's nodes, one row each.
#[function_component]
pub fn Nodes(props: &NodesProps) -> Html {
    let now_ms = js_sys::Date::now();
    html! {
        <section class="admin-section" aria-labelledby="nodes-heading">
            <h2 id="nodes-heading">{ "Nodes" }</h2>
            if let Some(overview) = &props.overview {
                if let Some(warning) = show::missing_nodes(overview.missing_nodes) {
                    <p class="warning" role="status">{ warning }</p>
                }
                <div class="table-scroll">
                    <table data-testid="nodes">
                        <thead>
                            <tr>
                                <th scope="col">{ "Node" }</th>
                                <th scope="col">{ "Started" }</th>
                                <th scope="col" class="number">{ "Connections" }</th>
                                <th scope="col" class="number">{ "Groups" }</th>
                                <th scope="col" class="number">{ "Rooms streams" }</th>
                                <th scope="col" class="number">{ "Messages/s" }</th>
                                <th scope="col" class="number">{ "Deliveries/s" }</th>
                                <th scope="col">{ "State" }</th>
                            </tr>
                        </thead>
                        <tbody>
                            { for overview.nodes.iter().map(|node| html! {
                                <NodeRow key={node.node.clone()} node={node.clone()} {now_ms} />
                            }) }
                        </tbody>
                    </table>
                </div>
            } else {
                <p class="more">{ "loading…" }</p>
            }
        </section>
    }
}

#[derive(Properties, PartialEq)]
struct NodeRowProps {
    node: Node,
    now_ms: f64,
}

#[function_component]
fn NodeRow(props: &NodeRowProps) -> Html {
    let node = &props.node;
    html! {
        <tr class={classes!(node.this.then_some("this"), node.draining.then_some("draining"))} data-node={node.node.clone()}>
            <th scope="row" class="id">{ node.node.clone() }</th>
            <td title={local_time(node.started_ms)}>{ show::uptime(props.now_ms, node.started_ms) }{ " ago" }</td>
            <td class="number">{ node.connections }</td>
            <td class="number">{ node.groups }</td>
            <td class="number">{ node.rooms_streams }</td>
            <td class="number">{ show::rate(node.messages_per_s) }</td>
            <td class="number">{ show::rate(node.deliveries_per_s) }</td>
            <td>{ show::node_state(node.this, node.draining) }</td>
        </tr>
    }
}
