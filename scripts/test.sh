#!/usr/bin/env bash
# Runs every test, installing what is missing first: formatting and lints,
# Rust unit and
# integration tests (real servers, real sockets), the Autobahn conformance
# cases against the production WebSocket settings, and the browser tests in
# headless Chromium against the server serving the built app.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

ensure_debian_packages chromium chromium-driver fonts-noto-color-emoji fonts-wqy-microhei python3-venv redis-server openssl
build_frontend

say "formatting and lints (cargo fmt --check; cargo clippy -D warnings, native and wasm)"
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo clippy -p roomcast-frontend --target wasm32-unknown-unknown --locked -- -D warnings

say "Rust tests (cargo test --workspace)"
cargo test --workspace --locked

say "building the server for the conformance and browser tests"
cargo build --release --locked -p roomcast-backend -p roomcast-bench
export ROOMCAST_BIN="$ROOT/target/release/roomcast"

say "Autobahn conformance (kosoku): cases 1-7 and 10, raw mode"
"$ROOT/tests/autobahn/run.sh"

say "load generator smoke run (small fanout against the release server)"
"$ROOT/tests/bench-smoke.sh"

say "browser tests (playwright-core, Debian's Chromium)"
(cd "$ROOT/e2e" && npm ci --no-audit --no-fund --loglevel=error && npm test)

say "all test suites passed"
echo "suites: 5 passed, 0 failed"
