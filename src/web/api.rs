//! The wasm-bindgen face, called by the JS wrapper (`js/index.js`), which queues calls
//! made before the module is loaded and serializes payloads.

use std::cell::RefCell;

use serde::Serialize;
use wasm_bindgen::prelude::*;

use super::{Client, Error, Options};

thread_local! {
    static CLIENT: RefCell<Option<Client>> = const { RefCell::new(None) };
}

fn client() -> Result<Client, Error> {
    CLIENT.with(|c| c.borrow().clone()).ok_or(Error::NotStarted)
}

/// Starts evbuf with these options, after shutting down an earlier start even if these
/// fail: the wrapper counts a failed `init()` as nothing running. Resolves to the longest
/// payload (in UTF-16 code units) `logBatch` takes.
#[wasm_bindgen]
pub async fn start(options: JsValue) -> Result<f64, JsValue> {
    if let Some(previous) = CLIENT.with(|c| c.borrow_mut().take()) {
        previous.shutdown().await;
    }
    let client = Client::start(Options::parse(&options)?).await?;
    let safe_payload_len = client.safe_payload_len() as f64;
    CLIENT.with(|c| *c.borrow_mut() = Some(client));
    Ok(safe_payload_len)
}

/// Logs the events of one tick, their JSON payloads separated by newlines; resolves when
/// all are stored.
#[wasm_bindgen(js_name = logBatch)]
pub fn log_batch(payloads: &str) -> Result<js_sys::Promise, JsValue> {
    Ok(client()?.log_batch(payloads)?)
}

/// Logs an event whose payload is JSON text; resolves when it is stored.
#[wasm_bindgen(js_name = logJson)]
pub fn log_json(payload: String) -> Result<js_sys::Promise, JsValue> {
    Ok(client()?.log(payload)?)
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

/// The numbers `stats()` returns (JS numbers: counts stay far below 2^53). `started` is
/// always true: it tells them apart from what the wrapper returns without a client.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsStats {
    started: bool,
    mode: &'static str,
    leader: bool,
    online: bool,
    logged: f64,
    stored: f64,
    persisted: f64,
    loaded: f64,
    sent: f64,
    acknowledged: f64,
    requests: f64,
    unload_requests: f64,
    failed: f64,
    retries: f64,
    dropped: JsDropped,
    queued: f64,
    queued_bytes: f64,
    unpersisted: f64,
    in_flight: f64,
    oldest_age_ms: Option<f64>,
    next_flush_at: Option<f64>,
    retry_at: Option<f64>,
    backoff_attempt: u32,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsDropped {
    oversize: f64,
    invalid: f64,
    poison: f64,
    storage_limit: f64,
    age: f64,
    total: f64,
}

#[wasm_bindgen]
pub fn stats() -> Result<JsValue, JsValue> {
    let (s, memory) = client()?.stats();
    let n = |v: u64| v as f64;
    let stats = JsStats {
        started: true,
        mode: if memory { "memory" } else { "indexeddb" },
        leader: s.leader,
        online: s.online,
        logged: n(s.logged),
        stored: n(s.queued + s.unpersisted),
        persisted: n(s.persisted),
        loaded: n(s.loaded),
        sent: n(s.sent),
        acknowledged: n(s.acknowledged),
        requests: n(s.requests),
        unload_requests: n(s.unload_requests),
        failed: n(s.failed_requests),
        retries: n(s.retries),
        dropped: JsDropped {
            oversize: n(s.dropped.oversize),
            invalid: n(s.dropped.invalid),
            poison: n(s.dropped.poison),
            storage_limit: n(s.dropped.storage_limit),
            age: n(s.dropped.age),
            total: n(s.dropped.total()),
        },
        queued: n(s.queued),
        queued_bytes: n(s.queued_bytes),
        unpersisted: n(s.unpersisted),
        in_flight: n(s.in_flight_events),
        oldest_age_ms: s.oldest_age_ms.map(n),
        next_flush_at: s.next_flush_at.map(n),
        retry_at: s.retry_at.map(n),
        backoff_attempt: s.backoff_attempt,
    };
    // The types promise `null` for a figure that has no value, not a missing property.
    Ok(stats.serialize(&serde_wasm_bindgen::Serializer::new().serialize_missing_as_null(true))?)
}
