//! A small, real bulk endpoint for the evbuf browser SDK.
//!
//! It stores what the SDK sends in SQLite, reports what it saw (duplicates,
//! sequence gaps, concurrency) and misbehaves on demand, so browser tests can
//! drive retries, backoff and the unload path against a real HTTP server
//! instead of a mock. `main.rs` is only argument parsing around [`serve`], so
//! tests can start the same server in-process.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

mod encoding;

use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http_body_util::LengthLimitError;
use rusqlite::{params, Connection};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, Notify};
use tokio::task::JoinHandle;
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};
use tower_http::services::ServeDir;

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Bodies are buffered whole, so something must bound memory even when no
/// `max_body_bytes` is configured.
const HARD_BODY_LIMIT: usize = 64 * 1024 * 1024;
/// One lost batch in a long run can leave a huge hole; listing every missing
/// seq would make `/events` unusable.
const MAX_MISSING_LISTED: usize = 1000;
/// Long `delay_ms` settings must not keep the process alive after a signal.
/// Held (`hang_*`) requests do not wait for it: they never end on their own.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct Config {
    pub addr: SocketAddr,
    /// SQLite path; `:memory:` keeps everything in RAM.
    pub db: String,
    pub mounts: Vec<Mount>,
    /// A directory where every bulk body is appended, decoded, to `bodies.jsonl` (see
    /// [`BODIES_FILE`]), so that a test can check what clients really sent.
    pub record_bodies: Option<PathBuf>,
}

/// The file in `record_bodies` that receives one line per `POST /bulk/event`:
/// `{"received_at": ms, "content_type": …, "content_encoding": …, "body": "<decoded text>"}`
/// (`body` is `null` and `error` says why when the body could not be read or decoded).
pub const BODIES_FILE: &str = "bodies.jsonl";

impl Default for Config {
    fn default() -> Self {
        Config {
            addr: SocketAddr::from(([127, 0, 0, 1], 8787)),
            db: ":memory:".into(),
            mounts: Vec::new(),
            record_bodies: None,
        }
    }
}

/// A static directory served under a URL prefix.
#[derive(Debug, Clone, PartialEq)]
pub struct Mount {
    pub prefix: String,
    pub dir: PathBuf,
}

impl Mount {
    /// Parses `DIR` (served at `/`) or `/PREFIX=DIR`.
    pub fn parse(arg: &str) -> Result<Mount, String> {
        let (prefix, dir) = match arg.split_once('=') {
            Some((prefix, dir)) if prefix.starts_with('/') => (prefix, dir),
            _ => ("/", arg),
        };
        if dir.is_empty() {
            return Err(format!("--serve {arg}: empty directory"));
        }
        let prefix = prefix.trim_end_matches('/');
        Ok(Mount {
            prefix: if prefix.is_empty() {
                "/".into()
            } else {
                prefix.into()
            },
            dir: dir.into(),
        })
    }
}

/// A running collector. Dropping it leaves the server running until the
/// runtime stops; call [`Server::shutdown`] to stop it gracefully.
pub struct Server {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
    app: Arc<App>,
}

impl Server {
    /// Stops accepting connections and waits (bounded) for in-flight requests.
    /// Once only held requests remain it stops at once, leaving them unanswered
    /// (their connections close when the process, or the runtime, ends).
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let app = Arc::clone(&self.app);
        let finished = async {
            tokio::select! {
                joined = &mut self.task => Some(joined),
                () = app.only_held_left() => None,
            }
        };
        let outcome = tokio::time::timeout(SHUTDOWN_GRACE, finished).await;
        match outcome {
            Ok(Some(joined)) => joined.map_err(std::io::Error::other)?,
            Ok(None) | Err(_) => {
                self.task.abort();
                Ok(())
            }
        }
    }
}

