//! The leader driver: one sending tab per origin, elected with Web Locks. The lock is
//! held for the tab's life (its callback returns a promise that settles only on
//! release), and the browser hands it to a waiting tab when the holder closes or crashes.

use js_sys::{Function, Promise, Reflect};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};

/// A held or awaited lock; dropping it releases the lock (or stops waiting for it).
pub struct Leadership {
    release: Function,
    _granted: Closure<dyn FnMut(JsValue) -> JsValue>,
    _ignore: Closure<dyn FnMut(JsValue)>,
}

impl Drop for Leadership {
    fn drop(&mut self) {
        let _ = self.release.call0(&JsValue::NULL);
    }
}

/// `navigator.locks`, where the browser has it.
fn lock_manager() -> Option<JsValue> {
    let navigator = Reflect::get(&js_sys::global(), &"navigator".into()).ok()?;
    Reflect::get(&navigator, &"locks".into())
        .ok()
        .filter(|locks| !locks.is_undefined() && !locks.is_null())
}

/// Asks for the lock `name`; `on_granted` runs when this tab becomes the sender.
/// `None` where Web Locks is missing.
pub fn request(name: &str, on_granted: impl FnOnce() + 'static) -> Option<Leadership> {
    let locks = lock_manager()?;
    let request: Function = Reflect::get(&locks, &"request".into())
        .ok()?
        .dyn_into()
        .ok()?;
    let mut release = None;
    let held = Promise::new(&mut |resolve, _reject| release = Some(resolve));
    // The executor runs synchronously inside `new Promise`.
    let release = release.expect("the Promise executor ran");
    let mut on_granted = Some(on_granted);
    let granted = Closure::<dyn FnMut(JsValue) -> JsValue>::new(move |_lock: JsValue| {
        if let Some(on_granted) = on_granted.take() {
            on_granted();
        }
        held.clone().into()
    });
    // Settles when the lock is released; an abort while waiting is not an error here.
    let outcome = request
        .call2(&locks, &name.into(), granted.as_ref().unchecked_ref())
        .ok()?;
    let ignore = Closure::<dyn FnMut(JsValue)>::new(|_: JsValue| {});
    if let Ok(promise) = outcome.dyn_into::<Promise>() {
        let _ = promise.catch(&ignore);
    }
    Some(Leadership {
        release,
        _granted: granted,
        _ignore: ignore,
    })
}

/// Whether another tab waits for the lock `name`: it would take over sending if this tab
/// closed. False where Web Locks is missing or the query fails.
pub async fn others_waiting(name: &str) -> bool {
    let Some(locks) = lock_manager() else {
        return false;
    };
    let query = Reflect::get(&locks, &"query".into())
        .ok()
        .and_then(|q| q.dyn_into::<Function>().ok())
        .and_then(|q| q.call0(&locks).ok())
        .and_then(|p| p.dyn_into::<Promise>().ok());
    let Some(query) = query else { return false };
    let Ok(snapshot) = wasm_bindgen_futures::JsFuture::from(query).await else {
        return false;
    };
    let pending = Reflect::get(&snapshot, &"pending".into()).unwrap_or(JsValue::UNDEFINED);
    js_sys::Array::from(&pending).iter().any(|lock| {
        Reflect::get(&lock, &"name".into())
            .ok()
            .and_then(|n| n.as_string())
            .as_deref()
            == Some(name)
    })
}
