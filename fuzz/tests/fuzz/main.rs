//! The fuzz targets under `cargo test`: per target, its seed corpus, then
//! random inputs for `ROOMCAST_FUZZ_SECONDS` (see `docs/FUZZING.md`), and
//! the named regression tests of what fuzzing found.

mod access_headers;
mod command_decode;
mod handshake;
mod names;
mod publish_body;
mod raw_frame;
mod token;
