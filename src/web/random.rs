//! Random ids from `crypto.getRandomValues`: the device's and the tab's.

use js_sys::Uint8Array;
use wasm_bindgen::prelude::*;

use crate::core::wire;

#[wasm_bindgen]
extern "C" {
    /// The global `crypto.getRandomValues`, the same in a window and in a worker; throws
    /// where there is no `crypto`.
    #[wasm_bindgen(catch, js_namespace = crypto, js_name = getRandomValues)]
    fn get_random_values(array: &Uint8Array) -> Result<JsValue, JsValue>;
}

/// A random version-4 UUID.
pub fn uuid() -> String {
    let array = Uint8Array::new_with_length(16);
    let mut bytes = [0u8; 16];
    match get_random_values(&array) {
        Ok(_) => array.copy_to(&mut bytes),
        // Every browser evbuf supports has `crypto`; this only keeps ids unique elsewhere.
        Err(_) => bytes.fill_with(|| (js_sys::Math::random() * 256.0) as u8),
    }
    wire::uuid_v4(bytes)
}
