//! Fuzz targets for Roomcast's parsers of untrusted input, and the stable
//! harness that runs them under `cargo test`.
//!
//! A target is a `fn(&[u8])` that feeds the bytes to a parser and asserts
//! properties of what comes out (round trips, typed errors, agreement with
//! the public validators), panicking when one does not hold. The same
//! function serves two runners:
//! - [`harness`]: seeded random inputs and mutations of the committed seed
//!   corpus (`fuzz/corpus/<target>/`), for a time budget, on the stable
//!   toolchain: the tests in `tests/fuzz/` (see `docs/FUZZING.md`).
//! - `fuzz/libfuzzer/`: cargo-fuzz's coverage-guided runner, for long runs
//!   where a nightly toolchain exists; never needed otherwise.
//!
//! # Layout
//! - [`harness`]: the loop (budget, seeds, panics caught, the failing input
//!   shrunk and saved, a summary line); [`mutate`]: its random inputs and
//!   mutations.
//! - [`targets`]: one module per target, each with its [`Target`]
//!   (name, check, dictionary).
//! - [`fixtures`]: what the server-side targets share: the test secret,
//!   a tokio runtime, in-process server state.
//! - [`input`]: turning bytes into the text and choices a target needs.

pub mod fixtures;
pub mod harness;
pub mod input;
pub mod mutate;
pub mod targets;

pub use harness::{fuzz, Target};
