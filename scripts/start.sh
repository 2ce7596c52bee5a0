#!/usr/bin/env bash
# `npm start`: builds the package, starts the collector with an SQLite file, and serves a
# small page that logs events through evbuf.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

bash scripts/setup.sh
bash scripts/build.sh
cargo build --release -p evbuf-collector
db="${EVBUF_DB:-examples/collector/evbuf.sqlite}"
port="${PORT:-8787}"
cat <<TXT

evbuf demo
  page:       http://127.0.0.1:$port/        (click, then watch the stats)
  collector:  http://127.0.0.1:$port/events?summary=1
  events in:  $db (SQLite)
Stop with Ctrl-C.

TXT
exec ./target/release/evbuf-collector --addr "127.0.0.1:$port" --db "$db" \
  --serve "/=examples/basic" --serve "/pkg=pkg"
