//! The lifecycle driver: listeners on the global scope (a window or a worker) that are
//! removed when dropped.

use js_sys::Reflect;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{Event, EventTarget};

/// One event listener, removed on drop.
pub struct Listener {
    target: EventTarget,
    kind: &'static str,
    callback: Closure<dyn FnMut(Event)>,
}

impl Listener {
    /// Listens on `target` (the global scope when `None`).
    pub fn new(
        target: Option<EventTarget>,
        kind: &'static str,
        handler: impl FnMut(Event) + 'static,
    ) -> Option<Listener> {
        let target = target.or_else(|| js_sys::global().dyn_into::<EventTarget>().ok())?;
        let callback = Closure::<dyn FnMut(Event)>::new(handler);
        target
            .add_event_listener_with_callback(kind, callback.as_ref().unchecked_ref())
            .ok()?;
        Some(Listener {
            target,
            kind,
            callback,
        })
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self
            .target
            .remove_event_listener_with_callback(self.kind, self.callback.as_ref().unchecked_ref());
    }
}

/// `navigator.onLine`, true where the browser does not say.
pub fn is_online() -> bool {
    Reflect::get(&js_sys::global(), &"navigator".into())
        .and_then(|navigator| Reflect::get(&navigator, &"onLine".into()))
        .ok()
        .and_then(|v| v.as_bool())
        .unwrap_or(true)
}

/// The page's document, as the target of its events, where there is one (not in a worker).
pub fn document() -> Option<EventTarget> {
    Reflect::get(&js_sys::global(), &"document".into())
        .ok()
        .filter(|d| d.is_object())
        .map(JsCast::unchecked_into)
}

/// `document.visibilityState == "hidden"` (read by name: web-sys's enum for it costs glue).
pub fn is_hidden(document: &EventTarget) -> bool {
    Reflect::get(document, &"visibilityState".into())
        .ok()
        .and_then(|state| state.as_string())
        .as_deref()
        == Some("hidden")
}

/// The Navigation API's `navigation`, where the browser has it (Chromium; not in workers).
pub fn navigation() -> Option<EventTarget> {
    Reflect::get(&js_sys::global(), &"navigation".into())
        .ok()
        .filter(|n| n.is_object())
        .map(JsCast::unchecked_into)
}

/// Whether a `navigate` event starts a navigation to another document of this page's
/// origin: one the page could intercept (`canIntercept`: same origin, not a traversal to
/// another document) that does not keep the page (a fragment, `history.pushState`) and
/// is not a download.
pub fn leaves_for_same_origin(event: &Event) -> bool {
    let get = |target: &JsValue, name: &str| Reflect::get(target, &name.into()).unwrap_or_default();
    let destination = get(event, "destination");
    get(event, "canIntercept").as_bool() == Some(true)
        && get(&destination, "sameDocument").as_bool() == Some(false)
        && get(event, "downloadRequest").is_null()
}
