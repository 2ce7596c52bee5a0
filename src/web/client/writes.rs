//! Writes and deferred deletes: one write at a time, one durability promise per write
//! shared by the `logEvent` calls it carries, and deletes that wait until storage is idle
//! or ride along in the next write's transaction.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use crate::core::{Key, NewEvent};
use js_sys::{Function, Promise};
use wasm_bindgen::JsValue;

use super::super::channel::Message;
use super::super::storage::WriteFailed;
use super::super::Error;
use super::{Inner, Input};

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
    /// Writes `events` (and the deletes waiting) in one transaction; `written` tells the
    /// core and the other tabs how it went.
    pub(super) fn persist(self: &Rc<Self>, events: Rc<Vec<NewEvent>>) {
        let writes = &self.writes;
        writes.next_write.borrow_mut().take();
        let waiting = std::mem::take(&mut *writes.waiting.borrow_mut());
        writes.writing.borrow_mut().extend(waiting);
        writes.write_running.set(true);
        let deletes = std::mem::take(&mut *writes.to_delete.borrow_mut());
        let inner = self.clone();
        self.start(async move {
            let first_free = || {
                inner
                    .core
                    .borrow()
                    .queued_keys()
                    .last()
                    .map_or(1, |k| k + 1)
            };
            let result = inner.store.put_all(&events, &deletes, first_free).await;
            Input::Written { deletes, result }
        });
    }

    /// A write ended (its events already let go, so that the core can move them back on a
    /// failure instead of copying them); a failed write leaves storage in memory and is
    /// retried there.
    pub(super) fn written(
        self: &Rc<Self>,
        deletes: Vec<Key>,
        result: Result<Vec<Key>, WriteFailed>,
    ) {
        let writes = &self.writes;
        let now = self.now();
        match result {
            Ok(keys) => {
                // Keys of a memory store name nothing other tabs can see.
                let shared = self.store.shared(&deletes);
                if !shared.is_empty() {
                    self.broadcast(Message::Deleted(shared));
                }
                self.core.borrow_mut().handle_deleted(now, deletes.len());
                self.core.borrow_mut().handle_persisted(now, &keys);
                for resolve in writes.writing.borrow_mut().drain(..) {
                    let _ = resolve.call0(&JsValue::NULL);
                }
            }
            Err(failed) => {
                if let Some(first_key) = failed.memory_from {
                    self.core
                        .borrow_mut()
                        .handle_memory_fallback(now, first_key);
                }
                // The transaction rolled back: its deletes wait for the next try.
                writes.to_delete.borrow_mut().splice(0..0, deletes);
                self.core.borrow_mut().handle_persist_failed(
                    now,
                    format!("{}; keeping events in memory for this page", failed.error),
                );
                // The retried write (already queued by the core) resolves these.
                let writing = std::mem::take(&mut *writes.writing.borrow_mut());
                writes.waiting.borrow_mut().splice(0..0, writing);
            }
        }
        writes.write_running.set(false);
        // Before the deletes waiting: a write the core starts now takes them along, rather
        // than queue behind a delete of their own.
        self.pump();
        for resolve in writes.ending.borrow_mut().drain(..) {
            let _ = resolve.call0(&JsValue::NULL);
        }
        self.delete_when_idle();
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
        self.start(async move {
            let result = inner.store.delete(&keys).await;
            Input::Deleted { keys, result }
        });
    }

    /// A delete ended; one that failed is reported, and the next page sends its events
    /// again (the server deduplicates).
    pub(super) fn deleted(self: &Rc<Self>, keys: Vec<Key>, result: Result<(), Error>) {
        match result {
            Ok(()) => {
                let shared = self.store.shared(&keys);
                if !shared.is_empty() {
                    self.broadcast(Message::Deleted(shared));
                }
            }
            Err(err) => self.report(err),
        }
        self.core
            .borrow_mut()
            .handle_deleted(self.now(), keys.len());
        self.pump();
        self.writes.delete_running.set(false);
        self.delete_when_idle();
    }
}