/// Binds `config.addr` and starts serving; returns the real address (useful
/// with port 0).
pub async fn serve(config: Config) -> Result<(SocketAddr, Server), Error> {
    for (i, mount) in config.mounts.iter().enumerate() {
        if config.mounts[..i].iter().any(|m| m.prefix == mount.prefix) {
            return Err(format!("two --serve directories at {}", mount.prefix).into());
        }
        if !mount.dir.is_dir() {
            return Err(format!("--serve {}: not a directory", mount.dir.display()).into());
        }
    }
    let recorder = match &config.record_bodies {
        Some(dir) => Some(open_recorder(dir)?),
        None => None,
    };
    let app = Arc::new(App::new(open_db(&config.db)?, recorder));
    let router = router(Arc::clone(&app), &config.mounts);
    let listener = TcpListener::bind(config.addr).await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async {
                // A dropped Server means "detach", not "stop".
                if stopped.await.is_err() {
                    std::future::pending::<()>().await;
                }
            })
            .await
    });
    let server = Server {
        stop: Some(stop),
        task,
        app,
    };
    Ok((addr, server))
}

fn open_recorder(dir: &std::path::Path) -> Result<std::fs::File, Error> {
    let fail = |e: std::io::Error| format!("--record-bodies {}: {e}", dir.display());
    std::fs::create_dir_all(dir).map_err(fail)?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(BODIES_FILE))
        .map_err(fail)?;
    Ok(file)
}

/// Appends one line for a bulk body to the `record_bodies` file.
fn record_body(
    file: &mut std::fs::File,
    headers: &HeaderMap,
    body: &Result<axum::body::Bytes, axum::Error>,
    received_at: i64,
) {
    use std::io::Write;
    let text = |name| {
        headers
            .get(name)
            .map(|v: &HeaderValue| v.to_str().unwrap_or("(not text)").to_string())
    };
    let encoding = text(header::CONTENT_ENCODING);
    let (decoded, error) = match body {
        Err(e) => (None, Some(format!("reading body: {e}"))),
        Ok(bytes) => match encoding::decode(encoding.as_deref(), bytes, HARD_BODY_LIMIT) {
            Ok(plain) => (Some(String::from_utf8_lossy(&plain).into_owned()), None),
            Err((_, msg)) => (None, Some(msg)),
        },
    };
    let mut line = json!({
        "received_at": received_at,
        "content_type": text(header::CONTENT_TYPE),
        "content_encoding": encoding,
        "body": decoded,
    });
    if let Some(error) = error {
        line["error"] = error.into();
    }
    let line = format!("{line}\n");
    if let Err(e) = file.write_all(line.as_bytes()) {
        eprintln!("evbuf-collector: failed to record a body in {BODIES_FILE}: {e}");
    }
}

fn open_db(path: &str) -> rusqlite::Result<Connection> {
    let db = if path == ":memory:" {
        Connection::open_in_memory()?
    } else {
        Connection::open(path)?
    };
    // Arrival order is rowid order: the table is only ever appended to.
    db.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         CREATE TABLE IF NOT EXISTS events (
             id TEXT PRIMARY KEY NOT NULL,
             device TEXT NOT NULL,
             session TEXT NOT NULL,
             seq INTEGER NOT NULL,
             ts INTEGER NOT NULL,
             sent_at INTEGER NOT NULL,
             received_at INTEGER NOT NULL,
             payload TEXT NOT NULL
         );",
    )?;
    Ok(db)
}

fn router(app: Arc<App>, mounts: &[Mount]) -> Router {
    let mut router = Router::new()
        .route("/bulk/event", post(bulk))
        .route("/events", get(events))
        .route("/control", get(get_control).post(post_control))
        .route("/reset", post(reset))
        .with_state(app);
    for mount in mounts {
        let dir = ServeDir::new(&mount.dir);
        router = if mount.prefix == "/" {
            // axum cannot nest at the root; the API routes above still win.
            router.fallback_service(dir)
        } else {
            router.nest_service(&mount.prefix, dir)
        };
    }
    // CORS is outermost so that preflights and every error carry its headers.
    router
        .layer(middleware::from_fn(content_headers))
        .layer(cors())
}

/// Test pages are served from other loopback ports, so every answer must be readable
/// cross-origin, failures the SDK must react to included: any origin, the headers a
/// preflight asks for (the `headers` option's names, `Content-Encoding`), `Retry-After`
/// readable by fetch(), and Chrome's Private Network Access for pages of other hosts.
fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::any())
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers(AllowHeaders::mirror_request())
        .expose_headers([header::RETRY_AFTER])
        .max_age(Duration::from_secs(600))
        .allow_private_network(true)
}

