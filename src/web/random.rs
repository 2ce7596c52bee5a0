//! Random numbers from `crypto.getRandomValues`, fetched in blocks: one JS call per 256
//! event ids instead of one per id.

use js_sys::Uint8Array;
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    /// The global `crypto.getRandomValues`, the same in a window and in a worker; throws
    /// where there is no `crypto`.
    #[wasm_bindgen(catch, js_namespace = crypto, js_name = getRandomValues)]
    fn get_random_values(array: &Uint8Array) -> Result<JsValue, JsValue>;
}

const BLOCK: usize = 16 * 256;

pub struct RandomPool {
    bytes: Vec<u8>,
}

impl RandomPool {
    pub fn new() -> Self {
        RandomPool { bytes: Vec::new() }
    }

    /// 16 random bytes.
    pub fn take16(&mut self) -> [u8; 16] {
        if self.bytes.len() < 16 {
            self.refill();
        }
        let mut out = [0u8; 16];
        out.copy_from_slice(&self.bytes[self.bytes.len() - 16..]);
        self.bytes.truncate(self.bytes.len() - 16);
        out
    }

    fn refill(&mut self) {
        let array = Uint8Array::new_with_length(BLOCK as u32);
        match get_random_values(&array) {
            Ok(_) => self.bytes = array.to_vec(),
            // Every browser evbuf supports has `crypto`; this only keeps ids unique elsewhere.
            Err(_) => {
                self.bytes = (0..BLOCK)
                    .map(|_| (js_sys::Math::random() * 256.0) as u8)
                    .collect();
            }
        }
    }
}
