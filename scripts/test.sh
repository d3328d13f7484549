#!/usr/bin/env bash
# Runs every test, installing what is missing first: formatting and lints,
# Rust unit and integration tests of every tier (the fast one, and the
# Redis, crash and memory suites; real servers, real sockets), the Autobahn conformance
# cases against the production WebSocket settings, and the browser tests in
# headless Chromium against the server serving the built app.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

ensure_debian_packages chromium chromium-driver fonts-noto-color-emoji fonts-wqy-microhei python3-venv redis-server openssl
build_frontend

# The Redis tier fails, never skips, without redis-server: say so up front.
command -v redis-server >/dev/null || { echo "redis-server is missing: the Redis tier cannot run" >&2; exit 1; }

# Every tier's features (backend/Cargo.toml), and the test binaries that
# need them (the [[test]] targets with required-features).
TIERS=roomcast-backend/redis-tests,roomcast-backend/slow-tests
SLOW_TESTS=$(awk '/^\[\[test\]\]/ { getline; gsub(/name = |"/, ""); name = $0 }
  /^required-features/ { printf "--test %s ", name }' backend/Cargo.toml)

say "formatting and lints (cargo fmt --check; cargo clippy -D warnings: native, every tier, and wasm)"
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo clippy --workspace --all-targets --locked --features "$TIERS" -- -D warnings
cargo clippy -p roomcast-frontend --target wasm32-unknown-unknown --locked -- -D warnings

say "Rust tests: building the fast tier and the Redis and slow tiers"
cargo test --workspace --locked --no-run
cargo test --locked --features "$TIERS" -p roomcast-backend --lib $SLOW_TESTS --no-run

# Side by side: most tests wait on sockets and timers, so two processes
# share the 2 cores better than one after the other.
say "Rust tests: fast tier (cargo test --workspace) beside the Redis and slow tiers ($SLOW_TESTS)"
fast_tier() { cargo test --workspace --locked 2>&1 | sed -u 's/^/[fast] /'; }
slow_tiers() {
  # The store contract's Redis cases live in the library's tests.
  { cargo test --locked --features "$TIERS" -p roomcast-backend --lib -- history::tests \
    && cargo test --locked --features "$TIERS" -p roomcast-backend $SLOW_TESTS; } 2>&1 | sed -u 's/^/[redis+slow] /'
}
fast_tier & FAST=$!
slow_tiers & SLOW=$!
FAILED=""
wait "$FAST" || FAILED="$FAILED fast"
wait "$SLOW" || FAILED="$FAILED redis+slow"
[ -z "$FAILED" ] || { echo "Rust test tiers failed:$FAILED" >&2; exit 1; }
say "Rust tests: tiers fast, redis and slow passed"

say "building the server for the conformance and browser tests"
cargo build --release --locked -p roomcast-backend -p roomcast-bench -p roomcast-testkit
export ROOMCAST_BIN="$ROOT/target/release/roomcast"

say "Autobahn conformance (kosoku): cases 1-7 and 10, raw mode"
"$ROOT/tests/autobahn/run.sh"

say "load generator smoke run (small fanout against the release server)"
"$ROOT/tests/bench-smoke.sh"

say "browser tests (playwright-core, Debian's Chromium)"
(cd "$ROOT/e2e" && npm ci --no-audit --no-fund --loglevel=error && npm test)

say "all test suites passed"
echo "suites: 5 passed, 0 failed"