/// Browsers refuse to stream-compile wasm or run module scripts with the
/// wrong type (mime_guess calls `.mjs` application/javascript), and a cached
/// build from an earlier test run would be misleading.
async fn content_headers(req: Request, next: Next) -> Response {
    let forced = match req.uri().path().rsplit_once('.').map(|(_, ext)| ext) {
        Some("wasm") => Some("application/wasm"),
        Some("js" | "mjs") => Some("text/javascript"),
        _ => None,
    };
    let mut res = next.run(req).await;
    if let (Some(mime), true) = (forced, res.status().is_success()) {
        res.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    }
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

struct App {
    inner: Mutex<Inner>,
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
    /// Bulk requests held open by `hang_*`, a subset of `in_flight`.
    held: AtomicU64,
    /// Wakes a shutdown waiting for only held requests to remain.
    in_flight_changed: Notify,
}

struct Inner {
    db: Connection,
    stats: Stats,
    control: Misbehaviour,
    /// `record_bodies`: the file every bulk body is appended to.
    recorder: Option<std::fs::File>,
    /// When each answered JSON send arrived and was answered: the in-flight guard is
    /// about these (the unload path's text/plain posts may overlap one by design). A send
    /// whose client gave up (its timeout, its page closed) is waited for by no one, and
    /// the browser may cancel it only after the next sender's send has arrived.
    answered_sends: Vec<(Instant, Instant)>,
}

/// The most of `sends` (arrived, answered) that were out at one moment.
fn most_at_once(sends: &[(Instant, Instant)]) -> u64 {
    // An answer at the instant another send arrives is not an overlap: ends sort first.
    let mut edges: Vec<(Instant, i64)> = sends
        .iter()
        .flat_map(|&(arrived, answered)| [(arrived, 1), (answered, -1)])
        .collect();
    edges.sort();
    let mut out = 0;
    let mut most = 0;
    for (_, step) in edges {
        out += step;
        most = most.max(out);
    }
    most as u64
}

#[derive(Default)]
struct Stats {
    duplicates: u64,
    requests: u64,
    hung_requests: u64,
    accepted_requests: u64,
    rejected_requests: BTreeMap<String, u64>,
    /// As sent: compressed where the body was.
    bytes: u64,
    /// text/plain bulk requests: the unload path's keepalive posts.
    unload_requests: u64,
    unload_bytes: u64,
    largest_unload_body: u64,
    gzip_requests: u64,
}

impl App {
    fn new(db: Connection, recorder: Option<std::fs::File>) -> Self {
        App {
            inner: Mutex::new(Inner {
                db,
                stats: Stats::default(),
                control: Misbehaviour::default(),
                recorder,
                answered_sends: Vec::new(),
            }),
            in_flight: AtomicU64::new(0),
            max_in_flight: AtomicU64::new(0),
            held: AtomicU64::new(0),
            in_flight_changed: Notify::new(),
        }
    }

    async fn only_held_left(&self) {
        loop {
            // Registered before the check, so a change in between still wakes us.
            let changed = self.in_flight_changed.notified();
            let held = self.held.load(Ordering::SeqCst);
            if held > 0 && held == self.in_flight.load(Ordering::SeqCst) {
                return;
            }
            changed.await;
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic in one handler must not wedge every later test request.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Counts a bulk request as in flight for as long as its handler runs,
/// including when the client gives up and the handler is dropped.
struct InFlight<'a> {
    app: &'a App,
}

impl<'a> InFlight<'a> {
    fn enter(app: &'a App) -> Self {
        let now = app.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        app.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight { app }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.app.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.app.in_flight_changed.notify_waiters();
    }
}

/// Counts a request as held until the client gives up (or the server ends).
struct Held<'a>(&'a App);

impl<'a> Held<'a> {
    fn enter(app: &'a App) -> Self {
        app.held.fetch_add(1, Ordering::SeqCst);
        app.in_flight_changed.notify_waiters();
        Held(app)
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.held.fetch_sub(1, Ordering::SeqCst);
        self.0.in_flight_changed.notify_waiters();
    }
}

/// What a test asked the collector to get wrong. Counts and deadlines are
/// kept as what remains, so `GET /control` shows the live state.
#[derive(Default)]
struct Misbehaviour {
    fail_status: Option<u16>,
    fail_until: Option<Instant>,
    fail_left: Option<u64>,
    retry_after: Option<String>,
    delay_ms: Option<u64>,
    delay_left: Option<u64>,
    hang_until: Option<Instant>,
    hang_left: Option<u64>,
    max_body_bytes: Option<u64>,
    poison_key: Option<String>,
}

#[derive(Deserialize, Default, PartialEq)]
#[serde(deny_unknown_fields)]
struct ControlUpdate {
    fail_status: Option<u16>,
    fail_for_ms: Option<u64>,
    fail_count: Option<u64>,
    retry_after: Option<String>,
    delay_ms: Option<u64>,
    delay_count: Option<u64>,
    hang_for_ms: Option<u64>,
    hang_count: Option<u64>,
    max_body_bytes: Option<u64>,
    poison_key: Option<String>,
}

impl Misbehaviour {
    fn apply(&mut self, u: ControlUpdate, now: Instant) {
        if u.fail_status.is_some() {
            self.fail_status = u.fail_status;
        }
        // The two failure limits are alternatives: naming either replaces both.
        if u.fail_for_ms.is_some() || u.fail_count.is_some() {
            self.fail_until = u.fail_for_ms.map(|ms| now + Duration::from_millis(ms));
            self.fail_left = u.fail_count;
            self.fail_status = self.fail_status.or(Some(503));
        }
        if u.retry_after.is_some() {
            self.retry_after = u.retry_after;
        }
        // A new delay without a count applies to every request.
        if u.delay_ms.is_some() || u.delay_count.is_some() {
            self.delay_ms = u.delay_ms.or(self.delay_ms);
            self.delay_left = u.delay_count;
        }
        // As with failures, the window and the count replace each other.
        if u.hang_for_ms.is_some() || u.hang_count.is_some() {
            self.hang_until = u.hang_for_ms.map(|ms| now + Duration::from_millis(ms));
            self.hang_left = u.hang_count;
        }
        if u.max_body_bytes.is_some() {
            self.max_body_bytes = u.max_body_bytes;
        }
        if u.poison_key.is_some() {
            self.poison_key = u.poison_key;
        }
    }

    /// Decides at arrival whether this request fails, consuming a fail_count.
    fn take_failure(&mut self, now: Instant) -> Option<StatusCode> {
        let status = StatusCode::from_u16(self.fail_status?).ok()?;
        if self.fail_until.is_some_and(|until| now >= until) {
            return None;
        }
        if let Some(left) = self.fail_left.as_mut() {
            if *left == 0 {
                return None;
            }
            *left -= 1;
        }
        Some(status)
    }

    /// Decides at arrival whether this request is held, consuming a hang_count.
    fn take_hang(&mut self, now: Instant) -> bool {
        if self.hang_until.is_none() && self.hang_left.is_none() {
            return false;
        }
        if self.hang_until.is_some_and(|until| now >= until) {
            return false;
        }
        if let Some(left) = self.hang_left.as_mut() {
            if *left == 0 {
                return false;
            }
            *left -= 1;
        }
        true
    }

    fn take_delay(&mut self) -> Option<Duration> {
        let ms = self.delay_ms?;
        if let Some(left) = self.delay_left.as_mut() {
            if *left == 0 {
                return None;
            }
            *left -= 1;
        }
        Some(Duration::from_millis(ms))
    }

    fn view(&self, now: Instant) -> Value {
        json!({
            "fail_status": self.fail_status,
            "fail_for_ms": self.fail_until.map(|u| u.saturating_duration_since(now).as_millis() as u64),
            "fail_count": self.fail_left,
            "retry_after": self.retry_after,
            "delay_ms": self.delay_ms,
            "delay_count": self.delay_left,
            "hang_for_ms": self.hang_until.map(|u| u.saturating_duration_since(now).as_millis() as u64),
            "hang_count": self.hang_left,
            "max_body_bytes": self.max_body_bytes,
            "poison_key": self.poison_key,
        })
    }
}

#[derive(Deserialize)]
struct Batch {
    sent_at: i64,
    device: String,
    events: Vec<Event>,
}

#[derive(Deserialize)]
struct Event {
    id: String,
    /// The page session that logged it, and its number there (from 1, in logging order):
    /// a seq missing in a session is an event that never arrived.
    session: String,
    seq: i64,
    ts: i64,
    #[serde(default)]
    payload: Value,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

/// Bodies are parsed as JSON whatever the Content-Type: the unload path sends
/// text/plain (sendBeacon, or fetch without a preflight).
async fn bulk(State(app): State<Arc<App>>, headers: HeaderMap, body: Body) -> Response {
    let unload = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain"));
    let _in_flight = InFlight::enter(&app);
    let arrived = Instant::now();
    let received_at = now_ms();
    let body = axum::body::to_bytes(body, HARD_BODY_LIMIT).await;

    // None: hold the request.
    let decided = {
        let mut inner = app.lock();
        inner.stats.requests += 1;
        if let Some(file) = &mut inner.recorder {
            record_body(file, &headers, &body, received_at);
        }
        if let Ok(bytes) = &body {
            inner.stats.bytes += bytes.len() as u64;
            if unload {
                inner.stats.unload_requests += 1;
                inner.stats.unload_bytes += bytes.len() as u64;
                let largest = &mut inner.stats.largest_unload_body;
                *largest = (*largest).max(bytes.len() as u64);
            }
        }
        let now = Instant::now();
        if inner.control.take_hang(now) {
            inner.stats.hung_requests += 1;
            None
        } else {
            let delay = inner.control.take_delay();
            let failure = inner.control.take_failure(now);
            Some((delay, failure, inner.control.retry_after.clone()))
        }
    };
    let Some((delay, failure, retry_after)) = decided else {
        // Like a dead proxy: no answer and nothing stored; the connection
        // stays open until the client gives up and this future is dropped.
        let _held = Held::enter(&app);
        return std::future::pending().await;
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }

    let mut inner = app.lock();
    let res = match (body, failure) {
        (Err(e), _)
            if std::error::Error::source(&e).is_some_and(|s| s.is::<LengthLimitError>()) =>
        {
            error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("body exceeds the hard limit of {HARD_BODY_LIMIT} bytes"),
            )
        }
        (Err(e), _) => error(StatusCode::BAD_REQUEST, format!("reading body: {e}")),
        (Ok(_), Some(status)) => {
            let mut res = error(status, "injected failure (see /control)");
            if let Some(value) = retry_after.and_then(|v| HeaderValue::try_from(v).ok()) {
                res.headers_mut().insert(header::RETRY_AFTER, value);
            }
            res
        }
        (Ok(bytes), None) => {
            let encoding = headers
                .get(header::CONTENT_ENCODING)
                .map(|v| v.to_str().unwrap_or("(not text)"));
            accept(&mut inner, &bytes, encoding, received_at)
        }
    };
    if !unload {
        inner.answered_sends.push((arrived, Instant::now()));
    }
    let status = res.status();
    if status.is_success() {
        inner.stats.accepted_requests += 1;
    } else {
        *inner
            .stats
            .rejected_requests
            .entry(status.as_u16().to_string())
            .or_default() += 1;
    }
    res
}

fn accept(inner: &mut Inner, bytes: &[u8], encoding: Option<&str>, received_at: i64) -> Response {
    // Like a proxy's limit: on the bytes as sent.
    if let Some(max) = inner.control.max_body_bytes {
        if bytes.len() as u64 > max {
            let msg = format!("body of {} bytes exceeds max_body_bytes {max}", bytes.len());
            return error(StatusCode::PAYLOAD_TOO_LARGE, msg);
        }
    }
    let bytes = match encoding::decode(encoding, bytes, HARD_BODY_LIMIT) {
        Ok(plain) => plain,
        Err((status, msg)) => return error(status, msg),
    };
    // Only a gzip body is decoded into a buffer of its own.
    if matches!(bytes, std::borrow::Cow::Owned(_)) {
        inner.stats.gzip_requests += 1;
    }
    let batch: Batch = match serde_json::from_slice(&bytes) {
        Ok(batch) => batch,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid batch: {e}")),
    };
    if let Some(key) = &inner.control.poison_key {
        if let Some(bad) = batch
            .events
            .iter()
            .find(|e| e.payload[key.as_str()] == true)
        {
            let msg = format!("event {} is poisoned ({key}: true)", bad.id);
            return error(StatusCode::BAD_REQUEST, msg);
        }
    }
    match store(&mut inner.db, &batch, received_at) {
        Ok((accepted, duplicates)) => {
            inner.stats.duplicates += duplicates;
            Json(json!({ "accepted": accepted, "duplicates": duplicates })).into_response()
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("storing: {e}")),
    }
}

/// Stores a batch atomically; returns (newly stored, duplicates).
fn store(db: &mut Connection, batch: &Batch, received_at: i64) -> rusqlite::Result<(u64, u64)> {
    let tx = db.transaction()?;
    let (mut accepted, mut duplicates) = (0, 0);
    {
        let mut insert = tx.prepare_cached(
            "INSERT OR IGNORE INTO events (id, device, session, seq, ts, sent_at, received_at, payload)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        for e in &batch.events {
            let payload = e.payload.to_string();
            let row = params![
                e.id,
                batch.device,
                e.session,
                e.seq,
                e.ts,
                batch.sent_at,
                received_at,
                payload
            ];
            match insert.execute(row)? {
                0 => duplicates += 1,
                _ => accepted += 1,
            }
        }
    }
    tx.commit()?;
    Ok((accepted, duplicates))
}

#[derive(Deserialize)]
struct EventsQuery {
    summary: Option<String>,
}

async fn events(State(app): State<Arc<App>>, Query(q): Query<EventsQuery>) -> Response {
    let summary = q
        .summary
        .is_some_and(|s| !matches!(s.as_str(), "0" | "false"));
    let inner = app.lock();
    match report(&inner, summary) {
        Ok(mut body) => {
            body["max_in_flight"] = app.max_in_flight.load(Ordering::SeqCst).into();
            body["max_sends_in_flight"] = most_at_once(&inner.answered_sends).into();
            body["in_flight"] = app.in_flight.load(Ordering::SeqCst).into();
            body["held"] = app.held.load(Ordering::SeqCst).into();
            Json(body).into_response()
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("reading: {e}")),
    }
}

fn report(inner: &Inner, summary: bool) -> rusqlite::Result<Value> {
    let db = &inner.db;
    let count: i64 = db.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))?;
    let stats = &inner.stats;
    let mut body = json!({
        "count": count,
        "duplicates": stats.duplicates,
        "requests": stats.requests,
        "hung_requests": stats.hung_requests,
        "accepted_requests": stats.accepted_requests,
        "rejected_requests": stats.rejected_requests,
        "bytes": stats.bytes,
        "unload_requests": stats.unload_requests,
        "unload_bytes": stats.unload_bytes,
        "largest_unload_body": stats.largest_unload_body,
        "gzip_requests": stats.gzip_requests,
        "gaps": gaps(db)?,
    });
    if !summary {
        let mut stmt = db.prepare(
            "SELECT id, device, session, seq, ts, sent_at, received_at, payload FROM events
             ORDER BY rowid",
        )?;
        let events = stmt
            .query_map([], |r| {
                let payload: String = r.get(7)?;
                Ok(json!({
                    "id": r.get::<_, String>(0)?,
                    "device": r.get::<_, String>(1)?,
                    "session": r.get::<_, String>(2)?,
                    "seq": r.get::<_, i64>(3)?,
                    "ts": r.get::<_, i64>(4)?,
                    "sent_at": r.get::<_, i64>(5)?,
                    "received_at": r.get::<_, i64>(6)?,
                    "payload": serde_json::from_str::<Value>(&payload).unwrap_or(Value::String(payload)),
                }))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        body["ids"] = events.iter().map(|e| e["id"].clone()).collect();
        body["events"] = events.into();
    }
    Ok(body)
}

/// Per session, the seqs missing from 1 to the highest seen (events never received:
/// those after the highest are beyond its sight). Walks consecutive seen seqs so a huge
/// hole costs nothing beyond the listed cap.
fn gaps(db: &Connection) -> rusqlite::Result<Value> {
    let mut stmt = db.prepare(
        "SELECT session, MIN(device), seq FROM events GROUP BY session, seq ORDER BY session, seq",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })?;
    struct Session {
        id: String,
        device: String,
        highest: i64,
        missing: Vec<i64>,
        count: u64,
    }
    let mut out: Vec<Value> = Vec::new();
    let mut current: Option<Session> = None;
    let flush = |out: &mut Vec<Value>, session: Option<Session>| {
        if let Some(s) = session.filter(|s| s.count > 0) {
            out.push(json!({
                "session": s.id, "device": s.device, "missing": s.missing, "missing_count": s.count,
            }));
        }
    };
    for row in rows {
        let (id, device, seq) = row?;
        if current.as_ref().is_none_or(|s| s.id != id) {
            flush(&mut out, current.take());
            current = Some(Session {
                id,
                device,
                highest: 0,
                missing: Vec::new(),
                count: 0,
            });
        }
        let s = current.as_mut().expect("set above");
        let hole = seq - s.highest - 1;
        if hole > 0 {
            s.count += hole as u64;
            let room = MAX_MISSING_LISTED - s.missing.len();
            s.missing.extend((s.highest + 1..seq).take(room));
        }
        s.highest = s.highest.max(seq);
    }
    flush(&mut out, current);
    Ok(out.into())
}

async fn get_control(State(app): State<Arc<App>>) -> Json<Value> {
    Json(app.lock().control.view(Instant::now()))
}

/// Parsed by hand rather than with the Json extractor so that a missing
/// Content-Type or a typo gets a 400 with a readable message.
async fn post_control(State(app): State<Arc<App>>, body: axum::body::Bytes) -> Response {
    let update: ControlUpdate = if body.iter().all(u8::is_ascii_whitespace) {
        ControlUpdate::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(update) => update,
            Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid control: {e}")),
        }
    };
    if let Some(status) = update.fail_status {
        if !(400..=599).contains(&status) {
            return error(StatusCode::BAD_REQUEST, "fail_status must be 400..=599");
        }
    }
    let now = Instant::now();
    let mut inner = app.lock();
    if update == ControlUpdate::default() {
        inner.control = Misbehaviour::default();
    } else {
        inner.control.apply(update, now);
    }
    Json(inner.control.view(now)).into_response()
}

