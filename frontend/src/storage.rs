//! What the browser remembers between visits: the client id (one per
//! browser, shared by its tabs) and the display name.

use gloo_storage::{LocalStorage, Storage};
use roomcast_shared::{ClientId, DisplayName, GroupName, MessageId};
use uuid::Uuid;

const CLIENT_ID_KEY: &str = "roomcast.client_id";
const NAME_KEY: &str = "roomcast.name";

/// This browser's client id, created and stored on first use.
pub fn client_id() -> ClientId {
    if let Some(id) = LocalStorage::get::<String>(CLIENT_ID_KEY)
        .ok()
        .and_then(|stored| stored.parse().ok())
    {
        return id;
    }
    let id = ClientId(Uuid::new_v4());
    // Without storage (private mode, quota) the id lives for this page only.
    let _ = LocalStorage::set(CLIENT_ID_KEY, id.to_string());
    id
}

/// The remembered display name, if any.
pub fn display_name() -> Option<DisplayName> {
    LocalStorage::get::<String>(NAME_KEY).ok()?.parse().ok()
}

pub fn remember_display_name(name: &DisplayName) {
    let _ = LocalStorage::set(NAME_KEY, name.as_str());
}

fn outbox_key(group: &GroupName) -> String {
    format!("roomcast.outbox.{group}")
}

/// Messages of `group` not yet acknowledged when the page last ran.
pub fn load_outbox(group: &GroupName) -> Vec<(MessageId, String)> {
    LocalStorage::get(outbox_key(group)).unwrap_or_default()
}

pub fn save_outbox(group: &GroupName, saved: &[(MessageId, String)]) {
    if saved.is_empty() {
        LocalStorage::delete(outbox_key(group));
    } else {
        let _ = LocalStorage::set(outbox_key(group), saved);
    }
}
