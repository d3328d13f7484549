//! [`Frame`]: an already-encoded frame on its way to a socket, as the hub
//! (registry, member queues) and the history hand it around.
//!
//! It keeps the transport's type out of everything but the connection's
//! write side, at no cost: it holds the very payload types tungstenite's
//! `Message` holds (`Utf8Bytes` for text, `bytes::Bytes` for binary), so
//! making one from an encoded `String`, cloning it for every member of a
//! group (one reference-count increment) and turning it into a `Message`
//! at write time ([`Frame::into_message`], a move) never copies or
//! re-validates its bytes.

use bytes::Bytes;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

/// One frame to write: text, binary, or the heartbeat's ping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame(Payload);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Payload {
    Text(Utf8Bytes),
    Binary(Bytes),
    /// An empty ping: the heartbeat's, queued behind what the member
    /// already waits for, like any other frame.
    Ping,
}

impl Frame {
    /// A text frame; a `String` becomes its bytes without a copy.
    pub fn text(text: impl Into<String>) -> Self {
        Self(Payload::Text(Utf8Bytes::from(text.into())))
    }

    pub fn binary(bytes: impl Into<Bytes>) -> Self {
        Self(Payload::Binary(bytes.into()))
    }

    pub fn ping() -> Self {
        Self(Payload::Ping)
    }

    /// Payload bytes, as `Message::len` counts them: what a member queue's
    /// byte limit and a write batch's size add up.
    pub fn len(&self) -> usize {
        match &self.0 {
            Payload::Text(text) => text.len(),
            Payload::Binary(bytes) => bytes.len(),
            Payload::Ping => 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The text of a text frame.
    pub fn as_text(&self) -> Option<&str> {
        match &self.0 {
            Payload::Text(text) => Some(text.as_str()),
            Payload::Binary(_) | Payload::Ping => None,
        }
    }

    /// The frame for tungstenite: the payload moves over as it is.
    pub fn into_message(self) -> Message {
        match self.0 {
            Payload::Text(text) => Message::Text(text),
            Payload::Binary(bytes) => Message::Binary(bytes),
            Payload::Ping => Message::Ping(Bytes::new()),
        }
    }
}

/// A data frame as it came from a peer, to relay as it is (its text was
/// validated once, on the way in); control frames are handed back.
impl TryFrom<Message> for Frame {
    type Error = Message;

    fn try_from(message: Message) -> Result<Self, Message> {
        match message {
            Message::Text(text) => Ok(Self(Payload::Text(text))),
            Message::Binary(bytes) => Ok(Self(Payload::Binary(bytes))),
            other => Err(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_are_the_messages_lengths() {
        for frame in [Frame::text("héllo"), Frame::binary(vec![1, 2, 3]), Frame::ping(), Frame::text("")] {
            assert_eq!(frame.len(), frame.clone().into_message().len());
        }
    }

    #[test]
    fn clones_and_messages_share_the_encoded_bytes() {
        let frame = Frame::text("x".repeat(100));
        let Payload::Text(text) = &frame.0 else { unreachable!() };
        let address = text.as_ptr();
        let Message::Text(sent) = frame.clone().into_message() else { panic!("a text frame") };
        assert_eq!(sent.as_ptr(), address, "a clone, then a Message: the same bytes");
    }

    #[test]
    fn a_relayed_frame_keeps_its_bytes_and_control_frames_are_refused() {
        let bytes = Bytes::from(vec![7; 10]);
        let frame = Frame::try_from(Message::Binary(bytes.clone())).unwrap();
        let Message::Binary(back) = frame.into_message() else { panic!("a binary frame") };
        assert_eq!(back.as_ptr(), bytes.as_ptr());
        assert!(Frame::try_from(Message::Ping(Bytes::new())).is_err());
    }
}
