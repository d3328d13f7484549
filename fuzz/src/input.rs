//! Turning a target's bytes into what it feeds the code under test.

use std::borrow::Cow;

use arbitrary::Unstructured;

/// The input as text, as a WebSocket text frame or a header read as text
/// would be: UTF-8, invalid sequences replaced.
pub fn text(data: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(data)
}

/// Text made of the input's next bytes (empty once they run out).
pub fn any_text(u: &mut Unstructured<'_>) -> String {
    u.arbitrary().unwrap_or_default()
}

/// One of `known` (valid and near-valid values) three times in four, else
/// one of them with text added, or text made of the input. Out of input:
/// the first of `known`.
pub fn one_of(u: &mut Unstructured<'_>, known: &[&str]) -> String {
    let pick = usize::from(u.arbitrary::<u8>().unwrap_or(0));
    match known.get(pick % known.len().max(1)) {
        Some(value) if pick < 192 => (*value).to_owned(),
        Some(value) if pick < 224 => format!("{value}{}", any_text(u)),
        _ => any_text(u),
    }
}

/// Whether to do something, one time in `n` (never once the input runs out).
pub fn one_in(u: &mut Unstructured<'_>, n: u32) -> bool {
    u.ratio(1, n.max(1)).unwrap_or(false)
}

/// Up to `max` of the input's next bytes, as they are.
pub fn some_bytes(u: &mut Unstructured<'_>, max: usize) -> Vec<u8> {
    let len = u.choose_index(max + 1).unwrap_or(0);
    u.bytes(len).unwrap_or_default().to_vec()
}
