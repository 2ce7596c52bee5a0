//! Memory of the core during a long outage: the bench's memory run (100,000 events of
//! ~600 bytes logged in chunks of 1,000 against a server that answers 503, the default
//! `maxStoredEvents` of 10,000), without the browser. Storage lives outside the core (in
//! the browser it is IndexedDB, outside wasm memory), so the driver here only hands out
//! keys. A counting allocator sees every byte the core and its inputs hold; the peak must
//! stay under twice the bytes the core reports queued. Then the page after that outage:
//! loading what storage holds must not cost more either.
#![cfg(not(target_arch = "wasm32"))] // the lib brings its own global allocator there

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use evbuf::core::{Action, Config, Core, SendOutcome, StoredEvent};

/// The counters are global: one test measures at a time.
static MEASURING: Mutex<()> = Mutex::new(());

struct Counting;

static IN_USE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; only counted.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = IN_USE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(now, Ordering::Relaxed);
        System.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        IN_USE.fetch_sub(layout.size(), Ordering::Relaxed);
        System.dealloc(ptr, layout);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            let now = IN_USE.fetch_add(new_size - layout.size(), Ordering::Relaxed) + new_size
                - layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        } else {
            IN_USE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
        }
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The bench's payload (bench/pages/bench.js `makePayload`), as `JSON.stringify` gives it
/// and wasm-bindgen hands it over: a string of exactly its length (`format!` reserves
/// up to twice as much).
fn payload(i: u64) -> String {
    let mut json = format!(
        concat!(
            r#"{{"type":"CLICK","screen":"ProductDetail","element":"add-to-cart","i":{i},"#,
            r#""userId":"u_8f3a2c91d4e6b7a0","sessionId":"5b2f7c1e-9a4d-4e8b-b3f6-2d1c0a9e8f7b","#,
            r#""clientTs":{ts},"url":"https://shop.example.com/products/sku-1234567","#,
            r#""locale":"en-US","viewport":{{"w":1440,"h":900}},"#,
            r#""app":{{"version":"4.12.3","build":20241122,"platform":"web"}},"#,
            r#""experiment":{{"id":"checkout-cta-2024-11","variant":"B"}},"#,
            r#""props":{{"productId":"sku-1234567","price":49.99,"currency":"EUR","quantity":1,"position":3,"list":"recommended"}}}}"#
        ),
        i = i,
        ts = 1_732_240_000_000 + i
    );
    json.shrink_to_fit();
    json
}

/// Executes every action as the browser driver would with a server that answers 503:
/// storage assigns keys and deletes at once, each send fails.
fn run_actions(core: &mut Core, now: u64, next_key: &mut u64) {
    while let Some(action) = core.poll_action() {
        match action {
            Action::Persist(events) => {
                let keys: Vec<u64> = (*next_key..*next_key + events.len() as u64).collect();
                *next_key += events.len() as u64;
                drop(events);
                core.handle_persisted(now, &keys);
            }
            Action::Delete(keys) => core.handle_deleted(now, keys.len()),
            Action::Send(batch) => {
                core.handle_send_result(now, batch.id, SendOutcome::status(503), 0.5);
            }
            _ => {}
        }
    }
}

fn new_core() -> Core {
    Core::new(
        Config::default(),
        "5b2f7c1e-9a4d-4e8b-b3f6-2d1c0a9e8f7b".into(),
        SESSION,
    )
    .expect("the default config is valid")
}

/// A page session id, as the entry makes it.
const SESSION: &str = "0c3e5a7b-1d2f-4a6b-8c9d-0e1f2a3b4c5d";

fn event_id(i: u64) -> String {
    let mut id = format!("00000000-0000-4000-8000-{i:012}");
    id.shrink_to_fit();
    id
}

#[test]
fn a_long_outage_holds_less_than_twice_the_queued_bytes() {
    let _measuring = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
    const TOTAL: u64 = 100_000;
    const CHUNK: u64 = 1_000;
    let mut core = Core::new(
        Config::default(),
        "5b2f7c1e-9a4d-4e8b-b3f6-2d1c0a9e8f7b".into(),
        SESSION,
    )
    .expect("the default config is valid");
    let mut now = 1_732_240_000_000;
    let mut next_key = 1;
    let mut worst: f64 = 0.0;
    let mut logged = 0;
    while logged < TOTAL {
        for _ in 0..CHUNK {
            core.handle_log(now, event_id(logged), logged + 1, payload(logged))
                .expect("the payload fits a batch");
            logged += 1;
        }
        run_actions(&mut core, now, &mut next_key);
        now += 100;
        if core.poll_timeout().is_some_and(|at| at <= now) {
            core.handle_timeout(now);
            run_actions(&mut core, now, &mut next_key);
        }
        let queued_bytes = core.stats(now).queued_bytes as f64;
        let peak = PEAK.swap(IN_USE.load(Ordering::Relaxed), Ordering::Relaxed) as f64;
        if logged >= 10_000 {
            worst = worst.max(peak / queued_bytes);
        }
    }
    let stats = core.stats(now);
    assert_eq!(stats.queued, 10_000, "the storage limit holds");
    println!("worst peak / queued bytes: {worst:.2}");
    assert!(
        worst < 2.0,
        "memory peaked at {worst:.2} times the queued bytes"
    );
}

#[test]
fn loading_a_full_store_holds_less_than_twice_the_queued_bytes() {
    let _measuring = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
    let now = 1_732_240_000_000;
    let mut core = new_core();
    let before = IN_USE.load(Ordering::Relaxed);
    let stored: Vec<StoredEvent> = (1..=10_000)
        .map(|key| StoredEvent {
            key,
            session: SESSION.into(),
            seq: key,
            id: event_id(key),
            ts: now - 1000,
            payload: payload(key),
        })
        .collect();
    PEAK.store(IN_USE.load(Ordering::Relaxed), Ordering::Relaxed);
    core.handle_loaded(now, stored);
    let peak = (PEAK.load(Ordering::Relaxed) - before) as f64;
    let queued_bytes = core.stats(now).queued_bytes as f64;
    println!("load: peak / queued bytes: {:.2}", peak / queued_bytes);
    assert!(
        peak < 2.0 * queued_bytes,
        "loading peaked at {:.2} times the queued bytes",
        peak / queued_bytes
    );
}
