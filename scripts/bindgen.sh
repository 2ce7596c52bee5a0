#!/usr/bin/env bash
# The steps after cargo, shared by the package build and the size floor (bench/floor), so
# that both are measured alike: scripts/bindgen.sh IN.wasm OUT_DIR NAME writes
# OUT_DIR/NAME.js and OUT_DIR/NAME_bg.wasm, optimized for size.
set -euo pipefail
in=$1 out=$2 name=$3
root="$(cd "$(dirname "$0")/.." && pwd)"
export PATH="$HOME/.cargo/bin:$PATH"
# Built without reference types (.cargo/config.toml) for Safari 16; the features the
# precompiled std claims go too, or wasm-bindgen would still emit its externref table.
node "$root/scripts/drop-features.mjs" "$in" "${in%.wasm}-for-bindgen.wasm" reference-types call-indirect-overlong
wasm-bindgen --target web --out-dir "$out" --out-name "$name" "${in%.wasm}-for-bindgen.wasm"
"$root/node_modules/.bin/wasm-opt" -Oz "$out/${name}_bg.wasm" -o "$out/${name}_bg.wasm"
