#!/usr/bin/env bash
# The steps after cargo, shared by the package build and the size floor (bench/floor), so
# that both are built alike: scripts/bindgen.sh IN.wasm OUT_DIR NAME writes OUT_DIR/NAME.js
# and OUT_DIR/NAME_bg.wasm, and keeps target/NAME-for-bindgen.wasm (function names intact)
# for bench/wasm-names.mjs.
set -euo pipefail
in=$1 out=$2 name=$3
root="$(cd "$(dirname "$0")/.." && pwd)"
export PATH="$HOME/.cargo/bin:$PATH"
for_bindgen="$root/target/$name-for-bindgen.wasm"
# Built without reference types (.cargo/config.toml, scripts/cargo-wasm.sh) for Safari 16; the
# features the linker still lists go too (reference-types from a precompiled std, as the
# stable browser tests have; call-indirect-overlong with build-std too), or wasm-bindgen
# would still emit its externref table.
node "$root/scripts/drop-features.mjs" "$in" "$for_bindgen" reference-types call-indirect-overlong
# TextEncoder.encodeInto is in every engine evbuf supports (Safari 14.1+), so the glue
# needs no fallback for it.
wasm-bindgen --target web --encode-into always --out-dir "$out" --out-name "$name" "$for_bindgen"
# wasm-opt's flags live in scripts/wasm-opt-flags.txt (bench/wasm-names.mjs redoes this
# step with them). -Os --converge came out smallest after gzip (measured against -Oz,
# -Oz --converge, -O3). -ocimfs 15 inlines a function with one caller only up to 15 bytes:
# inlining the large ones too makes fewer, larger functions that gzip compresses worse
# (87,478 -> 83,823 B gzip -9 by node's zlib, as scripts/sizes.mjs measures, although
# 6.5 KB larger raw; 8..25 all within 150 B of it, GNU gzip -9 agrees). The low 1 KiB of memory is the bottom of the stack (rustc lays the
# stack first and it never gets 1 MiB deep) and memory starts zeroed (the module creates
# its own): both let wasm-opt fold more. The producers and target-features sections are
# for tools only.
# shellcheck disable=SC2046 # the flags are meant to split into words
"$root/node_modules/.bin/wasm-opt" $(cat "$root/scripts/wasm-opt-flags.txt") \
  "$out/${name}_bg.wasm" -o "$out/${name}_bg.wasm"
# The glue minified (names of imports and exports, strings and `new URL('…', import.meta.url)`,
# which bundlers look for, stay as they are): about 2 KB less gzip.
"$root/node_modules/.bin/esbuild" "$out/$name.js" --minify --format=esm --target=es2021 \
  --log-level=warning --allow-overwrite --outfile="$out/$name.js"
# Then the names wasm-bindgen gives a hash (imports, exported closure shims) shortened in
# the module and the glue alike: 4.9 KB less gzip.
node "$root/scripts/short-imports.mjs" "$out" "$name"
