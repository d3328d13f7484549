#!/usr/bin/env bash
# Roomcast's standard load scenarios. The server runs pinned to core 0 and
# the generator to core 1 (taskset); each scenario gets a fresh server. Prints
# a Markdown table of what `roomcast-bench` measured.
#
#   bench/scenarios.sh            # every scenario (about 5 minutes)
#   bench/scenarios.sh a b        # only some: a b c d churn cluster hostile
#   PIN=0 bench/scenarios.sh d    # unpinned: server and generator share both cores
set -euo pipefail
# One secret for the server and the generator, which signs its clients'
# tokens with it (the server requires them by default).
export ROOMCAST_SECRET=${ROOMCAST_SECRET:-roomcast-bench-secret-0123456789abcdef}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/bench/lib.sh"
cd "$ROOT"
cargo build --release --locked -q -p roomcast-backend -p roomcast-bench
SERVER_BIN=target/release/roomcast
BENCH=target/release/roomcast-bench
# Up to the hard limit of open files: 19,000 connections need it.
ulimit -n "$(ulimit -Hn)"
SCENARIOS=${*:-a b c d churn}
# PIN=0: nothing pinned, server and generator share both cores (the
# generator's CPU is in each row); by default the server runs on core 0 and
# the generator on core 1.
if [ "${PIN:-1}" = 0 ]; then ON_SERVER_CORE=() ON_GENERATOR_CORE=(); else
  ON_SERVER_CORE=(taskset -c 0) ON_GENERATOR_CORE=(taskset -c 1); fi
DATA=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$DATA"' EXIT


# A private Redis for the Redis-mode rows, on the server's core (its CPU
# is reported beside the server's): AOF on, everysec, as a node would run it.
REDIS_PORT=$(free_port)
taskset -c 0 redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$DATA" --appendonly yes \
  --appendfsync everysec --save "" --maxmemory-policy noeviction >/dev/null &
REDIS_PID=$!
until redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; do sleep 0.05; done
REDIS="--redis redis://127.0.0.1:$REDIS_PORT/"
redis_ticks() { awk '{print $14 + $15}' "/proc/$REDIS_PID/stat"; }

# start_server roomcast|baseline [flags…]: sets PORT and PID.
start_server() {
  local kind=$1; shift
  PORT=$(free_port)
  rm -f "$DATA"/history.sqlite3*
  if [ "$kind" = baseline ]; then
    "${ON_SERVER_CORE[@]}" "$BENCH" baseline-server --listen "127.0.0.1:$PORT" "$@" >/dev/null &
  else
    # No publish rate limit: the scenarios measure throughput.
    RUST_LOG=warn "${ON_SERVER_CORE[@]}" "$SERVER_BIN" --listen "127.0.0.1:$PORT" --database "$DATA/history.sqlite3" --publish-rate 0 --max-connections-per-ip 0 "$@" &
  fi
  PID=$!
  wait_listening "$PORT" "$PID"
}

stop_server() { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; }

ROWS=()
# run LABEL SERVER-KIND "SERVER FLAGS" BENCH-ARGS…
run() {
  local label=$1 kind=$2 flags=$3; shift 3
  [[ "$flags" == *--redis* ]] && redis-cli -p "$REDIS_PORT" flushall >/dev/null
  start_server "$kind" $flags
  local output before after
  before=$(redis_ticks)
  output=$("${ON_GENERATOR_CORE[@]}" "$BENCH" --addr "127.0.0.1:$PORT" --server-pid "$PID" "$@" 2>&1) || true
  after=$(redis_ticks)
  stop_server
  echo "$output" | grep -v '^result' >&2
  local result
  result=$(echo "$output" | grep '^result' | tail -1)
  if [[ "$flags" == *--redis* ]]; then
    # Redis's own CPU per delivery, from its clock ticks (1/100 s each).
    local deliveries
    deliveries=$(echo "$output" | sed -n 's/.*; \([0-9]*\) deliveries in.*/\1/p' | tail -1)
    label="$label (Redis itself: $(python3 -c "print(round(($after - $before) * 1e4 / max(1, ${deliveries:-1}), 2))") µs/delivery)"
  fi
  ROWS+=("$label|$result")
}

field() { echo "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"; }

