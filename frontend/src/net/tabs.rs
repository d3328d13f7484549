//! Browser glue for [`session::tabs`](crate::session::tabs): this tab's Web
//! Lock on its outbox, and watching the room's other outboxes so that the
//! unsent messages of a tab that went away are adopted (sent by this tab;
//! exactly once, thanks to their ids). Also [`hold`], for work that one tab
//! at a time does for all (renewing the identity).

use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;

use futures_channel::{mpsc::UnboundedSender, oneshot};
use futures_util::future::{select, Either};
use gloo_events::EventListener;
use gloo_timers::callback::Interval;
use gloo_timers::future::TimeoutFuture;
use roomcast_shared::GroupName;
use uuid::Uuid;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{spawn_local, JsFuture};

use crate::net::command::Command;
use crate::session::tabs::{self, AfterGrace, Owner};
use crate::storage;

#[wasm_bindgen]
extern "C" {
    /// `navigator.locks` (web-sys has it only behind an unstable flag).
    type LockManager;

    #[wasm_bindgen(method, js_name = request)]
    fn request(this: &LockManager, name: &str, options: &JsValue, callback: &js_sys::Function) -> js_sys::Promise;

    #[wasm_bindgen(method)]
    fn query(this: &LockManager) -> js_sys::Promise;
}

/// Whether anyone holds the lock `name` now.
async fn is_held(locks: &LockManager, name: &str) -> bool {
    let Ok(snapshot) = JsFuture::from(locks.query()).await else { return false };
    let held = js_sys::Reflect::get(&snapshot, &JsValue::from_str("held")).unwrap_or(JsValue::UNDEFINED);
    let held: js_sys::Array = held.dyn_into().unwrap_or_default();
    held.iter().any(|info| {
        js_sys::Reflect::get(&info, &JsValue::from_str("name")).ok().and_then(|value| value.as_string()).as_deref()
            == Some(name)
    })
}

/// `navigator.locks`, where the browser has it (secure contexts only).
fn lock_manager() -> Option<LockManager> {
    let navigator = web_sys::window()?.navigator();
    let locks = js_sys::Reflect::get(&navigator, &JsValue::from_str("locks")).ok()?;
    (!locks.is_undefined() && !locks.is_null()).then(|| locks.unchecked_into())
}

type LockCallback = Closure<dyn FnMut(JsValue) -> JsValue>;

/// A Web Lock this tab holds until the value is dropped.
pub struct HeldLock {
    release: js_sys::Function,
    _callback: LockCallback,
}

impl Drop for HeldLock {
    fn drop(&mut self) {
        let _ = self.release.call0(&JsValue::NULL);
    }
}

/// Settles a lock request's promise in the background, so that its end
/// (or its rejection when aborted) is never an unhandled rejection.
fn detach(promise: js_sys::Promise) {
    spawn_local(async move {
        let _ = JsFuture::from(promise).await;
    });
}

fn options(pairs: &[(&str, &JsValue)]) -> JsValue {
    let options = js_sys::Object::new();
    for (name, value) in pairs {
        let _ = js_sys::Reflect::set(&options, &JsValue::from_str(name), value);
    }
    options.into()
}

/// A lock request, until the browser answers it.
struct Requested {
    release: js_sys::Function,
    /// The browser calls it once it grants the lock, even when nobody waits
    /// any more (the request stays queued): a request dropped unanswered
    /// leaves it behind, one small closure per abandoned wait.
    callback: Option<LockCallback>,
}

impl Requested {
    /// The lock, once the browser answered `granted`.
    fn held(mut self, granted: bool) -> Option<HeldLock> {
        let callback = self.callback.take()?;
        granted.then(|| HeldLock { release: self.release.clone(), _callback: callback })
    }
}

impl Drop for Requested {
    fn drop(&mut self) {
        if let Some(callback) = self.callback.take() {
            callback.forget();
        }
    }
}

/// Asks for the lock `name` with `options`; the receiver says whether the
/// browser granted it. A grant that comes once nobody waits for it (the
/// receiver is gone) is let go at once.
fn request(locks: &LockManager, name: &str, options: &JsValue) -> (Requested, oneshot::Receiver<bool>) {
    let mut release = None;
    let held = js_sys::Promise::new(&mut |resolve, _| release = Some(resolve));
    let (granted_tx, granted_rx) = oneshot::channel();
    let mut granted_tx = Some(granted_tx);
    let callback = LockCallback::new(move |lock: JsValue| {
        let granted = !lock.is_null();
        let wanted = granted_tx.take().is_some_and(|tx| tx.send(granted).is_ok());
        // Returning a pending promise keeps the lock until it resolves.
        if granted && wanted {
            held.clone().into()
        } else {
            JsValue::UNDEFINED
        }
    });
    detach(locks.request(name, options, callback.as_ref().unchecked_ref()));
    (Requested { release: release.expect("the executor runs at once"), callback: Some(callback) }, granted_rx)
}

/// Takes the lock `name` if it is free; `None` if another tab holds it.
async fn try_hold(locks: &LockManager, name: &str) -> Option<HeldLock> {
    let (requested, granted) = request(locks, name, &options(&[("ifAvailable", &JsValue::TRUE)]));
    requested.held(granted.await.unwrap_or(false))
}

/// Waits for the lock `name` and holds it until the value is dropped: one
/// tab at a time does what it guards. `None` where the browser has no Web
/// Locks, or when `patience_ms` went by first (a tab that holds it for that
/// long is stuck): the caller goes on without it.
pub async fn hold(name: &str, patience_ms: u32) -> Option<HeldLock> {
    let locks = lock_manager()?;
    let (requested, granted) = request(&locks, name, &options(&[]));
    match select(granted, TimeoutFuture::new(patience_ms)).await {
        Either::Left((granted, _)) => requested.held(granted.unwrap_or(false)),
        Either::Right(_) => None,
    }
}

