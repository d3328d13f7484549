//! Group spam: each slot opens a room nobody opened before, every 2 s (the
//! kind's pace), and writes one message in it, which makes it a stored
//! group. A fresh identity each time, as a spammer would: only the
//! address's allowance (100 new rooms an hour) can stop it, with 429.

use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use roomcast_shared::{ClientCommand, MessageId, ServerEvent};
use tokio::time::{timeout, Instant};
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use super::{open, Arena};
use crate::client::{Join, Mode};
use crate::hostile::fate::Fate;
use crate::hostile::outcomes::Outcomes;

const REPLY_WITHIN: Duration = Duration::from_secs(5);

pub async fn life(arena: &Arena, source: IpAddr, opened: &OnceLock<Instant>, outcomes: &Outcomes) -> Fate {
    let group = format!("spam-{}", Uuid::new_v4().simple());
    let join = Join { group: &group, client: Uuid::new_v4(), mode: Mode::Json, resume: None };
    let mut socket = match open(arena, source, None, &join, opened).await {
        Ok(socket) => socket,
        Err(fate) => return fate,
    };
    outcomes.note("rooms opened");
    let send = ClientCommand::Send { id: MessageId(Uuid::new_v4()), text: "spam".into() };
    if let Err(err) = socket.send(Message::text(send.encode())).await {
        return Fate::of_write(err);
    }
    let reply = timeout(REPLY_WITHIN, async {
        while let Some(Ok(frame)) = socket.next().await {
            match frame {
                Message::Text(text) => match ServerEvent::decode(&text) {
                    Ok(ServerEvent::Ack { .. }) => return Ok("message stored".to_owned()),
                    Ok(ServerEvent::Error { code, .. }) => return Ok(format!("message refused: {code:?}")),
                    _ => {}
                },
                Message::Close(frame) => return Err(Fate::Closed(frame.map_or(1005, |frame| frame.code.into()))),
                _ => {}
            }
        }
        Err(Fate::Eof)
    })
    .await;
    match reply {
        Ok(Ok(reply)) => outcomes.note(reply),
        Ok(Err(fate)) => return fate,
        Err(_) => outcomes.note("no reply to its message"),
    }
    let _ = timeout(Duration::from_secs(1), socket.close(None)).await;
    Fate::EndedByClient
}