async fn reset(State(app): State<Arc<App>>) -> Response {
    let mut inner = app.lock();
    if let Err(e) = inner.db.execute("DELETE FROM events", []) {
        return error(StatusCode::INTERNAL_SERVER_ERROR, format!("clearing: {e}"));
    }
    inner.stats = Stats::default();
    inner.control = Misbehaviour::default();
    app.max_in_flight
        .store(app.in_flight.load(Ordering::SeqCst), Ordering::SeqCst);
    inner.answered_sends.clear();
    StatusCode::NO_CONTENT.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mounts() {
        let root = Mount::parse("web/dist").unwrap();
        assert_eq!(
            (root.prefix.as_str(), root.dir),
            ("/", PathBuf::from("web/dist"))
        );
        let pkg = Mount::parse("/pkg/=/tmp/pkg").unwrap();
        assert_eq!(
            (pkg.prefix.as_str(), pkg.dir),
            ("/pkg", PathBuf::from("/tmp/pkg"))
        );
        let abs = Mount::parse("/srv/www").unwrap();
        assert_eq!(
            (abs.prefix.as_str(), abs.dir),
            ("/", PathBuf::from("/srv/www"))
        );
        assert!(Mount::parse("/x=").is_err());
    }

    #[test]
    fn counts_the_answered_sends_out_at_once() {
        let t = Instant::now();
        let ms = |n| t + Duration::from_millis(n);
        assert_eq!(most_at_once(&[]), 0);
        // One after the other, the second arriving as the first is answered.
        assert_eq!(most_at_once(&[(ms(0), ms(100)), (ms(100), ms(200))]), 1);
        assert_eq!(most_at_once(&[(ms(0), ms(100)), (ms(99), ms(200))]), 2);
        let three = [
            (ms(0), ms(300)),
            (ms(10), ms(20)),
            (ms(50), ms(400)),
            (ms(60), ms(70)),
        ];
        assert_eq!(most_at_once(&three), 3);
    }

    #[test]
    fn fail_count_is_consumed() {
        let mut m = Misbehaviour::default();
        let now = Instant::now();
        let update = ControlUpdate {
            fail_count: Some(2),
            ..Default::default()
        };
        m.apply(update, now);
        assert_eq!(m.take_failure(now), Some(StatusCode::SERVICE_UNAVAILABLE));
        assert_eq!(m.take_failure(now), Some(StatusCode::SERVICE_UNAVAILABLE));
        assert_eq!(m.take_failure(now), None);
    }
}
