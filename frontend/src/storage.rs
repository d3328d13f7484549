//! What the browser remembers between visits: the client id (one per
//! browser, shared by its tabs) and the display name.

use gloo_storage::{LocalStorage, Storage};
use roomcast_shared::{ClientId, DisplayName};
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
