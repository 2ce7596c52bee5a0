//! Writes and deferred deletes: one write at a time, one durability promise per write
//! shared by the `logEvent` calls it carries, and deletes that wait until storage is idle
//! or ride along in the next write's transaction.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use js_sys::{Function, Promise};
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::spawn_local;

use crate::core::{Key, NewEvent};

use super::super::channel::Message;
use super::Inner;

#[derive(Default)]
pub(super) struct Writes {
    /// The promise `logEvent` returns until the next write starts: one per write, not
    /// one per event.
    next_write: RefCell<Option<Promise>>,
    /// Resolve functions of events not yet handed to storage.
    waiting: RefCell<Vec<Function>>,
    /// Resolve functions of the write in progress.
    writing: RefCell<Vec<Function>>,
    /// A write is running: deletes wait, so that durability never queues behind them
    /// (IndexedDB runs read-write transactions on a store one after another).
    write_running: Cell<bool>,
    delete_running: Cell<bool>,
    /// Resolve functions of those waiting for the write in progress to end.
    ending: RefCell<Vec<Function>>,
    /// Acknowledged or dropped keys not yet deleted.
    to_delete: RefCell<Vec<Key>>,
}

impl Writes {
    /// The promise of the next write, which resolves once it is durable.
    pub(super) fn next_durable(&self) -> Promise {
        self.next_write
            .borrow_mut()
            .get_or_insert_with(|| {
                let mut resolve = None;
                let promise = Promise::new(&mut |res, _rej| resolve = Some(res));
                // The executor runs synchronously inside `new Promise`.
                self.waiting
                    .borrow_mut()
                    .push(resolve.expect("the Promise executor ran"));
                promise
            })
            .clone()
    }

    /// Resolves the promises of every event not yet durable, as the events are let go
    /// (consent withdrawn): their calls must not wait for a write that never comes.
    pub(super) fn let_go(&self) {
        self.next_write.borrow_mut().take();
        let waiting = std::mem::take(&mut *self.waiting.borrow_mut());
        let writing = std::mem::take(&mut *self.writing.borrow_mut());
        for resolve in waiting.into_iter().chain(writing) {
            let _ = resolve.call0(&JsValue::NULL);
        }
    }

    /// Resolves once no write runs: each write, as it ends, starts the next one for what
    /// was logged meanwhile.
    pub(super) async fn settled(&self) {
        while self.write_running.get() {
            let mut resolve = None;
            let ended = Promise::new(&mut |res, _rej| resolve = Some(res));
            // The executor runs synchronously inside `new Promise`.
            self.ending
                .borrow_mut()
                .push(resolve.expect("the Promise executor ran"));
            let _ = wasm_bindgen_futures::JsFuture::from(ended).await;
        }
    }
}

impl Inner {
    /// Writes `events` (and the deletes waiting) in one transaction, then tells the core
    /// and the other tabs; a failed write leaves storage in memory and is retried there.
    pub(super) fn persist(self: &Rc<Self>, events: Rc<Vec<NewEvent>>) {
        let writes = &self.writes;
        writes.next_write.borrow_mut().take();
        let waiting = std::mem::take(&mut *writes.waiting.borrow_mut());
        writes.writing.borrow_mut().extend(waiting);
        writes.write_running.set(true);
        let deletes = std::mem::take(&mut *writes.to_delete.borrow_mut());
        let inner = self.clone();
        spawn_local(async move {
            let first_free = || {
                inner
                    .core
                    .borrow()
                    .queued_keys()
                    .last()
                    .map_or(1, |k| k + 1)
            };
            let result = inner.store.put_all(&events, &deletes, first_free).await;
            // The core holds these events too: let go first, so that it can move them
            // back on a failure instead of copying them.
            drop(events);
            let writes = &inner.writes;
            match result {
                Ok(keys) => {
                    // Keys of a memory store name nothing other tabs can see.
                    let shared = inner.store.shared(&deletes);
                    if !shared.is_empty() {
                        inner.broadcast(Message::Deleted(shared));
                    }
                    let now = inner.now();
                    inner.core.borrow_mut().handle_deleted(now, deletes.len());
                    inner.core.borrow_mut().handle_persisted(now, &keys);
                    for resolve in writes.writing.borrow_mut().drain(..) {
                        let _ = resolve.call0(&JsValue::NULL);
                    }
                }
                Err(failed) => {
                    let now = inner.now();
                    if let Some(first_key) = failed.memory_from {
                        inner
                            .core
                            .borrow_mut()
                            .handle_memory_fallback(now, first_key);
                    }
                    // The transaction rolled back: its deletes wait for the next try.
                    writes.to_delete.borrow_mut().splice(0..0, deletes);
                    inner.core.borrow_mut().handle_persist_failed(
                        now,
                        format!("{}; keeping events in memory for this page", failed.error),
                    );
                    // The retried write (already queued by the core) resolves these.
                    let writing = std::mem::take(&mut *writes.writing.borrow_mut());
                    writes.waiting.borrow_mut().splice(0..0, writing);
                }
            }
            writes.write_running.set(false);
            inner.pump();
            for resolve in writes.ending.borrow_mut().drain(..) {
                let _ = resolve.call0(&JsValue::NULL);
            }
            inner.delete_when_idle();
        });
    }

    /// Deletes `keys` with the next write or once storage is idle.
    pub(super) fn delete_later(self: &Rc<Self>, keys: Vec<Key>) {
        self.writes.to_delete.borrow_mut().extend(keys);
        self.delete_when_idle();
    }

    /// Deletes what is waiting in one transaction, unless a write or a delete is running
    /// (each calls back here when it ends; a write that starts meanwhile takes them).
    fn delete_when_idle(self: &Rc<Self>) {
        let writes = &self.writes;
        if writes.write_running.get() || writes.delete_running.get() {
            return;
        }
        let keys = std::mem::take(&mut *writes.to_delete.borrow_mut());
        if keys.is_empty() {
            return;
        }
        writes.delete_running.set(true);
        let inner = self.clone();
        spawn_local(async move {
            match inner.store.delete(&keys).await {
                Ok(()) => {
                    let shared = inner.store.shared(&keys);
                    if !shared.is_empty() {
                        inner.broadcast(Message::Deleted(shared));
                    }
                }
                // The next page sends them again; the server deduplicates.
                Err(err) => inner.report(err),
            }
            let now = inner.now();
            inner.core.borrow_mut().handle_deleted(now, keys.len());
            inner.pump();
            inner.writes.delete_running.set(false);
            inner.delete_when_idle();
        });
    }
}
