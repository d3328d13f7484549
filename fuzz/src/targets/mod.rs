//! The fuzz targets, one module each. Each exposes `TARGET` (its name, the
//! check, a dictionary of its grammar's tokens) and `check`, the function
//! both runners call.

pub mod access_headers;
pub mod command_decode;
pub mod handshake;
pub mod names;
pub mod publish_body;
pub mod raw_frame;
pub mod token;

use crate::harness::Target;

/// Every target, for the runners that take them all.
pub const ALL: [Target; 7] = [
    command_decode::TARGET,
    raw_frame::TARGET,
    names::TARGET,
    access_headers::TARGET,
    handshake::TARGET,
    token::TARGET,
    publish_body::TARGET,
];

/// JSON's tokens and the protocol's field names, for the JSON targets.
pub(crate) const JSON_TOKENS: &[&str] = &[
    "{\"type\":\"send\",",
    "{\"type\":\"ping\"}",
    "\"type\":",
    "\"send\"",
    "\"ping\"",
    "\"id\":",
    "\"text\":",
    "\"name\":",
    "\"sub\":",
    "\"exp\":",
    "\"groups\":",
    "\"6f1c2a9e-0b5d-4c61-9a55-5f6d0d3f6a10\"",
    "6f1c2a9e0b5d4c619a555f6d0d3f6a10",
    "\"server\"",
    "\"\"",
    "\" \"",
    "[]",
    "{}",
];
