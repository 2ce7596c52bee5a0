#!/usr/bin/env bash
# Builds the npm package into pkg/: the wasm module, its JS glue and .d.ts, and the
# wrapper that is the package's entry. Prints the shipped sizes.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

cargo build --release --target wasm32-unknown-unknown -p evbuf
rm -rf pkg
# Built without reference types (.cargo/config.toml) for Safari 16; the features the
# precompiled std claims go too, or wasm-bindgen would still emit its externref table.
node scripts/drop-features.mjs target/wasm32-unknown-unknown/release/evbuf.wasm \
  target/evbuf-for-bindgen.wasm reference-types call-indirect-overlong
wasm-bindgen --target web --out-dir pkg --out-name evbuf target/evbuf-for-bindgen.wasm
node_modules/.bin/wasm-opt -Oz pkg/evbuf_bg.wasm -o pkg/evbuf_bg.wasm
cp js/index.js js/index.d.ts js/fallback.js pkg/
node scripts/sizes.mjs
