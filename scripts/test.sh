#!/usr/bin/env bash
# `npm test`: sets up the machine, builds the package, and runs every test:
#   1. native: the core (unit, simulation, property) and the collector   (cargo test);
#      the docs' figures against the committed results          (bench/readme.mjs --check)
#   2. browser: the drivers in headless Chromium and Firefox against a real collector
#      (wasm-bindgen-test)
#   3. the React demo, driven headless, every event delivered          (scripts/demo.mjs)
#   4. the types: a usage file under strict, bundler and nodenext resolution  (tsc)
#   5. end to end: the npm package in Chromium via Playwright, and in Node (node --test);
#      the example endpoints (examples/endpoint-*), their SQLite databases read back
#   6. the end-to-end essentials in WebKitGTK and WPE WebKit 2.38 via WebDriver (node --test)
#   7. consumers: the packed package in Vite 8, Vite 7, webpack 5 and esbuild apps, in
#      Chromium, and in a Vitest app's own tests under jsdom (node --test; installs cached
#      in node_modules/.cache/evbuf-consumers)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

bash scripts/setup.sh
bash scripts/build.sh
cargo build --release -p evbuf-collector

printf '\n== native tests (cargo test)\n'
cargo test --workspace

printf '\n== the figures in the docs are those of the committed results; no prose figure, no broken link\n'
node bench/readme.mjs --check

printf '\n== the fleet bounds, 5,000 devices in virtual time (cargo test --release --test fleet_bounds)\n'
cargo test --release --test fleet_bounds

# A collector for the browser tests, on a free loopback port, stopped on exit.
log=$(mktemp)
./target/release/evbuf-collector --addr 127.0.0.1:0 > "$log" &
collector=$!
trap 'kill $collector 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q listening "$log" && break; sleep 0.1; done
url=$(awk '/listening on/ {print $4}' "$log")
[ -n "$url" ] || { echo "the collector did not start"; exit 1; }

export EVBUF_COLLECTOR="$url" WASM_BINDGEN_TEST_TIMEOUT=180 \
  CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER="$PWD/scripts/wasm-test-runner.sh"
printf '\n== browser tests in Chromium (wasm-bindgen-test, collector at %s)\n' "$url"
CHROMEDRIVER=/usr/bin/chromedriver cargo test --target wasm32-unknown-unknown --test web
printf '\n== browser tests in Firefox (wasm-bindgen-test, collector at %s)\n' "$url"
GECKODRIVER="$(command -v geckodriver)" cargo test --target wasm32-unknown-unknown --test web

kill $collector 2>/dev/null || true

printf '\n== the React demo, driven headless (examples/react-app)\n'
node scripts/demo.mjs --headless

printf '\n== types (tsc --noEmit, strict; bundler and nodenext resolution)\n'
for resolution in bundler nodenext; do
  node_modules/.bin/tsc -p "tests/types/tsconfig.$resolution.json"
done

printf '\n== end-to-end tests (Playwright, Chromium; the packed package in Node)\n'
node --test --test-concurrency=1 tests/e2e/

printf '\n== end-to-end essentials in WebKitGTK 2.50 and WPE WebKit 2.38 (WebDriver)\n'
node --test --test-concurrency=1 tests/webkit/

printf '\n== consumers: the packed package built by each bundler, in Chromium; in a Vitest app under jsdom\n'
node --test --test-concurrency=1 tests/consumers/
