//! A member over the HTTP fallback's event stream (`GET /api/events/…`,
//! Server-Sent Events in a chunked body), read with a plain HTTP/1.1
//! client on a TCP socket: the generator holds thousands of them, so it
//! reads with one buffer each and parses only what an event needs.

use std::net::{IpAddr, SocketAddr};

use anyhow::{bail, Context};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use uuid::Uuid;

use crate::client::{tcp, token};

/// Where the reader is in the chunked body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Before a chunk's size line.
    Size,
    /// Inside a chunk, this many bytes left.
    Data(usize),
    /// After a chunk's data, before its CRLF.
    End,
}

/// One member's open event stream.
pub struct EventStream {
    stream: TcpStream,
    /// Bytes read and not yet taken apart.
    raw: Vec<u8>,
    /// The body taken out of its chunks, up to an event's end.
    body: Vec<u8>,
    chunk: Chunk,
    ended: bool,
}

impl EventStream {
    /// Opens `client`'s stream of `group` from `source` (the token, when
    /// the generator signs, in `Authorization`), up to the response's head.
    pub async fn open(server: SocketAddr, source: IpAddr, group: &str) -> anyhow::Result<Self> {
        let mut stream = tcp(server, source, None).await.context("tcp connect")?;
        let client = Uuid::new_v4();
        let authorization = token(client).map(|token| format!("Authorization: Bearer {token}\r\n")).unwrap_or_default();
        let request =
            format!("GET /api/events/{group}/{client} HTTP/1.1\r\nHost: {server}\r\n{authorization}Accept: text/event-stream\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut raw = Vec::with_capacity(4096);
        let head_end = loop {
            if let Some(end) = find(&raw, b"\r\n\r\n") {
                break end;
            }
            if stream.read_buf(&mut raw).await? == 0 {
                bail!("the server closed the stream before its head");
            }
        };
        let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
        if !head.starts_with("HTTP/1.1 200") {
            bail!("the stream was refused: {}", head.lines().next().unwrap_or_default());
        }
        if !head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
            bail!("a stream without a chunked body: {head}");
        }
        raw.drain(..head_end + 4);
        Ok(Self { stream, raw, body: Vec::with_capacity(4096), chunk: Chunk::Size, ended: false })
    }

    /// The next event's data (a `roomcast.v1` event), or `None` once the
    /// stream ended. Comments (the padding, heartbeats) are skipped.
    pub async fn next_data(&mut self) -> anyhow::Result<Option<String>> {
        loop {
            while let Some(end) = find(&self.body, b"\n\n") {
                let event: Vec<u8> = self.body.drain(..end + 2).collect();
                let data = String::from_utf8(event).context("an event that is not UTF-8")?;
                let data: Vec<&str> = data.lines().filter_map(|line| line.strip_prefix("data: ")).collect();
                if !data.is_empty() {
                    return Ok(Some(data.join("\n")));
                }
            }
            if self.ended {
                return Ok(None);
            }
            // What was read already may hold the next event's end.
            let taken = self.body.len();
            self.unchunk()?;
            if self.body.len() > taken || self.ended {
                continue;
            }
            if self.stream.read_buf(&mut self.raw).await? == 0 {
                return Ok(None);
            }
        }
    }

    /// Moves what `raw` holds of the chunked body into `body`.
    fn unchunk(&mut self) -> anyhow::Result<()> {
        let mut at = 0;
        loop {
            match self.chunk {
                Chunk::Size => {
                    let Some(line) = find(&self.raw[at..], b"\r\n") else { break };
                    let size = std::str::from_utf8(&self.raw[at..at + line])?;
                    let size = usize::from_str_radix(size.split(';').next().unwrap_or_default().trim(), 16)
                        .context("a chunk size")?;
                    at += line + 2;
                    if size == 0 {
                        self.ended = true;
                        break;
                    }
                    self.chunk = Chunk::Data(size);
                }
                Chunk::Data(left) => {
                    let take = left.min(self.raw.len() - at);
                    if take == 0 {
                        break;
                    }
                    self.body.extend_from_slice(&self.raw[at..at + take]);
                    at += take;
                    self.chunk = if take == left { Chunk::End } else { Chunk::Data(left - take) };
                }
                Chunk::End => {
                    if self.raw.len() - at < 2 {
                        break;
                    }
                    at += 2;
                    self.chunk = Chunk::Size;
                }
            }
        }
        self.raw.drain(..at);
        Ok(())
    }
}

/// Where `needle` first starts in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}
