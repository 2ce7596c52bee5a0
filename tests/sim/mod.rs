//! A simulated page for the core: a fake clock, the memory twin of storage, a collector
//! that answers however a test says, and crash/reload. Shared by the decision tests and
//! the property tests.
#![allow(dead_code)] // each test file uses a different part of the harness

use std::collections::{BTreeMap, BTreeSet};

use evbuf::core::{Action, Batch, Config, Core, FlushError, MemoryStore, Report, SendOutcome};

pub const DEVICE: &str = "device-1";

/// What the server side saw: every event id it acknowledged, and how often.
#[derive(Debug, Default)]
pub struct Collector {
    pub acknowledged: BTreeMap<String, u32>,
    pub requests: usize,
}

impl Collector {
    pub fn distinct(&self) -> usize {
        self.acknowledged.len()
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
            assert!(e["seq"].is_u64() && e["ts"].is_u64(), "{e}");
            assert!(!e["payload"].is_null(), "{e}");
            e["id"].as_str().expect("id is a string").to_owned()
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
    /// How often this tab asked the sending tab to flush.
    pub asked_sender: usize,
    /// What storage holds of the backoff, as a driver persists it.
    pub remembered_backoff: Option<(u64, u32)>,
    pending_persist: Option<Vec<evbuf::core::NewEvent>>,
    next_id: u64,
    next_waiter: u64,
}

impl Sim {
    pub fn new(config: Config) -> Sim {
        let now = 1_700_000_000_000;
        Sim {
            core: Core::new(config.clone(), DEVICE.into()).expect("valid config"),
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
            asked_sender: 0,
            remembered_backoff: None,
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
        self.core.handle_log(self.now, id.clone(), payload)?;
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
                Action::Delete(keys) => self.store.delete(&keys),
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
            }
        }
    }

    /// The page is hidden: its keepalive batches reach the collector if `delivered`, and
    /// their answers come back if `answered` (the page lived on).
    pub fn hide(&mut self, delivered: bool, answered: bool) -> usize {
        self.core.handle_page_hidden(self.now);
        self.pump();
        let batches = std::mem::take(&mut self.unload);
        let count = batches.len();
        for batch in batches {
            if !delivered {
                continue;
            }
            for id in batch_ids(&batch) {
                *self.collector.acknowledged.entry(id).or_default() += 1;
            }
            if answered {
                self.core
                    .handle_unload_result(self.now, &batch.keys, &SendOutcome::status(200));
                self.pump();
            }
        }
        self.core.handle_page_visible();
        count
    }

    /// Finishes the write handed to storage.
    pub fn complete_persist(&mut self) {
        let events = self.pending_persist.take().expect("a write is pending");
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
        let target = self.now + ms;
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
                    next > self.now || self.in_flight.is_some() || self.pending_persist.is_some(),
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
            for id in batch_ids(&batch) {
                *self.collector.acknowledged.entry(id).or_default() += 1;
            }
        }
        self.core
            .handle_send_result(self.now, batch.id, outcome, jitter);
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

    /// The page dies: a request in flight may have reached the server (`delivered`) but
    /// its answer is lost; a write not yet complete is lost. A new page loads storage.
    pub fn crash_and_reload(&mut self, delivered: bool) {
        if let Some(batch) = self.in_flight.take() {
            if delivered {
                for id in batch_ids(&batch) {
                    *self.collector.acknowledged.entry(id).or_default() += 1;
                }
            }
        }
        self.pending_persist = None;
        self.core = Core::new(self.config.clone(), DEVICE.into()).expect("valid config");
        let stored = self.store.load();
        self.core.handle_loaded(self.now, stored);
        if let Some((retry_at, attempt)) = self.remembered_backoff {
            self.core
                .handle_backoff_restored(self.now, retry_at, attempt);
        }
        self.pump();
    }

    pub fn stored_ids(&self) -> BTreeSet<String> {
        self.store.load().into_iter().map(|e| e.id).collect()
    }
}
