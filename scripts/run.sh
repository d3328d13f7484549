#!/usr/bin/env bash
# Builds the app and runs the server on http://127.0.0.1:8000, installing
# what is missing first. Flags are passed to the server (see --help).
source "$(dirname "$0")/lib.sh"
build_frontend
say "starting the server on http://127.0.0.1:8000 (Ctrl-C stops it)"
cd "$ROOT"
exec cargo run --release --locked -p roomcast-backend -- "$@"
