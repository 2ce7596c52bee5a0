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
# TextEncoder.encodeInto is in every engine evbuf supports (Safari 14.1+), so the glue
# needs no fallback for it.
wasm-bindgen --target web --encode-into always --out-dir pkg --out-name evbuf \
  target/evbuf-for-bindgen.wasm
# wasm-opt's flags live in scripts/wasm-opt-flags.txt (bench/wasm-names.mjs redoes this
# step with them). -Os --converge came out smallest after gzip (measured against -Oz,
# -Oz --converge, -O3). The low 1 KiB of memory is the bottom of the stack (rustc lays the
# stack first and it never gets 1 MiB deep) and memory starts zeroed (the module creates
# its own): both let wasm-opt fold more. The producers and target-features sections are
# for tools only.
# shellcheck disable=SC2046 # the flags are meant to split into words
node_modules/.bin/wasm-opt $(cat scripts/wasm-opt-flags.txt) pkg/evbuf_bg.wasm -o pkg/evbuf_bg.wasm
cp js/index.js js/index.d.ts js/fallback.js pkg/
node scripts/sizes.mjs
