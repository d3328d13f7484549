# Shared by run.sh and test.sh: installs what is missing, nothing else.
# Everything comes from crates.io, Debian's packages, PyPI or npm; trunk is
# configured never to download tools of its own (see Trunk.toml).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TRUNK_VERSION=0.21.14
TOOLS_CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/roomcast
export PATH="$HOME/.cargo/bin:$PATH"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# The wasm-bindgen version Cargo.lock pins; the CLI must match it exactly.
wasm_bindgen_version() {
  awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' "$ROOT/Cargo.lock"
}

ensure_wasm_toolchain() {
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    say "adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
  fi
  local wanted
  wanted=$(wasm_bindgen_version)
  if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$wanted" ]; then
    say "installing wasm-bindgen-cli $wanted (a few minutes, once)"
    cargo install --locked wasm-bindgen-cli --version "$wanted" \
      || cargo install --force wasm-bindgen-cli --version "$wanted"
  fi
  if [ "$(trunk --version 2>/dev/null | awk '{print $2}')" != "$TRUNK_VERSION" ]; then
    say "installing trunk $TRUNK_VERSION (about 15 minutes on 2 cores, once)"
    cargo install --locked trunk --version "$TRUNK_VERSION"
  fi
}

# Installs the Debian packages named that are not installed yet.
ensure_debian_packages() {
  local missing=()
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing Debian packages: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
}

# Builds the single-page app into frontend/dist.
build_frontend() {
  ensure_wasm_toolchain
  # trunk runs cargo with --offline (Trunk.toml), so fetch first.
  cargo fetch --locked --manifest-path "$ROOT/Cargo.toml" >/dev/null
  say "building the app (trunk build --release)"
  (cd "$ROOT" && trunk build --release)
}
