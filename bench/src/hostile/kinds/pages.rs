//! History pages nobody reads: `GET /api/groups/{busy}/messages?limit=200`
//! (up to 200 messages or 1 MiB, made for this request alone) ten times
//! over on one keep-alive connection with a 4 KiB receive buffer, then
//! nothing read. Ten pages, because the kernel takes one whole into its
//! send buffer (about 4 MiB on loopback): only once it takes no more does
//! the server hold a page, and it must give the response up once a write
//! has waited its handshake timeout (10 s) without progress.

use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{sleep_until, timeout, Instant};
use uuid::Uuid;

use super::{http_status, Arena, RECEIVE_BUFFER};
use crate::client::{tcp, token};
use crate::hostile::fate::{peer_gone, Fate};
use crate::hostile::outcomes::Outcomes;

/// Three handshake timeouts. The server's clock starts once the kernel
/// takes no more (after five pages or so, which a busy server takes a few
/// seconds to read and encode), so by then it must have given up.
const HOLD: Duration = Duration::from_secs(30);
/// Requests sent at once on the connection.
const PIPELINED: usize = 10;
const LAST_WORDS: Duration = Duration::from_secs(5);

pub async fn life(arena: &Arena, source: IpAddr, opened: &OnceLock<Instant>, outcomes: &Outcomes) -> Fate {
    let mut stream = match tcp(arena.server, source, Some(RECEIVE_BUFFER)).await {
        Ok(stream) => stream,
        Err(err) => return Fate::ConnectFailed(err.kind()),
    };
    let _ = opened.set(Instant::now());
    let request = format!(
        "GET /api/groups/{}/messages?limit=200 HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\r\n",
        arena.busy,
        arena.server,
        token(Uuid::new_v4()).unwrap_or_default()
    );
    if let Err(err) = stream.write_all(request.repeat(PIPELINED).as_bytes()).await {
        return Fate::of_io(&err);
    }
    let held = tokio::select! {
        () = peer_gone(&stream) => false,
        () = sleep_until(Instant::now() + HOLD) => true,
    };
    let Some(responses) = read_responses(&mut stream).await else {
        return if held { Fate::KeptPastHold } else { Fate::Other("hung up, yet bytes kept coming".into()) };
    };
    outcomes.note(format!("{} of {PIPELINED} pages came whole", responses.complete));
    match responses.status {
        // Closed without a word: past the address's room for refusals.
        None => Fate::Dropped,
        Some(status @ (429 | 503)) => Fate::Refused(status),
        Some(status) if responses.complete < PIPELINED => Fate::CutShort(status),
        Some(status) => Fate::Answered(status),
    }
}

/// Reads what is left: the responses (or the start of one) up to the end
/// of the stream or a reset. `None` if the stream has not ended within a
/// few seconds.
async fn read_responses(stream: &mut TcpStream) -> Option<Responses> {
    let mut responses = Responses::default();
    let mut buffer = vec![0u8; 64 * 1024];
    timeout(LAST_WORDS, async {
        while let Ok(n @ 1..) = stream.read(&mut buffer).await {
            responses.feed(&buffer[..n]);
        }
    })
    .await
    .ok()?;
    Some(responses)
}

/// Responses counted as they stream by: heads read, bodies skipped by
/// their `Content-Length`.
#[derive(Debug, Default)]
struct Responses {
    complete: usize,
    status: Option<u16>,
    head: Vec<u8>,
    body_left: usize,
}

impl Responses {
    fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if self.body_left > 0 {
                let n = self.body_left.min(data.len());
                self.body_left -= n;
                data = &data[n..];
                if self.body_left == 0 {
                    self.complete += 1;
                }
                continue;
            }
            self.head.push(data[0]);
            data = &data[1..];
            if self.head.ends_with(b"\r\n\r\n") {
                self.status = self.status.or(http_status(&self.head));
                self.body_left = content_length(&self.head).unwrap_or(0);
                self.head.clear();
                if self.body_left == 0 {
                    self.complete += 1;
                }
            }
        }
    }
}

fn content_length(head: &[u8]) -> Option<usize> {
    String::from_utf8_lossy(head).lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("content-length").then(|| value.trim().parse().ok())?
    })
}
