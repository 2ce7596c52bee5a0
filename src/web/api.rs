//! The wasm-bindgen face, called by the JS wrapper (`js/index.js`), which queues calls
//! made before the module is loaded and serializes payloads.

use std::cell::RefCell;

use serde::ser::{Serialize, SerializeMap, Serializer};
use wasm_bindgen::prelude::*;

use super::{Client, Error, Options};

thread_local! {
    static CLIENT: RefCell<Option<Client>> = const { RefCell::new(None) };
}

fn client() -> Result<Client, Error> {
    CLIENT.with(|c| c.borrow().clone()).ok_or(Error::NotStarted)
}

/// Starts evbuf with these options for the page session `session`, after shutting down an
/// earlier start even if these fail: the wrapper counts a failed `init()` as nothing
/// running. Resolves to the longest payload (in UTF-16 code units) `logBatch` takes.
#[wasm_bindgen]
pub async fn start(options: JsValue, session: String) -> Result<f64, JsValue> {
    if let Some(previous) = CLIENT.with(|c| c.borrow_mut().take()) {
        previous.shutdown().await;
    }
    let client = Client::start(Options::parse(&options)?, &session).await?;
    let safe_payload_len = client.safe_payload_len() as f64;
    CLIENT.with(|c| *c.borrow_mut() = Some(client));
    Ok(safe_payload_len)
}

/// Logs the events of one tick, their JSON payloads separated by newlines, numbered from
/// `first_seq` in the page's session, made at `at` (ms since the epoch) if they waited for
/// the client, else now; resolves when all are stored.
#[wasm_bindgen(js_name = logBatch)]
pub fn log_batch(
    payloads: &str,
    at: Option<f64>,
    first_seq: f64,
) -> Result<js_sys::Promise, JsValue> {
    Ok(client()?.log_batch(payloads, at.map(|ms| ms as u64), first_seq as u64)?)
}

/// Counts an event whose payload could not be serialized.
#[wasm_bindgen(js_name = countInvalid)]
pub fn count_invalid() {
    if let Ok(client) = client() {
        client.count_invalid_payload();
    }
}

#[wasm_bindgen]
pub fn flush() -> Result<js_sys::Promise, JsValue> {
    Ok(client()?.flush())
}

#[wasm_bindgen]
pub async fn shutdown() -> Result<(), JsValue> {
    let Some(client) = CLIENT.with(|c| c.borrow_mut().take()) else {
        return Ok(());
    };
    client.shutdown().await;
    Ok(())
}

/// Withdraws consent: the running client, if any, stops sending and storing; resolves once
/// its writes under way have ended (the wrapper then erases storage).
#[wasm_bindgen(js_name = optOut)]
pub async fn opt_out() {
    if let Some(client) = CLIENT.with(|c| c.borrow_mut().take()) {
        client.withdraw().await;
    }
}

/// What `stats()` returns, as JS numbers (counts stay far below 2^53). `started` is always
/// true: it tells them apart from what the wrapper returns without a client. Written as
/// maps with string keys: serde's struct path would cache every field name in a hash map
/// (serde-wasm-bindgen's `static_str_to_js`), code that weighs more than the names.
struct JsStats {
    stats: crate::core::Stats,
    memory: bool,
}

struct JsDropped<'a>(&'a crate::core::DropCounts);

fn n(v: u64) -> f64 {
    v as f64
}

impl Serialize for JsStats {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let s = &self.stats;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("started", &true)?;
        map.serialize_entry("mode", if self.memory { "memory" } else { "indexeddb" })?;
        map.serialize_entry("sender", &s.leader)?;
        map.serialize_entry("online", &s.online)?;
        for (name, value) in [
            ("logged", s.logged),
            ("stored", s.queued + s.unpersisted),
            ("persisted", s.persisted),
            ("loaded", s.loaded),
            ("adopted", s.adopted),
            ("handedOver", s.handed_over),
            ("settledElsewhere", s.settled_elsewhere),
            ("sent", s.sent),
            ("acknowledged", s.acknowledged),
            ("requests", s.requests),
            ("unloadRequests", s.unload_requests),
            ("failed", s.failed_requests),
            ("retries", s.retries),
        ] {
            map.serialize_entry(name, &n(value))?;
        }
        map.serialize_entry("dropped", &JsDropped(&s.dropped))?;
        for (name, value) in [
            ("queued", s.queued),
            ("queuedBytes", s.queued_bytes),
            ("unpersisted", s.unpersisted),
            ("inFlight", s.in_flight_events),
        ] {
            map.serialize_entry(name, &n(value))?;
        }
        // The types promise `null` for a figure that has no value, not a missing property.
        for (name, value) in [
            ("oldestAgeMs", s.oldest_age_ms),
            ("nextFlushAt", s.next_flush_at),
            ("retryAt", s.retry_at),
        ] {
            map.serialize_entry(name, &value.map(n))?;
        }
        map.serialize_entry("backoffAttempt", &n(s.backoff_attempt.into()))?;
        map.end()
    }
}

impl Serialize for JsDropped<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let d = self.0;
        let mut map = serializer.serialize_map(None)?;
        for (name, value) in [
            ("oversize", d.oversize),
            ("invalid", d.invalid),
            ("poison", d.poison),
            ("storageLimit", d.storage_limit),
            ("age", d.age),
            ("total", d.total()),
        ] {
            map.serialize_entry(name, &n(value))?;
        }
        map.end()
    }
}

#[wasm_bindgen]
pub fn stats() -> Result<JsValue, JsValue> {
    let (stats, memory) = client()?.stats();
    let serializer = serde_wasm_bindgen::Serializer::new()
        .serialize_missing_as_null(true)
        .serialize_maps_as_objects(true);
    Ok(JsStats { stats, memory }.serialize(&serializer)?)
}
