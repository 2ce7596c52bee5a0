//! Driver tests in a real browser (wasm-bindgen-test, headless Chromium and Firefox):
//! IndexedDB, reload recovery, and real flushes to the reference collector, which the
//! test command starts on 127.0.0.1 and names in `EVBUF_COLLECTOR` at build time.
#![cfg(target_arch = "wasm32")]

use std::cell::Cell;
use std::time::Duration;

use evbuf::core::NewEvent;
use evbuf::web::storage::IdbStorage;
use evbuf::web::{Client, Options};
use gloo_timers::future::sleep;
use js_sys::{Array, Object, Reflect, JSON};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const COLLECTOR: &str = match option_env!("EVBUF_COLLECTOR") {
    Some(url) => url,
    None => "http://127.0.0.1:8787",
};

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = fetch)]
    fn fetch_with_str_and_init(url: &str, init: &JsValue) -> js_sys::Promise;
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(callback: &js_sys::Function, ms: i32, argument: &JsValue);
}

fn obj(pairs: &[(&str, JsValue)]) -> JsValue {
    let o = Object::new();
    for (k, v) in pairs {
        Reflect::set(&o, &(*k).into(), v).unwrap();
    }
    o.into()
}

fn get(v: &JsValue, key: &str) -> JsValue {
    Reflect::get(v, &key.into()).unwrap()
}

async fn http(method: &str, path: &str, body: Option<&str>) -> JsValue {
    let init = obj(&[
        ("method", method.into()),
        ("body", body.map_or(JsValue::UNDEFINED, JsValue::from)),
    ]);
    let response = JsFuture::from(fetch_with_str_and_init(
        &format!("{COLLECTOR}{path}"),
        &init,
    ))
    .await
    .expect("the collector answers");
    let response: web_sys::Response = response.dyn_into().unwrap();
    let text = JsFuture::from(response.text().unwrap()).await.unwrap();
    let text = text.as_string().unwrap();
    if text.is_empty() {
        JsValue::NULL
    } else {
        JSON::parse(&text).unwrap()
    }
}

async fn control(json: &str) {
    http("POST", "/control", Some(json)).await;
}

/// Events the collector holds whose payload carries `run`.
async fn received(run: &str) -> Vec<JsValue> {
    let all = http("GET", "/events", None).await;
    Array::from(&get(&all, "events"))
        .iter()
        .filter(|e| get(&get(e, "payload"), "run").as_string().as_deref() == Some(run))
        .collect()
}

fn unique(name: &str) -> String {
    format!("{name}-{}", js_sys::Math::random().to_bits())
}

thread_local! {
    /// The page session of every client here: ids are made of it and the seq.
    static SESSION: String = unique("session");
    static LATEST_SEQ: Cell<u64> = const { Cell::new(0) };
}

/// The first of `n` seqs no event of this page has had, as the entry hands them out.
fn next_seqs(n: u64) -> u64 {
    LATEST_SEQ.with(|latest| {
        let first = latest.get() + 1;
        latest.set(latest.get() + n);
        first
    })
}

async fn start(options: Options) -> Result<Client, evbuf::web::Error> {
    Client::start(options, &SESSION.with(String::clone)).await
}

fn options(storage: &str, extra: &[(&str, JsValue)]) -> Options {
    let mut pairs = vec![
        ("endpoint", JsValue::from(format!("{COLLECTOR}/bulk/event"))),
        ("storageName", JsValue::from(storage)),
    ];
    pairs.extend(extra.iter().cloned());
    Options::parse(&obj(&pairs)).unwrap()
}

