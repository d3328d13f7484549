//! What the browser remembers: its identity (one per browser, shared by its
//! tabs, with when its token expires and when it was got), the display
//! name, the server's last message size limit, this tab's id (per tab, kept
//! across reloads), each tab's outbox per room, and on the admin page, the
//! admin key (per tab, gone with it).
//!
//! Storage may be missing or full (private modes, quotas): then each value
//! lives for the page only, and nothing fails.

use gloo_storage::{LocalStorage, SessionStorage, Storage};
use roomcast_shared::{DisplayName, GroupName, MessageId};
use uuid::Uuid;

use crate::admin::AdminKey;
use crate::session::tabs::{self, Owner, TabOutbox};
use crate::session::{Identity, InUse, Saved, TransportConfig};

const IDENTITY_KEY: &str = "roomcast.identity";
/// Where earlier versions kept a client id of their own making, with no
/// token: replaced by an identity from the server.
const OLD_CLIENT_ID_KEY: &str = "roomcast.client_id";
const NAME_KEY: &str = "roomcast.name";
const LIMIT_KEY: &str = "roomcast.max_message_bytes";
const TAB_KEY: &str = "roomcast.tab";
const ADMIN_KEY: &str = "roomcast.admin-key";
/// The transport fallback's numbers, shortened by the browser tests.
const TRANSPORT_KEY: &str = "roomcast.transport";
/// The HTTP transport in use, when WebSocket does not get through.
const TRANSPORT_IN_USE_KEY: &str = "roomcast.transport-in-use";

/// The admin key this tab was given. Only ever in `sessionStorage`: it
/// opens the whole cluster, so it goes with the tab, and no other page or
/// later visit finds it.
pub fn admin_key() -> Option<AdminKey> {
    AdminKey::new(&SessionStorage::get::<String>(ADMIN_KEY).ok()?)
}

pub fn remember_admin_key(key: &AdminKey) {
    let _ = SessionStorage::set(ADMIN_KEY, key.as_str());
}

/// Forgets `key` (the operator asked, or the server refused it), unless
/// another has been given since.
pub fn forget_admin_key(key: &AdminKey) {
    if admin_key().as_ref() == Some(key) {
        SessionStorage::delete(ADMIN_KEY);
    }
}

/// This browser's identity, if it has one. One stored by an earlier version
/// reads with no `expires_at` nor `obtained_at`.
pub fn identity() -> Option<Identity> {
    LocalStorage::get(IDENTITY_KEY).ok()
}

/// Keeps `identity` (new, or renewed) for this browser's tabs: each takes it
/// at its next (re)connect.
pub fn remember_identity(identity: &Identity) {
    LocalStorage::delete(OLD_CLIENT_ID_KEY);
    let _ = LocalStorage::set(IDENTITY_KEY, identity);
}

/// Forgets `identity` (the server refuses it), unless another tab has
/// already replaced it.
pub fn forget_identity(identity: &Identity) {
    if self::identity().as_ref() == Some(identity) {
        LocalStorage::delete(IDENTITY_KEY);
    }
}

/// The remembered display name, if any.
pub fn display_name() -> Option<DisplayName> {
    LocalStorage::get::<String>(NAME_KEY).ok()?.parse().ok()
}

pub fn remember_display_name(name: &DisplayName) {
    let _ = LocalStorage::set(NAME_KEY, name.as_str());
}

/// The transport fallback's numbers: the production ones, unless a test
/// stored shorter ones.
pub fn transport_config() -> TransportConfig {
    LocalStorage::get(TRANSPORT_KEY).unwrap_or_default()
}

/// The HTTP transport this browser's connections last used, if they are
/// not on WebSocket.
pub fn transport_in_use() -> Option<InUse> {
    LocalStorage::get(TRANSPORT_IN_USE_KEY).ok()
}

/// Remembers the transport in use (nothing: WebSocket).
pub fn remember_transport(in_use: Option<InUse>) {
    match in_use {
        Some(in_use) => drop(LocalStorage::set(TRANSPORT_IN_USE_KEY, in_use)),
        None => LocalStorage::delete(TRANSPORT_IN_USE_KEY),
    }
}

/// The message size limit the server last told (`welcome`).
pub fn max_message_bytes() -> Option<usize> {
    LocalStorage::get(LIMIT_KEY).ok()
}

pub fn remember_max_message_bytes(limit: usize) {
    let _ = LocalStorage::set(LIMIT_KEY, limit);
}

/// This tab's id: kept in `sessionStorage`, so a reload keeps it and
/// another tab has its own.
pub fn tab_id() -> Uuid {
    SessionStorage::get::<String>(TAB_KEY).ok().and_then(|stored| stored.parse().ok()).unwrap_or_else(new_tab_id)
}

/// A new id for this tab (a duplicated tab copies its original's
/// `sessionStorage`, and must not share its outbox).
pub fn new_tab_id() -> Uuid {
    let tab = Uuid::new_v4();
    let _ = SessionStorage::set(TAB_KEY, tab.to_string());
    tab
}

/// `owner`'s outbox for `group`, if there is one.
pub fn read_outbox(group: &GroupName, owner: Owner) -> Option<TabOutbox> {
    let key = tabs::outbox_key(group, owner);
    match owner {
        Owner::Tab(_) => LocalStorage::get(key).ok(),
        // Earlier versions kept `[[id, text], …]` per room.
        Owner::Shared => {
            let items: Vec<(MessageId, String)> = LocalStorage::get(key).ok()?;
            let items = items.into_iter().map(|(id, text)| Saved { id, text, failed: None }).collect();
            Some(TabOutbox { seen_ms: 0.0, items })
        }
    }
}

/// Keeps `tab`'s outbox for `group`, stamped `now_ms`; an empty one is
/// removed.
pub fn save_outbox(group: &GroupName, tab: Uuid, items: Vec<Saved>, now_ms: f64) {
    let key = tabs::outbox_key(group, Owner::Tab(tab));
    if items.is_empty() {
        LocalStorage::delete(key);
    } else {
        let _ = LocalStorage::set(key, TabOutbox { seen_ms: now_ms, items });
    }
}

pub fn remove_outbox(group: &GroupName, owner: Owner) {
    LocalStorage::delete(tabs::outbox_key(group, owner));
}

/// The owners of every outbox for `group` in storage, this tab's excepted.
pub fn other_outboxes(group: &GroupName, tab: Uuid) -> Vec<Owner> {
    let Ok(storage) = web_sys::window().ok_or(()).and_then(|w| w.local_storage().ok().flatten().ok_or(())) else {
        return Vec::new();
    };
    let count = storage.length().unwrap_or(0);
    (0..count)
        .filter_map(|index| storage.key(index).ok().flatten())
        .filter_map(|key| tabs::owner_of(&key, group))
        .filter(|owner| *owner != Owner::Tab(tab))
        .collect()
}
