//! Server-Sent Events, as the HTTP transport reads them
//! (docs/PROTOCOL.md, "Over plain HTTP"): chunks of bytes in, events out.
//!
//! Lines end with `\n`, `\r\n` or `\r`; a blank line ends an event. `:`
//! starts a comment (the 2 KiB padding, `: ping`), noted so that the first
//! one counts as the stream's first sign of life. `data:` lines are joined
//! with `\n`; `id:` sets the last event id (kept across events, as
//! `EventSource` does); `event: close` carries the close code and reason.
//! Bytes may split anywhere, UTF-8 sequences too.

use serde::Deserialize;

/// What a stream said (it crosses tabs, on the browser's shared stream).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SseItem {
    /// A comment (padding or keep-alive).
    Comment,
    /// An event's data (a JSON server event) and the last event id so far
    /// (of a shared stream's member: the event's own id).
    Data { data: String, id: Option<String>, member: Option<usize> },
    /// `event: close`: the close code a socket would have got.
    Close { code: u16, reason: String, member: Option<usize> },
}

/// The parser: feed it chunks, take the items.
#[derive(Debug, Default)]
pub struct SseParser {
    /// Bytes of an incomplete line.
    pending: Vec<u8>,
    /// The last byte fed was `\r`: a `\n` right after it ends nothing.
    after_cr: bool,
    data: Option<String>,
    event: Option<String>,
    last_id: Option<String>,
    /// The current event's own id and member (a shared stream's).
    own_id: Option<String>,
    member: Option<usize>,
}

#[derive(Deserialize)]
struct CloseData {
    code: u16,
    #[serde(default)]
    reason: String,
}

impl SseParser {
    /// The last event id the stream gave (`{epoch}:{seq}`).
    pub fn last_id(&self) -> Option<&str> {
        self.last_id.as_deref()
    }

    /// Feeds `bytes`; returns the items they complete.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<SseItem> {
        let mut items = Vec::new();
        for &byte in bytes {
            let after_cr = std::mem::replace(&mut self.after_cr, byte == b'\r');
            match byte {
                b'\n' if after_cr => {}
                b'\n' | b'\r' => {
                    let line = std::mem::take(&mut self.pending);
                    self.line(&String::from_utf8_lossy(&line), &mut items);
                }
                _ => self.pending.push(byte),
            }
        }
        items
    }

    fn line(&mut self, line: &str, items: &mut Vec<SseItem>) {
        if line.is_empty() {
            self.dispatch(items);
            return;
        }
        if line.starts_with(':') {
            items.push(SseItem::Comment);
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "data" => match self.data.as_mut() {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            "event" => self.event = Some(value.to_owned()),
            "id" if !value.contains('\0') => {
                self.last_id = Some(value.to_owned());
                self.own_id = Some(value.to_owned());
            }
            "member" => self.member = value.parse().ok(),
            _ => {}
        }
    }

    fn dispatch(&mut self, items: &mut Vec<SseItem>) {
        let event = self.event.take();
        let (own_id, member) = (self.own_id.take(), self.member.take());
        let Some(data) = self.data.take() else { return };
        match event.as_deref() {
            Some("close") => {
                let (code, reason) = match serde_json::from_str::<CloseData>(&data) {
                    Ok(close) => (close.code, close.reason),
                    Err(_) => (1006, String::new()),
                };
                items.push(SseItem::Close { code, reason, member });
            }
            None | Some("message") => {
                // Members' ids interleave on a shared stream: each its own.
                let id = if member.is_some() { own_id } else { self.last_id.clone() };
                items.push(SseItem::Data { data, id, member });
            }
            Some(_) => {}
        }
    }
}

