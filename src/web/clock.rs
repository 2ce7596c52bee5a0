//! The clock driver: milliseconds on a monotonic clock, anchored to the wall clock once per
//! page. Scheduling never stalls when the system clock is set back, and event timestamps
//! and `sent_at` stay wall-clock times (as of the page's start, plus elapsed time).

use std::cell::Cell;

use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    /// `performance.now()`, the same in a window and in a worker.
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    fn performance_now() -> f64;
}

thread_local! {
    static ORIGIN: Cell<Option<f64>> = const { Cell::new(None) };
}

/// Now, in milliseconds since the Unix epoch as of the page's start.
pub fn now() -> u64 {
    let elapsed = performance_now();
    let origin = ORIGIN.with(|origin| {
        let anchored = origin
            .get()
            .unwrap_or_else(|| js_sys::Date::now() - elapsed);
        origin.set(Some(anchored));
        anchored
    });
    (origin + elapsed) as u64
}
