//! A simulated page for the core: a fake clock, the memory twin of storage, a collector
//! that answers however a test says, and crash/reload; and helpers for the tests that drive
//! a bare [`Core`] without it. Shared by the core's test files (`tests/core_*.rs`).
#![allow(dead_code)] // each test file uses a different part of the harness

use std::collections::{BTreeMap, BTreeSet};

use evbuf::core::{
    wire, Action, Batch, Config, Core, FlushError, MemoryStore, Report, SendOutcome, StoredEvent,
};

pub const DEVICE: &str = "device-1";
/// The page session of the simulated tab.
pub const SESSION: &str = "session-1";

/// What the server side saw: every event id it acknowledged, and how often.
#[derive(Debug, Default)]
pub struct Collector {
    pub acknowledged: BTreeMap<String, u32>,
    pub requests: usize,
    /// Ids the server accepted in a request whose answer the page never acted on (it
    /// timed out, the page closed or crashed, or the delete it caused was lost): the only
    /// ids that may arrive again.
    pub answer_lost: BTreeSet<String>,
}

impl Collector {
    pub fn distinct(&self) -> usize {
        self.acknowledged.len()
    }

    pub fn duplicates(&self) -> u32 {
        self.acknowledged.values().map(|n| n - 1).sum()
    }

    /// The server accepts `batch`; `heard` says whether the page acts on the answer.
    ///
    /// # Panics
    /// If an id arrives again although every earlier answer for it was heard: a
    /// systematic duplicate.
    pub fn accept(&mut self, batch: &Batch, heard: bool) {
        for id in batch_ids(batch) {
            let seen = self.acknowledged.entry(id.clone()).or_default();
            *seen += 1;
            assert!(
                *seen == 1 || self.answer_lost.contains(&id),
                "event {id} arrived again although the page heard every answer for it"
            );
            if !heard {
                self.answer_lost.insert(id);
            }
        }
    }
}

/// Ids and counters taken out of a request body (the wire format).
pub fn batch_ids(batch: &Batch) -> Vec<String> {
    let body: serde_json::Value = serde_json::from_str(&batch.body).expect("body is JSON");
    assert_eq!(body["device"], DEVICE);
    assert!(body["sent_at"].is_u64());
    body["events"]
        .as_array()
        .expect("events is an array")
        .iter()
        .map(|e| {
            // Every event with the seq it was logged with (the number in its id here),
            // stored or not.
            let id = e["id"].as_str().expect("id is a string");
            let logged_seq = id.strip_prefix('e').and_then(|n| n.parse::<u64>().ok());
            if let Some(seq) = logged_seq {
                assert_eq!(e["seq"].as_u64(), Some(seq), "{e}");
                assert_eq!(e["session"], SESSION, "{e}");
            }
            assert!(e["ts"].is_u64(), "{e}");
            assert!(!e["payload"].is_null(), "{e}");
            id.to_owned()
        })
        .collect()
}

pub struct Sim {
    pub config: Config,
    pub core: Core,
    pub now: u64,
    pub store: MemoryStore,
    pub in_flight: Option<Batch>,
    pub sent: Vec<Batch>,
    /// Keepalive batches not yet delivered or answered.
    pub unload: Vec<Batch>,
    pub reports: Vec<Report>,
    pub settled: Vec<(u64, Result<(), FlushError>)>,
    pub collector: Collector,
    /// Ids whose `logEvent` resolved (stored durably), over all page lives.
    pub durable: BTreeSet<String>,
    /// Ids reported as dropped, over all page lives.
    pub dropped: BTreeSet<String>,
    /// When false, `Persist` actions wait for [`Sim::complete_persist`].
    pub persist_at_once: bool,
    /// Deletes not yet executed: like the driver, they run when storage is idle or go
    /// with the next write; a crash loses them.
    pub pending_deletes: Vec<evbuf::core::Key>,
    /// How often this tab asked the sending tab to flush.
    pub asked_sender: usize,
    /// What storage holds of the backoff, as a driver persists it.
    pub remembered_backoff: Option<(u64, u32)>,
    /// Events offered to the sending tab ([`Action::HandOver`]), one offer each.
    pub handed: Vec<Vec<String>>,
    /// How often this tab let another one send ([`Action::StepDown`]).
    pub stepped_down: usize,
    /// How often this tab in memory asked for the sender's role if free ([`Action::LeadIfFree`]).
    pub asked_to_lead: usize,
    /// Keys told to the other tabs as stored ([`Action::AnnounceStored`]), in order.
    pub announced: Vec<evbuf::core::Key>,
    /// Adoptions confirmed to other tabs ([`Action::ConfirmAdopted`]).
    pub confirmed: Vec<(String, Vec<evbuf::core::Key>)>,
    pending_persist: Option<std::rc::Rc<Vec<evbuf::core::NewEvent>>>,
    next_id: u64,
    next_waiter: u64,
}

