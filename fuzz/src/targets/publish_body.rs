//! The publish API's body (`backend/src/publish_api.rs`, `publish`): what
//! an application holding the API key posts to
//! `/api/groups/{group}/messages`, stored through the real sequencer into
//! an in-memory store.
//!
//! The input is posted as the body as it is; then its text (after its
//! first line break, the line before it being the `name`) is posted as a
//! well-formed body with an `Idempotency-Key`, posted again, and posted
//! once more with another text under the same key.
//!
//! Properties:
//! - a body is taken only if it is a JSON object of a `text` that passes
//!   `check_text` and an optional `name`; any other is refused as
//!   `BadBody`, never with another error;
//! - a well-formed body is taken exactly when its text passes `check_text`
//!   and its name is one a client may choose (or the server's own); a
//!   refusal says which rule it broke;
//! - the same key and text again is the same message (a duplicate, the
//!   same `seq` and epoch); the same key with another text is `KeyReused`.

use std::cell::RefCell;

use roomcast_backend::publish_api::{self, PublishError, Published};
use roomcast_shared::protocol::{check_text, fits_the_limit};
use roomcast_shared::{limits, DisplayName, NameError};
use serde_json::{json, Value};

use super::JSON_TOKENS;
use crate::fixtures::{block_on, PerThread, Renewed, UnderTest, API_KEY};
use crate::harness::{fnv1a, Target};
use crate::input::text;

pub const TARGET: Target = Target { name: "publish_body", check, dictionary: JSON_TOKENS, max_len: 4096 };

const GROUP: &str = "fuzz";

thread_local! {
    /// Rebuilt now and then: the store keeps every message taken.
    static BACKEND: PerThread<UnderTest> = const { RefCell::new(Renewed::new(2048)) };
}

pub fn check(data: &[u8]) {
    BACKEND.with(|backend| {
        let mut backend = backend.borrow_mut();
        let backend = backend.get(UnderTest::new);
        as_it_is(backend, data);
        well_formed(backend, data);
    });
}

fn publish(backend: &UnderTest, body: &[u8], key: Option<&str>) -> Result<Published, PublishError> {
    block_on(publish_api::publish(API_KEY, GROUP, body, key, &backend.sequencer, limits::MAX_MESSAGE_BYTES))
}

fn as_it_is(backend: &UnderTest, body: &[u8]) {
    match publish(backend, body, None) {
        Ok(published) => {
            assert!(!published.duplicate && published.seq > 0, "{published:?}");
            let value: Value = serde_json::from_slice(body).expect("a body taken is JSON");
            let (text, name) = match &value {
                Value::Object(fields) => {
                    assert!(fields.keys().all(|key| key == "text" || key == "name"), "{value}");
                    (fields.get("text"), fields.get("name"))
                }
                // serde's sequence form of a struct, `[text, name]`: see
                // `an_array_body_is_taken` in tests/fuzz/publish_body.rs.
                Value::Array(items) if (1..=2).contains(&items.len()) => (items.first(), items.get(1)),
                _ => panic!("a body taken that is neither an object nor [text, name]: {value}"),
            };
            let text = text.and_then(Value::as_str).expect("a body taken has a text");
            assert_eq!(check_text(text), Ok(()));
            match name {
                None | Some(Value::Null) => {}
                Some(Value::String(name)) => assert_eq!(name_rule(name), Ok(()), "{value}"),
                Some(other) => panic!("a name {other} taken"),
            }
        }
        Err(PublishError::BadBody(_)) => {}
        Err(err) => panic!("a body refused as {err:?}: {}", String::from_utf8_lossy(body)),
    }
}

/// The publish API's name rule: a name a client may choose, or the
/// server's own.
fn name_rule(name: &str) -> Result<(), String> {
    match name.parse::<DisplayName>() {
        Ok(_) => Ok(()),
        Err(NameError::ReservedDisplayName) => DisplayName::try_from(name.to_owned()).map(drop),
        Err(err) => Err(err),
    }
    .map_err(|err| format!("body: name: {err}"))
}

fn well_formed(backend: &UnderTest, data: &[u8]) {
    let input = text(data);
    let (name, text) = match input.split_once('\n') {
        Some((name, text)) => (Some(name), text),
        None => (None, input.as_ref()),
    };
    let body = match name {
        Some(name) => json!({ "text": text, "name": name }),
        None => json!({ "text": text }),
    };
    let body = serde_json::to_vec(&body).expect("JSON encodes");
    let key = format!("key-{:x}", fnv1a(data));
    let expected = name
        .map_or(Ok(()), name_rule)
        .and_then(|()| check_text(text).map_err(|reason| format!("body: {reason}")))
        .and_then(|()| {
            fits_the_limit(text, limits::MAX_MESSAGE_BYTES)
                .then_some(())
                .ok_or_else(|| PublishError::TooLong(limits::MAX_MESSAGE_BYTES).to_string())
        });
    let published = match (publish(backend, &body, Some(&key)), expected) {
        (Ok(published), Ok(())) => published,
        (Err(err), Err(expected)) => return assert_eq!(err.to_string(), expected),
        (result, expected) => panic!("{} got {result:?}, expected {expected:?}", String::from_utf8_lossy(&body)),
    };
    let again = publish(backend, &body, Some(&key)).expect("the same post again");
    assert_eq!(again, Published { duplicate: true, ..published.clone() }, "a repeat of {published:?}");
    let other = serde_json::to_vec(&json!({ "text": format!("{text}, again") })).expect("JSON encodes");
    assert!(matches!(publish(backend, &other, Some(&key)), Err(PublishError::KeyReused)), "another text, one key");
}
