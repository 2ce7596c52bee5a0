#!/usr/bin/env bash
# Installs what building and testing evbuf needs, skipping what is present. Everything
# comes from the package registries (Rust, npm, Debian); nothing else is downloaded.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

step() { printf '\n== setup: %s\n' "$*"; }

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  step "rust target wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

# The pinned nightly that builds the shipped module (scripts/nightly.sh), with rust-src for
# build-std. The toolchain list first: rustup installs a missing toolchain that a command
# names (with the default profile, without rust-src).
source scripts/nightly.sh
if ! rustup toolchain list | grep "^$EVBUF_NIGHTLY-" >/dev/null ||
  ! RUSTUP_AUTO_INSTALL=0 rustup component list --toolchain "$EVBUF_NIGHTLY" --installed | grep -x rust-src >/dev/null; then
  step "rust toolchain $EVBUF_NIGHTLY with rust-src (the shipped module's build)"
  rustup toolchain install "$EVBUF_NIGHTLY" --profile minimal --component rust-src
fi

# wasm-bindgen-cli must match the wasm-bindgen in Cargo.lock exactly.
want=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/"/, "", $3); print $3 }' Cargo.lock)
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" != "$want" ]; then
  step "wasm-bindgen-cli $want (about 10 minutes on 2 cores)"
  # Without --locked: its own lockfile wants crate versions the registry may lack.
  cargo install wasm-bindgen-cli --version "$want"
fi

need_apt=()
command -v chromium >/dev/null || need_apt+=(chromium)
command -v chromedriver >/dev/null || need_apt+=(chromium-driver)
command -v firefox-esr >/dev/null || need_apt+=(firefox-esr)
# Safari's engine: WebKitGTK (MiniBrowser, needs a display: Xvfb) and WPE WebKit 2.38 (cog).
command -v WebKitWebDriver >/dev/null || need_apt+=(webkit2gtk-driver)
command -v Xvfb >/dev/null || need_apt+=(xvfb)
command -v xauth >/dev/null || need_apt+=(xauth)
command -v WPEWebDriver >/dev/null || need_apt+=(wpewebkit-driver)
command -v cog >/dev/null || need_apt+=(cog)
if [ "${#need_apt[@]}" -gt 0 ]; then
  step "Debian packages: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}"
fi

if ! command -v geckodriver >/dev/null; then
  step "geckodriver (about 10 minutes on 2 cores)"
  cargo install --locked geckodriver
fi

if [ ! -x node_modules/.bin/wasm-opt ] || [ ! -d node_modules/playwright-core ] || [ ! -x node_modules/.bin/tsc ]; then
  step "npm packages"
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --no-audit --no-fund
fi
echo "== setup: done"
