//! The JS `Error`s evbuf hands to `onError` and rejects with: the message a person reads,
//! and for code a stable `code` with the fields that apply (`status`, `retryAt` as a
//! `Date`, `events`, `reason`), as `js/index.d.ts` types them.

use js_sys::{Date, Reflect};
use wasm_bindgen::JsValue;

use super::Error;
use crate::core::{FlushError, LogError, Report, SendOutcome};

/// A JS `Error` with `message`, `code` and `fields`.
fn coded(message: &str, code: &str, fields: &[(&str, JsValue)]) -> JsValue {
    let error: JsValue = js_sys::Error::new(message).into();
    let _ = Reflect::set(&error, &"code".into(), &code.into());
    for (name, value) in fields {
        let _ = Reflect::set(&error, &(*name).into(), value);
    }
    error
}

fn date(ms: u64) -> JsValue {
    Date::new(&JsValue::from_f64(ms as f64)).into()
}

fn count(n: usize) -> JsValue {
    JsValue::from_f64(n as f64)
}

impl From<Error> for JsValue {
    fn from(err: Error) -> JsValue {
        let message = err.to_string();
        match &err {
            Error::Options(_) => coded(&message, "config", &[]),
            Error::Storage(_) => coded(&message, "storage", &[]),
            Error::Log(LogError::TooLarge { .. }) => coded(
                &message,
                "dropped",
                &[("reason", "oversize".into()), ("events", count(1))],
            ),
            Error::Flush(FlushError::Offline) => coded(&message, "offline", &[]),
            Error::Flush(FlushError::SendFailed { retry_at, .. }) => {
                coded(&message, "send-failed", &[("retryAt", date(*retry_at))])
            }
            Error::Flush(FlushError::BackingOff { retry_at }) => {
                coded(&message, "backing-off", &[("retryAt", date(*retry_at))])
            }
            Error::Flush(FlushError::SenderSilent { .. }) => coded(&message, "sender-silent", &[]),
            Error::NotStarted => coded(&message, "not-started", &[]),
            Error::OptedOut => coded(&message, "opted-out", &[]),
        }
    }
}

/// What `onError` receives for a report of the core.
pub(crate) fn reported(report: &Report) -> JsValue {
    let message = report.message();
    match report {
        Report::Dropped {
            reason,
            ids,
            status,
            ..
        } => coded(
            &message,
            "dropped",
            &[
                ("reason", reason.name().into()),
                ("events", count(ids.len())),
                ("status", status.map_or(JsValue::UNDEFINED, JsValue::from)),
            ],
        ),
        Report::SendFailed {
            outcome, retry_at, ..
        } => {
            let status = match outcome {
                SendOutcome::Status { status, .. } => JsValue::from(*status),
                SendOutcome::NetworkError(_) => JsValue::UNDEFINED,
            };
            coded(
                &message,
                "send-failed",
                &[("status", status), ("retryAt", date(*retry_at))],
            )
        }
        Report::StorageFailed { .. } => coded(&message, "storage", &[]),
    }
}
