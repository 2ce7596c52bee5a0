#!/usr/bin/env bash
# Builds the npm package into pkg/: the wasm module, its JS glue and .d.ts, and the
# wrapper that is the package's entry. Prints the shipped sizes.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

# The shipped module: pinned nightly with build-std (scripts/cargo-wasm.sh), in a target dir
# of its own; everything else builds with stable in target/.
bash scripts/cargo-wasm.sh --target-dir target/wasm-release -p evbuf
rm -rf pkg
bash scripts/bindgen.sh target/wasm-release/wasm32-unknown-unknown/release/evbuf.wasm pkg evbuf
# The entry and the fallback client minified like the glue, each with js/send.js bundled
# in (the glue and the fallback stay files of their own); the types as they are.
for f in index.js fallback.js; do
  node_modules/.bin/esbuild "js/$f" --bundle --external:./evbuf.js --external:./fallback.js \
    --minify --format=esm --target=es2021 --log-level=warning --outfile="pkg/$f"
done
cp js/index.d.ts pkg/
node scripts/sizes.mjs