async fn log(client: &Client, run: &str, n: u32) {
    for i in 0..n {
        let payload = format!(r#"{{"run":"{run}","i":{i}}}"#);
        let promise = client.log_batch(&payload, None, next_seqs(1)).unwrap();
        // Awaited one by one only for the last: all share a write or two.
        if i == n - 1 {
            JsFuture::from(promise).await.unwrap();
        }
    }
}

async fn flush(client: &Client) -> Result<JsValue, JsValue> {
    JsFuture::from(client.flush()).await
}

fn new_event(i: u64) -> NewEvent {
    NewEvent {
        ticket: i,
        id: format!("id-{i}"),
        session: "s".into(),
        seq: i + 1,
        ts: 1_000 + i,
        payload: format!(r#"{{"i":{i}}}"#),
    }
}

#[wasm_bindgen_test]
async fn indexeddb_round_trip_keeps_what_was_not_deleted() {
    let name = unique("roundtrip");
    let (storage, device) = IdbStorage::open(&name, "new-device".into()).await.unwrap();
    assert_eq!(device, "new-device");
    let events: Vec<NewEvent> = (0..250).map(new_event).collect();
    let keys = storage.put_all(&events, &[]).await.unwrap();
    assert_eq!(
        keys,
        (1..=250).collect::<Vec<u64>>(),
        "seqs count up from 1"
    );
    // Delete a whole record (1..=100), part of another (101..=150), one of the last.
    let deleted: Vec<u64> = (1..=150).chain([250]).collect();
    storage.delete(&deleted).await.unwrap();

    // Reopen, as a reloaded page does: the device id and the rest are still there.
    let (again, device) = IdbStorage::open(&name, "other".into()).await.unwrap();
    assert_eq!(device, "new-device", "the device id is stable");
    let snapshot = again.load().await.unwrap();
    let (loaded, next_seq) = (snapshot.events, snapshot.below);
    assert_eq!(next_seq, 251);
    assert_eq!(snapshot.backoff, None, "no sender backed off");
    let loaded_keys: Vec<u64> = loaded.iter().map(|e| e.key).collect();
    assert_eq!(loaded_keys, (151..=249).collect::<Vec<u64>>());
    assert_eq!(loaded[0].id, "id-150");
    assert_eq!(loaded[0].payload, r#"{"i":150}"#);
    assert_eq!(loaded[0].ts, 1_150);
    // New writes continue the sequence, and take acknowledged keys out in the same
    // transaction (a delete never waits for logging to pause).
    let more = again.put_all(&[new_event(999)], &[151, 152]).await.unwrap();
    assert_eq!(more, vec![251]);
    let loaded = again.load().await.unwrap().events;
    assert_eq!(loaded[0].key, 153, "deleted with the write");
    assert_eq!(loaded.len(), 98);
    // What another tab wrote can be read by its seq range.
    let range = again.load_range(251, 251).await.unwrap();
    assert_eq!(range.len(), 1);
    assert_eq!(range[0].id, "id-999");
}

#[wasm_bindgen_test]
async fn a_write_that_assumed_next_seq_after_another_tab_wrote_goes_again_and_overwrites_nothing() {
    let name = unique("two-writers");
    let (first_tab, _) = IdbStorage::open(&name, "device".into()).await.unwrap();
    let (second_tab, _) = IdbStorage::open(&name, "device".into()).await.unwrap();
    async fn write(tab: &IdbStorage, i: u64) -> Vec<u64> {
        tab.put_all(&[new_event(i)], &[]).await.unwrap()
    }
    assert_eq!(write(&first_tab, 0).await, vec![1]);
    assert_eq!(
        write(&second_tab, 1).await,
        vec![2],
        "a tab that never wrote reads next_seq"
    );
    // The first tab's own last write says 2: another tab took it, so it goes again.
    assert_eq!(write(&first_tab, 2).await, vec![3]);
    assert_eq!(write(&second_tab, 3).await, vec![4]);
    assert_eq!(
        write(&second_tab, 4).await,
        vec![5],
        "alone again, it goes on from its own"
    );
    let loaded = first_tab.load().await.unwrap();
    let stored: Vec<(u64, &str)> = loaded
        .events
        .iter()
        .map(|e| (e.key, e.id.as_str()))
        .collect();
    assert_eq!(
        stored,
        [
            (1, "id-0"),
            (2, "id-1"),
            (3, "id-2"),
            (4, "id-3"),
            (5, "id-4")
        ]
    );
    assert_eq!(loaded.below, 6);
}

#[wasm_bindgen_test]
async fn events_flush_to_the_collector_in_the_wire_format() {
    let run = unique("flush");
    let client = start(options(&run, &[])).await.unwrap();
    log(&client, &run, 10).await;
    let (stats, memory) = client.stats();
    assert!(!memory, "IndexedDB works here");
    assert_eq!(stats.persisted, 10);
    assert_eq!(stats.requests, 0, "no request per event");
    flush(&client).await.unwrap();
    let events = received(&run).await;
    assert_eq!(events.len(), 10);
    let seqs: Vec<f64> = events
        .iter()
        .map(|e| get(e, "seq").as_f64().unwrap())
        .collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1.0), "{seqs:?}");
    let device = get(&events[0], "device").as_string().unwrap();
    assert_eq!(device.len(), 36);
    assert!(get(&events[0], "ts").as_f64().unwrap() > 1.7e12);
    let (stats, _) = client.stats();
    assert_eq!(
        (stats.acknowledged, stats.requests, stats.queued),
        (10, 1, 0)
    );
    client.shutdown().await;
}

/// `promise`'s value, or `"late"` if `ms` pass first.
async fn within(promise: js_sys::Promise, ms: i32) -> Result<JsValue, JsValue> {
    let late = js_sys::Promise::new(&mut |resolve, _| set_timeout(&resolve, ms, &"late".into()));
    JsFuture::from(js_sys::Promise::race(&Array::of2(&promise, &late))).await
}

#[wasm_bindgen_test]
async fn a_withdrawn_client_sends_and_stores_nothing_more_and_settles_the_calls_waiting() {
    let run = unique("withdrawn");
    let client = start(options(
        &run,
        &[
            ("flushIntervalMs", 100.into()),
            ("maxBufferSize", 1000.into()),
        ],
    ))
    .await
    .unwrap();
    let payload = |i: u32| format!(r#"{{"run":"{run}","i":{i}}}"#);
    // The first is being written as consent is withdrawn; the second waits for that write.
    let writing = client.log_batch(&payload(0), None, next_seqs(1)).unwrap();
    let waiting = client.log_batch(&payload(1), None, next_seqs(1)).unwrap();
    let flushed = client.flush();
    client.withdraw().await;
    for (what, promise) in [("being written", writing), ("waiting", waiting)] {
        let settled = within(promise, 2_000).await;
        assert!(
            settled.is_ok_and(|v| v.as_string().is_none()),
            "the call {what} resolves"
        );
    }
    let refused = within(flushed, 2_000).await.expect_err("the flush rejects");
    assert_eq!(
        get(&refused, "code").as_string().as_deref(),
        Some("opted-out")
    );
    sleep(Duration::from_millis(600)).await;
    assert!(received(&run).await.is_empty(), "nothing is sent after");
}

#[wasm_bindgen_test]
async fn the_interval_and_a_full_buffer_send_without_a_flush_call() {
    let run = unique("timer");
    let client = start(options(
        &run,
        &[
            ("flushIntervalMs", 300.into()),
            ("maxBufferSize", 1000.into()),
        ],
    ))
    .await
    .unwrap();
    log(&client, &run, 3).await;
    sleep(Duration::from_millis(900)).await;
    assert_eq!(received(&run).await.len(), 3, "sent by the interval timer");
    client.shutdown().await;

    let run = unique("early");
    let client = start(options(
        &run,
        &[
            ("flushIntervalMs", 60_000.into()),
            ("maxBufferSize", 5.into()),
        ],
    ))
    .await
    .unwrap();
    log(&client, &run, 5).await;
    sleep(Duration::from_millis(500)).await;
    let events = received(&run).await;
    assert_eq!(
        events.len(),
        5,
        "the fifth event starts a flush and goes with it"
    );
    client.shutdown().await;
}

#[wasm_bindgen_test]
async fn events_logged_while_a_request_is_held_open_survive_and_go_next() {
    let run = unique("held");
    let client = start(options(&run, &[("flushIntervalMs", 60_000.into())]))
        .await
        .unwrap();
    log(&client, &run, 5).await;
    control(r#"{"delay_ms":1500,"delay_count":1}"#).await;
    let before = http("GET", "/events?summary=1", None).await;
    let first = client.flush();
    sleep(Duration::from_millis(300)).await;
    log(&client, &run, 3).await;
    let second = client.flush(); // must wait: one send in flight
    JsFuture::from(first).await.unwrap();
    let (stats, _) = client.stats();
    assert_eq!(
        stats.queued, 3,
        "the 3 logged during the request are still stored"
    );
    assert_eq!(stats.acknowledged, 5);
    JsFuture::from(second).await.unwrap();
    assert_eq!(received(&run).await.len(), 8);
    let after = http("GET", "/events?summary=1", None).await;
    assert_eq!(
        get(&after, "max_in_flight").as_f64(),
        Some(1.0),
        "never two sends at once"
    );
    let requests =
        get(&after, "requests").as_f64().unwrap() - get(&before, "requests").as_f64().unwrap();
    assert_eq!(requests, 2.0);
    let (stats, _) = client.stats();
    assert_eq!(stats.queued, 0);
    client.shutdown().await;
    control("{}").await;
}

#[wasm_bindgen_test]
async fn a_failed_send_deletes_nothing_and_a_retry_delivers() {
    let run = unique("fail");
    let client = start(options(
        &run,
        &[
            ("flushIntervalMs", 60_000.into()),
            ("retry", obj(&[("baseMs", 20.into()), ("maxMs", 50.into())])),
        ],
    ))
    .await
    .unwrap();
    log(&client, &run, 4).await;
    control(r#"{"fail_status":500,"fail_count":1}"#).await;
    let err = flush(&client).await.unwrap_err();
    let message = get(&err, "message").as_string().unwrap();
    assert!(message.contains("500"), "{message}");
    let (stats, _) = client.stats();
    assert_eq!((stats.queued, stats.failed_requests), (4, 1));
    // The backoff (at most 50 ms here) retries by itself.
    sleep(Duration::from_millis(400)).await;
    assert_eq!(received(&run).await.len(), 4);
    assert_eq!(client.stats().0.queued, 0);
    client.shutdown().await;
    control("{}").await;
}

#[wasm_bindgen_test]
async fn events_left_by_an_earlier_page_are_sent_by_the_next() {
    let run = unique("reload");
    // The first page cannot reach its endpoint (nothing listens on port 9).
    let unreachable = Options::parse(&obj(&[
        ("endpoint", "http://127.0.0.1:9/bulk/event".into()),
        ("storageName", run.as_str().into()),
        ("flushIntervalMs", 60_000.into()),
        ("retry", obj(&[("baseMs", 20.into()), ("maxMs", 50.into())])),
    ]))
    .unwrap();
    let first = start(unreachable).await.unwrap();
    log(&first, &run, 6).await;
    assert!(flush(&first).await.is_err());
    first.shutdown().await;

    // The failure's backoff (at most 50 ms) carries over to the next page.
    sleep(Duration::from_millis(100)).await;
    let second = start(options(&run, &[("flushIntervalMs", 60_000.into())]))
        .await
        .unwrap();
    assert_eq!(second.stats().0.loaded, 6);
    flush(&second).await.unwrap();
    assert_eq!(received(&run).await.len(), 6);
    second.shutdown().await;

    let third = start(options(&run, &[])).await.unwrap();
    assert_eq!(
        third.stats().0.loaded,
        0,
        "acknowledged events are gone from storage"
    );
    third.shutdown().await;
}

#[wasm_bindgen_test]
async fn memory_mode_delivers_too() {
    let run = unique("memory");
    let client = start(options(&run, &[("useIndexedDb", false.into())]))
        .await
        .unwrap();
    log(&client, &run, 3).await;
    assert!(client.stats().1, "in memory");
    flush(&client).await.unwrap();
    assert_eq!(received(&run).await.len(), 3);
    client.shutdown().await;
}

async fn gzip_requests() -> f64 {
    let summary = http("GET", "/events?summary=1", None).await;
    get(&summary, "gzip_requests").as_f64().unwrap()
}

/// Sends `n` events with `compression: 'gzip'`; returns how many requests went, and how
/// many of them the collector decoded from gzip.
async fn send_gzip(run: &str, n: u32) -> (u64, f64) {
    let before = gzip_requests().await;
    let client = start(options(run, &[("compression", "gzip".into())]))
        .await
        .unwrap();
    log(&client, run, n).await;
    flush(&client).await.unwrap();
    let requests = client.stats().0.requests;
    client.shutdown().await;
    assert_eq!(received(run).await.len(), n as usize, "all delivered");
    (requests, gzip_requests().await - before)
}

#[wasm_bindgen_test]
async fn gzip_sends_are_decoded_and_go_plain_where_the_engine_cannot_compress() {
    let (requests, gzipped) = send_gzip(&unique("gzip"), 20).await;
    assert!(requests > 0);
    assert_eq!(gzipped, requests as f64, "every send went gzip");

    // An engine without CompressionStream (Safari before 16.4) sends plain JSON.
    let global = js_sys::global();
    let compression = Reflect::get(&global, &"CompressionStream".into()).unwrap();
    Reflect::delete_property(
        global.unchecked_ref::<Object>(),
        &"CompressionStream".into(),
    )
    .unwrap();
    let (requests, gzipped) = send_gzip(&unique("plain"), 5).await;
    Reflect::set(&global, &"CompressionStream".into(), &compression).unwrap();
    assert!(requests > 0);
    assert_eq!(gzipped, 0.0, "none went gzip");
}

#[wasm_bindgen_test]
fn bad_options_name_the_option() {
    let cases: [(JsValue, &str); 6] = [
        (obj(&[]), "endpoint"),
        (
            obj(&[("endpoint", "/e".into()), ("compression", "br".into())]),
            "invalid option `compression`: expected 'gzip' or 'none', got \"br\"",
        ),
        (
            obj(&[
                ("endpoint", "/e".into()),
                ("flushIntervalMs", "soon".into()),
            ]),
            "flushIntervalMs",
        ),
        (
            obj(&[("endpoint", "/e".into()), ("maxBufferSize", 0.into())]),
            "maxBufferSize",
        ),
        (
            obj(&[("endpoint", "/e".into()), ("flushInterval", 5.into())]),
            "unknown option `flushInterval`",
        ),
        (
            obj(&[
                ("endpoint", "/e".into()),
                ("retry", obj(&[("maxMs", (-1).into())])),
            ]),
            "retry.maxMs",
        ),
    ];
    for (raw, expected) in cases {
        let err = Options::parse(&raw).err().expect("rejected").to_string();
        assert!(err.contains(expected), "{err} should name {expected}");
    }
}

#[wasm_bindgen_test]
async fn an_event_larger_than_a_batch_is_refused_with_a_clear_error() {
    let run = unique("big");
    let client = start(options(&run, &[])).await.unwrap();
    let err = client
        .log_batch(&format!("\"{}\"", "x".repeat(70_000)), None, next_seqs(1))
        .err()
        .unwrap();
    assert!(err.to_string().contains("maxBatchBytes"), "{err}");
    assert_eq!(client.stats().0.dropped.oversize, 1);
    client.shutdown().await;
}

#[wasm_bindgen_test]
async fn a_tick_of_events_is_stamped_once_and_durable_in_one_write() {
    let run = unique("batch");
    let client = start(options(&run, &[])).await.unwrap();
    let payloads: Vec<String> = (0..250)
        .map(|i| format!(r#"{{"run":"{run}","i":{i}}}"#))
        .collect();
    let promise = client
        .log_batch(&payloads.join("\n"), None, next_seqs(250))
        .unwrap();
    assert_eq!(client.stats().0.logged, 250);
    JsFuture::from(promise).await.unwrap();
    assert_eq!(
        client.stats().0.persisted,
        250,
        "one write: none went ahead alone"
    );
    // A payload as long as the entry hands over in a batch fits, in any characters.
    let widest = format!(
        r#"{{"pad":"{}"}}"#,
        "\u{20ac}".repeat(client.safe_payload_len() - r#"{"pad":""}"#.len())
    );
    JsFuture::from(client.log_batch(&widest, None, next_seqs(1)).unwrap())
        .await
        .unwrap();
    // An oversize payload is refused (only the entry's check keeps it from a batch); its
    // neighbours are kept.
    let mixed = format!(
        "{{\"run\":\"{run}\",\"i\":250}}\n\"{}\"\n{{\"run\":\"{run}\",\"i\":251}}",
        "x".repeat(70_000)
    );
    let err = client.log_batch(&mixed, None, next_seqs(3)).err().unwrap();
    assert!(err.to_string().contains("maxBatchBytes"), "{err}");
    flush(&client).await.unwrap();
    let events = received(&run).await;
    let order: Vec<f64> = events
        .iter()
        .map(|e| get(&get(e, "payload"), "i").as_f64().unwrap())
        .collect();
    assert_eq!(order, (0..252).map(f64::from).collect::<Vec<_>>());
    let first_ts = get(&events[0], "ts");
    assert!(
        events[..250].iter().all(|e| get(e, "ts") == first_ts),
        "one timestamp"
    );
    let ids: std::collections::BTreeSet<String> = events
        .iter()
        .map(|e| get(e, "id").as_string().unwrap())
        .collect();
    assert_eq!(ids.len(), 252, "an id each");
    let (stats, _) = client.stats();
    assert_eq!((stats.logged, stats.dropped.oversize), (254, 1));
    client.shutdown().await;
}

#[wasm_bindgen_test]
async fn a_reloaded_page_keeps_the_backoff_of_the_last() {
    let run = unique("backoff");
    let first = start(options(&run, &[("flushIntervalMs", 60_000.into())]))
        .await
        .unwrap();
    log(&first, &run, 2).await;
    control(r#"{"fail_status":503,"fail_count":1,"retry_after":"30"}"#).await;
    assert!(flush(&first).await.is_err());
    let retry_at = first.stats().0.retry_at.expect("backing off");
    first.shutdown().await;
    control("{}").await;

    let second = start(options(&run, &[("flushIntervalMs", 60_000.into())]))
        .await
        .unwrap();
    assert_eq!(
        second.stats().0.retry_at,
        Some(retry_at),
        "the new page waits too"
    );
    assert!(
        flush(&second).await.is_err(),
        "flush says it is backing off"
    );
    assert!(received(&run).await.is_empty());
    second.shutdown().await;
}

#[wasm_bindgen(inline_js = "export function count_timeouts() {
    const real = globalThis.setTimeout;
    let n = 0;
    globalThis.setTimeout = function (...args) { n++; return real.apply(this, args); };
    return () => { globalThis.setTimeout = real; return n; };
}")]
extern "C" {
    /// Counts `setTimeout` calls until the returned function is called (it gives the count).
    fn count_timeouts() -> js_sys::Function;
}

#[wasm_bindgen_test]
async fn a_deadline_past_the_browser_timer_limit_does_not_spin() {
    let run = unique("far");
    let thirty_days = JsValue::from(30.0 * 86_400_000.0);
    let client = start(options(
        &run,
        &[
            ("flushIntervalMs", 60_000.into()),
            ("maxEventAgeMs", thirty_days),
        ],
    ))
    .await
    .unwrap();
    log(&client, &run, 1).await;
    // Offline nothing is sent, so the next deadline is the event's expiry, 30 days out:
    // past the 2^31-1 ms a `setTimeout` holds, which the browser fires at once.
    let global: web_sys::EventTarget = js_sys::global().unchecked_into();
    let dispatch = |kind: &str| {
        global
            .dispatch_event(&web_sys::Event::new(kind).unwrap())
            .unwrap()
    };
    let stop = count_timeouts();
    dispatch("offline");
    sleep(Duration::from_millis(500)).await;
    let armed = stop.call0(&JsValue::NULL).unwrap().as_f64().unwrap();
    assert!(armed < 10.0, "{armed} timeouts armed in 500 ms");
    dispatch("online");
    client.shutdown().await;
}

#[wasm_bindgen_test]
fn endpoint_and_headers_are_checked_and_the_endpoint_is_made_absolute() {
    let parse = |pairs: &[(&str, JsValue)]| Options::parse(&obj(pairs));
    let origin = get(&get(&js_sys::global(), "location"), "origin")
        .as_string()
        .unwrap();
    let relative = parse(&[("endpoint", "/bulk/event".into())]).unwrap();
    assert_eq!(relative.endpoint, format!("{origin}/bulk/event"));
    let absolute = parse(&[("endpoint", "https://example.com/b?x=1".into())]).unwrap();
    assert_eq!(absolute.endpoint, "https://example.com/b?x=1");
    let timeout = parse(&[("endpoint", "/e".into()), ("sendTimeoutMs", 5_000.into())]).unwrap();
    assert_eq!(timeout.config.send_timeout_ms, 5_000);

    let cases: [(&[(&str, JsValue)], &str); 6] = [
        (
            &[("endpoint", 123.into())],
            "`endpoint`: expected a string URL (http or https, absolute or relative to the page), got 123",
        ),
        (
            &[("endpoint", "ftp://example.com/e".into())],
            "`endpoint`: expected a string URL (http or https, absolute or relative to the page), got \"ftp://example.com/e\"",
        ),
        (&[("endpoint", "http://[::1/e".into())], "`endpoint`: "),
        // The entry turns every form of `headers` into a function, and applies the
        // browser's rules for header names and values (package tests).
        (
            &[
                ("endpoint", "/e".into()),
                ("headers", obj(&[("x-ok", "yes".into())])),
            ],
            "`headers`: expected the entry's function",
        ),
        (
            &[("endpoint", "/e".into()), ("sendTimeoutMs", 10.into())],
            "`sendTimeoutMs`",
        ),
        (
            &[("endpoint", "/e".into()), ("sendTimeoutMs", "soon".into())],
            "`sendTimeoutMs`",
        ),
    ];
    for (pairs, expected) in cases {
        let err = parse(pairs).err().expect("rejected").to_string();
        assert!(err.contains(expected), "{err} should contain {expected}");
    }
}

#[wasm_bindgen_test]
async fn the_client_reads_time_only_from_its_clock() {
    let run = unique("clock");
    let start = 1_600_000_000_000; // 2020: far from the page's own clock
    let (clock, time) = evbuf::web::Clock::by_hand(start);
    let client = Client::start_with_clock(
        options(&run, &[("flushIntervalMs", 60_000.into())]),
        &SESSION.with(String::clone),
        clock,
    )
    .await
    .unwrap();
    log(&client, &run, 3).await;
    let stats = client.stats().0;
    assert_eq!(stats.oldest_age_ms, Some(0));
    assert_eq!(stats.next_flush_at, Some(start + 60_000));
    time.set(start + 5_000);
    assert_eq!(client.stats().0.oldest_age_ms, Some(5_000));
    flush(&client).await.unwrap();
    let events = received(&run).await;
    assert_eq!(events.len(), 3);
    for event in &events {
        assert_eq!(
            get(event, "ts").as_f64(),
            Some(start as f64),
            "stamped by the clock"
        );
    }
    client.shutdown().await;
}