impl Sim {
    pub fn new(config: Config) -> Sim {
        let now = 1_700_000_000_000;
        Sim {
            core: Core::new(config.clone(), DEVICE.into(), SESSION).expect("valid config"),
            config,
            now,
            store: MemoryStore::new(1),
            in_flight: None,
            sent: Vec::new(),
            unload: Vec::new(),
            reports: Vec::new(),
            settled: Vec::new(),
            collector: Collector::default(),
            durable: BTreeSet::new(),
            dropped: BTreeSet::new(),
            persist_at_once: true,
            pending_deletes: Vec::new(),
            asked_sender: 0,
            remembered_backoff: None,
            handed: Vec::new(),
            confirmed: Vec::new(),
            stepped_down: 0,
            asked_to_lead: 0,
            announced: Vec::new(),
            pending_persist: None,
            next_id: 0,
            next_waiter: 0,
        }
    }

    pub fn with_defaults() -> Sim {
        Sim::new(Config::default())
    }

    /// Logs an event with a payload of about `size` bytes; returns its id.
    pub fn log_sized(&mut self, size: usize) -> Result<String, evbuf::core::LogError> {
        self.next_id += 1;
        let id = format!("e{}", self.next_id);
        let payload = format!(r#"{{"n":{},"pad":"{}"}}"#, self.next_id, "x".repeat(size));
        self.core
            .handle_log(self.now, id.clone(), self.next_id, payload)?;
        self.pump();
        Ok(id)
    }

    pub fn log(&mut self) -> String {
        self.log_sized(20).expect("a small event fits")
    }

    pub fn log_many(&mut self, n: usize) -> Vec<String> {
        (0..n).map(|_| self.log()).collect()
    }

    /// Executes every action the core has.
    pub fn pump(&mut self) {
        while let Some(action) = self.core.poll_action() {
            match action {
                Action::Persist(events) => {
                    assert!(self.pending_persist.is_none(), "one write at a time");
                    self.pending_persist = Some(events);
                    if self.persist_at_once {
                        self.complete_persist();
                    }
                }
                Action::Delete(keys) => {
                    assert!(!keys.is_empty(), "a delete of nothing");
                    self.pending_deletes.extend(keys);
                    if self.pending_persist.is_none() {
                        self.complete_deletes();
                    }
                }
                Action::Send(batch) => {
                    assert!(
                        self.in_flight.is_none(),
                        "a second send while one is in flight"
                    );
                    assert!(batch.keys.len() <= self.config.max_batch_events);
                    assert!(
                        batch.body.len() <= self.config.max_batch_bytes || batch.keys.len() == 1,
                        "batch of {} bytes",
                        batch.body.len()
                    );
                    self.collector.requests += 1;
                    self.sent.push(batch.clone());
                    self.in_flight = Some(batch);
                }
                Action::SendUnload(batch) => {
                    assert!(batch.body.len() <= evbuf::core::KEEPALIVE_BUDGET_BYTES);
                    self.unload.push(batch);
                }
                Action::Report(report) => {
                    if let Report::Dropped { ids, .. } = &report {
                        self.dropped.extend(ids.iter().cloned());
                    }
                    self.reports.push(report);
                }
                Action::FlushSettled { waiter, result } => self.settled.push((waiter, result)),
                Action::AskSenderToFlush => self.asked_sender += 1,
                Action::RememberBackoff(backoff) => self.remembered_backoff = backoff,
                Action::HandOver(lines) => self.handed.push(lines),
                Action::StepDown => self.stepped_down += 1,
                Action::LeadIfFree => self.asked_to_lead += 1,
                Action::AnnounceStored(keys) => self.announced.extend(keys),
                Action::ConfirmAdopted { tab, keys } => self.confirmed.push((tab, keys)),
            }
        }
        let stats = self.core.stats(self.now);
        assert_eq!(
            stats.unaccounted(),
            0,
            "the books do not balance: {stats:?}"
        );
    }

    /// The page is hidden (or closed): returns how many keepalive posts it made; they
    /// stay out until [`Sim::answer_unload`].
    pub fn post_on_hide(&mut self) -> usize {
        let before = self.unload.len();
        self.core.handle_page_hidden(self.now);
        self.pump();
        self.unload.len() - before
    }

    /// The keepalive posts out reach the collector if `delivered`, and their answers (2xx
    /// if delivered, else a network error) come back to the page if `answered`.
    pub fn answer_unload(&mut self, delivered: bool, answered: bool) {
        for batch in std::mem::take(&mut self.unload) {
            if delivered {
                self.collector.accept(&batch, answered);
            }
            if answered {
                let outcome = if delivered {
                    SendOutcome::status(200)
                } else {
                    SendOutcome::NetworkError("keepalive failed".into())
                };
                self.core.handle_unload_result(self.now, batch.id, &outcome);
                self.pump();
            }
        }
    }

    /// Hides the page and settles its keepalive posts at once.
    pub fn hide(&mut self, delivered: bool, answered: bool) -> usize {
        let count = self.post_on_hide();
        self.answer_unload(delivered, answered);
        count
    }

    /// Executes the deletes waiting for storage.
    pub fn complete_deletes(&mut self) {
        let keys = std::mem::take(&mut self.pending_deletes);
        self.store.delete(&keys);
        self.core.handle_deleted(self.now, keys.len());
        self.pump();
    }

    /// Finishes the write handed to storage, with the deletes that waited for it.
    pub fn complete_persist(&mut self) {
        let events = self.pending_persist.take().expect("a write is pending");
        self.complete_deletes();
        let keys = self.store.put_all(&events);
        self.durable.extend(events.iter().map(|e| e.id.clone()));
        self.core.handle_persisted(self.now, &keys);
        self.pump();
    }

    pub fn complete_persist_if_pending(&mut self) {
        if self.pending_persist.is_some() {
            self.complete_persist();
        }
    }

    /// Moves the clock, firing the core's timer whenever it is due.
    pub fn advance(&mut self, ms: u64) {
        let target = self.now.saturating_add(ms);
        let mut fired = 0;
        while let Some(at) = self.core.poll_timeout() {
            if at > target {
                break;
            }
            self.now = self.now.max(at);
            self.core.handle_timeout(self.now);
            self.pump();
            fired += 1;
            assert!(fired < 100_000, "the timer spins");
            // A core that asks to be woken at a moment it has passed would spin.
            if let Some(next) = self.core.poll_timeout() {
                assert!(
                    next > self.now,
                    "timer re-armed in the past: {next} <= {}",
                    self.now
                );
            }
        }
        self.now = target;
    }

    /// Answers the request in flight.
    pub fn answer(&mut self, outcome: SendOutcome) -> Batch {
        self.answer_with_jitter(outcome, 0.5)
    }

    pub fn answer_with_jitter(&mut self, outcome: SendOutcome, jitter: f64) -> Batch {
        let batch = self.in_flight.take().expect("a request is in flight");
        if matches!(
            outcome,
            SendOutcome::Status {
                status: 200..=299,
                ..
            }
        ) {
            self.collector.accept(&batch, true);
        }
        self.core
            .handle_send_result(self.now, batch.id, outcome, jitter);
        self.pump();
        batch
    }

    /// The request in flight gets no answer within `sendTimeoutMs`: the driver aborts it.
    /// The server may have accepted it (`delivered`) all the same.
    pub fn time_out(&mut self, delivered: bool, jitter: f64) -> Batch {
        let batch = self.in_flight.take().expect("a request is in flight");
        self.now += self.config.send_timeout_ms;
        if delivered {
            self.collector.accept(&batch, false);
        }
        self.core.handle_send_result(
            self.now,
            batch.id,
            SendOutcome::NetworkError("TimeoutError: signal timed out".into()),
            jitter,
        );
        self.pump();
        batch
    }

    pub fn ok(&mut self) -> Batch {
        self.answer(SendOutcome::status(200))
    }

    pub fn flush(&mut self) -> u64 {
        self.next_waiter += 1;
        self.core.handle_flush(self.now, self.next_waiter);
        self.pump();
        self.next_waiter
    }

    pub fn settled(&self, waiter: u64) -> Option<&Result<(), FlushError>> {
        self.settled
            .iter()
            .find(|(w, _)| *w == waiter)
            .map(|(_, r)| r)
    }

    /// The page dies: requests out (normal and keepalive) may have reached the server
    /// (`delivered`) but their answers are lost; a write not yet complete is lost, and so
    /// are deletes not yet executed. A new page starts as the driver starts one: the
    /// remembered backoff first, then a snapshot of storage.
    pub fn crash_and_reload(&mut self, delivered: bool) {
        let out: Vec<Batch> = self
            .in_flight
            .take()
            .into_iter()
            .chain(self.unload.drain(..))
            .collect();
        if delivered {
            for batch in &out {
                self.collector.accept(batch, false);
            }
        }
        // Acknowledged but still stored: the next page sends them again.
        let undeleted = std::mem::take(&mut self.pending_deletes);
        for event in self.store.load() {
            if undeleted.contains(&event.key) {
                self.collector.answer_lost.insert(event.id);
            }
        }
        self.pending_persist = None;
        self.core = Core::new(self.config.clone(), DEVICE.into(), SESSION).expect("valid config");
        self.core
            .handle_backoff_restored(self.now, self.remembered_backoff);
        let stored = self.store.load();
        let below = self.store.next_key();
        self.core.handle_snapshot(self.now, stored, below);
        self.pump();
    }

    pub fn stored_ids(&self) -> BTreeSet<String> {
        self.store.load().into_iter().map(|e| e.id).collect()
    }
}

// ---- answers ---------------------------------------------------------------------------

/// An answer with `status` and no `Retry-After`.
pub fn status(status: u16) -> SendOutcome {
    SendOutcome::status(status)
}

/// An answer with `status` and a `Retry-After` of `value`.
pub fn with_retry_after(status: u16, value: &str) -> SendOutcome {
    SendOutcome::Status {
        status,
        retry_after: Some(value.into()),
    }
}

// ---- a bare core, without the simulation -----------------------------------------------

/// The clock of a bare core: the moment the simulated page starts at too.
pub const T0: u64 = 1_700_000_000_000;

/// A stored event under `key`, of session "s", with that seq, logged at [`T0`].
pub fn stored(key: u64) -> StoredEvent {
    StoredEvent {
        key,
        session: "s".into(),
        seq: key,
        id: format!("s{key}"),
        ts: T0,
        payload: "{}".into(),
    }
}

/// A stored event whose wire encoding is exactly `len` bytes.
pub fn stored_of_len(key: u64, len: usize) -> StoredEvent {
    let id = format!("s{key}");
    let pad = len - wire::event_len(&id, "s", key, T0, "\"\"");
    StoredEvent {
        key,
        session: "s".into(),
        seq: key,
        payload: format!("\"{}\"", "x".repeat(pad)),
        id,
        ts: T0,
    }
}

/// Loads `events` and flushes: the request that goes out.
pub fn flushed(core: &mut Core, events: Vec<StoredEvent>) -> Batch {
    core.handle_loaded(T0, events);
    core.handle_flush(T0, 1);
    actions(core)
        .into_iter()
        .find_map(|a| match a {
            Action::Send(batch) => Some(batch),
            _ => None,
        })
        .expect("a flush of loaded events sends them")
}

/// Every action the core has, in order.
pub fn actions(core: &mut Core) -> Vec<Action> {
    std::iter::from_fn(|| core.poll_action()).collect()
}
