//! Stalled readers: members of the busy group with a 4 KiB receive buffer
//! that never read. Even slots speak JSON (the replay page of the group's
//! last messages fills their socket before they are even live); odd slots
//! are raw (live messages only, which fill it within seconds). Every 15 s
//! each says it is alive, a JSON `ping` or a ping frame, as a stuck
//! client's heartbeat would: the server must close it for not reading
//! (1013), not for silence. The server reads nothing from a socket whose
//! writes wait, so a heartbeat is still unread when the server drops the
//! socket, which makes the drop a reset the client sees at once.

use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::Duration;

use futures_util::SinkExt;
use roomcast_shared::ClientCommand;
use tokio::time::{interval_at, sleep_until, timeout_at, Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use super::{json_or_raw, open, Arena, RECEIVE_BUFFER};
use crate::client::{Join, Mode};
use crate::hostile::fate::{peer_gone, read_fate, Fate};

/// The server's stall clock starts once the kernel stops taking bytes for
/// the socket, and closes it within the idle timeout (45 s) and a quarter
/// after that. On loopback (a 64 KiB MSS) the kernel's send buffer grows to
/// about 4 MiB at once, which the busy group fills in a minute or two: a
/// stalled reader still open after three minutes was kept.
const HOLD: Duration = Duration::from_secs(180);
const HEARTBEAT: Duration = Duration::from_secs(15);
const LAST_WORDS: Duration = Duration::from_secs(5);

enum Event {
    Gone,
    Beat,
    Held,
}

pub async fn life(arena: &Arena, slot: usize, source: IpAddr, opened: &OnceLock<Instant>) -> Fate {
    let mode = json_or_raw(slot);
    let join = Join { group: &arena.busy, client: Uuid::new_v4(), mode, resume: None };
    let mut socket = match open(arena, source, Some(RECEIVE_BUFFER), &join, opened).await {
        Ok(socket) => socket,
        Err(fate) => return fate,
    };
    let heartbeat = match mode {
        Mode::Json => Message::text(ClientCommand::Ping.encode()),
        Mode::Raw => Message::Ping(Default::default()),
    };
    let deadline = Instant::now() + HOLD;
    let mut beats = interval_at(Instant::now() + HEARTBEAT, HEARTBEAT);
    beats.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        let event = tokio::select! {
            () = peer_gone(socket.get_ref()) => Event::Gone,
            _ = beats.tick() => Event::Beat,
            () = sleep_until(deadline) => Event::Held,
        };
        match event {
            Event::Gone => {
                return read_fate(&mut socket, LAST_WORDS)
                    .await
                    .unwrap_or_else(|| Fate::Other("hung up, yet frames kept coming".into()))
            }
            Event::Held => return read_fate(&mut socket, LAST_WORDS).await.unwrap_or(Fate::KeptPastHold),
            Event::Beat => {
                if let Ok(Err(err)) = timeout_at(deadline, socket.send(heartbeat.clone())).await {
                    return read_fate(&mut socket, LAST_WORDS).await.unwrap_or_else(|| Fate::of_write(err));
                }
            }
        }
    }
}
