//! evbuf: analytics events that cannot be lost. See README.md.
//!
//! `core` is the pure delivery state machine (native and wasm); `web` holds the browser
//! drivers and the wasm-bindgen API, compiled only for wasm32.

pub mod core;

#[cfg(target_arch = "wasm32")]
pub mod web;
