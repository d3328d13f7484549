//! Floods, in groups of their own (ten per address, so that what gets past
//! the limits reaches ten or so flooders, not the members): by slot, JSON
//! sends at 100 a second (twice an identity's rate; refused with
//! `rate_limited`); 48 KiB sends 4 times a second (past the byte rate), every
//! 40th one 70 KiB (past the message limit: 1009); raw texts and binary
//! frames at 200 a second (past the rate, which closes a raw client: 1008);
//! junk at 100 a second (not JSON, unknown commands, binary frames in JSON
//! mode: `error` events). Each reads what comes back and ends itself after
//! its hold, unless the server ended it first.

use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use roomcast_shared::{ClientCommand, MessageId, ServerEvent};
use tokio::time::{sleep_until, timeout, Instant};
use tokio_tungstenite::tungstenite::{self, Message};
use uuid::Uuid;

use super::{open, ticker, Arena};
use crate::client::{Join, Mode, Socket};
use crate::hostile::fate::{read_error, Fate};
use crate::hostile::outcomes::Outcomes;

const HOLD: Duration = Duration::from_secs(30);
const LAST_WORDS: Duration = Duration::from_secs(5);
/// Groups per address the flooders share.
const GROUPS: usize = 10;

#[derive(Debug, Clone, Copy)]
pub enum Flood {
    Sends,
    Large,
    Raw,
    Junk,
}

impl Flood {
    pub fn of(slot: usize) -> Self {
        [Self::Sends, Self::Large, Self::Raw, Self::Junk][slot % 4]
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Sends => "JSON sends at 100/s",
            Self::Large => "48 KiB sends at 4/s, every 40th 70 KiB",
            Self::Raw => "raw texts and binary frames at 200/s",
            Self::Junk => "junk at 100/s",
        }
    }

    fn mode(self) -> Mode {
        match self {
            Self::Raw => Mode::Raw,
            _ => Mode::Json,
        }
    }

    fn interval(self) -> Duration {
        Duration::from_millis(match self {
            Self::Sends | Self::Junk => 10,
            Self::Large => 250,
            Self::Raw => 5,
        })
    }

    /// The `n`th frame.
    fn frame(self, n: u64) -> Message {
        let send = |bytes: usize| {
            let text = "f".repeat(bytes);
            Message::text(ClientCommand::Send { id: MessageId(Uuid::new_v4()), text }.encode())
        };
        match (self, n % 40) {
            (Self::Sends, _) => send(200),
            (Self::Large, 39) => send(70 * 1024),
            (Self::Large, _) => send(48 * 1024),
            (Self::Raw, n) if n % 2 == 0 => Message::text("r".repeat(300)),
            (Self::Raw, _) => Message::binary(vec![0u8; 300]),
            (Self::Junk, n) => match n % 3 {
                0 => Message::text("not json"),
                1 => Message::text(r#"{"type":"subscribe","group":"everything"}"#),
                _ => Message::binary(vec![1u8, 2, 3]),
            },
        }
    }
}

pub async fn life(arena: &Arena, slot: usize, source: IpAddr, opened: &OnceLock<Instant>, outcomes: &Outcomes) -> Fate {
    let flood = Flood::of(slot);
    let octet = match source {
        IpAddr::V4(v4) => v4.octets()[3],
        IpAddr::V6(_) => 0,
    };
    let group = format!("{}-f{octet}-{}", arena.busy, slot % GROUPS);
    let join = Join { group: &group, client: Uuid::new_v4(), mode: flood.mode(), resume: None };
    let socket = match open(arena, source, None, &join, opened).await {
        Ok(socket) => socket,
        Err(fate) => return fate,
    };
    let (sink, mut stream) = socket.split();
    let replies = read_replies(&mut stream, outcomes);
    tokio::pin!(replies);
    tokio::select! {
        fate = &mut replies => fate,
        err = write(sink, flood) => {
            timeout(LAST_WORDS, &mut replies).await.unwrap_or_else(|_| Fate::of_write(err))
        }
        () = sleep_until(Instant::now() + HOLD) => Fate::EndedByClient,
    }
}

/// Sends the flood until a write fails.
async fn write(mut sink: SplitSink<Socket, Message>, flood: Flood) -> tungstenite::Error {
    let mut ticker = ticker(flood.interval());
    let mut n = 0;
    loop {
        ticker.tick().await;
        if let Err(err) = sink.send(flood.frame(n)).await {
            return err;
        }
        n += 1;
    }
}

/// Reads until the server ends the socket, noting its replies (acks and
/// errors; the flood's own messages coming back are skipped).
async fn read_replies(stream: &mut SplitStream<Socket>, outcomes: &Outcomes) -> Fate {
    loop {
        match stream.next().await {
            None => return Fate::Eof,
            Some(Ok(Message::Close(frame))) => return Fate::Closed(frame.map_or(1005, |frame| frame.code.into())),
            Some(Ok(Message::Text(text))) if text.len() < 1024 && !text.starts_with(r#"{"type":"message""#) => {
                match ServerEvent::decode(&text) {
                    Ok(ServerEvent::Ack { .. }) => outcomes.note("ack"),
                    Ok(ServerEvent::Error { code, .. }) => outcomes.note(format!("error {code:?}")),
                    _ => {}
                }
            }
            Some(Ok(_)) => {}
            Some(Err(err)) => return read_error(err),
        }
    }
}
