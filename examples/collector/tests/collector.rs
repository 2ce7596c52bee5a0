//! Talks to a real collector over loopback with a deliberately dumb HTTP/1.1
//! client, so what is tested is what a browser sees on the wire.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use evbuf_collector::{serve, Config, Mount};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!("{e}: {}", String::from_utf8_lossy(&self.body));
        })
    }
}

async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    let mut stream = send(addr, method, path, headers, body).await;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();

    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8(raw[..split].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut resp = Resp {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    };
    if resp.header("transfer-encoding") == Some("chunked") {
        resp.body = dechunk(&resp.body);
    }
    resp
}

/// Writes a whole request and returns the connection, answer unread.
async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    stream
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let eol = raw.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = std::str::from_utf8(&raw[..eol])
            .unwrap()
            .split(';')
            .next()
            .unwrap();
        let size = usize::from_str_radix(size.trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&raw[eol + 2..eol + 2 + size]);
        raw = &raw[eol + 4 + size..];
    }
}

const JSON: (&str, &str) = ("Content-Type", "application/json");

async fn post(addr: SocketAddr, path: &str, body: &Value) -> Resp {
    request(addr, "POST", path, &[JSON], body.to_string().as_bytes()).await
}

async fn get(addr: SocketAddr, path: &str) -> Value {
    let resp = request(addr, "GET", path, &[], b"").await;
    assert_eq!(resp.status, 200);
    resp.json()
}

async fn start() -> SocketAddr {
    start_with(Config::default()).await
}

async fn start_with(config: Config) -> SocketAddr {
    let config = Config {
        addr: "127.0.0.1:0".parse().unwrap(),
        ..config
    };
    // The server is detached; it ends with the test's runtime.
    let (addr, _server) = serve(config).await.unwrap();
    addr
}

fn batch(device: &str, events: &[(&str, i64)]) -> Value {
    let events: Vec<Value> = events
        .iter()
        .map(|(id, seq)| json!({"id": id, "session": device, "seq": seq, "ts": 1_732_240_000_000i64 + seq, "payload": {"n": seq}}))
        .collect();
    json!({"sent_at": 1_732_240_000_123i64, "device": device, "events": events})
}

#[tokio::test]
async fn stores_and_counts_duplicates() {
    let addr = start().await;
    let first = batch("dev-1", &[("a", 1), ("b", 2), ("c", 3)]);
    let resp = post(addr, "/bulk/event", &first).await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.json(), json!({"accepted": 3, "duplicates": 0}));

    // A retried batch overlapping the first: only "d" is new.
    let second = batch("dev-1", &[("b", 2), ("c", 3), ("d", 4)]);
    let resp = post(addr, "/bulk/event", &second).await;
    assert_eq!(resp.json(), json!({"accepted": 1, "duplicates": 2}));

    let report = get(addr, "/events").await;
    assert_eq!(report["count"], 4);
    assert_eq!(report["duplicates"], 2);
    assert_eq!(report["requests"], 2);
    assert_eq!(report["accepted_requests"], 2);
    assert_eq!(report["rejected_requests"], json!({}));
    let bytes = first.to_string().len() + second.to_string().len();
    assert_eq!(report["bytes"], bytes);
    assert_eq!(report["ids"], json!(["a", "b", "c", "d"]));
    assert_eq!(report["events"][3]["device"], "dev-1");
    assert_eq!(report["events"][3]["seq"], 4);
    assert_eq!(report["events"][3]["ts"], 1_732_240_000_004i64);
    assert_eq!(report["events"][3]["payload"], json!({"n": 4}));
    assert_eq!(report["gaps"], json!([]));

    let summary = get(addr, "/events?summary=1").await;
    assert_eq!(summary["count"], 4);
    assert!(summary.get("ids").is_none() && summary.get("events").is_none());
}

#[tokio::test]
async fn an_event_without_its_session_or_seq_is_refused() {
    let addr = start().await;
    for field in ["session", "seq"] {
        let mut body = batch("dev-1", &[("a", 1)]);
        body["events"][0].as_object_mut().unwrap().remove(field);
        let resp = post(addr, "/bulk/event", &body).await;
        assert_eq!(resp.status, 400, "without {field}");
        assert!(
            resp.json()["error"].as_str().unwrap().contains(field),
            "{:?}",
            resp.json()
        );
    }
    assert_eq!(get(addr, "/events").await["count"], 0);
}

