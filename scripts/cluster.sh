#!/usr/bin/env bash
# Runs a local cluster: a private redis-server (AOF on, its files in a
# temporary directory, a free loopback port; never the system's) and N nodes
# (3 by default) on http://127.0.0.1:8001, :8002, ... sharing one secret.
# Open any node in a browser: they are one system. Ctrl-C stops everything.
#
#   scripts/cluster.sh        # 3 nodes
#   scripts/cluster.sh 5      # 5 nodes
source "$(dirname "$0")/lib.sh"
NODES=${1:-3}
ensure_debian_packages redis-server
build_frontend
cargo build --release --locked -p roomcast-backend -p roomcast-testkit
cd "$ROOT"
DIR=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$DIR"' EXIT
# The test kit's redis-server prints its URL once it answers (EOF: it failed).
mkfifo "$DIR/redis-url"
target/release/roomcast-testkit redis >"$DIR/redis-url" &
read -r REDIS_URL <"$DIR/redis-url" || { echo "redis-server did not start" >&2; exit 1; }
SECRET=$(head -c 33 /dev/urandom | base64)
ORIGINS=$(seq -s, -f 'http://127.0.0.1:%g' $((8001)) $((8000 + NODES)))
for n in $(seq 1 "$NODES"); do
  # The secret through the environment: a command line shows in `ps`.
  ROOMCAST_SECRET="$SECRET" target/release/roomcast --listen "127.0.0.1:$((8000 + n))" \
    --redis "$REDIS_URL" --allowed-origins "$ORIGINS" &
done
say "Redis at $REDIS_URL; nodes on $(echo "$ORIGINS" | tr ',' ' ') (Ctrl-C stops all)"
wait
