//! evbuf: analytics events stored in IndexedDB and sent in bulk, at least once. See README.md.
//!
//! `core` is the pure delivery state machine (native and wasm); `web` holds the browser
//! drivers and the wasm-bindgen API, compiled only for wasm32.

pub mod core;

#[cfg(target_arch = "wasm32")]
pub mod web;

/// Talc in place of the default dlmalloc: the same job in less code (the module is
/// single-threaded, which `WasmDynamicTalc` requires).
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();
