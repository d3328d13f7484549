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

# Every tier's features (backend/Cargo.toml); the test binaries that need
# them (targets with required-features: the Redis and slow tiers) and all
# the others (the fast tier).
TIERS=roomcast-backend/redis-tests,roomcast-backend/slow-tests
{ read -r SLOW_TESTS; read -r FAST_TESTS; } < <(cargo metadata --no-deps --format-version 1 --locked | python3 -c '
import json, sys
slow, fast = [], []
for package in json.load(sys.stdin)["packages"]:
    for target in package["targets"]:
        if "test" in target["kind"]:
            (slow if target.get("required-features") else fast).append("--test " + target["name"])
print(" ".join(slow))
print(" ".join(fast))')

say "formatting and lints (cargo fmt --check; cargo clippy -D warnings: native, every tier, and wasm)"
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo clippy --workspace --all-targets --locked --features "$TIERS" -- -D warnings
cargo clippy -p roomcast-frontend --target wasm32-unknown-unknown --locked -- -D warnings

# Built first, as each run below selects its targets: cargo builds the test
# kit a little differently for the second selection, and running both
# builds now leaves nothing to build while the tests run side by side.
say "Rust tests: building every tier (cargo test --workspace --features $TIERS)"
cargo test --workspace --locked --features "$TIERS" --lib --bins $FAST_TESTS --no-run
cargo test --workspace --locked --features "$TIERS" $SLOW_TESTS --no-run

# Side by side: most tests wait on sockets and timers, so two processes
# share the 2 cores better than one after the other (measured on 2 shared
# cores, built: every tier in one cargo test 84 s, side by side 47-52 s).
say "Rust tests: [fast] unit tests (the store contract against Redis too), doc tests, $FAST_TESTS"
say "Rust tests: [redis+slow] beside it: $SLOW_TESTS"
fast_tier() {
  { cargo test --workspace --locked --features "$TIERS" --lib --bins $FAST_TESTS \
    && cargo test --workspace --locked --features "$TIERS" --doc; } 2>&1 | sed -u 's/^/[fast] /'
}
slow_tiers() {
  cargo test --workspace --locked --features "$TIERS" $SLOW_TESTS 2>&1 | sed -u 's/^/[redis+slow] /'
}
fast_tier & FAST=$!
slow_tiers & SLOW=$!
FAILED=""
wait "$FAST" || FAILED="$FAILED fast"
wait "$SLOW" || FAILED="$FAILED redis+slow"
[ -z "$FAILED" ] || { echo "Rust test tiers failed:$FAILED" >&2; exit 1; }
say "Rust tests: the fast, Redis and slow tiers passed"

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