for scenario in $SCENARIOS; do
  case $scenario in
    a)
      for rate in 500 0; do
        messages=$([ "$rate" = 0 ] && echo 2000 || echo 500)
        run "a: 100 subs + 10 pubs, $([ "$rate" = 0 ] && echo max || echo "$rate/s"), Roomcast JSON" roomcast "" \
          fanout --subscribers 100 --publishers 10 --messages "$messages" --rate "$rate" --mode json
        run "a: 100 subs + 10 pubs, $([ "$rate" = 0 ] && echo max || echo "$rate/s"), Roomcast raw" roomcast "" \
          fanout --subscribers 100 --publishers 10 --messages "$messages" --rate "$rate" --mode raw
        run "a: 100 subs + 10 pubs, $([ "$rate" = 0 ] && echo max || echo "$rate/s"), Roomcast JSON, Redis mode" roomcast "$REDIS" \
          fanout --subscribers 100 --publishers 10 --messages "$messages" --rate "$rate" --mode json
        if [ "$rate" != 0 ]; then
          # At 500 msg/s spread evenly every message is its own transaction:
          # the same run with an fsync at checkpoints only, and with no disk.
          for history in "--durability normal" "--history memory"; do
            run "a: 100 subs + 10 pubs, $rate/s, Roomcast JSON, $history" roomcast "$history" \
              fanout --subscribers 100 --publishers 10 --messages "$messages" --rate "$rate" --mode json
          done
        fi
        run "a: 100 subs + 10 pubs, $([ "$rate" = 0 ] && echo max || echo "$rate/s"), BASELINE raw" baseline "" \
          fanout --subscribers 100 --publishers 10 --messages "$messages" --rate "$rate" --mode raw
        run "a: 100 subs + 10 pubs, $([ "$rate" = 0 ] && echo max || echo "$rate/s"), BASELINE JSON" baseline "--json" \
          fanout --subscribers 100 --publishers 10 --messages "$messages" --rate "$rate" --mode json
      done
      ;;
    b)
      run "b: 1,000 subs, 1 pub at 100/s for 10 s, Roomcast JSON" roomcast "" \
        fanout --subscribers 1000 --publishers 1 --messages 1000 --rate 100 --mode json
      run "b: 1,000 subs, 1 pub at 100/s for 10 s, Roomcast raw" roomcast "" \
        fanout --subscribers 1000 --publishers 1 --messages 1000 --rate 100 --mode raw
      run "b: 1,000 subs, 1 pub at 100/s for 10 s, Roomcast JSON, Redis mode" roomcast "$REDIS" \
        fanout --subscribers 1000 --publishers 1 --messages 1000 --rate 100 --mode json
      run "b: 1,000 subs, 1 pub at 100/s for 10 s, BASELINE raw" baseline "" \
        fanout --subscribers 1000 --publishers 1 --messages 1000 --rate 100 --mode raw
      ;;
    c)
      for mode in json raw; do
        run "c: 5,000 idle ($mode)" roomcast "" idle --connections 5000 --mode "$mode"
        run "c: 19,000 idle ($mode)" roomcast "" idle --connections 19000 --mode "$mode"
      done
      ;;
    d)
      run "d: 15,000 members, a broadcast every 100 ms, Roomcast raw" roomcast "" \
        fanout --subscribers 15000 --publishers 1 --messages 100 --rate 10 --mode raw
      run "d: 15,000 members, a broadcast every 100 ms, Roomcast JSON" roomcast "" \
        fanout --subscribers 15000 --publishers 1 --messages 100 --rate 10 --mode json
      run "d: 15,000 members, a broadcast every 100 ms, Roomcast JSON, members over SSE" roomcast "" \
        fanout --subscribers 15000 --publishers 1 --messages 100 --rate 10 --mode json --over sse
      run "d: 15,000 members, a broadcast every 100 ms, BASELINE raw" baseline "" \
        fanout --subscribers 15000 --publishers 1 --messages 100 --rate 10 --mode raw
      ;;
    cluster)
      # Five nodes on one Redis, one group of 5 x 19,000 members spread over
      # them, a broadcast a second from a publisher on the first node. Each
      # node's members are a generator process of their own (one process
      # may hold at most 20,000 descriptors); nothing is pinned.
      per=${CLUSTER_MEMBERS_PER_NODE:-19000}; messages=${CLUSTER_BROADCASTS:-20}; nodes=5
      redis-cli -p "$REDIS_PORT" flushall >/dev/null
      node_ports=(); node_pids=()
      for n in $(seq 1 $nodes); do
        port=$(free_port)
        RUST_LOG=warn "$SERVER_BIN" --listen "127.0.0.1:$port" --database "$DATA/node$n.sqlite3" $REDIS \
          --publish-rate 0 --max-connections-per-ip 0 &
        node_pids+=($!); node_ports+=("$port")
      done
      for n in $(seq 0 $((nodes - 1))); do
        wait_listening "${node_ports[$n]}" "${node_pids[$n]}"
      done
      group="bench-cluster-$RANDOM"
      node_ticks() { local t=0; for pid in "${node_pids[@]}"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$pid/stat"))); done; echo $t; }
      before=$(node_ticks); redis_before=$(redis_ticks)
      gen_pids=()
      for n in $(seq 2 $nodes); do
        "$BENCH" --addr "127.0.0.1:${node_ports[$((n - 1))]}" fanout --group "$group" --subscribers "$per" \
          --publishers 1 --messages "$messages" --rate 1 --mode raw --listen-for $((messages + 60)) >"$DATA/gen$n.log" 2>&1 &
        gen_pids+=($!)
      done
      for n in $(seq 2 $nodes); do
        until grep -q '^subscribed' "$DATA/gen$n.log" 2>/dev/null; do sleep 0.2; done
      done
      "$BENCH" --addr "127.0.0.1:${node_ports[0]}" fanout --group "$group" --subscribers "$per" \
        --publishers 1 --messages "$messages" --rate 1 --mode raw >"$DATA/gen1.log" 2>&1 || true
      wait "${gen_pids[@]}" 2>/dev/null || true
      after=$(node_ticks); redis_after=$(redis_ticks)
      total=$((nodes * per * messages))
      for n in $(seq 1 $nodes); do
        cat "$DATA/gen$n.log" | grep -v '^result' >&2
        result=$(grep '^result' "$DATA/gen$n.log" | tail -1)
        ROWS+=("cluster: node $n of $nodes, $per members each, a broadcast a second (raw)|$result")
      done
      ROWS+=("cluster: all 5 nodes together: $(python3 -c "print(round(($after - $before) * 1e4 / $total, 2))") µs of node CPU and $(python3 -c "print(round(($redis_after - $redis_before) * 1e4 / $total, 3))") µs of Redis CPU per delivery, over $total deliveries|")
      kill "${node_pids[@]}" 2>/dev/null; wait "${node_pids[@]}" 2>/dev/null || true
      ;;
    hostile)
      # The 5-minute hostile soak of docs/SECURITY.md, against the default
      # limits (start_server lifts them): nothing lost, and the server's RSS.
      PORT=$(free_port)
      rm -f "$DATA"/history.sqlite3*
      RUST_LOG=error taskset -c 0 "$SERVER_BIN" --listen "127.0.0.1:$PORT" --database "$DATA/history.sqlite3" &
      PID=$!
      wait_listening "$PORT" "$PID"
      output=$(taskset -c 1 "$BENCH" --addr "127.0.0.1:$PORT" --server-pid "$PID" hostile --duration 300 2>&1) || true
      stop_server
      echo "$output" | grep -v '^result' >&2
      result=$(echo "$output" | grep '^result' | tail -1)
      ROWS+=("hostile: 100 members beside 1,000 hostile sockets for 300 s, server RSS max $(field max_rss_mib "$result") MiB|$result")
      ;;
    churn)
      start_server roomcast
      taskset -c 1 "$BENCH" --addr "127.0.0.1:$PORT" --server-pid "$PID" churn --connections 2000 --cycles 5 >&2 \
        && ROWS+=("churn: 5 x 2,000 connect/disconnect|result churn=ok") \
        || ROWS+=("churn: 5 x 2,000 connect/disconnect|result churn=FAILED")
      stop_server
      ;;
    *) echo "unknown scenario $scenario" >&2; exit 2 ;;
  esac
done

echo
echo "| scenario | deliveries/s | p50 ms | p99 ms | max ms | lost | dup | server µs/delivery | generator CPU % | connects/s | KiB/conn |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for row in "${ROWS[@]}"; do
  label=${row%%|*}; result=${row#*|}
  if [ -n "$(field churn "$result")" ]; then
    echo "| $label | | | | | | | | | | $(field churn "$result") |"
  elif [ -n "$(field connects_per_s "$result")" ]; then
    echo "| $label ($(field open "$result") open, $(field failed "$result") failed) | | | | | | | | | $(field connects_per_s "$result") | $(field kib_per_connection "$result") |"
  else
    echo "| $label | $(field deliveries_per_s "$result") | $(field p50_ms "$result") | $(field p99_ms "$result") | $(field max_ms "$result") | $(field lost "$result") | $(field duplicated "$result") | $(field server_us_per_delivery "$result") | $(field generator_cpu_pct "$result") | | |"
  fi
done
