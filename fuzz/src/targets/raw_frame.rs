//! How a raw-mode text frame is sorted: `check_text`,
//! `has_control_characters` and `ClientCommand::send_frame_len`, the public
//! pieces of `Inbound::parse` (private to the connection module) and of the
//! rule docs/PROTOCOL.md states: a non-empty text without control
//! characters (other than line breaks and tabs) is a group message, and
//! reaches JSON members as a `message` event; any other frame is relayed to
//! raw members only.
//!
//! Properties:
//! - `check_text` accepts exactly the texts that are not blank and hold no
//!   control character, and says which rule a refused one breaks;
//! - `has_control_characters` looks at each character alone (a text has
//!   one if either half of it has);
//! - a text the raw path stores survives as a `message` event (encodes and
//!   decodes back to the same message), at most twice its size plus the
//!   event's fixed fields: JSON members never get the six-fold growth that
//!   control characters would cost;
//! - `send_frame_len` is the encoded size of a `send`, between the text's
//!   own size and six times it, plus the frame's fixed fields.

use roomcast_shared::protocol::{check_text, has_control_characters};
use roomcast_shared::{ChatMessage, ClientCommand, ClientId, MessageId, Sender, ServerEvent};
use uuid::Uuid;

use crate::harness::Target;
use crate::input::text;

pub const TARGET: Target = Target { name: "raw_frame", check, dictionary: &[], max_len: 4096 };

pub fn check(data: &[u8]) {
    let text = text(data);
    checked(&text);
    split(&text, data.first().map_or(0, |byte| usize::from(*byte)));
    if !text.is_empty() && !has_control_characters(&text) {
        stored(&text);
    }
    let overhead = ClientCommand::send_frame_len("");
    let len = ClientCommand::send_frame_len(&text);
    assert!((overhead + text.len()..=overhead + 6 * text.len()).contains(&len), "send_frame_len {len} of {text:?}");
}

fn checked(text: &str) {
    let blank = text.trim().is_empty();
    match check_text(text) {
        Ok(()) => assert!(!blank && !has_control_characters(text), "check_text accepted {text:?}"),
        Err(reason) if blank => assert_eq!(reason, "text must not be empty"),
        Err(reason) => {
            assert!(has_control_characters(text), "check_text refused {text:?}: {reason}");
            assert!(reason.contains("control characters"), "{reason}");
        }
    }
}

/// Splits `text` at the char boundary nearest `at` (modulo its length).
fn split(text: &str, at: usize) {
    let mut at = at % (text.len() + 1);
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    let (head, tail) = text.split_at(at);
    assert_eq!(
        has_control_characters(text),
        has_control_characters(head) || has_control_characters(tail),
        "{head:?} + {tail:?}"
    );
}

fn stored(text: &str) {
    let message = |text: &str| {
        ServerEvent::Message(ChatMessage {
            group: "raw".parse().expect("a group name"),
            seq: u64::MAX,
            id: MessageId(Uuid::max()),
            from: Sender { client_id: ClientId(Uuid::max()), name: None, verified: false },
            text: text.to_owned(),
            ts: u64::MAX,
        })
    };
    let event = message(text);
    let frame = event.encode();
    assert_eq!(ServerEvent::decode(&frame).ok().as_ref(), Some(&event), "{frame}");
    let fixed = message("").encode().len();
    assert!(frame.len() <= fixed + 2 * text.len(), "a {}-byte text became a {}-byte event", text.len(), frame.len());
}