#[tokio::test]
async fn accepts_text_plain_and_rejects_garbage() {
    let addr = start().await;
    let body = batch("dev-1", &[("a", 1)]).to_string();
    let text = ("Content-Type", "text/plain;charset=UTF-8");
    let resp = request(addr, "POST", "/bulk/event", &[text], body.as_bytes()).await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.json()["accepted"], 1);

    let resp = request(addr, "POST", "/bulk/event", &[JSON], b"{\"events\": 3}").await;
    assert_eq!(resp.status, 400);
    assert!(resp.json()["error"]
        .as_str()
        .unwrap()
        .contains("invalid batch"));
    let resp = request(addr, "POST", "/bulk/event", &[text], b"not json").await;
    assert_eq!(resp.status, 400);

    let report = get(addr, "/events").await;
    assert_eq!(report["count"], 1);
    assert_eq!(report["requests"], 3);
    assert_eq!(report["accepted_requests"], 1);
    assert_eq!(report["rejected_requests"], json!({"400": 2}));
    // text/plain is the unload path's: counted apart, with its bytes.
    assert_eq!(report["unload_requests"], 2);
    assert_eq!(report["unload_bytes"], body.len() + "not json".len());
    assert_eq!(report["largest_unload_body"], body.len());
}

#[tokio::test]
async fn cors_headers_on_posts_errors_and_preflight() {
    let addr = start().await;
    let origin = ("Origin", "http://127.0.0.1:9999");
    let ok = request(
        addr,
        "POST",
        "/bulk/event",
        &[JSON, origin],
        batch("d", &[]).to_string().as_bytes(),
    )
    .await;
    let bad = request(addr, "POST", "/bulk/event", &[JSON, origin], b"{").await;
    for resp in [&ok, &bad] {
        assert_eq!(resp.header("access-control-allow-origin"), Some("*"));
        assert_eq!(
            resp.header("access-control-expose-headers"),
            Some("retry-after")
        );
    }
    assert_eq!((ok.status, bad.status), (200, 400));

    let preflight = [
        origin,
        ("Access-Control-Request-Method", "POST"),
        (
            "Access-Control-Request-Headers",
            "content-type,content-encoding,x-api-key",
        ),
    ];
    let resp = request(addr, "OPTIONS", "/bulk/event", &preflight, b"").await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        resp.header("access-control-allow-methods"),
        Some("GET,POST,OPTIONS")
    );
    assert_eq!(
        resp.header("access-control-allow-headers"),
        Some("content-type,content-encoding,x-api-key"),
        "the headers the preflight asked for"
    );
    assert_eq!(resp.header("access-control-max-age"), Some("600"));
    // The two posts count; the preflight is not a bulk request.
    assert_eq!(get(addr, "/events").await["requests"], 2);
}

#[tokio::test]
async fn injected_failures_with_retry_after() {
    let addr = start().await;
    let control = json!({"fail_status": 503, "fail_count": 2, "retry_after": "2"});
    assert_eq!(post(addr, "/control", &control).await.status, 200);
    assert_eq!(get(addr, "/control").await["fail_count"], 2);

    for _ in 0..2 {
        let resp = post(addr, "/bulk/event", &batch("d", &[("a", 1)])).await;
        assert_eq!(resp.status, 503);
        assert_eq!(resp.header("retry-after"), Some("2"));
        assert_eq!(resp.header("access-control-allow-origin"), Some("*"));
    }
    let resp = post(addr, "/bulk/event", &batch("d", &[("a", 1)])).await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("retry-after"), None);

    // A time window instead of a count.
    let control = json!({"fail_status": 429, "fail_for_ms": 300});
    post(addr, "/control", &control).await;
    assert_eq!(
        post(addr, "/bulk/event", &batch("d", &[("b", 2)]))
            .await
            .status,
        429
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        post(addr, "/bulk/event", &batch("d", &[("b", 2)]))
            .await
            .status,
        200
    );

    let report = get(addr, "/events").await;
    assert_eq!(report["count"], 2);
    assert_eq!(report["requests"], 5);
    assert_eq!(report["accepted_requests"], 2);
    assert_eq!(report["rejected_requests"], json!({"429": 1, "503": 2}));

    // `{}` clears everything.
    post(addr, "/control", &json!({"fail_status": 500})).await;
    let cleared = post(addr, "/control", &json!({})).await.json();
    assert_eq!(cleared["fail_status"], Value::Null);
    assert_eq!(
        post(addr, "/bulk/event", &batch("d", &[])).await.status,
        200
    );
}

