//! `use_admin`: the admin page's state and the operator's actions; while a
//! key is given, the overview and the active bans are polled every
//! [`POLL_EVERY_MS`].

use std::cell::Cell;
use std::rc::Rc;

use gloo_timers::callback::Interval;
use uuid::Uuid;
use yew::prelude::*;

use crate::admin::forms::{BanRequest, DisconnectRequest};
use crate::admin::{AdminAction, AdminKey, AdminState};
use crate::net::admin::AdminApi;
use crate::storage;

/// How often the overview is asked for.
pub const POLL_EVERY_MS: u32 = 2_000;

/// What the admin page gets.
#[derive(Clone, PartialEq)]
pub struct AdminHandle {
    pub state: UseReducerHandle<AdminState>,
    /// The operator gave a key: kept for this tab, and used from now on.
    pub open: Callback<AdminKey>,
    pub forget: Callback<()>,
    pub look_up: Callback<Uuid>,
    pub disconnect: Callback<(Uuid, DisconnectRequest)>,
    pub ban: Callback<BanRequest>,
    pub lift: Callback<Uuid>,
}

#[hook]
pub fn use_admin() -> AdminHandle {
    let state = use_reducer(|| AdminState::new(storage::admin_key()));
    let dispatcher = state.dispatcher();
    {
        let dispatcher = dispatcher.clone();
        use_effect_with(state.key.clone(), move |key| {
            let polling = key.clone().map(|key| {
                let (api, busy) = (AdminApi::new(key, dispatcher), Rc::new(Cell::new(false)));
                api.poll(&busy);
                Interval::new(POLL_EVERY_MS, move || api.poll(&busy))
            });
            move || drop(polling)
        });
    }
    let open = use_callback(dispatcher.clone(), |key: AdminKey, dispatcher| {
        storage::remember_admin_key(&key);
        dispatcher.dispatch(AdminAction::Open(key));
    });
    let forget = use_callback((state.key.clone(), dispatcher.clone()), |(), (key, dispatcher)| {
        if let Some(key) = key {
            storage::forget_admin_key(key);
        }
        dispatcher.dispatch(AdminAction::Forget);
    });
    let api = (state.key.clone(), dispatcher);
    let look_up = use_callback(api.clone(), |sub, api| with_api(api, |api| api.look_up(sub)));
    let disconnect = use_callback(api.clone(), |(sub, request), api| with_api(api, |api| api.disconnect(sub, request)));
    let ban = use_callback(api.clone(), |request, api| with_api(api, |api| api.ban(request)));
    let lift = use_callback(api, |id, api| with_api(api, |api| api.lift(id)));
    AdminHandle { state, open, forget, look_up, disconnect, ban, lift }
}

/// Runs `act` on the API with the key in use, if there is one.
fn with_api((key, dispatcher): &(Option<AdminKey>, UseReducerDispatcher<AdminState>), act: impl FnOnce(AdminApi)) {
    if let Some(key) = key {
        act(AdminApi::new(key.clone(), dispatcher.clone()));
    }
}
