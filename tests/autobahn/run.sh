#!/usr/bin/env bash
# Runs the Autobahn|Testsuite fuzzing-client cases 1-7 and 10 (kosoku, from
# PyPI) against a raw-mode group on the production WebSocket settings: a raw
# member alone in its group gets its own messages back, i.e. an echo server.
# Every case's behaviour and close behaviour must be OK, NON-STRICT or
# INFORMATIONAL.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${ROOMCAST_BIN:-$ROOT/target/release/roomcast}
VENV=${XDG_CACHE_HOME:-$HOME/.cache}/roomcast/kosoku-venv
OUT=$ROOT/target/autobahn
KOSOKU_VERSION=0.1.0

if [ "$("$VENV/bin/pip" show kosoku 2>/dev/null | awk '/^Version:/ {print $2}')" != "$KOSOKU_VERSION" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "kosoku==$KOSOKU_VERSION"
fi

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
RUST_LOG=warn "$BIN" --listen "127.0.0.1:$PORT" --static-dir "$ROOT/frontend/dist" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
  kill -0 $SERVER 2>/dev/null || { echo "server exited" >&2; exit 1; }
  sleep 0.1
done

rm -rf "$OUT"
# kosoku has no handshake timeout of its own.
timeout 600 "$VENV/bin/kosoku" "ws://127.0.0.1:$PORT/ws/autobahn/3f2504e0-4f89-4d3a-9a0c-0305e82c3301" \
  -i '1.*' -i '2.*' -i '3.*' -i '4.*' -i '5.*' -i '6.*' -i '7.*' -i '10.*' -o "$OUT" >/dev/null 2>&1 || true

python3 - "$OUT/index.json" <<'PY'
import json, sys
ACCEPTED = {"OK", "NON-STRICT", "INFORMATIONAL"}
try:
    index = json.load(open(sys.argv[1]))
except OSError:
    print("autobahn: 0 passed, 1 failed (no report: kosoku crashed or timed out)")
    sys.exit(1)
passed = failed = 0
for agent, cases in index.items():
    for case, result in sorted(cases.items(), key=lambda kv: [int(p) for p in kv[0].split(".")]):
        if result["behavior"] in ACCEPTED and result["behaviorClose"] in ACCEPTED:
            passed += 1
        else:
            failed += 1
            print(f"FAIL {case}: behavior={result['behavior']} behaviorClose={result['behaviorClose']} "
                  f"remoteCloseCode={result.get('remoteCloseCode')}")
print(f"autobahn: {passed} passed, {failed} failed")
sys.exit(1 if failed or passed == 0 else 0)
PY
