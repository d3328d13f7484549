//! The admin API (`/admin/api/…`, on the page's own origin: the server's
//! admin address), for the admin page. Every request carries the key; each
//! answer becomes an [`AdminAction`], as [`admin::answer`](crate::admin::answer)
//! reads it. A refused key is forgotten here.

use std::cell::Cell;
use std::rc::Rc;

use gloo_net::http::{Method, RequestBuilder};
use serde::de::DeserializeOwned;
use serde::Serialize;
use uuid::Uuid;
use yew::UseReducerDispatcher;

use crate::admin::answer::{read, read_empty};
use crate::admin::forms::{BanRequest, DisconnectRequest};
use crate::admin::wire::{BanList, BanRecord, Disconnected, IdentityReport, Overview};
use crate::admin::{AdminAction, AdminKey, AdminState, Problem};
use crate::net::timeout::within;
use crate::storage;

/// How long a request may take before it counts as failed.
const ANSWER_WITHIN_MS: u32 = 10_000;

/// The admin API with one key, answering into the page's state.
#[derive(Clone)]
pub struct AdminApi {
    key: AdminKey,
    dispatch: UseReducerDispatcher<AdminState>,
}

impl AdminApi {
    pub fn new(key: AdminKey, dispatch: UseReducerDispatcher<AdminState>) -> Self {
        Self { key, dispatch }
    }

    /// The overview and the active bans, unless the last poll is still
    /// under way (`busy`): a slow server gets no pile of requests, and an
    /// old answer never lands after a newer one.
    pub fn poll(&self, busy: &Rc<Cell<bool>>) {
        if busy.replace(true) {
            return;
        }
        let (api, busy) = (self.clone(), busy.clone());
        wasm_bindgen_futures::spawn_local(async move {
            let overview = api.call::<Overview>(Method::GET, "overview", None::<()>).await;
            api.settle(overview, AdminAction::Overview, AdminAction::PollFailed);
            let bans = api.call::<BanList>(Method::GET, "bans", None::<()>).await;
            api.settle(bans, |list| AdminAction::Bans(list.bans), AdminAction::PollFailed);
            busy.set(false);
        });
    }

    /// An identity's live connections and bans.
    pub fn look_up(&self, sub: Uuid) {
        let api = self.clone();
        wasm_bindgen_futures::spawn_local(async move { api.report(sub).await });
    }

    /// Closes every connection of `sub`, then looks it up again.
    pub fn disconnect(&self, sub: Uuid, request: DisconnectRequest) {
        let api = self.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let path = format!("identities/{sub}/disconnect");
            let done = api.call::<Disconnected>(Method::POST, &path, Some(request)).await;
            api.settle(done, AdminAction::Disconnected, AdminAction::Failed);
            api.report(sub).await;
        });
    }

    pub fn ban(&self, request: BanRequest) {
        let api = self.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let ban = api.call::<BanRecord>(Method::POST, "bans", Some(request)).await;
            api.settle(ban, AdminAction::Banned, AdminAction::Failed);
        });
    }

    pub fn lift(&self, id: Uuid) {
        let api = self.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let lifted = api.send(Method::DELETE, &format!("bans/{id}"), None::<()>).await;
            let lifted = lifted.and_then(|(status, body)| read_empty(status, &body));
            api.settle(lifted, |()| AdminAction::Lifted(id), AdminAction::Failed);
        });
    }

    async fn report(&self, sub: Uuid) {
        let report = self.call::<IdentityReport>(Method::GET, &format!("identities/{sub}"), None::<()>).await;
        self.settle(report, AdminAction::Report, AdminAction::Failed);
    }

    /// `method` on `/admin/api/{path}` with `body` as JSON, its answer read.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<impl Serialize>,
    ) -> Result<T, Problem> {
        let (status, text) = self.send(method, path, body).await?;
        read(status, &text)
    }

    /// `method` on `/admin/api/{path}` with `body` as JSON: the answer's
    /// status and body.
    async fn send(&self, method: Method, path: &str, body: Option<impl Serialize>) -> Result<(u16, String), Problem> {
        let request = RequestBuilder::new(&format!("/admin/api/{path}"))
            .method(method)
            .header("Authorization", &self.key.bearer());
        let request = match body {
            Some(body) => request.json(&body),
            None => request.build(),
        };
        // A server that never answers would hold the poll forever.
        let answer = within(ANSWER_WITHIN_MS, async {
            let response = request?.send().await?;
            Ok::<_, gloo_net::Error>((response.status(), response.text().await?))
        });
        match answer.await {
            Some(answer) => answer.map_err(Problem::unreachable),
            None => Err(Problem::unreachable(format_args!("no answer within {} s", ANSWER_WITHIN_MS / 1_000))),
        }
    }

    /// Hands an answer to the page: `done` with what it brought, `failed`
    /// with the server's reason; a refused key is forgotten.
    fn settle<T>(
        &self,
        answer: Result<T, Problem>,
        done: impl FnOnce(T) -> AdminAction,
        failed: fn(String) -> AdminAction,
    ) {
        let action = match answer {
            Ok(value) => done(value),
            Err(Problem::WrongKey) => {
                storage::forget_admin_key(&self.key);
                AdminAction::Refused(self.key.clone())
            }
            Err(Problem::Failed(problem)) => failed(problem),
        };
        self.dispatch.dispatch(action);
    }
}
