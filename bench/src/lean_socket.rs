//! A subscriber's WebSocket read by a minimal frame reader of the
//! generator's own, after tokio-tungstenite's handshake: the subscriber side
//! of a broadcast at its cheapest, so that in scenario d the generator
//! takes less of the two cores it shares with the server. Pinned, scenario
//! d's 150,000 deliveries a second took 75 % of the generator's core with
//! tokio-tungstenite's reader and 60 % with this one (docs/BENCHMARKS.md);
//! most of the rest is the kernel's receive path and a task wake-up per
//! socket, which any reader pays.
//!
//! It reads what a Roomcast or BASELINE server sends a raw member:
//! unmasked, unfragmented frames. Pings are answered; anything else that is
//! not text (pongs, binary) is skipped; a close ends it.

use anyhow::{bail, Context};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::client::Socket;

/// Bytes read at a time, as tokio-tungstenite's reader was configured.
const READ_BUFFER: usize = 4096;

pub struct LeanSocket {
    stream: TcpStream,
    buffer: Vec<u8>,
    /// Where the next frame starts in `buffer`.
    start: usize,
}

/// One frame's place in the buffer.
struct Frame {
    opcode: u8,
    payload: std::ops::Range<usize>,
    end: usize,
}

const TEXT: u8 = 0x1;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;

impl LeanSocket {
    /// Takes over a socket whose handshake is done and that has not been
    /// read from since (a raw member is sent nothing before the first
    /// broadcast, so tokio-tungstenite holds no bytes of it).
    pub fn from_socket(socket: Socket) -> Self {
        Self { stream: socket.into_inner(), buffer: Vec::with_capacity(READ_BUFFER), start: 0 }
    }

    /// The next text frame's payload; `None` once the connection closed.
    pub async fn next_text(&mut self) -> anyhow::Result<Option<&str>> {
        loop {
            match frame_at(&self.buffer[self.start..])? {
                Some(frame) => {
                    let at = self.start;
                    self.start += frame.end;
                    let payload = at + frame.payload.start..at + frame.payload.end;
                    match frame.opcode {
                        TEXT => {
                            return Ok(Some(std::str::from_utf8(&self.buffer[payload]).context("a text frame")?));
                        }
                        CLOSE => return Ok(None),
                        PING => {
                            let pong = masked_pong(&self.buffer[payload]);
                            self.stream.write_all(&pong).await?;
                        }
                        _ => {}
                    }
                }
                None => {
                    self.buffer.drain(..self.start);
                    self.start = 0;
                    self.buffer.reserve(READ_BUFFER);
                    if self.stream.read_buf(&mut self.buffer).await? == 0 {
                        return Ok(None);
                    }
                }
            }
        }
    }
}

/// The whole frame at the start of `bytes`, if it is all there.
fn frame_at(bytes: &[u8]) -> anyhow::Result<Option<Frame>> {
    let [first, second, ..] = *bytes else { return Ok(None) };
    if first & 0x80 == 0 {
        bail!("a fragmented frame: the servers measured send whole ones");
    }
    if second & 0x80 != 0 {
        bail!("a masked frame from the server");
    }
    let (length, header) = match second & 0x7f {
        126 => match bytes.get(2..4) {
            Some(length) => (u64::from(u16::from_be_bytes([length[0], length[1]])), 4),
            None => return Ok(None),
        },
        127 => match bytes.get(2..10) {
            Some(length) => (u64::from_be_bytes(length.try_into().expect("8 bytes")), 10),
            None => return Ok(None),
        },
        length => (u64::from(length), 2),
    };
    let opcode = first & 0x0f;
    if opcode & 0x8 != 0 && length > 125 {
        bail!("a control frame of {length} bytes: at most 125");
    }
    let end = header + usize::try_from(length).context("a frame longer than memory")?;
    Ok((bytes.len() >= end).then_some(Frame { opcode, payload: header..end, end }))
}

/// A client's pong carrying `payload` (client frames are masked; a ping's
/// payload is at most 125 bytes, as [`frame_at`] checks).
fn masked_pong(payload: &[u8]) -> Vec<u8> {
    let random = uuid::Uuid::new_v4();
    let mask: [u8; 4] = random.as_bytes()[..4].try_into().expect("4 of 16 bytes");
    let mut frame = vec![0x8a, 0x80 | payload.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(index, byte)| byte ^ mask[index % 4]));
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_found_whole_or_not_at_all() {
        let text = [0x81, 3, b'a', b'b', b'c', 0x89, 0];
        let frame = frame_at(&text).unwrap().unwrap();
        assert_eq!((frame.opcode, frame.payload, frame.end), (TEXT, 2..5, 5));
        assert!(frame_at(&text[..4]).unwrap().is_none(), "a partial frame waits");
        let ping = frame_at(&text[5..]).unwrap().unwrap();
        assert_eq!((ping.opcode, ping.end), (PING, 2));
        let mut long = vec![0x81, 126, 0x01, 0x00];
        long.extend(std::iter::repeat_n(b'x', 256));
        assert_eq!(frame_at(&long).unwrap().unwrap().payload, 4..260);
        assert!(frame_at(&[0x01, 0]).is_err(), "fragments are refused");
        assert!(frame_at(&[0x81, 0x80]).is_err(), "masked server frames are refused");
        assert!(frame_at(&[0x89, 126, 0, 200]).is_err(), "a control frame is at most 125 bytes");
    }

    #[test]
    fn a_pong_is_masked_and_unmasks_to_the_ping_payload() {
        let pong = masked_pong(b"hi");
        assert_eq!(&pong[..2], &[0x8a, 0x82]);
        let mask = &pong[2..6];
        let payload: Vec<u8> = pong[6..].iter().enumerate().map(|(index, byte)| byte ^ mask[index % 4]).collect();
        assert_eq!(payload, b"hi");
    }
}
