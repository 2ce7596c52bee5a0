#!/usr/bin/env bash
# The cargo runner of the wasm32 tests: wasm-bindgen-test-runner on the test module with the
# features the precompiled std claims removed, as scripts/build.sh does for the package, so
# that the browser tests run the same build without reference types.
set -euo pipefail
module="$1"
shift
node "$(dirname "$0")/drop-features.mjs" "$module" "$module.bindgen.wasm" reference-types call-indirect-overlong >/dev/null
exec wasm-bindgen-test-runner "$module.bindgen.wasm" "$@"
