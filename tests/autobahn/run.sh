#!/usr/bin/env bash
# Runs the Autobahn|Testsuite fuzzing-client cases 1-7 and 10 (kosoku, from
# PyPI) against the release server on the production WebSocket settings; see
# run.py for how.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${ROOMCAST_BIN:-$ROOT/target/release/roomcast}
VENV=${XDG_CACHE_HOME:-$HOME/.cache}/roomcast/kosoku-venv
KOSOKU_VERSION=0.1.0

if [ "$("$VENV/bin/pip" show kosoku 2>/dev/null | awk '/^Version:/ {print $2}')" != "$KOSOKU_VERSION" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "kosoku==$KOSOKU_VERSION"
fi

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
DATA=$(mktemp -d)
# Raw clients without tokens, as the seeds' pages: `--auth open`. Each of
# the 247 cases opens a room of its own from one address: no quota on new
# rooms (it has tests of its own), as none on connections per address.
RUST_LOG=warn "$BIN" --listen "127.0.0.1:$PORT" --database "$DATA/history.sqlite3" --static-dir "$ROOT/frontend/dist" --auth open --max-connections-per-ip 0 --new-groups-per-hour 0 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$DATA"' EXIT
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  kill -0 $SERVER 2>/dev/null || { echo "server exited" >&2; exit 1; }
  sleep 0.1
done

"$VENV/bin/python" "$(dirname "$0")/run.py" "127.0.0.1:$PORT"
