//! Reconnect storms: join the busy group and close at once, each slot twice
//! a second (the kind's pace), so that an address of 100 slots tries twice
//! the 100 connects a second the server allows it. Even slots join in JSON
//! (every join makes the server read a replay page), odd ones raw.

use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::Duration;

use tokio::time::{timeout, Instant};
use uuid::Uuid;

use super::{json_or_raw, open, Arena};
use crate::client::Join;
use crate::hostile::fate::Fate;

pub async fn life(arena: &Arena, slot: usize, source: IpAddr, opened: &OnceLock<Instant>) -> Fate {
    let mode = json_or_raw(slot);
    let join = Join { group: &arena.busy, client: Uuid::new_v4(), mode, resume: None };
    match open(arena, source, None, &join, opened).await {
        Ok(mut socket) => {
            // A close frame, then gone, without waiting for the answer.
            let _ = timeout(Duration::from_secs(1), socket.close(None)).await;
            Fate::EndedByClient
        }
        Err(fate) => fate,
    }
}
