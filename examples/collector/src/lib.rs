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

mod bulk;
mod control;
mod in_flight;
mod report;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rusqlite::Connection;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, Notify};
use tokio::task::JoinHandle;
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};
use tower_http::decompression::RequestDecompressionLayer;
use tower_http::services::ServeDir;

use bulk::{bulk, wire_body};
use control::{get_control, post_control, Misbehaviour};
use report::events;

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
    gzip: bool,
    body: &Result<axum::body::Bytes, (StatusCode, String)>,
    received_at: i64,
) {
    use std::io::Write;
    let text = |name| {
        headers
            .get(name)
            .map(|v: &HeaderValue| v.to_str().unwrap_or("(not text)").to_string())
    };
    // The decompression layer took a gzip body's header away with its encoding.
    let encoding = if gzip {
        Some("gzip".to_string())
    } else {
        text(header::CONTENT_ENCODING)
    };
    let (decoded, error) = match body {
        Ok(plain) => (Some(String::from_utf8_lossy(plain).into_owned()), None),
        Err((_, message)) => (None, Some(message.clone())),
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
        .route(
            "/bulk/event",
            post(bulk)
                // An encoding it does not decode reaches the handler, which answers 415
                // (and counts the request).
                .layer(RequestDecompressionLayer::new().pass_through_unaccepted(true))
                .layer(middleware::from_fn(wire_body)),
        )
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

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
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
}
