#!/usr/bin/env bash
# Two server binaries compared on scenario a (100 subscribers, 10
# publishers, JSON), interleaved: each round runs both, at maximum rate and
# at 500 msg/s, each on a fresh server pinned to core 0 with the generator
# on core 1, as bench/scenarios.sh does. Prints each run's server µs per
# delivery and, per rate, both medians and their ratio.
#
#   bench/compare.sh OLD_BIN NEW_BIN [ROUNDS=5]
#   bench/compare.sh baseline target/release/roomcast    # against the JSON baseline
#   OLD_FLAGS='--history memory' bench/compare.sh target/release/roomcast target/release/roomcast
#   MODE=raw RATES=0 bench/compare.sh baseline target/release/roomcast
#
# OLD_FLAGS / NEW_FLAGS: more server flags for that side (word-split);
# MODE: json (default) or raw members and baseline; RATES: the rates run
# (default "0 500", 0 being the maximum); MESSAGES: messages per publisher
# at the maximum rate (default 2000; 20000 for a history that outgrows
# SQLite's page cache).
# `baseline` as a binary runs the BASELINE server in its JSON mode
# (`roomcast-bench baseline-server --json`: the same envelope and an ack
# per message, nothing stored), for JSON compared like with like.
# Used to measure what recording metrics costs (docs/BENCHMARKS.md): OLD_BIN
# built from the commit before them (a git worktree with its own target
# directory), NEW_BIN from this one.
set -euo pipefail
export ROOMCAST_SECRET=${ROOMCAST_SECRET:-roomcast-bench-secret-0123456789abcdef}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/bench/lib.sh"
OLD=$1 NEW=$2 ROUNDS=${3:-5}
MODE=${MODE:-json} RATES=${RATES:-0 500} MESSAGES=${MESSAGES:-2000}
cd "$ROOT"
cargo build --release --locked -q -p roomcast-bench
BENCH=target/release/roomcast-bench
DATA=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$DATA"' EXIT

# one BIN RATE FLAGS: the server's µs per delivery for one run.
one() {
  local bin=$1 rate=$2 flags=$3 port pid messages output
  port=$(free_port)
  rm -f "$DATA"/history.sqlite3*
  if [ "$bin" = baseline ]; then
    # shellcheck disable=SC2046 # the JSON flag is one word or none
    taskset -c 0 "$BENCH" baseline-server --listen "127.0.0.1:$port" $([ "$MODE" = json ] && echo --json) >/dev/null &
  else
    # shellcheck disable=SC2086 # the flags are meant to be split
    RUST_LOG=warn taskset -c 0 "$bin" --listen "127.0.0.1:$port" --database "$DATA/history.sqlite3" \
      --publish-rate 0 --max-connections-per-ip 0 $flags &
  fi
  pid=$!
  wait_listening "$port" "$pid" || return 1
  messages=$([ "$rate" = 0 ] && echo "$MESSAGES" || echo 500)
  output=$(taskset -c 1 "$BENCH" --addr "127.0.0.1:$port" --server-pid "$pid" \
    fanout --subscribers 100 --publishers 10 --messages "$messages" --rate "$rate" --mode "$MODE" 2>&1) || true
  kill "$pid"; wait "$pid" 2>/dev/null || true
  echo "$output" | grep '^result' | tail -1 | tr ' ' '\n' | sed -n 's/^server_us_per_delivery=//p'
}

declare -A RUNS
for round in $(seq 1 "$ROUNDS"); do
  for rate in $RATES; do
    for which in old new; do
      bin=$([ "$which" = old ] && echo "$OLD" || echo "$NEW")
      flags=$([ "$which" = old ] && echo "${OLD_FLAGS:-}" || echo "${NEW_FLAGS:-}")
      value=$(one "$bin" "$rate" "$flags")
      echo "round $round, rate $rate, $which: $value µs/delivery" >&2
      RUNS[$which-$rate]="${RUNS[$which-$rate]:-} $value"
    done
  done
done
for rate in $RATES; do
  python3 - "$rate" "$MODE" "${RUNS[old-$rate]}" "${RUNS[new-$rate]}" <<'PY'
import statistics, sys
rate, mode, old, new = sys.argv[1], sys.argv[2], [float(x) for x in sys.argv[3].split()], [float(x) for x in sys.argv[4].split()]
mo, mn = statistics.median(old), statistics.median(new)
label = "max" if rate == "0" else f"{rate}/s"
print(f"scenario a {label}, {mode}: old {mo:.3f} µs/delivery (runs {old}), new {mn:.3f} (runs {new}), new/old {mn / mo:.3f}")
PY
done
