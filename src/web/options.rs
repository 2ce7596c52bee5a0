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

/// Every option, as the error for an unknown one lists them.
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

fn whole_number(value: &JsValue, label: &str) -> Result<u64, Error> {
    match value.as_f64() {
        Some(n)
            if n.is_finite() && n >= 0.0 && n.fract() == 0.0 && n <= 9_007_199_254_740_991.0 =>
        {
            Ok(n as u64)
        }
        _ => Err(bad(
            label,
            format!("expected a whole number >= 0, got {}", show(value)),
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
    /// Reads every property of `raw` in one pass, each by its name, and fails on the
    /// first that is unknown or wrong.
    pub fn parse(raw: &JsValue) -> Result<Options, Error> {
        if !raw.is_object() {
            return Err(Error::Options(
                "invalid options: expected an object like { endpoint: 'https://…/bulk/event' }"
                    .into(),
            ));
        }
        let mut config = Config::default();
        let mut options = Options {
            endpoint: String::new(),
            config: Config::default(),
            headers: None,
            gzip: false,
            on_error: None,
            storage_name: "evbuf".to_owned(),
            force_memory: false,
        };
        for entry in Object::entries(raw.unchecked_ref::<Object>()).iter() {
            let entry: js_sys::Array = entry.unchecked_into();
            let key = entry.get(0).as_string().unwrap_or_default();
            let value = entry.get(1);
            if value.is_undefined() {
                continue;
            }
            let name = key.as_str();
            let number = || whole_number(&value, name);
            let count = || Ok::<_, Error>(usize::try_from(number()?).unwrap_or(usize::MAX));
            match name {
                "endpoint" => {
                    options.endpoint = value
                        .as_string()
                        .and_then(|url| absolute_http(&url))
                        .ok_or_else(|| {
                            bad(
                                name,
                                format!(
                                    "expected a string URL (http or https, absolute or relative to the page), got {}",
                                    show(&value)
                                ),
                            )
                        })?
                }
                "flushIntervalMs" => config.flush_interval_ms = number()?,
                "maxEventAgeMs" => config.max_event_age_ms = number()?,
                "sendTimeoutMs" => config.send_timeout_ms = number()?,
                "maxBufferSize" => config.max_buffer_size = count()?,
                "maxBatchEvents" => config.max_batch_events = count()?,
                "maxBatchBytes" => config.max_batch_bytes = count()?,
                "maxStoredEvents" => config.max_stored_events = count()?,
                "maxStoredBytes" => config.max_stored_bytes = count()?,
                "retry" => {
                    if !value.is_object() {
                        return Err(bad(name, "expected { baseMs, maxMs }"));
                    }
                    if let Some(n) = get(&value, "baseMs") {
                        config.retry_base_ms = whole_number(&n, "retry.baseMs")?;
                    }
                    if let Some(n) = get(&value, "maxMs") {
                        config.retry_max_ms = whole_number(&n, "retry.maxMs")?;
                    }
                }
                "headers" => {
                    options.headers = Some(
                        value
                            .dyn_into()
                            .map_err(|_| bad(name, "expected the entry's function"))?,
                    )
                }
                "compression" => {
                    options.gzip = match value.as_string().as_deref() {
                        Some("none") => false,
                        Some("gzip") => true,
                        _ => {
                            let got = show(&value);
                            return Err(bad(name, format!("expected 'gzip' or 'none', got {got}")));
                        }
                    }
                }
                "onError" => {
                    options.on_error = Some(
                        value
                            .dyn_into()
                            .map_err(|_| bad(name, "expected a function"))?,
                    )
                }
                "storageName" => {
                    options.storage_name = value
                        .as_string()
                        .filter(|s| !s.is_empty())
                        .ok_or_else(|| bad(name, "expected a non-empty string"))?
                }
                "useIndexedDb" => {
                    options.force_memory = !value
                        .as_bool()
                        .ok_or_else(|| bad(name, "expected true or false"))?
                }
                // The entry's: it loads the module before the client starts.
                "wasm" => {}
                _ => {
                    return Err(Error::Options(format!(
                        "unknown option `{key}` (known: {KNOWN})"
                    )))
                }
            }
        }
        if options.endpoint.is_empty() {
            return Err(bad(
                "endpoint",
                "required: the URL of the bulk endpoint, e.g. '/bulk/event'",
            ));
        }
        config
            .validate()
            .map_err(|e| Error::Options(e.to_string()))?;
        options.config = config;
        Ok(options)
    }
}

/// `url` resolved against the page or worker location, if that gives an http(s) URL.
fn absolute_http(url: &str) -> Option<String> {
    let base = Reflect::get(&js_sys::global(), &"location".into()).ok()?;
    let url = Url::new(url, &base).ok()?;
    let href = url.href();
    (href.starts_with("http:") || href.starts_with("https:")).then_some(href)
}