/// Where a resume goes after the message whose event id is `id`
/// (`{epoch}:{seq}`): `&since={seq}&epoch={epoch}`, as a socket's URL asks.
pub fn resume_query(id: &str) -> Option<String> {
    let (epoch, seq) = id.rsplit_once(':')?;
    let seq: u64 = seq.parse().ok()?;
    let epoch_ok = !epoch.is_empty() && epoch.len() <= 64 && epoch.chars().all(|c| c.is_ascii_alphanumeric());
    epoch_ok.then(|| format!("&since={seq}&epoch={epoch}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_id_is_a_position_to_resume_from() {
        assert_eq!(resume_query("9f2c:41").as_deref(), Some("&since=41&epoch=9f2c"));
        assert_eq!(resume_query(""), None);
        assert_eq!(resume_query("9f2c"), None);
        assert_eq!(resume_query(":4"), None);
        assert_eq!(resume_query("e&x=1:4"), None, "nothing but letters and digits goes in the URL");
        assert_eq!(resume_query("e:x"), None);
    }

    fn data(text: &str, id: Option<&str>) -> SseItem {
        SseItem::Data { data: text.into(), id: id.map(Into::into), member: None }
    }

    #[test]
    fn padding_events_ids_and_the_close() {
        let mut parser = SseParser::default();
        let padding = format!(":{}\n\n", " ".repeat(2048));
        let stream = format!(
            "{padding}data: {{\"type\":\"welcome\"}}\n\nid: e1:4\ndata: {{\"type\":\"message\"}}\n\n: ping\n\n\
             data: {{\"type\":\"synced\"}}\n\nevent: close\ndata: {{\"code\":1013,\"reason\":\"slow\"}}\n\n"
        );
        assert_eq!(
            parser.feed(stream.as_bytes()),
            vec![
                SseItem::Comment,
                data("{\"type\":\"welcome\"}", None),
                data("{\"type\":\"message\"}", Some("e1:4")),
                SseItem::Comment,
                data("{\"type\":\"synced\"}", Some("e1:4")),
                SseItem::Close { code: 1013, reason: "slow".into(), member: None },
            ]
        );
        assert_eq!(parser.last_id(), Some("e1:4"));
    }

    #[test]
    fn a_shared_streams_events_name_their_member_and_carry_their_own_ids() {
        let mut parser = SseParser::default();
        let stream = "member: 1\nid: e:7\ndata: m7\n\nmember: 0\ndata: w\n\n: ping\n\n\
                      member: 0\nevent: close\ndata: {\"code\":1013}\n\n";
        assert_eq!(
            parser.feed(stream.as_bytes()),
            vec![
                SseItem::Data { data: "m7".into(), id: Some("e:7".into()), member: Some(1) },
                SseItem::Data { data: "w".into(), id: None, member: Some(0) },
                SseItem::Comment,
                SseItem::Close { code: 1013, reason: String::new(), member: Some(0) },
            ]
        );
    }

    #[test]
    fn chunks_split_anywhere_and_any_line_end() {
        let stream = "id: a:1\r\ndata: {\"x\":\"é\"}\r\n\r\ndata:one\rdata:two\r\rdata: three\n\n".as_bytes();
        let whole = SseParser::default().feed(stream);
        assert_eq!(
            whole,
            vec![data("{\"x\":\"é\"}", Some("a:1")), data("one\ntwo", Some("a:1")), data("three", Some("a:1"))]
        );
        for split in 0..stream.len() {
            let mut parser = SseParser::default();
            let mut items = parser.feed(&stream[..split]);
            items.extend(parser.feed(&stream[split..]));
            assert_eq!(items, whole, "split at {split}");
        }
        let mut parser = SseParser::default();
        let items: Vec<_> = stream.iter().flat_map(|b| parser.feed(&[*b])).collect();
        assert_eq!(items, whole, "a byte at a time");
    }

    #[test]
    fn an_event_without_data_is_nothing_and_an_unreadable_close_is_1006() {
        let mut parser = SseParser::default();
        assert_eq!(parser.feed(b"event: close\n\nid\n\n"), vec![]);
        assert_eq!(parser.last_id(), Some(""));
        assert_eq!(
            parser.feed(b"event: close\ndata: nope\n\n"),
            vec![SseItem::Close { code: 1006, reason: String::new(), member: None }]
        );
        assert_eq!(parser.feed(b"event: other\ndata: x\n\ndata: y\n"), vec![], "an incomplete event waits");
        assert_eq!(parser.feed(b"\n"), vec![data("y", Some(""))]);
    }
}
