//! The transport driver: one POST of a bulk body with `fetch`, from a window or a worker.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::Poll;

use gloo_timers::future::TimeoutFuture;
use js_sys::{Function, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Headers, ReadableStream, Response};

use crate::core::SendOutcome;

#[wasm_bindgen]
extern "C" {
    /// The global `fetch`, the same in a window and in a worker.
    #[wasm_bindgen(js_name = fetch)]
    fn global_fetch(url: &str, init: &Object) -> Promise;

    /// Constructing it throws in engines that lack it (before Safari 12.1).
    type AbortController;
    #[wasm_bindgen(constructor, catch)]
    fn new() -> Result<AbortController, JsValue>;
    #[wasm_bindgen(method, getter)]
    fn signal(this: &AbortController) -> JsValue;
    #[wasm_bindgen(method)]
    fn abort(this: &AbortController);

    /// Constructing it throws in engines that lack it.
    type CompressionStream;
    #[wasm_bindgen(constructor, catch)]
    fn new(format: &str) -> Result<CompressionStream, JsValue>;

    /// web-sys's `ReadableStream`, as far as compressing one goes (its `pipeThrough`
    /// wants a feature that this one call does not justify).
    #[wasm_bindgen(js_name = ReadableStream)]
    type Stream;
    #[wasm_bindgen(method, js_name = pipeThrough)]
    fn pipe_through(this: &Stream, transform: &CompressionStream) -> ReadableStream;
}

/// How a body goes out.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A normal request, `application/json` with the user's headers.
    Normal,
    /// During unload: `keepalive`, and a CORS-safelisted content type with no custom
    /// headers, because a preflight at unload dies silently.
    Unload,
}

/// POSTs `body` to `endpoint` and reports what came back. A request with no answer after
/// `timeout_ms` is aborted: a server or proxy that never answers must not hold the
/// in-flight guard forever. `gzip` compresses normal sends where the engine can.
pub async fn send(
    endpoint: &str,
    headers: Option<&Function>,
    body: &str,
    mode: Mode,
    gzip: bool,
    timeout_ms: u64,
) -> SendOutcome {
    match try_send(endpoint, headers, body, mode, gzip, timeout_ms).await {
        Ok(outcome) => outcome,
        Err(err) => SendOutcome::NetworkError(describe(&err)),
    }
}

async fn try_send(
    endpoint: &str,
    headers: Option<&Function>,
    body: &str,
    mode: Mode,
    gzip: bool,
    timeout_ms: u64,
) -> Result<SendOutcome, JsValue> {
    // The request's options as a plain object: web-sys's RequestInit and Request would
    // each add glue for what a few property sets do.
    let init = Object::new();
    let set = |name: &str, value: &JsValue| Reflect::set(&init, &name.into(), value);
    let request_headers = Headers::new()?;
    set("method", &"POST".into())?;
    set("body", &body.into())?;
    match mode {
        Mode::Normal => {
            request_headers.set("Content-Type", "application/json")?;
            let zipped = if gzip { gzipped(body).await } else { None };
            if let Some(zipped) = zipped {
                set("body", &zipped)?;
                request_headers.set("Content-Encoding", "gzip")?;
            }
            if let Some(headers) = headers {
                let extra = match call_headers(headers).await {
                    Ok(extra) => extra,
                    Err(err) => return Ok(SendOutcome::NetworkError(describe(&err))),
                };
                for entry in Object::entries(extra.unchecked_ref()).iter() {
                    let pair: js_sys::Array = entry.unchecked_into();
                    let name = pair.get(0).as_string().unwrap_or_default();
                    request_headers.set(&name, &pair.get(1).as_string().unwrap_or_default())?;
                }
            }
        }
        Mode::Unload => {
            request_headers.set("Content-Type", "text/plain;charset=UTF-8")?;
            set("keepalive", &JsValue::TRUE)?;
        }
    }
    set("headers", &request_headers)?;
    // The timeout is this driver's own timer, not `AbortSignal.timeout`, which older
    // engines lack: without it a hung request would hold the in-flight guard for good.
    // The abort only frees the connection. Started after compressing, so that the whole
    // budget is the server's.
    let controller = AbortController::new().ok();
    if let Some(controller) = &controller {
        set("signal", &controller.signal())?;
    }
    let fetch = JsFuture::from(global_fetch(endpoint, &init));
    // Validated to fit a browser timer (at most 2^31 - 1 ms).
    let Some(answer) = within(fetch, timeout_ms as u32).await else {
        if let Some(controller) = controller {
            controller.abort();
        }
        return Ok(SendOutcome::NetworkError(format!(
            "no answer within {timeout_ms} ms (sendTimeoutMs)"
        )));
    };
    let response: Response = answer?.dyn_into()?;
    Ok(SendOutcome::Status {
        status: response.status(),
        retry_after: response.headers().get("Retry-After")?,
    })
}

/// The promise the `headers` function returns; the entry's function rejects, with the
/// cause, rather than throw, and within `sendTimeoutMs`.
fn call_headers(headers: &Function) -> JsFuture {
    let promise = headers
        .call0(&JsValue::NULL)
        .unwrap_or_else(|err| Promise::reject(&err).into());
    JsFuture::from(Promise::from(promise))
}

/// What `fetch` settles with, or `None` if `ms` pass first.
async fn within(fetch: JsFuture, ms: u32) -> Option<Result<JsValue, JsValue>> {
    let mut fetch = fetch;
    let mut timer = TimeoutFuture::new(ms);
    poll_fn(|cx| {
        if let Poll::Ready(settled) = Pin::new(&mut fetch).poll(cx) {
            return Poll::Ready(Some(settled));
        }
        Pin::new(&mut timer).poll(cx).map(|()| None)
    })
    .await
}

/// `body` gzipped by the engine's `CompressionStream`, where it has one; a body it cannot
/// compress goes plain rather than not at all.
async fn gzipped(body: &str) -> Option<Uint8Array> {
    let stream = CompressionStream::new("gzip").ok()?;
    let plain: Stream = Response::new_with_opt_str(Some(body))
        .ok()?
        .body()?
        .unchecked_into();
    let zipped = Response::new_with_opt_readable_stream(Some(&plain.pipe_through(&stream))).ok()?;
    let bytes = JsFuture::from(zipped.array_buffer().ok()?).await.ok()?;
    Some(Uint8Array::new(&bytes))
}

/// A readable cause from a thrown JS value.
pub fn describe(err: &JsValue) -> String {
    if let Some(message) = Reflect::get(err, &"message".into())
        .ok()
        .and_then(|m| m.as_string())
    {
        let name = Reflect::get(err, &"name".into())
            .ok()
            .and_then(|n| n.as_string())
            .unwrap_or_default();
        return if name.is_empty() {
            message
        } else {
            format!("{name}: {message}")
        };
    }
    err.as_string().unwrap_or_else(|| format!("{err:?}"))
}
