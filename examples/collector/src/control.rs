//! `/control`: what a test asks the collector to get wrong (fail, delay, hang, limit,
//! refuse an event), kept as what remains so that `GET /control` shows the live state.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{error, App};

/// What a test asked the collector to get wrong. Counts and deadlines are
/// kept as what remains, so `GET /control` shows the live state.
#[derive(Default)]
pub(crate) struct Misbehaviour {
    fail_status: Option<u16>,
    fail_until: Option<Instant>,
    fail_left: Option<u64>,
    pub(crate) retry_after: Option<String>,
    delay_ms: Option<u64>,
    delay_left: Option<u64>,
    hang_until: Option<Instant>,
    hang_left: Option<u64>,
    pub(crate) max_body_bytes: Option<u64>,
    pub(crate) poison_key: Option<String>,
}

#[derive(Deserialize, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct ControlUpdate {
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
    pub(crate) fn take_failure(&mut self, now: Instant) -> Option<StatusCode> {
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
    pub(crate) fn take_hang(&mut self, now: Instant) -> bool {
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

    pub(crate) fn take_delay(&mut self) -> Option<Duration> {
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

pub(crate) async fn get_control(State(app): State<Arc<App>>) -> Json<Value> {
    Json(app.lock().control.view(Instant::now()))
}

/// Parsed by hand rather than with the Json extractor so that a missing
/// Content-Type or a typo gets a 400 with a readable message.
pub(crate) async fn post_control(State(app): State<Arc<App>>, body: axum::body::Bytes) -> Response {
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

#[cfg(test)]
mod tests {
    use super::*;

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
