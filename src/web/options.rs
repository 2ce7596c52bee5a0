//! `init()` options, read from a plain JS object with errors that name the option.

use js_sys::{Function, Object, Reflect};
use wasm_bindgen::prelude::*;

use crate::core::Config;

use super::Error;

#[wasm_bindgen]
extern "C" {
    type Url;
    #[wasm_bindgen(constructor, js_class = "URL", catch)]
    fn new(url: &str, base: &JsValue) -> Result<Url, JsValue>;
    #[wasm_bindgen(method, getter)]
    fn href(this: &Url) -> String;
}

/// Everything `init()` accepts.
pub struct Options {
    /// Absolute: a relative `endpoint` is resolved against the page (or worker script).
    pub endpoint: String,
    pub config: Config,
    /// Called before each normal send for its extra headers: the entry makes every form
    /// of the `headers` option a function returning a promise of a plain object, checked
    /// by the browser's rules.
    pub headers: Option<Function>,
    /// `compression: 'gzip'`.
    pub gzip: bool,
    pub on_error: Option<Function>,
    pub storage_name: String,
    /// Test hook: start in memory as if IndexedDB had failed to open.
    pub force_memory: bool,
}

/// Every option, as the error for an unknown one lists them; `wasm` is the JS wrapper's
/// (it loads the module before the client starts).
const KNOWN: &str = "endpoint, compression, flushIntervalMs, maxBufferSize, \
maxBatchEvents, maxBatchBytes, maxStoredEvents, maxStoredBytes, maxEventAgeMs, retry, \
sendTimeoutMs, headers, onError, storageName, useIndexedDb, wasm";

fn bad(option: &str, reason: impl std::fmt::Display) -> Error {
    Error::Options(format!("invalid option `{option}`: {reason}"))
}

fn get(object: &JsValue, name: &str) -> Option<JsValue> {
    Reflect::get(object, &name.into())
        .ok()
        .filter(|v| !v.is_undefined())
}

fn whole_number(object: &JsValue, name: &str, label: &str) -> Result<Option<u64>, Error> {
    let Some(value) = get(object, name) else {
        return Ok(None);
    };
    match value.as_f64() {
        Some(n)
            if n.is_finite() && n >= 0.0 && n.fract() == 0.0 && n <= 9_007_199_254_740_991.0 =>
        {
            Ok(Some(n as u64))
        }
        _ => Err(bad(
            label,
            format!("expected a whole number >= 0, got {}", show(&value)),
        )),
    }
}

fn show(value: &JsValue) -> String {
    js_sys::JSON::stringify(value)
        .ok()
        .and_then(|s| s.as_string())
        .unwrap_or_else(|| value.js_typeof().as_string().unwrap_or_default())
}

impl Options {
    pub fn parse(raw: &JsValue) -> Result<Options, Error> {
        if !raw.is_object() {
            return Err(Error::Options(
                "invalid options: expected an object like { endpoint: 'https://…/bulk/event' }"
                    .into(),
            ));
        }
        for key in Object::keys(raw.unchecked_ref::<Object>()).iter() {
            let key = key.as_string().unwrap_or_default();
            // Split at the comma (a char: no substring searcher linked), then the space.
            let mut known = KNOWN.split(',').map(|name| name.trim_start_matches(' '));
            if !known.any(|name| name == key) {
                return Err(Error::Options(format!(
                    "unknown option `{key}` (known: {KNOWN})"
                )));
            }
        }
        let endpoint = get(raw, "endpoint").ok_or_else(|| {
            bad(
                "endpoint",
                "required: the URL of the bulk endpoint, e.g. '/bulk/event'",
            )
        })?;
        let endpoint = endpoint
            .as_string()
            .and_then(|url| absolute_http(&url))
            .ok_or_else(|| {
                bad(
                    "endpoint",
                    format!(
                        "expected a string URL (http or https, absolute or relative to the page), got {}",
                        show(&endpoint)
                    ),
                )
            })?;

        let mut config = Config::default();
        let number = |name: &str| whole_number(raw, name, name);
        let count = |name: &str| {
            Ok::<_, Error>(number(name)?.map(|n| usize::try_from(n).unwrap_or(usize::MAX)))
        };
        if let Some(n) = number("flushIntervalMs")? {
            config.flush_interval_ms = n;
        }
        if let Some(n) = number("maxEventAgeMs")? {
            config.max_event_age_ms = n;
        }
        if let Some(n) = number("sendTimeoutMs")? {
            config.send_timeout_ms = n;
        }
        if let Some(n) = count("maxBufferSize")? {
            config.max_buffer_size = n;
        }
        if let Some(n) = count("maxBatchEvents")? {
            config.max_batch_events = n;
        }
        if let Some(n) = count("maxBatchBytes")? {
            config.max_batch_bytes = n;
        }
        if let Some(n) = count("maxStoredEvents")? {
            config.max_stored_events = n;
        }
        if let Some(n) = count("maxStoredBytes")? {
            config.max_stored_bytes = n;
        }
        if let Some(retry) = get(raw, "retry") {
            if !retry.is_object() {
                return Err(bad("retry", "expected { baseMs, maxMs }"));
            }
            if let Some(n) = whole_number(&retry, "baseMs", "retry.baseMs")? {
                config.retry_base_ms = n;
            }
            if let Some(n) = whole_number(&retry, "maxMs", "retry.maxMs")? {
                config.retry_max_ms = n;
            }
        }
        config
            .validate()
            .map_err(|e| Error::Options(e.to_string()))?;

        let headers = match get(raw, "headers") {
            None => None,
            Some(value) => Some(
                value
                    .dyn_into::<Function>()
                    .map_err(|_| bad("headers", "expected the entry's function"))?,
            ),
        };
        let gzip = match get(raw, "compression") {
            None => false,
            Some(value) => match value.as_string().as_deref() {
                Some("none") => false,
                Some("gzip") => true,
                _ => {
                    let got = show(&value);
                    return Err(bad(
                        "compression",
                        format!("expected 'gzip' or 'none', got {got}"),
                    ));
                }
            },
        };
        let on_error = match get(raw, "onError") {
            None => None,
            Some(f) => Some(
                f.dyn_into::<Function>()
                    .map_err(|_| bad("onError", "expected a function"))?,
            ),
        };
        let storage_name = match get(raw, "storageName") {
            None => "evbuf".to_owned(),
            Some(v) => v
                .as_string()
                .filter(|s| !s.is_empty())
                .ok_or_else(|| bad("storageName", "expected a non-empty string"))?,
        };
        let force_memory = match get(raw, "useIndexedDb") {
            None => false,
            Some(v) => !v
                .as_bool()
                .ok_or_else(|| bad("useIndexedDb", "expected true or false"))?,
        };
        Ok(Options {
            endpoint,
            config,
            headers,
            gzip,
            on_error,
            storage_name,
            force_memory,
        })
    }
}

/// `url` resolved against the page or worker location, if that gives an http(s) URL.
fn absolute_http(url: &str) -> Option<String> {
    let base = Reflect::get(&js_sys::global(), &"location".into()).ok()?;
    let url = Url::new(url, &base).ok()?;
    let href = url.href();
    (href.starts_with("http:") || href.starts_with("https:")).then_some(href)
}
