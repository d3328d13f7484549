//! What the app's native tests share.

use roomcast_shared::{ChatMessage, ClientId, MessageId, Sender};
use uuid::Uuid;

/// Message `seq` of group `g`, its id derived from the number, its text
/// `m{seq}`.
pub fn message(seq: u64) -> ChatMessage {
    ChatMessage {
        group: "g".parse().unwrap(),
        seq,
        id: MessageId(Uuid::from_u128(u128::from(seq))),
        from: Sender { client_id: ClientId(Uuid::nil()), name: None, verified: true },
        text: format!("m{seq}"),
        ts: 0,
    }
}