#[tokio::test]
async fn control_rejects_typos() {
    let addr = start().await;
    let resp = post(addr, "/control", &json!({"fail_stauts": 503})).await;
    assert_eq!(resp.status, 400);
    let resp = post(addr, "/control", &json!({"fail_status": 200})).await;
    assert_eq!(resp.status, 400);
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let addr = start().await;
    post(addr, "/control", &json!({"max_body_bytes": 200})).await;
    let big = batch("d", &[("a", 1), ("b", 2), ("c", 3), ("d", 4)]);
    assert!(big.to_string().len() > 200);
    let resp = post(addr, "/bulk/event", &big).await;
    assert_eq!(resp.status, 413);
    assert_eq!(
        post(addr, "/bulk/event", &batch("d", &[("a", 1)]))
            .await
            .status,
        200
    );

    let report = get(addr, "/events").await;
    assert_eq!(report["ids"], json!(["a"]));
    assert_eq!(report["rejected_requests"], json!({"413": 1}));
}

#[tokio::test]
async fn poisoned_batches_are_rejected_whole() {
    let addr = start().await;
    post(addr, "/control", &json!({"poison_key": "poison"})).await;
    let mut poisoned = batch("d", &[("a", 1), ("b", 2)]);
    poisoned["events"][1]["payload"] = json!({"poison": true});
    let resp = post(addr, "/bulk/event", &poisoned).await;
    assert_eq!(resp.status, 400);
    assert!(resp.json()["error"].as_str().unwrap().contains("poison"));

    // Only `true` poisons.
    poisoned["events"][1]["payload"] = json!({"poison": false});
    assert_eq!(post(addr, "/bulk/event", &poisoned).await.status, 200);
    assert_eq!(get(addr, "/events").await["ids"], json!(["a", "b"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delays_apply_per_request_and_overlap() {
    let addr = start().await;
    let control = json!({"delay_ms": 400, "delay_count": 4});
    post(addr, "/control", &control).await;
    let started = Instant::now();
    let timed = |id: &'static str, seq: i64| async move {
        let resp = post(addr, "/bulk/event", &batch("d", &[(id, seq)])).await;
        (resp.status, started.elapsed())
    };
    let (a, b, c, d) = tokio::join!(timed("a", 1), timed("b", 2), timed("c", 3), timed("d", 4));
    for (status, took) in [a, b, c, d] {
        assert_eq!(status, 200);
        assert!(
            took >= Duration::from_millis(400),
            "answered after {took:?}"
        );
    }
    // One after another, four delays would take 1.6 s.
    let all = started.elapsed();
    assert!(
        all < Duration::from_millis(1_000),
        "four delayed answers took {all:?}"
    );
    assert_eq!(get(addr, "/control").await["delay_count"], 0);

    let started = Instant::now();
    post(addr, "/bulk/event", &batch("d", &[("e", 5)])).await;
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "the count is spent"
    );
    let report = get(addr, "/events").await;
    assert_eq!(report["max_in_flight"], 4);
    assert_eq!(
        report["max_sends_in_flight"], 4,
        "JSON sends: not the unload path"
    );
    assert_eq!(report["in_flight"], 0);
    assert_eq!(report["count"], 5);
}

/// What the server sent within `ms`: None if nothing and the connection is
/// still open, the bytes up to EOF otherwise.
async fn answer_within(stream: &mut TcpStream, ms: u64) -> Option<Vec<u8>> {
    let mut raw = Vec::new();
    let read = tokio::time::timeout(Duration::from_millis(ms), stream.read_to_end(&mut raw)).await;
    match read {
        Ok(_) => Some(raw),
        Err(_) => {
            assert!(
                raw.is_empty(),
                "a partial answer: {}",
                String::from_utf8_lossy(&raw)
            );
            None
        }
    }
}

async fn eventually_reports(addr: SocketAddr, what: &str, check: impl Fn(&Value) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let report = get(addr, "/events?summary=1").await;
        if check(&report) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {report}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn send_batch(addr: SocketAddr, id: &str, seq: i64) -> TcpStream {
    let body = batch("d", &[(id, seq)]).to_string();
    send(addr, "POST", "/bulk/event", &[JSON], body.as_bytes()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hangs_hold_requests_unanswered_until_the_client_gives_up() {
    let addr = start().await;
    let control = post(addr, "/control", &json!({"hang_count": 2}))
        .await
        .json();
    assert_eq!(control["hang_count"], 2);
    let mut held = vec![
        send_batch(addr, "a", 1).await,
        send_batch(addr, "b", 2).await,
    ];
    // Counts are consumed in arrival order: wait for both before a third.
    eventually_reports(addr, "two held requests", |r| r["held"] == 2).await;
    let resp = post(addr, "/bulk/event", &batch("d", &[("c", 3)])).await;
    assert_eq!(resp.status, 200);
    for stream in &mut held {
        assert_eq!(answer_within(stream, 300).await, None);
    }
    let report = get(addr, "/events").await;
    assert_eq!(report["requests"], 3);
    assert_eq!(report["hung_requests"], 2);
    assert_eq!(report["accepted_requests"], 1);
    assert_eq!(report["rejected_requests"], json!({}));
    assert_eq!(report["in_flight"], 2);
    assert_eq!(report["ids"], json!(["c"]), "held requests store nothing");
    assert_eq!(get(addr, "/control").await["hang_count"], 0);

    // A client that gives up closes its connection, which ends the held request.
    drop(held);
    eventually_reports(addr, "held requests to end", |r| {
        r["held"] == 0 && r["in_flight"] == 0
    })
    .await;

    // A window instead of a count.
    post(addr, "/control", &json!({"hang_for_ms": 300})).await;
    let mut stream = send_batch(addr, "d", 4).await;
    assert_eq!(answer_within(&mut stream, 200).await, None);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let resp = post(addr, "/bulk/event", &batch("d", &[("e", 5)])).await;
    assert_eq!(resp.status, 200);
    let control = get(addr, "/control").await;
    assert_eq!(
        (
            control["hang_for_ms"].clone(),
            control["hang_count"].clone()
        ),
        (json!(0), Value::Null)
    );
    assert_eq!(get(addr, "/events").await["ids"], json!(["c", "e"]));

    // Held requests consume no delay or failure counts; `{}` clears the hang.
    post(addr, "/control", &json!({"hang_count": 1, "fail_count": 1})).await;
    let _held = send_batch(addr, "f", 6).await;
    eventually_reports(addr, "a held request", |r| r["held"] == 2).await;
    assert_eq!(
        post(addr, "/bulk/event", &batch("d", &[("g", 7)]))
            .await
            .status,
        503
    );
    post(addr, "/control", &json!({"hang_for_ms": 60_000})).await;
    post(addr, "/control", &json!({})).await;
    assert_eq!(
        post(addr, "/bulk/event", &batch("d", &[("g", 7)]))
            .await
            .status,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_requests_do_not_delay_shutdown_but_delayed_ones_are_answered() {
    let config = Config {
        addr: "127.0.0.1:0".parse().unwrap(),
        ..Config::default()
    };
    let (addr, server) = serve(config).await.unwrap();
    post(addr, "/control", &json!({"hang_count": 1, "delay_ms": 500})).await;
    let _held = send_batch(addr, "a", 1).await;
    eventually_reports(addr, "a held request", |r| r["held"] == 1).await;
    let delayed =
        tokio::spawn(async move { post(addr, "/bulk/event", &batch("d", &[("b", 2)])).await });
    eventually_reports(addr, "a delayed request", |r| r["in_flight"] == 2).await;

    let started = Instant::now();
    server.shutdown().await.unwrap();
    let took = started.elapsed();
    assert_eq!(
        delayed.await.unwrap().status,
        200,
        "the delayed request is answered"
    );
    // The grace period is 5 s: a held request must not use it up.
    assert!(
        took < Duration::from_millis(2_000),
        "shutdown took {took:?}"
    );
}

#[tokio::test]
async fn reports_sequence_gaps_per_session_from_its_first_seq() {
    let addr = start().await;
    let posts = [
        batch("a", &[("a1", 1), ("a2", 2), ("a5", 5)]),
        batch("a", &[("a6", 6), ("a9", 9)]),
        batch("b", &[("b1", 1), ("b2", 2)]),
        // A second page of device "b": its own numbering, whose first two never came.
        in_session("b-2", batch("b", &[("b2-3", 3)])),
        batch("c", &[("c1", 1), ("c5000", 5000)]),
    ];
    for body in &posts {
        assert_eq!(post(addr, "/bulk/event", body).await.status, 200);
    }

    let gaps = get(addr, "/events?summary=1").await["gaps"].clone();
    let gaps = gaps.as_array().unwrap();
    assert_eq!(gaps.len(), 3, "{gaps:?}");
    assert_eq!(
        gaps[0],
        json!({"session": "a", "device": "a", "missing": [3, 4, 7, 8], "missing_count": 4})
    );
    assert_eq!(
        gaps[1],
        json!({"session": "b-2", "device": "b", "missing": [1, 2], "missing_count": 2})
    );
    assert_eq!(gaps[2]["session"], "c");
    assert_eq!(gaps[2]["missing"].as_array().unwrap().len(), 1000);
    assert_eq!(gaps[2]["missing"][0], 2);
    assert_eq!(gaps[2]["missing_count"], 4998);
}

fn in_session(session: &str, mut body: Value) -> Value {
    for event in body["events"].as_array_mut().unwrap() {
        event["session"] = session.into();
    }
    body
}

#[tokio::test]
async fn reset_clears_events_counters_and_misbehaviour() {
    let addr = start().await;
    post(addr, "/bulk/event", &batch("d", &[("a", 1), ("b", 3)])).await;
    post(addr, "/control", &json!({"fail_status": 503})).await;
    assert_eq!(
        post(addr, "/bulk/event", &batch("d", &[])).await.status,
        503
    );

    let resp = request(addr, "POST", "/reset", &[], b"").await;
    assert_eq!(resp.status, 204);
    assert_eq!(resp.header("access-control-allow-origin"), Some("*"));
    let report = get(addr, "/events").await;
    let expected = json!({
        "count": 0, "duplicates": 0, "requests": 0, "hung_requests": 0, "accepted_requests": 0,
        "rejected_requests": {}, "max_in_flight": 0, "max_sends_in_flight": 0, "in_flight": 0, "held": 0,
        "bytes": 0, "gzip_requests": 0, "unload_requests": 0, "unload_bytes": 0, "largest_unload_body": 0,
        "gaps": [], "ids": [], "events": [],
    });
    assert_eq!(report, expected);
    assert_eq!(get(addr, "/control").await["fail_status"], Value::Null);
    assert_eq!(
        post(addr, "/bulk/event", &batch("d", &[("a", 1)]))
            .await
            .json()["accepted"],
        1
    );
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("evbuf-collector-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn serves_static_files_with_browser_mime_types() {
    let root = temp_dir("root");
    let pkg = temp_dir("pkg");
    std::fs::write(root.join("index.html"), "<!doctype html>").unwrap();
    std::fs::write(root.join("app.mjs"), "export {}").unwrap();
    std::fs::write(pkg.join("evbuf.js"), "export {}").unwrap();
    std::fs::write(pkg.join("evbuf_bg.wasm"), b"\0asm\x01\0\0\0").unwrap();
    let mounts = vec![
        Mount::parse(root.to_str().unwrap()).unwrap(),
        Mount::parse(&format!("/pkg={}", pkg.display())).unwrap(),
    ];
    let addr = start_with(Config {
        mounts,
        ..Config::default()
    })
    .await;

    let cases = [
        ("/", "text/html"),
        ("/app.mjs", "text/javascript"),
        ("/pkg/evbuf.js", "text/javascript"),
        ("/pkg/evbuf_bg.wasm", "application/wasm"),
    ];
    for (path, mime) in cases {
        let resp = request(addr, "GET", path, &[], b"").await;
        assert_eq!(resp.status, 200, "{path}");
        assert!(
            resp.header("content-type").unwrap().starts_with(mime),
            "{path}"
        );
        assert_eq!(resp.header("access-control-allow-origin"), Some("*"));
    }
    assert_eq!(
        request(addr, "GET", "/missing.js", &[], b"").await.status,
        404
    );
    // The API still wins over the static root.
    assert_eq!(get(addr, "/events").await["count"], 0);
    let _ = std::fs::remove_dir_all(root);
    let _ = std::fs::remove_dir_all(pkg);
}

#[tokio::test]
async fn binary_prints_address_persists_and_exits_on_stdin_eof() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};

    let dir = temp_dir("bin");
    let db = dir.join("events.db");
    let mut child = Command::new(env!("CARGO_BIN_EXE_evbuf-collector"))
        .args(["--addr", "127.0.0.1:0", "--exit-on-stdin-eof", "--db"])
        .arg(&db)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    stdout.read_line(&mut line).unwrap();
    let url = line
        .trim_end()
        .strip_prefix("evbuf-collector listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"));
    let addr: SocketAddr = url.parse().unwrap();
    assert!(addr.ip().is_loopback() && addr.port() != 0);

    let resp = post(addr, "/bulk/event", &batch("d", &[("a", 1)])).await;
    assert_eq!(resp.status, 200);
    post(addr, "/control", &json!({"hang_count": 1})).await;
    let mut held = send_batch(addr, "b", 2).await;
    eventually_reports(addr, "a held request", |r| r["held"] == 1).await;

    drop(child.stdin.take());
    let started = Instant::now();
    let deadline = started + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("collector did not exit after stdin EOF");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success());
    // Well within the 5 s grace: held requests do not wait for it.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "exit took {:?}",
        started.elapsed()
    );
    let cut = answer_within(&mut held, 1_000).await;
    assert_eq!(cut, Some(Vec::new()), "a held request is closed unanswered");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert_eq!(rest, "", "stdout must hold only the listening line");

    // The batch outlived the process.
    let db = std::fs::read(&db).unwrap();
    assert!(db.windows(6).any(|w| w == b"{\"n\":1"));
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn decodes_gzip_bodies_and_rejects_broken_ones() {
    use std::io::Write;

    let addr = start().await;
    let body = batch("dev-gz", &[("g1", 1), ("g2", 2)]).to_string();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(body.as_bytes()).unwrap();
    let zipped = gz.finish().unwrap();
    let gzip = ("Content-Encoding", "gzip");

    let resp = request(addr, "POST", "/bulk/event", &[JSON, gzip], &zipped).await;
    assert_eq!(resp.status, 200, "{}", String::from_utf8_lossy(&resp.body));
    assert_eq!(resp.json()["accepted"], 2);

    let truncated = &zipped[..zipped.len() / 2];
    for broken in [truncated, body.as_bytes()] {
        let resp = request(addr, "POST", "/bulk/event", &[JSON, gzip], broken).await;
        assert_eq!(resp.status, 400);
        assert!(resp.json()["error"]
            .as_str()
            .unwrap()
            .starts_with("decoding the gzip body: "));
    }
    let resp = request(
        addr,
        "POST",
        "/bulk/event",
        &[JSON, ("Content-Encoding", "br")],
        &zipped,
    )
    .await;
    assert_eq!(resp.status, 415);

    let report = get(addr, "/events").await;
    assert_eq!(report["count"], 2);
    assert_eq!(report["gzip_requests"], 1);
    assert_eq!(
        report["bytes"],
        2 * zipped.len() as u64 + (truncated.len() + body.len()) as u64
    );
    assert_eq!(report["rejected_requests"], json!({"400": 2, "415": 1}));
}

#[tokio::test]
async fn records_every_bulk_body_decoded_when_asked() {
    use std::io::Write;

    let dir = temp_dir("record");
    let addr = start_with(Config {
        record_bodies: Some(dir.clone()),
        ..Config::default()
    })
    .await;
    let plain = batch("dev-r", &[("r1", 1)]).to_string();
    let zipped_body = batch("dev-r", &[("r2", 2)]).to_string();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(zipped_body.as_bytes()).unwrap();
    let zipped = gz.finish().unwrap();
    let text = ("Content-Type", "text/plain;charset=UTF-8");
    let gzip = ("Content-Encoding", "gzip");
    assert_eq!(
        request(addr, "POST", "/bulk/event", &[text], plain.as_bytes())
            .await
            .status,
        200
    );
    assert_eq!(
        request(addr, "POST", "/bulk/event", &[JSON, gzip], &zipped)
            .await
            .status,
        200
    );
    let broken = &zipped[..zipped.len() / 2];
    assert_eq!(
        request(addr, "POST", "/bulk/event", &[JSON, gzip], broken)
            .await
            .status,
        400
    );
    let recorded = std::fs::read_to_string(dir.join(evbuf_collector::BODIES_FILE)).unwrap();
    let lines: Vec<Value> = recorded
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{recorded}");
    assert_eq!(lines[0]["body"], plain);
    assert_eq!(lines[0]["content_type"], "text/plain;charset=UTF-8");
    assert_eq!(lines[1]["body"], zipped_body, "recorded decoded");
    assert_eq!(lines[1]["content_encoding"], "gzip");
    assert_eq!(lines[2]["body"], Value::Null);
    assert!(lines[2]["error"]
        .as_str()
        .unwrap()
        .starts_with("decoding the gzip body: "));
}
