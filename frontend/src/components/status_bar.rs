use gloo_timers::callback::Interval;
use yew::prelude::*;

use crate::state::Status;

#[derive(Properties, PartialEq)]
pub struct StatusBarProps {
    pub status: Status,
}

/// The connection status, always visible; counts down while reconnecting.
/// Screen readers are told of each change of state politely, not of every
/// tick of the countdown.
#[function_component]
pub fn StatusBar(props: &StatusBarProps) -> Html {
    // Re-render every second while a countdown is shown.
    let tick = use_force_update();
    let counting = matches!(props.status, Status::Reconnecting { .. });
    use_effect_with(counting, move |counting| {
        let interval = counting.then(|| Interval::new(1_000, move || tick.force_update()));
        move || drop(interval)
    });
    let (text, announced) = match &props.status {
        Status::Connecting { attempt: 0 } => ("connecting…".to_owned(), "connecting".to_owned()),
        Status::Connecting { attempt } => (format!("connecting… (attempt {attempt})"), "connecting".to_owned()),
        Status::Open { via } => (via.connected_line(), via.connected_line()),
        // Attempt 0: the server asked for the wait (it drains for a
        // restart); nothing failed.
        Status::Reconnecting { attempt: 0, at_ms } => {
            let seconds = ((at_ms - js_sys::Date::now()) / 1000.0).ceil().max(0.0);
            (format!("server restarting: reconnecting in {seconds} s"), "server restarting, reconnecting".to_owned())
        }
        Status::Reconnecting { attempt, at_ms } => {
            let seconds = ((at_ms - js_sys::Date::now()) / 1000.0).ceil().max(0.0);
            (format!("reconnecting in {seconds} s (attempt {attempt})"), "connection lost, reconnecting".to_owned())
        }
        Status::Offline => ("offline: waiting for the network".to_owned(), "offline".to_owned()),
        Status::Closed { reason } => (format!("closed: {reason}"), format!("closed: {reason}")),
        Status::Refused { reason } => (reason.clone(), reason.clone()),
    };
    let transport = match &props.status {
        Status::Open { via } => Some(via.key()),
        _ => None,
    };
    html! {
        <span class={classes!("status", props.status.key())} data-testid="status" data-status={props.status.key()}
            data-transport={transport}>
            <span class="dot" aria-hidden="true"></span>
            <span aria-hidden="true">{ text }</span>
            <span class="visually-hidden" role="status">{ announced }</span>
        </span>
    }
}
