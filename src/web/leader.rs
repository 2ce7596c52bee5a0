//! The leader driver: one sending tab per origin, elected with Web Locks. The lock is
//! held for the tab's life (its callback returns a promise that settles only on
//! release), and the browser hands it to a waiting tab when the holder closes or crashes.

use js_sys::{Function, Promise, Reflect};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};

/// A held or awaited lock; dropping it releases the lock (or stops waiting for it).
pub struct Leadership {
    release: Function,
    /// Withdraws the request while it waits (a tab that falls back to memory must not be
    /// granted the lock later); `None` for a request that never waits.
    abort: Option<JsValue>,
    _granted: Closure<dyn FnMut(JsValue) -> JsValue>,
    ignore: Option<Closure<dyn FnMut(JsValue)>>,
}

impl Drop for Leadership {
    fn drop(&mut self) {
        let _ = self.release.call0(&JsValue::NULL);
        if let Some(controller) = &self.abort {
            let abort = Reflect::get(controller, &"abort".into())
                .ok()
                .and_then(|a| a.dyn_into::<Function>().ok());
            if let Some(abort) = abort {
                let _ = abort.call0(controller);
            }
            // The withdrawn request rejects after this: its handler must outlive us.
            if let Some(ignore) = self.ignore.take() {
                let _ = ignore.into_js_value();
            }
        }
    }
}

/// `navigator.locks`, where the browser has it.
fn lock_manager() -> Option<JsValue> {
    let navigator = Reflect::get(&js_sys::global(), &"navigator".into()).ok()?;
    Reflect::get(&navigator, &"locks".into())
        .ok()
        .filter(|locks| !locks.is_undefined() && !locks.is_null())
}

/// Asks for the lock `name`; `on_granted` runs when this tab becomes the sender. With
/// `if_free`, only if no tab holds the lock now: the request never waits. `None` where Web
/// Locks is missing.
pub fn request(
    name: &str,
    if_free: bool,
    on_granted: impl FnOnce() + 'static,
) -> Option<Leadership> {
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
    let granted = Closure::<dyn FnMut(JsValue) -> JsValue>::new(move |lock: JsValue| {
        // `ifAvailable` calls back with `null` when another tab holds the lock.
        if lock.is_null() {
            return JsValue::UNDEFINED;
        }
        if let Some(on_granted) = on_granted.take() {
            on_granted();
        }
        held.clone().into()
    });
    let options = js_sys::Object::new();
    let abort = if if_free {
        let _ = Reflect::set(&options, &"ifAvailable".into(), &JsValue::TRUE);
        None
    } else {
        let controller = Reflect::get(&js_sys::global(), &"AbortController".into())
            .ok()
            .and_then(|c| c.dyn_into::<Function>().ok())
            .and_then(|c| Reflect::construct(&c, &js_sys::Array::new()).ok());
        if let Some(signal) = controller
            .as_ref()
            .and_then(|c| Reflect::get(c, &"signal".into()).ok())
        {
            let _ = Reflect::set(&options, &"signal".into(), &signal);
        }
        controller
    };
    // Settles when the lock is released; an abort while waiting is not an error here.
    let outcome = request
        .call3(
            &locks,
            &name.into(),
            &options,
            granted.as_ref().unchecked_ref(),
        )
        .ok()?;
    let ignore = Closure::<dyn FnMut(JsValue)>::new(|_: JsValue| {});
    if let Ok(promise) = outcome.dyn_into::<Promise>() {
        let _ = promise.catch(&ignore);
    }
    Some(Leadership {
        release,
        abort,
        _granted: granted,
        ignore: Some(ignore),
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
