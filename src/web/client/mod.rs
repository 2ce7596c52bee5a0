//! One running client: its state, the calls the API makes on it, and the page's lifecycle
//! listeners. The driver loop is in `run`, writes and deletes in `writes`, the tabs (lock,
//! channel, snapshot) in `tabs`.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use js_sys::{Function, Promise};
use wasm_bindgen::JsValue;

use crate::core::{wire, Core, Stats};

use super::channel::Channel;
use super::clock::Clock;
use super::leader::Leadership;
use super::lifecycle::{self, Listener};
use super::options::Options;
use super::random;
use super::storage::Store;
use super::timer::Timer;
use super::Error;

mod run;
mod tabs;
mod writes;

use run::{Input, Ops};
use writes::Writes;

/// One running evbuf instance: what `init()` starts.
#[derive(Clone)]
pub struct Client {
    inner: Rc<Inner>,
}

struct Inner {
    core: RefCell<Core>,
    store: Store,
    clock: Clock,
    endpoint: String,
    headers: Option<Function>,
    /// `compression: 'gzip'`: normal sends only, a keepalive post cannot wait for a stream.
    gzip: bool,
    on_error: Option<Function>,
    timer: RefCell<Timer>,
    writes: Writes,
    ops: Ops,
    flush_waiters: RefCell<Vec<(u64, Function, Function)>>,
    next_waiter: Cell<u64>,
    listeners: RefCell<Vec<Listener>>,
    /// Held (or awaited) Web Lock that makes this tab the sender; `None` without Web Locks.
    leadership: RefCell<Option<Leadership>>,
    lock_name: String,
    /// Names this tab in messages addressed to it.
    tab_id: String,
    channel: RefCell<Option<Channel>>,
    /// The tabs elect one sender with Web Locks; without them every tab sends what it
    /// logged itself.
    sender_elected: Cell<bool>,
    stopped: Cell<bool>,
    /// Consent was withdrawn: nothing the core asks for is done any more.
    withdrawn: Cell<bool>,
    /// The longest payload (in UTF-16 code units, as JS counts) that fits in a batch
    /// whatever its characters, id and timestamp: the entry stages these in bulk.
    safe_payload_len: usize,
}

impl Client {
    /// Opens storage (IndexedDB, or memory if that fails), loads what an earlier page
    /// left, and starts the loop on the page's clock, for the page session `session`
    /// (whose events the entry numbers).
    pub async fn start(options: Options, session: &str) -> Result<Client, Error> {
        Client::start_with_clock(options, session, Clock::default()).await
    }

    /// [`Client::start`] reading the time from `clock`.
    pub async fn start_with_clock(
        options: Options,
        session: &str,
        clock: Clock,
    ) -> Result<Client, Error> {
        let new_device = random::uuid();
        let tab_id = random::uuid();
        let (store, device, storage_error) =
            Store::open(&options.storage_name, new_device, options.force_memory).await;
        // A UTF-16 code unit takes at most 3 bytes of UTF-8.
        let widest_id = wire::event_id(session, u64::MAX);
        let safe_payload_len = options
            .config
            .max_batch_bytes
            .saturating_sub(wire::envelope_len_bound(&device))
            .saturating_sub(wire::event_len(&widest_id, session, u64::MAX, u64::MAX, ""))
            / 3;
        let core = Core::new(options.config, device, session)
            .map_err(|e| Error::Options(e.to_string()))?;
        let inner = Rc::new(Inner {
            core: RefCell::new(core),
            store,
            clock,
            endpoint: options.endpoint,
            headers: options.headers,
            gzip: options.gzip,
            on_error: options.on_error,
            timer: RefCell::new(Timer::default()),
            writes: Writes::default(),
            ops: Ops::default(),
            flush_waiters: RefCell::new(Vec::new()),
            next_waiter: Cell::new(1),
            listeners: RefCell::new(Vec::new()),
            leadership: RefCell::new(None),
            lock_name: format!("evbuf-sender:{}", options.storage_name),
            tab_id,
            channel: RefCell::new(None),
            sender_elected: Cell::new(false),
            stopped: Cell::new(false),
            withdrawn: Cell::new(false),
            safe_payload_len,
        });
        if let Some(err) = storage_error {
            inner.report(Error::Storage(format!(
                "{err}; keeping events in memory for this page"
            )));
        }
        inner
            .core
            .borrow_mut()
            .handle_online(inner.now(), lifecycle::is_online());
        if !inner.store.is_memory() {
            inner.coordinate_tabs(&options.storage_name);
        }
        inner.apply_snapshot(inner.store.get().load().await);
        inner.listen();
        inner.pump();
        Ok(Client { inner })
    }

    /// Stamps and stores the events of one tick, their JSON payloads separated by
    /// newlines (JSON text has none), numbered from `first_seq` in the page's session:
    /// one timestamp (`at`, the time of calls that waited for the client, else now), one
    /// write. The promise resolves once all are durable; it rejects if one was refused,
    /// the others being kept (the entry hands over a payload longer than
    /// [`Client::safe_payload_len`] alone, so only it is).
    pub fn log_batch(
        &self,
        payloads: &str,
        at: Option<u64>,
        first_seq: u64,
    ) -> Result<Promise, Error> {
        let inner = &self.inner;
        if inner.stopped.get() {
            return Err(Error::NotStarted);
        }
        let refused = {
            let session = inner.core.borrow().session();
            let events = payloads
                .split('\n')
                .zip(first_seq..)
                .map(|(payload, seq)| (wire::event_id(&session, seq), seq, payload.to_owned()));
            let now = inner.now();
            inner
                .core
                .borrow_mut()
                .handle_logs(now, at.unwrap_or(now), events)
        };
        let promise = inner.writes.next_durable();
        inner.pump();
        match refused.into_iter().next() {
            Some(err) => Err(Error::Log(err)),
            None => Ok(promise),
        }
    }