/// Waits for the lock `name`, however long, and holds it until the value
/// is dropped; `None` at once where the browser has no Web Locks.
pub async fn wait_to_hold(name: &str) -> Option<HeldLock> {
    let locks = lock_manager()?;
    let (requested, granted) = request(&locks, name, &options(&[]));
    requested.held(granted.await.unwrap_or(false))
}

/// This tab's claim on its outbox for a room.
pub struct Claim {
    pub tab: Uuid,
    _lock: Option<HeldLock>,
}

/// Claims this tab's outbox for `group`: its lock, where the browser has
/// Web Locks. A duplicated tab finds its original's id taken and takes a
/// new one.
pub async fn claim(group: &GroupName) -> Claim {
    let mut tab = storage::tab_id();
    let Some(locks) = lock_manager() else { return Claim { tab, _lock: None } };
    loop {
        if let Some(lock) = try_hold(&locks, &tabs::outbox_key(group, Owner::Tab(tab))).await {
            return Claim { tab, _lock: Some(lock) };
        }
        tab = storage::new_tab_id();
    }
}

/// Watches the room's other outboxes while alive; sends
/// [`Command::Adopt`] for each whose tab is gone.
pub struct Watcher {
    _storage_events: Option<EventListener>,
    _interval: Option<Interval>,
    shared: Rc<RefCell<Watching>>,
}

struct Watching {
    group: GroupName,
    tab: Uuid,
    commands: UnboundedSender<Command>,
    /// Owners whose lock this tab waits for.
    waiting: HashSet<Owner>,
    callbacks: Vec<LockCallback>,
    abort: Option<web_sys::AbortController>,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        // Pending lock requests would outlive the room view otherwise.
        if let Some(abort) = self.shared.borrow_mut().abort.take() {
            abort.abort();
        }
    }
}

/// Starts watching `group`'s outboxes other than `tab`'s.
pub fn watch(group: GroupName, tab: Uuid, commands: UnboundedSender<Command>) -> Watcher {
    let locks = lock_manager();
    let shared = Rc::new(RefCell::new(Watching {
        group,
        tab,
        commands,
        waiting: HashSet::new(),
        callbacks: Vec::new(),
        abort: web_sys::AbortController::new().ok(),
    }));
    let window = web_sys::window();
    match locks {
        Some(locks) => {
            let locks = Rc::new(locks);
            scan_with_locks(&shared, &locks);
            // Another tab queued a message after this one started.
            let storage_events = window.map(|window| {
                let (shared, locks) = (shared.clone(), locks.clone());
                EventListener::new(&window, "storage", move |_| scan_with_locks(&shared, &locks))
            });
            Watcher { _storage_events: storage_events, _interval: None, shared }
        }
        None => {
            scan_by_age(&shared);
            let interval = {
                let shared = shared.clone();
                Interval::new(tabs::REFRESH_EVERY_MS as u32, move || {
                    let _ = shared.borrow().commands.unbounded_send(Command::Refresh);
                    scan_by_age(&shared);
                })
            };
            Watcher { _storage_events: None, _interval: Some(interval), shared }
        }
    }
}

/// For every outbox not yet watched: wait for its tab's lock, which the
/// browser grants once that tab's room view is gone.
fn scan_with_locks(shared: &Rc<RefCell<Watching>>, locks: &Rc<LockManager>) {
    let (group, tab) = {
        let watching = shared.borrow();
        (watching.group.clone(), watching.tab)
    };
    for owner in storage::other_outboxes(&group, tab) {
        let mut watching = shared.borrow_mut();
        if !watching.waiting.insert(owner) {
            continue;
        }
        let name = tabs::outbox_key(&group, owner);
        let callback = {
            let (shared, locks, name) = (Rc::downgrade(shared), locks.clone(), name.clone());
            // Granted: its tab let go. Release at once (a reloading tab takes
            // it back), and adopt only if it is still free after the grace.
            LockCallback::new(move |_lock: JsValue| {
                let (shared, locks, name) = (shared.clone(), locks.clone(), name.clone());
                spawn_local(async move {
                    TimeoutFuture::new(tabs::RELOAD_GRACE_MS as u32).await;
                    let after = tabs::after_grace(is_held(&locks, &name).await);
                    let Some(shared) = shared.upgrade() else { return };
                    shared.borrow_mut().waiting.remove(&owner);
                    match after {
                        AfterGrace::WatchAgain => scan_with_locks(&shared, &locks),
                        AfterGrace::Adopt => adopt(&shared.borrow(), owner),
                    }
                });
                JsValue::UNDEFINED
            })
        };
        let signal = watching.abort.as_ref().map(|abort| JsValue::from(abort.signal())).unwrap_or(JsValue::UNDEFINED);
        detach(locks.request(&name, &options(&[("signal", &signal)]), callback.as_ref().unchecked_ref()));
        watching.callbacks.push(callback);
    }
}

/// Without Web Locks: adopt what has not been refreshed for a while.
fn scan_by_age(shared: &Rc<RefCell<Watching>>) {
    let watching = shared.borrow();
    let now = js_sys::Date::now();
    for owner in storage::other_outboxes(&watching.group, watching.tab) {
        if storage::read_outbox(&watching.group, owner).is_some_and(|outbox| tabs::is_stale(&outbox, now)) {
            adopt(&watching, owner);
        }
    }
}

fn adopt(watching: &Watching, owner: Owner) {
    if let Some(outbox) = storage::read_outbox(&watching.group, owner) {
        let _ = watching.commands.unbounded_send(Command::Adopt { owner, items: outbox.items });
    }
}
