//! The wire of an HTTP session's event stream: each `roomcast.v1` event a
//! socket would get, as a Server-Sent Event. A message carries the id
//! `{epoch}:{seq}` (so a browser's `EventSource` resumes with
//! `Last-Event-ID`); other events carry none. The end of the connection
//! is an `event: close` with the close code a socket would get.

use std::borrow::Cow;

use bytes::Bytes;
use serde::Deserialize;

/// The stream's first bytes: a comment of 2 KiB, so that a proxy that
/// buffers small responses passes the first event on at once (the client
/// takes a stream whose first event does not come within 5 s for a
/// buffering proxy, and polls instead).
pub fn padding() -> String {
    format!(":{}\n\n", " ".repeat(2048))
}

/// `chunk` (an event, or a comment) of member `index` of a shared stream:
/// an event names its member (`member: {index}`, a field an `EventSource`
/// ignores); a comment is the stream's.
pub fn of_member(index: usize, chunk: Bytes) -> Bytes {
    if chunk.starts_with(b":") {
        return chunk;
    }
    let mut tagged = format!("member: {index}\n").into_bytes();
    tagged.extend_from_slice(&chunk);
    Bytes::from(tagged)
}

/// A comment that keeps the stream (and every proxy on its way) awake.
pub const KEEPALIVE: &str = ": ping\n\n";

/// Where the stream is: the epoch of the history its messages belong to,
/// which every message's id names.
#[derive(Debug, Default)]
pub struct Ids {
    epoch: String,
}

impl Ids {
    /// `event` (a `roomcast.v1` event as a socket would get it) as an SSE
    /// event: a message with its id, anything else without.
    pub fn event(&mut self, event: &str) -> String {
        // Only the fields the id needs are read (each member's stream reads
        // every message: no full decode per member).
        let head: Head<'_> = serde_json::from_str(event).unwrap_or_default();
        let id = match (head.kind.as_deref(), head.epoch, head.seq) {
            (Some("welcome" | "reset"), Some(epoch), _) => {
                self.epoch = epoch.into_owned();
                None
            }
            (Some("message"), _, Some(seq)) if !self.epoch.is_empty() => Some(seq),
            _ => None,
        };
        match id {
            Some(seq) => format!("id: {}:{seq}\ndata: {event}\n\n", self.epoch),
            None => format!("data: {event}\n\n"),
        }
    }
}

/// What an event's id needs of it: its type, and a message's number or a
/// new history's epoch.
#[derive(Debug, Default, Deserialize)]
struct Head<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    seq: Option<u64>,
    #[serde(borrow)]
    epoch: Option<Cow<'a, str>>,
}

/// The end of the stream: the close code (and reason) a socket would have
/// been closed with.
pub fn close(code: u16, reason: &str) -> String {
    let data = serde_json::json!({ "code": code, "reason": reason });
    format!("event: close\ndata: {data}\n\n")
}

/// `Last-Event-ID` (or the `since`/`epoch` a client keeps itself) as where
/// the stream resumes: `{epoch}:{seq}`.
pub fn resume_at(last_event_id: &str) -> Option<(String, u64)> {
    let (epoch, seq) = last_event_id.trim().split_once(':')?;
    Some((epoch.to_owned(), seq.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use roomcast_shared::{ChatMessage, ClientId, GroupName, MessageId, Sender, ServerEvent};
    use uuid::Uuid;

    use super::*;

    fn message(seq: u64) -> String {
        let group: GroupName = "lobby".parse().unwrap();
        let from = Sender { client_id: ClientId(Uuid::nil()), name: None, verified: false };
        ServerEvent::Message(ChatMessage { group, seq, id: MessageId(Uuid::nil()), from, text: "hi".into(), ts: 1 })
            .encode()
    }

    #[test]
    fn messages_carry_their_epoch_and_number_and_nothing_else_does() {
        let mut ids = Ids::default();
        assert_eq!(
            ids.event(&ServerEvent::Reset { epoch: "e1".into() }.encode()),
            "data: {\"type\":\"reset\",\"epoch\":\"e1\"}\n\n"
        );
        let sent = ids.event(&message(7));
        assert!(
            sent.starts_with("id: e1:7\ndata: {")
                && sent.ends_with("}\n\n")
                && !sent[4..sent.len() - 2].contains("\n\n")
        );
        assert!(ids.event(&ServerEvent::Pong.encode()).starts_with("data: "), "no id");
        assert_eq!(resume_at("e1:7"), Some(("e1".to_owned(), 7)));
        assert_eq!(resume_at("e1"), None);
        assert_eq!(resume_at("e1:x"), None);
    }

    #[test]
    fn the_padding_is_a_comment_of_two_kib() {
        let padding = padding();
        assert!(padding.starts_with(':') && padding.ends_with("\n\n") && padding.len() > 2048);
        assert_eq!(close(1013, "too slow"), "event: close\ndata: {\"code\":1013,\"reason\":\"too slow\"}\n\n");
    }
}
