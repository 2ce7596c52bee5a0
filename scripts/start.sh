#!/usr/bin/env bash
# `npm start`: builds the package and the collector, then runs the React demo
# (examples/react-app) against the collector on 127.0.0.1 and prints the URLs.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

bash scripts/setup.sh
bash scripts/build.sh
cargo build --release -p evbuf-collector
exec node scripts/demo.mjs "$@"
