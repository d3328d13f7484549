//! Slowloris: a WebSocket request head for the busy group, sent a byte
//! every 500 ms and never finished. The server must close the socket at its
//! handshake timeout (10 s from accept by default), however long bytes
//! keep coming.

use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{sleep_until, Instant};
use uuid::Uuid;

use super::{http_status, ticker, Arena};
use crate::client::{tcp, token};
use crate::hostile::fate::Fate;

const DRIBBLE: Duration = Duration::from_millis(500);
/// Three times the default handshake timeout: a socket still open then was
/// kept.
const HOLD: Duration = Duration::from_secs(30);

pub async fn life(arena: &Arena, source: IpAddr, opened: &OnceLock<Instant>) -> Fate {
    let mut stream = match tcp(arena.server, source, None).await {
        Ok(stream) => stream,
        Err(err) => return Fate::ConnectFailed(err.kind()),
    };
    let _ = opened.set(Instant::now());
    let client = Uuid::new_v4();
    let head = format!(
        "GET /ws/{}/{client}?token={} HTTP/1.1\r\nHost: {}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
        arena.busy,
        token(client).unwrap_or_default(),
        arena.server
    );
    // Header lines without end: the head is never complete.
    let mut bytes = head.into_bytes().into_iter().chain(b"X-Slow: 1\r\n".iter().copied().cycle());
    let (mut reader, mut writer) = stream.split();
    let mut dribble = ticker(DRIBBLE);
    let deadline = Instant::now() + HOLD;
    let mut answer = Vec::new();
    let mut buffer = [0u8; 1024];
    loop {
        tokio::select! {
            read = reader.read(&mut buffer) => match read {
                Ok(0) => return http_status(&answer).map_or(Fate::Unanswered, Fate::Answered),
                Ok(n) => answer.extend_from_slice(&buffer[..n.min(4096usize.saturating_sub(answer.len()))]),
                Err(err) => return http_status(&answer).map_or_else(|| Fate::of_io(&err), Fate::Answered),
            },
            _ = dribble.tick() => {
                let byte = bytes.next().unwrap_or(b'x');
                if let Err(err) = writer.write_all(&[byte]).await {
                    return http_status(&answer).map_or_else(|| Fate::of_io(&err), Fate::Answered);
                }
            }
            () = sleep_until(deadline) => return Fate::KeptPastHold,
        }
    }
}