    /// The longest payload, in UTF-16 code units, that no id or timestamp can make too
    /// large for a batch.
    pub fn safe_payload_len(&self) -> usize {
        self.inner.safe_payload_len
    }

    /// Counts a payload the wrapper could not serialize.
    pub fn count_invalid_payload(&self) {
        self.inner.core.borrow_mut().handle_invalid_payload();
    }

    /// Sends now; the promise settles once everything logged so far is acknowledged, or
    /// rejects with the reason it cannot be.
    pub fn flush(&self) -> Promise {
        let inner = self.inner.clone();
        Promise::new(&mut |resolve, reject| {
            let waiter = inner.next_waiter.get();
            inner.next_waiter.set(waiter + 1);
            inner
                .flush_waiters
                .borrow_mut()
                .push((waiter, resolve, reject));
            inner.core.borrow_mut().handle_flush(inner.now(), waiter);
            inner.pump();
        })
    }

    /// Flushes (when this tab is the sender), lets the writes under way end and tell the
    /// other tabs what they stored, then stops the timer and the listeners and hands the
    /// sender role on. Resolves once the flush settled either way: what was not delivered
    /// stays stored for the next sender. A tab that does not send does not wait for the
    /// sender.
    pub async fn shutdown(&self) {
        if self.inner.core.borrow().stats(self.inner.now()).leader {
            let _ = wasm_bindgen_futures::JsFuture::from(self.flush()).await;
        }
        // The sender loads what a tab stored only when told, over the channel closed below.
        self.inner.writes.settled().await;
        self.stop();
    }

    /// Consent withdrawn: from now on this client sends, stores and tells nothing (a send
    /// already on the wire may still arrive). Resolves once the writes under way have
    /// ended, so that the entry's erase of storage comes after them; the calls waiting for
    /// a write resolve, the flushes waiting reject.
    pub async fn withdraw(&self) {
        let inner = &self.inner;
        inner.withdrawn.set(true);
        inner.writes.settled().await;
        inner.writes.let_go();
        for (_, _, reject) in inner.flush_waiters.borrow_mut().drain(..) {
            let _ = reject.call1(&JsValue::NULL, &Error::OptedOut.into());
        }
        self.stop();
    }

    fn stop(&self) {
        let inner = &self.inner;
        inner.stopped.set(true);
        inner.timer.borrow_mut().cancel();
        inner.listeners.borrow_mut().clear();
        inner.leadership.borrow_mut().take();
        inner.channel.borrow_mut().take();
    }

    pub fn stats(&self) -> (Stats, bool) {
        let stats = self.inner.core.borrow().stats(self.inner.now());
        (stats, self.inner.store.is_memory())
    }
}

impl Inner {
    fn now(&self) -> u64 {
        self.clock.now()
    }

    /// Calls `onError` with `error` (never while a borrow is held: the callback may call
    /// back in).
    fn report(&self, error: impl Into<JsValue>) {
        if let Some(on_error) = &self.on_error {
            let _ = on_error.call1(&JsValue::NULL, &error.into());
        }
    }

    /// Listens to the page's lifecycle: online and offline on the global scope; where the
    /// Navigation API is, a navigation to another page of the origin (the next page sends
    /// what is stored) and the end of one that left the page here; `pagehide`, the last
    /// reliable moment on a closing page, `visibilitychange` to hidden for mobile browsers
    /// that never fire it, and `pageshow` for a page back from the back-forward cache
    /// (workers have none of these three).
    fn listen(self: &Rc<Self>) {
        let navigation = lifecycle::navigation();
        let document = lifecycle::document();
        let navigation_kinds: &[&'static str] = match navigation {
            Some(_) => &["navigate", "navigatesuccess", "navigateerror"],
            None => &[],
        };
        let page_kinds: &[&'static str] = match document {
            Some(_) => &["pagehide", "pageshow", "visibilitychange"],
            None => &[],
        };
        let mut listeners = self.listeners.borrow_mut();
        for &kind in ["online", "offline"]
            .iter()
            .chain(navigation_kinds)
            .chain(page_kinds)
        {
            let target = match kind {
                "visibilitychange" => document.clone(),
                _ if kind.starts_with("nav") => navigation.clone(),
                _ => None,
            };
            let weak = Rc::downgrade(self);
            let document = document.clone();
            // One closure type for every listener: each type costs glue.
            listeners.extend(Listener::new(target, kind, move |event| {
                let Some(inner) = weak.upgrade() else { return };
                inner.feed(match kind {
                    "online" | "offline" => Input::Online(kind == "online"),
                    "navigate" => Input::Navigation {
                        leaving: lifecycle::leaves_for_same_origin(&event),
                    },
                    "navigatesuccess" | "navigateerror" => Input::Navigation { leaving: false },
                    "pagehide" => Input::Hidden { closing: true },
                    "visibilitychange" if document.as_ref().is_some_and(lifecycle::is_hidden) => {
                        Input::Hidden { closing: false }
                    }
                    _ => Input::Shown,
                });
            }));
        }
    }
}
