//! Random numbers from `crypto.getRandomValues`, fetched in blocks: one JS call per 256
//! event ids instead of one per id.

use js_sys::{Reflect, Uint8Array};
use wasm_bindgen::JsCast;
use web_sys::Crypto;

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
        let crypto = Reflect::get(&js_sys::global(), &"crypto".into())
            .ok()
            .and_then(|c| c.dyn_into::<Crypto>().ok());
        match crypto {
            Some(crypto) if crypto.get_random_values_with_js_u8_array(&array).is_ok() => {
                self.bytes = array.to_vec();
            }
            // Every browser evbuf supports has `crypto`; this only keeps ids unique elsewhere.
            _ => {
                self.bytes = (0..BLOCK)
                    .map(|_| (js_sys::Math::random() * 256.0) as u8)
                    .collect();
            }
        }
    }
}
