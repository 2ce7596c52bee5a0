#!/usr/bin/env bash
# The cargo build of a shipped module, shared by the package (scripts/build.sh) and the size
# floor (bench/floor/measure.mjs) so that both are built alike:
#   scripts/cargo-wasm.sh --target-dir DIR [CARGO BUILD ARGS…]
# writes DIR/wasm32-unknown-unknown/release/NAME.wasm. Pinned nightly (scripts/nightly.sh,
# installed by scripts/setup.sh) with std rebuilt from source (build-std), for size: with
# the same code, the shipped files 94,205 -> 81,343 B gzip (scripts/sizes.mjs) against
# stable 1.95 and its precompiled std.
# Give it a target dir of its own: stable's artifacts (cargo test, the browser tests) and
# these do not share a cache.
set -euo pipefail
source "$(dirname "$0")/nightly.sh"
export PATH="$HOME/.cargo/bin:$PATH"
if ! rustup toolchain list | grep "^$EVBUF_NIGHTLY-" >/dev/null; then
  echo "cargo-wasm.sh: the toolchain $EVBUF_NIGHTLY is missing: run scripts/setup.sh" >&2
  exit 1
fi
# What each flag takes off the shipped gzip, measured by building without it:
# - -Cpanic=immediate-abort (with std rebuilt so): a panic traps at once, without formatting
#   a message; the message went nowhere before either (wasm32-unknown-unknown has no stderr),
#   and the trap is the same `RuntimeError: unreachable`. About 10.5 KB.
# - the optimize_for_size feature of std: smaller, slower std algorithms. About 0.6 KB.
# - -Zlocation-detail=none: no file, line and column in the Location a #[track_caller]
#   function is handed; only panic messages (gone) and debug builds read them. About 0.9 KB.
# - -Csymbol-mangling-version=legacy: this nightly mangles v0 by default, and
#   scripts/short-imports.mjs shortens only the legacy names (`…__invoke__h<hash>`) of the
#   exported closure shims: the long v0 ones stayed in the module and the glue. About 0.4 KB.
# - -reference-types: as .cargo/config.toml (which RUSTFLAGS replaces), for Safari 16; without
#   it wasm-bindgen 0.2.130 emits its externref table and scripts/bindgen.sh fails.
# Not used: -Zfmt-debug=none (0.4 KB less), as it empties `{:?}`, which an error message
# reads (src/web/transport.rs).
RUSTFLAGS="-C target-feature=-reference-types -Zunstable-options -Cpanic=immediate-abort -Zlocation-detail=none -Csymbol-mangling-version=legacy" \
  exec cargo "+$EVBUF_NIGHTLY" build --release --target wasm32-unknown-unknown \
  -Zbuild-std=std,panic_abort -Zbuild-std-features=optimize_for_size "$@"
