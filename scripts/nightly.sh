# Sourced by scripts/setup.sh and scripts/build.sh: the one place that pins the nightly
# toolchain which builds the shipped module (with build-std, for size; see build.sh).
# Everything else (cargo test, clippy, the wasm-bindgen-test browser tests) stays on stable.
# nightly-2026-05-19 ships no wasm32-unknown-unknown rust-std, and build-std needs none:
# rust-src is all it takes.
# shellcheck disable=SC2034 # read by the scripts that source this file
EVBUF_NIGHTLY=nightly-2026-05-19
