#!/usr/bin/env bash
# Keeps the load generator working: a small fanout (SQLite history), a few
# idle connections, and a short hostile soak against the release server. It
# fails on any lost or duplicated message. The figures are not judged here;
# see docs/BENCHMARKS.md and docs/SECURITY.md.
set -euo pipefail
# One secret for the server and the generator, which signs its clients'
# tokens with it (the server requires them by default).
export ROOMCAST_SECRET=${ROOMCAST_SECRET:-roomcast-bench-secret-0123456789abcdef}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/bench/lib.sh"
BIN=${ROOMCAST_BIN:-$ROOT/target/release/roomcast}
BENCH=$ROOT/target/release/roomcast-bench
DATA=$(mktemp -d)
SERVERS=()
trap 'kill "${SERVERS[@]}" 2>/dev/null || true; rm -rf "$DATA"' EXIT


# start_server PORT DATABASE [flags…]: the release server in the background,
# once it accepts connections; its pid in SERVERS.
start_server() {
  local port=$1 database=$2; shift 2
  "$BIN" --listen "127.0.0.1:$port" --database "$DATA/$database" --static-dir "$ROOT/frontend/dist" "$@" &
  SERVERS+=($!)
  wait_listening "$port" "$!"
}

PORT=$(free_port)
RUST_LOG=warn start_server "$PORT" history.sqlite3 --publish-rate 0 --max-connections-per-ip 0
SERVER=${SERVERS[-1]}
"$BENCH" --addr "127.0.0.1:$PORT" --server-pid "$SERVER" fanout --subscribers 20 --publishers 4 --messages 200
"$BENCH" --addr "127.0.0.1:$PORT" --server-pid "$SERVER" fanout --subscribers 20 --publishers 2 --messages 100 --mode raw
"$BENCH" --addr "127.0.0.1:$PORT" --server-pid "$SERVER" fanout --subscribers 20 --publishers 1 --messages 100 --mode raw --over lean
"$BENCH" --addr "127.0.0.1:$PORT" --server-pid "$SERVER" idle --connections 500

# The hostile soak wants the default limits (the server above lifts them):
# 10 members must get every message beside 50 hostile sockets of every kind.
HOSTILE_PORT=$(free_port)
RUST_LOG=error start_server "$HOSTILE_PORT" hostile.sqlite3
HOSTILE=${SERVERS[-1]}
"$BENCH" --addr "127.0.0.1:$HOSTILE_PORT" --server-pid "$HOSTILE" hostile --duration 20 --members 10 --hostile 50
