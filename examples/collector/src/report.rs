//! `GET /events`: what the collector stored and saw, whole or as a summary with the
//! sequence gaps of each page session.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use rusqlite::Connection;
use serde::Deserialize;
use serde_json::{json, Value};

use super::in_flight::most_at_once;
use super::{error, App, Inner, MAX_MISSING_LISTED};

#[derive(Deserialize)]
pub(crate) struct EventsQuery {
    summary: Option<String>,
}

pub(crate) async fn events(State(app): State<Arc<App>>, Query(q): Query<EventsQuery>) -> Response {
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
