#!/usr/bin/env bash
# Scenario d's shape (one group of 15,000 members, one publisher, a
# broadcast every 100 ms) for several servers, interleaved: each round runs
# every server once, each on a fresh server. Prints each run's result line
# (latency, CPU per delivery, the generator's CPU) and, per broadcast, when
# its first and last member got it.
#
#   bench/broadcast.sh ROUNDS LABEL=SERVER...
#   bench/broadcast.sh 3 base=baseline now=target/release/roomcast
#   PIN=1 bench/broadcast.sh 3 old=/tmp/roomcast-old new='EXP=1 target/release/roomcast --history memory'
#
# SERVER: `baseline` (the BASELINE server, raw), or a Roomcast binary with
# optional leading VAR=value words and trailing flags. PIN=1: the server on
# core 0 and the generator on core 1 (default: unpinned, sharing both);
# SUBSCRIBERS (default 15000), MESSAGES (default 100), MODE (raw or json),
# OVER (websocket, or lean: raw members read by the generator's own
# minimal reader, so that the generator costs less than the server).
set -euo pipefail
export ROOMCAST_SECRET=${ROOMCAST_SECRET:-roomcast-bench-secret-0123456789abcdef}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/bench/lib.sh"
cd "$ROOT"
cargo build --release --locked -q -p roomcast-bench
BENCH=target/release/roomcast-bench
ulimit -n "$(ulimit -Hn)"
ROUNDS=$1; shift
if [ "${PIN:-0}" = 1 ]; then ON_SERVER_CORE=(taskset -c 0) ON_GENERATOR_CORE=(taskset -c 1); else
  ON_SERVER_CORE=() ON_GENERATOR_CORE=(); fi
DATA=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$DATA"' EXIT

for round in $(seq 1 "$ROUNDS"); do
  for server in "$@"; do
    label=${server%%=*} command=${server#*=}
    port=$(free_port)
    rm -f "$DATA"/history.sqlite3*
    if [ "$command" = baseline ]; then
      "${ON_SERVER_CORE[@]}" "$BENCH" baseline-server --listen "127.0.0.1:$port" >/dev/null &
    else
      # shellcheck disable=SC2086 # VAR=value words, the binary and its flags
      "${ON_SERVER_CORE[@]}" env RUST_LOG=warn $command --listen "127.0.0.1:$port" --database "$DATA/history.sqlite3" \
        --publish-rate 0 --max-connections-per-ip 0 &
    fi
    pid=$!
    wait_listening "$port" "$pid"
    output=$("${ON_GENERATOR_CORE[@]}" "$BENCH" --addr "127.0.0.1:$port" --server-pid "$pid" fanout \
      --subscribers "${SUBSCRIBERS:-15000}" --publishers 1 --messages "${MESSAGES:-100}" --rate 10 --mode "${MODE:-raw}" \
      --over "${OVER:-websocket}" 2>&1) || true
    kill "$pid"; wait "$pid" 2>/dev/null || true
    echo "round $round, $label: $(echo "$output" | grep -E '^(result|per broadcast)' | tr '\n' ' ')"
  done
done
