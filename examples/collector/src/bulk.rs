//! `POST /bulk/event`: the bulk endpoint itself, with the misbehaviour `/control` set.
//! A gzip body comes decoded by tower-http's request decompression; [`wire_body`], outside
//! it, keeps what came over the wire.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use http_body_util::{BodyExt, LengthLimitError};
use rusqlite::{params, Connection};
use serde::Deserialize;
use serde_json::{json, Value};

use super::in_flight::{Held, InFlight};
use super::{error, now_ms, record_body, App, Inner, HARD_BODY_LIMIT};

/// What came over the wire before the decompression layer: whether the body was gzip, and
/// how many bytes of it were read (the bytes as sent: what `bytes` and `max_body_bytes`
/// count, like a proxy's limit, and what the bench's compression figures compare).
#[derive(Clone)]
pub(crate) struct Wire {
    gzip: bool,
    bytes: Arc<AtomicU64>,
}

/// Counts the body's bytes as they are read, ahead of any decoding.
pub(crate) async fn wire_body(req: Request, next: Next) -> Response {
    let gzip = req
        .headers()
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("gzip"));
    let bytes = Arc::new(AtomicU64::new(0));
    let read = bytes.clone();
    let (mut parts, body) = req.into_parts();
    parts.extensions.insert(Wire { gzip, bytes });
    let body = Body::new(body.map_frame(move |frame| {
        if let Some(data) = frame.data_ref() {
            read.fetch_add(data.len() as u64, Ordering::Relaxed);
        }
        frame
    }));
    next.run(Request::from_parts(parts, body)).await
}

/// The body as the handler reads it, or the answer for one it cannot read: too large once
/// decoded, a broken gzip stream, or an encoding the decompression layer passed through.
async fn read(body: Body, headers: &HeaderMap, gzip: bool) -> Result<Bytes, (StatusCode, String)> {
    let bytes = axum::body::to_bytes(body, HARD_BODY_LIMIT)
        .await
        .map_err(|e| {
            if std::error::Error::source(&e).is_some_and(|s| s.is::<LengthLimitError>()) {
                let msg = format!("body exceeds the hard limit of {HARD_BODY_LIMIT} bytes");
                (StatusCode::PAYLOAD_TOO_LARGE, msg)
            } else if gzip {
                (
                    StatusCode::BAD_REQUEST,
                    format!("decoding the gzip body: {e}"),
                )
            } else {
                (StatusCode::BAD_REQUEST, format!("reading body: {e}"))
            }
        })?;
    match headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("(not text)").trim())
    {
        None | Some("" | "identity") => Ok(bytes),
        Some(other) => Err((
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("unsupported Content-Encoding `{other}` (gzip or none)"),
        )),
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

/// Bodies are parsed as JSON whatever the Content-Type: the unload path sends
/// text/plain (sendBeacon, or fetch without a preflight).
pub(crate) async fn bulk(
    State(app): State<Arc<App>>,
    Extension(wire): Extension<Wire>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let unload = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain"));
    let _in_flight = InFlight::enter(&app);
    let arrived = Instant::now();
    let received_at = now_ms();
    let body = read(body, &headers, wire.gzip).await;
    let wire_bytes = wire.bytes.load(Ordering::Relaxed);

    // None: hold the request.
    let decided = {
        let mut inner = app.lock();
        inner.stats.requests += 1;
        if let Some(file) = &mut inner.recorder {
            record_body(file, &headers, wire.gzip, &body, received_at);
        }
        inner.stats.bytes += wire_bytes;
        if unload {
            inner.stats.unload_requests += 1;
            inner.stats.unload_bytes += wire_bytes;
            let largest = &mut inner.stats.largest_unload_body;
            *largest = (*largest).max(wire_bytes);
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
        (Err((status, message)), _) => error(status, message),
        (Ok(_), Some(status)) => {
            let mut res = error(status, "injected failure (see /control)");
            if let Some(value) = retry_after.and_then(|v| HeaderValue::try_from(v).ok()) {
                res.headers_mut().insert(header::RETRY_AFTER, value);
            }
            res
        }
        (Ok(bytes), None) => accept(&mut inner, &bytes, wire_bytes, wire.gzip, received_at),
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

fn accept(
    inner: &mut Inner,
    bytes: &[u8],
    wire_bytes: u64,
    gzip: bool,
    received_at: i64,
) -> Response {
    // Like a proxy's limit: on the bytes as sent.
    if let Some(max) = inner.control.max_body_bytes {
        if wire_bytes > max {
            let msg = format!("body of {wire_bytes} bytes exceeds max_body_bytes {max}");
            return error(StatusCode::PAYLOAD_TOO_LARGE, msg);
        }
    }
    if gzip {
        inner.stats.gzip_requests += 1;
    }
    let batch: Batch = match serde_json::from_slice(bytes) {
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
