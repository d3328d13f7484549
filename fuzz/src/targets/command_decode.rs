//! `ClientCommand::decode`: every text frame a JSON client sends.
//!
//! The input is the frame; it is also, under an id made of its first bytes,
//! the text of a `send`, encoded and decoded back.
//!
//! Properties:
//! - a decoded command encodes to a frame that decodes to the same command,
//!   and a decoded `send`'s text passes `check_text`;
//! - each error is the variant that says why (`Invalid` names the frame's
//!   own id and `check_text`'s reason; `UnknownType` a type that is not
//!   one), and the `error` event made of it decodes as that error and stays
//!   small (at most [`MAX_ERROR_EVENT`] bytes) whatever the frame's size;
//! - a `send` encodes to [`ClientCommand::send_frame_len`] bytes and decodes
//!   back to itself exactly when its text passes `check_text`.

use roomcast_shared::protocol::check_text;
use roomcast_shared::{ClientCommand, CommandError, ErrorCode, MessageId, ServerEvent};
use serde_json::Value;
use uuid::Uuid;

use super::JSON_TOKENS;
use crate::harness::Target;
use crate::input::text;

pub const TARGET: Target = Target { name: "command_decode", check, dictionary: JSON_TOKENS, max_len: 4096 };

/// Largest `error` event a refused frame may cost the server to send: the
/// detail copied from the frame is bounded, so a client cannot make the
/// server write much for a few bytes sent.
pub const MAX_ERROR_EVENT: usize = 2048;

pub fn check(data: &[u8]) {
    let frame = text(data);
    decoded(&frame);
    let mut id = [0; 16];
    id.iter_mut().zip(data).for_each(|(byte, input)| *byte = *input);
    sent(MessageId(Uuid::from_bytes(id)), &frame);
}

fn decoded(frame: &str) {
    let err = match ClientCommand::decode(frame) {
        Ok(command) => {
            assert_eq!(ClientCommand::decode(&command.encode()).as_ref(), Ok(&command), "re-encoded {command:?}");
            if let ClientCommand::Send { text, .. } = &command {
                assert_eq!(check_text(text), Ok(()), "a decoded send's text");
            }
            return;
        }
        Err(err) => err,
    };
    match &err {
        CommandError::Malformed(_) => assert_eq!((err.code(), err.message_id()), (ErrorCode::BadJson, None)),
        CommandError::UnknownType(kind) => {
            assert!(kind != "send" && kind != "ping", "{kind:?} is a known type");
            assert_eq!((err.code(), err.message_id()), (ErrorCode::UnknownType, None));
        }
        CommandError::Invalid { id, reason } => {
            assert_eq!((err.code(), err.message_id()), (ErrorCode::InvalidMessage, Some(*id)));
            // Only a well-formed `send` is refused as invalid: its own id,
            // and the reason its text fails.
            let value: Value = serde_json::from_str(frame).expect("an invalid send is JSON");
            assert_eq!(value["type"], "send");
            assert_eq!(serde_json::from_value::<MessageId>(value["id"].clone()).ok(), Some(*id), "the frame's id");
            let text = value["text"].as_str().expect("an invalid send has a text");
            assert_eq!(check_text(text), Err(*reason), "the reason is check_text's");
        }
    }
    let event = ServerEvent::from_command_error(&err).encode();
    assert!(event.len() <= MAX_ERROR_EVENT, "an error event of {} bytes for a {}-byte frame", event.len(), frame.len());
    match ServerEvent::decode(&event) {
        Ok(ServerEvent::Error { code, message, id }) => {
            assert_eq!((code, message, id), (err.code(), err.to_string(), err.message_id()))
        }
        other => panic!("the error event {event} decodes as {other:?}"),
    }
}

fn sent(id: MessageId, text: &str) {
    let command = ClientCommand::Send { id, text: text.to_owned() };
    let frame = command.encode();
    assert_eq!(ClientCommand::send_frame_len(text), frame.len(), "send_frame_len of {text:?}");
    match (ClientCommand::decode(&frame), check_text(text)) {
        (Ok(back), Ok(())) => assert_eq!(back, command),
        (Err(CommandError::Invalid { id: refused, reason }), Err(expected)) => {
            assert_eq!((refused, reason), (id, expected))
        }
        (decoded, checked) => panic!("{frame} decodes as {decoded:?}, while check_text says {checked:?}"),
    }
}
