//! The clock driver: milliseconds on a monotonic clock, anchored to the wall clock once per
//! page. Scheduling never stalls when the system clock is set back, and event timestamps
//! and `sent_at` stay wall-clock times (as of the page's start, plus elapsed time).

use std::cell::Cell;
use std::rc::Rc;

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

/// Now on the page's clock, in milliseconds since the Unix epoch as of the page's start.
fn page_now() -> u64 {
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

/// The time a client reads: the page's clock, or one a test sets by hand (the client's
/// only time source, so a test can say what the core is told).
#[derive(Clone, Default)]
pub struct Clock {
    set_by_hand: Option<Rc<Cell<u64>>>,
}

impl Clock {
    /// A clock that reads `start` until the returned cell is set.
    pub fn by_hand(start: u64) -> (Clock, Rc<Cell<u64>>) {
        let time = Rc::new(Cell::new(start));
        let clock = Clock {
            set_by_hand: Some(time.clone()),
        };
        (clock, time)
    }

    pub fn now(&self) -> u64 {
        match &self.set_by_hand {
            Some(time) => time.get(),
            None => page_now(),
        }
    }
}
