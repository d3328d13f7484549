//! Who has read a small group how far: what the `seen` event carries (see
//! [`ServerEvent::Seen`](crate::ServerEvent::Seen)), from which an app
//! shows "Seen by Alice, Bob" under its user's latest message.

use serde::{Deserialize, Serialize};

use crate::names::ClientId;

/// One identity's read cursor in the group: it has read up to `seq` of
/// the event's epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reader {
    pub client_id: ClientId,
    pub seq: u64,
}
