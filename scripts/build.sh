#!/usr/bin/env bash
# Builds the npm package into pkg/: the wasm module, its JS glue and .d.ts, and the
# wrapper that is the package's entry. Prints the shipped sizes.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

cargo build --release --target wasm32-unknown-unknown -p evbuf
rm -rf pkg
bash scripts/bindgen.sh target/wasm32-unknown-unknown/release/evbuf.wasm pkg evbuf
cp js/index.js js/index.d.ts js/fallback.js pkg/
node scripts/sizes.mjs
