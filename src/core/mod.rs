//! The delivery core: a deterministic state machine that decides what to store, what to
//! send, what to delete and when to wake up. It never touches a clock, a random source,
//! storage or the network; the driver passes time and jitter in and executes the actions.
//!
//! # Run loop (the driver's side)
//! 1. feed one input through a `handle_*` method (a log, a timeout, a send result, ...);
//! 2. drain [`Core::poll_action`] and execute each action;
//! 3. arm one timer for [`Core::poll_timeout`] and call [`Core::handle_timeout`] when it fires.
//!
//! # Life of an event
//! `handle_log` queues it *unpersisted*; a [`Action::Persist`] hands it (with every other
//! event logged meanwhile) to storage, which assigns its key; `handle_persisted` moves it
//! to the *queue*. Only queued events are sent, and a queued event leaves the queue only
//! by a 2xx for a batch that carried it ([`Action::Delete`]) or by a counted drop
//! ([`Action::Report`] with [`Report::Dropped`]).

pub mod config;
mod memory_store;
mod retry;
mod stats;
pub mod wire;

use std::collections::{BTreeMap, VecDeque};
use std::fmt;

pub use config::{Config, ConfigError, KEEPALIVE_BUDGET_BYTES, MAX_TIMER_MS};
pub use memory_store::MemoryStore;
pub use retry::{backoff_bound_ms, parse_retry_after, SendOutcome, MIN_WAIT_MS};
pub use stats::{DropCounts, DropReason, Stats};

use retry::{backoff_ms, verdict, Verdict};

/// A storage key. Storage assigns keys in increasing order, so a key is also the event's
/// `seq` on the wire and its age rank.
pub type Key = u64;

/// The core's handle on one logged event until it is stored (and after, for flush waiters).
pub type Ord = u64;

/// An event to be written by [`Action::Persist`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub ord: Ord,
    pub id: String,
    pub ts: u64,
    /// The payload, already serialized as JSON.
    pub payload: String,
}

/// An event as storage holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub key: Key,
    pub id: String,
    pub ts: u64,
    pub payload: String,
}

/// One request to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// Identifies the answer in [`Core::handle_send_result`].
    pub id: u64,
    /// The storage keys of the events it carries.
    pub keys: Vec<Key>,
    /// The request body in the wire format.
    pub body: String,
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Write these events in one go; answer with [`Core::handle_persisted`] (keys in the
    /// same order) or [`Core::handle_persist_failed`].
    Persist(Vec<NewEvent>),
    /// Remove these keys from storage (acknowledged or dropped).
    Delete(Vec<Key>),
    /// POST this batch; answer with [`Core::handle_send_result`].
    Send(Batch),
    /// The page is going away: POST this batch with `keepalive` and a CORS-safelisted
    /// content type. If an answer comes, pass it to [`Core::handle_unload_result`].
    SendUnload(Batch),
    /// Tell the user (the `onError` callback).
    Report(Report),
    /// Persist the backoff (`Some((retry_at, attempt))`) or its end (`None`), so that a
    /// reloaded page keeps waiting instead of hammering a server that is down; feed it
    /// back with [`Core::handle_backoff_restored`].
    RememberBackoff(Option<(u64, u32)>),
    /// This tab does not send: ask the tab that does to flush now.
    AskSenderToFlush,
    /// A `flush()` call is settled.
    FlushSettled {
        waiter: u64,
        result: Result<(), FlushError>,
    },
}

/// Something the user should hear about.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Report {
    /// These events were dropped and counted.
    Dropped {
        reason: DropReason,
        ids: Vec<String>,
        detail: String,
    },
    /// A send failed; the events are kept and retried at `retry_at`.
    SendFailed {
        outcome: SendOutcome,
        retry_at: u64,
        detail: String,
    },
    /// Storage could not write; the events are kept in memory.
    StorageFailed { detail: String },
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Report::Dropped {
                reason,
                ids,
                detail,
            } => write!(
                f,
                "dropped {} event(s) ({}): {detail}",
                ids.len(),
                reason.name()
            ),
            Report::SendFailed { detail, .. } => write!(f, "failed to send events: {detail}"),
            Report::StorageFailed { detail } => write!(f, "failed to store events: {detail}"),
        }
    }
}

/// Why `logEvent` refused an event.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogError {
    /// The event cannot fit in any batch.
    TooLarge { bytes: usize, limit: usize },
}

impl fmt::Display for LogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogError::TooLarge { bytes, limit } => write!(
                f,
                "failed to log event: it takes {bytes} bytes on the wire, more than maxBatchBytes ({limit})"
            ),
        }
    }
}

impl std::error::Error for LogError {}

/// Why a `flush()` did not deliver everything logged before it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FlushError {
    /// The browser says it is offline; events stay stored.
    Offline,
    /// A send failed; events stay stored and are retried at `retry_at`.
    SendFailed { detail: String, retry_at: u64 },
    /// An earlier failure is being waited out until `retry_at`.
    BackingOff { retry_at: u64 },
}

impl fmt::Display for FlushError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlushError::Offline => write!(f, "failed to flush: the browser is offline; events stay stored"),
            FlushError::SendFailed { detail, retry_at } => write!(f, "failed to flush: {detail}; events stay stored and are retried at {retry_at}"),
            FlushError::BackingOff { retry_at } => write!(f, "failed to flush: waiting after an earlier failure until {retry_at}; events stay stored"),
        }
    }
}

impl std::error::Error for FlushError {}

#[derive(Debug, Clone)]
struct Queued {
    ord: Ord,
    id: String,
    ts: u64,
    /// The event as it goes on the wire.
    encoded: String,
}

#[derive(Debug)]
struct InFlight {
    batch_id: u64,
    keys: Vec<Key>,
    /// The batch came from a split (413) or a bisection (400).
    from_split: bool,
}

/// The search for the events a server rejects with 400.
#[derive(Debug, Default)]
struct Bisection {
    /// Some piece was acknowledged: the server works, so a lone rejected event is poison.
    acknowledged_any: bool,
    /// Single events answered with 400.
    suspects: Vec<Key>,
}

/// The state machine. See the module documentation.
#[derive(Debug)]
pub struct Core {
    config: Config,
    device: String,
    envelope_bound: usize,
    next_ord: Ord,
    next_batch_id: u64,
    /// Logged, not yet handed to storage.
    unpersisted: VecDeque<NewEvent>,
    /// Handed to storage, not yet confirmed.
    persisting: Vec<NewEvent>,
    /// Stored and sendable, oldest first.
    queue: BTreeMap<Key, Queued>,
    queue_bytes: usize,
    in_flight: Option<InFlight>,
    /// Pieces of a split or bisected batch, sent before anything else.
    pieces: VecDeque<Vec<Key>>,
    bisection: Option<Bisection>,
    /// When the interval flush is due; set while the queue is not empty.
    flush_at: Option<u64>,
    /// A failure is waiting to be retried at this moment; no send before it.
    retry_at: Option<u64>,
    attempt: u32,
    /// Send at the next chance whatever the thresholds say (an `online` event, a hint).
    flush_now: bool,
    /// `flush()` callers: (waiter, the last ord logged before the call).
    flush_waiters: Vec<(u64, Ord)>,
    leader: bool,
    online: bool,
    /// The page is hidden and its unload send went out.
    hidden: bool,
    actions: VecDeque<Action>,
    stats: Stats,
}

impl Core {
    /// A core for this device id. The config must have passed [`Config::validate`].
    pub fn new(config: Config, device: String) -> Result<Core, ConfigError> {
        config.validate()?;
        Ok(Core {
            envelope_bound: wire::envelope_len_bound(&device),
            config,
            device,
            next_ord: 1,
            next_batch_id: 1,
            unpersisted: VecDeque::new(),
            persisting: Vec::new(),
            queue: BTreeMap::new(),
            queue_bytes: 0,
            in_flight: None,
            pieces: VecDeque::new(),
            bisection: None,
            flush_at: None,
            retry_at: None,
            attempt: 0,
            flush_now: false,
            flush_waiters: Vec::new(),
            leader: true,
            online: true,
            hidden: false,
            actions: VecDeque::new(),
            stats: Stats::default(),
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    // ---- inputs -------------------------------------------------------------------

    /// An event was logged. `payload` is its JSON. Refuses an event that could never fit
    /// in a batch; otherwise it will be persisted and sent.
    pub fn handle_log(&mut self, now: u64, id: String, payload: String) -> Result<Ord, LogError> {
        self.stats.logged += 1;
        let bytes = self.envelope_bound + wire::event_len_bound(&id, now, &payload);
        if bytes > self.config.max_batch_bytes {
            self.stats.dropped.add(DropReason::Oversize, 1);
            return Err(LogError::TooLarge {
                bytes,
                limit: self.config.max_batch_bytes,
            });
        }
        let ord = self.next_ord;
        self.next_ord += 1;
        self.unpersisted.push_back(NewEvent {
            ord,
            id,
            ts: now,
            payload,
        });
        self.drive(now);
        Ok(ord)
    }

    /// A payload could not be serialized; only counted (the caller got the error).
    pub fn handle_invalid_payload(&mut self) {
        self.stats.logged += 1;
        self.stats.dropped.add(DropReason::Invalid, 1);
    }

    /// The last [`Action::Persist`] is durable; `keys` are in the order of its events.
    ///
    /// # Panics
    /// If the number of keys differs from the number of events handed out: the driver is broken.
    pub fn handle_persisted(&mut self, now: u64, keys: &[Key]) {
        assert_eq!(
            keys.len(),
            self.persisting.len(),
            "storage must return one key per persisted event"
        );
        let persisted = std::mem::take(&mut self.persisting);
        self.stats.persisted += persisted.len() as u64;
        for (event, &key) in persisted.into_iter().zip(keys) {
            self.enqueue(
                now,
                key,
                event.ord,
                StoredEvent {
                    key,
                    id: event.id,
                    ts: event.ts,
                    payload: event.payload,
                },
            );
        }
        self.enforce_limits(now);
        self.drive(now);
    }

    /// The last [`Action::Persist`] failed. Its events go back to the front of the line,
    /// to be handed to storage again (the driver may have switched to memory).
    pub fn handle_persist_failed(&mut self, now: u64, detail: String) {
        for event in std::mem::take(&mut self.persisting).into_iter().rev() {
            self.unpersisted.push_front(event);
        }
        self.actions
            .push_back(Action::Report(Report::StorageFailed { detail }));
        self.drive(now);
    }

    /// A full read of storage, taken when every key below `below` had been assigned: a
    /// queued key below it that storage no longer holds was acknowledged (or dropped) by
    /// another tab, so it leaves the queue without being counted here. Then as
    /// [`Core::handle_loaded`].
    pub fn handle_snapshot(&mut self, now: u64, events: Vec<StoredEvent>, below: Key) {
        let present: std::collections::BTreeSet<Key> = events.iter().map(|e| e.key).collect();
        let in_flight = self.in_flight_keys();
        let gone: Vec<Key> = self
            .queue
            .range(..below)
            .map(|(k, _)| *k)
            .filter(|k| !present.contains(k) && in_flight.binary_search(k).is_err())
            .collect();
        self.remove(&gone);
        self.handle_loaded(now, events);
    }

    /// A backoff remembered by an earlier page ([`Action::RememberBackoff`]): wait it out
    /// (never longer than `retry.maxMs` from now, in case the clock moved).
    /// A send already out decides for itself: its answer sets or ends the backoff.
    pub fn handle_backoff_restored(&mut self, now: u64, retry_at: u64, attempt: u32) {
        if retry_at > now && self.in_flight.is_none() {
            self.retry_at = Some(retry_at.min(now + self.config.retry_max_ms));
            self.attempt = attempt;
        }
        self.drive(now);
    }

    /// Another tab deleted these keys (it acknowledged or dropped them): forget them
    /// without counting them here.
    pub fn handle_removed_elsewhere(&mut self, now: u64, keys: &[Key]) {
        let in_flight = self.in_flight_keys();
        let gone: Vec<Key> = keys
            .iter()
            .copied()
            .filter(|k| in_flight.binary_search(k).is_err())
            .collect();
        self.remove(&gone);
        self.drive(now);
    }

    /// Events found in storage (left by an earlier page, or written by another tab).
    /// Keys already known are ignored.
    pub fn handle_loaded(&mut self, now: u64, events: Vec<StoredEvent>) {
        for event in events {
            if self.queue.contains_key(&event.key) {
                continue;
            }
            let ord = self.next_ord;
            self.next_ord += 1;
            self.stats.loaded += 1;
            self.enqueue(now, event.key, ord, event);
        }
        self.enforce_limits(now);
        self.drive(now);
    }

    /// The timer armed for [`Core::poll_timeout`] fired (or any later moment).
    pub fn handle_timeout(&mut self, now: u64) {
        self.enforce_limits(now);
        self.drive(now);
    }

    /// `flush()` was called: send now, and settle `waiter` once everything logged so far
    /// is acknowledged (or dropped), or as soon as that cannot happen.
    pub fn handle_flush(&mut self, now: u64, waiter: u64) {
        if !self.leader {
            // The sender flushes; this waiter settles as the sender's deletes arrive.
            self.actions.push_back(Action::AskSenderToFlush);
        }
        let refusal = if !self.online {
            Some(FlushError::Offline)
        } else if !self.leader {
            None
        } else {
            self.retry_at
                .filter(|&at| at > now)
                .map(|retry_at| FlushError::BackingOff { retry_at })
        };
        match refusal {
            Some(error) => self.actions.push_back(Action::FlushSettled {
                waiter,
                result: Err(error),
            }),
            None => self.flush_waiters.push((waiter, self.next_ord - 1)),
        }
        self.drive(now);
    }

    /// The answer (or failure) of the batch `batch_id`. `jitter` is uniform in `[0, 1)`.
    ///
    /// # Panics
    /// If `batch_id` is not the batch in flight: the driver is broken.
    pub fn handle_send_result(
        &mut self,
        now: u64,
        batch_id: u64,
        outcome: SendOutcome,
        jitter: f64,
    ) {
        let flight = self
            .in_flight
            .take()
            .filter(|f| f.batch_id == batch_id)
            .expect("a send result must answer the batch in flight");
        self.stats.in_flight_events = 0;
        // Events dropped while in flight (limits) are already gone.
        let keys: Vec<Key> = flight
            .keys
            .into_iter()
            .filter(|k| self.queue.contains_key(k))
            .collect();
        match verdict(&outcome, now) {
            Verdict::Acknowledged => {
                if self.attempt > 0 {
                    self.actions.push_back(Action::RememberBackoff(None));
                }
                self.attempt = 0;
                self.stats.acknowledged += keys.len() as u64;
                if let Some(bisection) = &mut self.bisection {
                    bisection.acknowledged_any = true;
                }
                self.remove(&keys);
                self.actions.push_back(Action::Delete(keys));
            }
            Verdict::TooLarge if keys.len() > 1 => self.split(keys),
            Verdict::TooLarge => self.drop_events(
                DropReason::Oversize,
                &keys,
                "the server answered 413 Payload Too Large for this event alone".into(),
            ),
            Verdict::Rejected if keys.len() > 1 => {
                self.bisection.get_or_insert_with(Bisection::default);
                self.split(keys);
            }
            Verdict::Rejected => self
                .bisection
                .get_or_insert_with(Bisection::default)
                .suspects
                .extend(keys),
            Verdict::Retry { server_wait_ms } => {
                let wait = match server_wait_ms {
                    Some(ms) => ms.clamp(MIN_WAIT_MS, self.config.retry_max_ms),
                    None => backoff_ms(
                        self.config.retry_base_ms,
                        self.config.retry_max_ms,
                        self.attempt,
                        jitter,
                    ),
                };
                self.fail(now, flight.from_split, keys, outcome, wait);
            }
            Verdict::Misconfigured => {
                let wait = self.config.retry_max_ms;
                self.fail(now, flight.from_split, keys, outcome, wait);
            }
        }
        self.drive(now);
    }

    /// This tab became (or stopped being) the one that sends for the origin.
    pub fn handle_leadership(&mut self, now: u64, leader: bool) {
        self.leader = leader;
        // Flushes that waited for a sender get the answer a sender gives at once.
        if let Some(retry_at) = self.retry_at.filter(|&at| leader && at > now) {
            self.refuse_waiters(FlushError::BackingOff { retry_at });
        }
        self.drive(now);
    }

    /// The browser went online or offline.
    pub fn handle_online(&mut self, now: u64, online: bool) {
        let came_online = online && !self.online;
        self.online = online;
        if came_online {
            // Whatever the backoff was guessing about the network, the browser now knows.
            self.retry_at = self.retry_at.map(|at| at.min(now));
            self.flush_now = true;
        } else if !online {
            self.refuse_waiters(FlushError::Offline);
        }
        self.drive(now);
    }

    /// Send at the next chance, without waiting for the interval (another tab's buffer
    /// is full, or the page is about to be hidden).
    pub fn handle_flush_hint(&mut self, now: u64) {
        self.flush_now = true;
        self.drive(now);
    }

    /// The page was hidden or is being closed (`pagehide`, `visibilitychange` to hidden).
    /// The sending tab sends what is stored with keepalive requests, oldest first, within
    /// the keepalive budget of the page. Events stay stored until an answer acknowledges
    /// them: a closed page never hears back, and the next page sends them again (the
    /// server deduplicates by id). Other tabs leave their events to the sender.
    pub fn handle_page_hidden(&mut self, now: u64) {
        if self.hidden || !self.leader || !self.online {
            return;
        }
        self.hidden = true;
        let mut budget = KEEPALIVE_BUDGET_BYTES;
        let mut after: Option<Key> = None;
        loop {
            let limit = budget.min(self.config.max_batch_bytes);
            let keys = self.fill_batch(after, limit, false);
            if keys.is_empty() {
                break;
            }
            after = keys.last().copied();
            let batch = self.batch(now, keys);
            self.stats.unload_requests += 1;
            budget -= batch.body.len().min(budget);
            self.actions.push_back(Action::SendUnload(batch));
        }
    }

    /// The page is visible again: a later hide sends again.
    pub fn handle_page_visible(&mut self) {
        self.hidden = false;
    }

    /// An answer to an [`Action::SendUnload`] arrived (the page lived on). A 2xx
    /// acknowledges its events; anything else is left to the normal path.
    pub fn handle_unload_result(&mut self, now: u64, keys: &[Key], outcome: &SendOutcome) {
        if verdict(outcome, now) != Verdict::Acknowledged {
            return;
        }
        let in_flight = self.in_flight_keys();
        let keys: Vec<Key> = keys
            .iter()
            .copied()
            .filter(|k| self.queue.contains_key(k) && in_flight.binary_search(k).is_err())
            .collect();
        self.stats.acknowledged += keys.len() as u64;
        self.remove(&keys);
        self.actions.push_back(Action::Delete(keys));
        self.settle_flush_waiters();
        self.drive(now);
    }

    // ---- outputs ------------------------------------------------------------------

    /// The next thing to do, if any.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When to call [`Core::handle_timeout`] next. Never a moment at which the core would
    /// do nothing, so a driver that honours it cannot spin.
    pub fn poll_timeout(&self) -> Option<u64> {
        let send = if self.can_send() && !self.queue.is_empty() {
            self.retry_at.or(self.flush_at)
        } else {
            None
        };
        // Keys are assigned in time order, so the first key not in flight expires first
        // (a clock that jumped back only makes the check early, never late: it re-arms).
        let in_flight = self.in_flight_keys();
        let expiry = self
            .queue
            .iter()
            .find(|(k, _)| in_flight.binary_search(k).is_err())
            .map(|(_, q)| q.ts.saturating_add(self.config.max_event_age_ms) + 1);
        [send, expiry].into_iter().flatten().min()
    }

    /// Counters and gauges as of `now`.
    pub fn stats(&self, now: u64) -> Stats {
        let mut stats = self.stats.clone();
        stats.queued = self.queue.len() as u64;
        stats.queued_bytes = self.queue_bytes as u64;
        stats.unpersisted = (self.unpersisted.len() + self.persisting.len()) as u64;
        stats.oldest_age_ms = self
            .queue
            .values()
            .map(|q| q.ts)
            .chain(self.unpersisted.iter().map(|e| e.ts))
            .min()
            .map(|ts| now.saturating_sub(ts));
        stats.next_flush_at = self.flush_at;
        stats.retry_at = self.retry_at.filter(|&at| at > now);
        stats.backoff_attempt = self.attempt;
        stats.leader = self.leader;
        stats.online = self.online;
        stats
    }

    /// The events stored and not yet acknowledged, oldest first, as they go on the wire:
    /// what the unload path sends.
    pub fn queued_keys(&self) -> impl Iterator<Item = Key> + '_ {
        self.queue.keys().copied()
    }

    // ---- internals ----------------------------------------------------------------

    fn enqueue(&mut self, now: u64, key: Key, ord: Ord, event: StoredEvent) {
        let mut encoded = String::new();
        wire::push_event(&mut encoded, &event.id, key, event.ts, &event.payload);
        self.queue_bytes += encoded.len();
        self.queue.insert(
            key,
            Queued {
                ord,
                id: event.id,
                ts: event.ts,
                encoded,
            },
        );
        if self.flush_at.is_none() {
            self.flush_at = Some(now + self.config.flush_interval_ms);
        }
    }

    fn remove(&mut self, keys: &[Key]) -> Vec<Queued> {
        let removed: Vec<Queued> = keys.iter().filter_map(|k| self.queue.remove(k)).collect();
        self.queue_bytes -= removed.iter().map(|q| q.encoded.len()).sum::<usize>();
        if self.queue.is_empty() {
            self.flush_at = None;
        }
        removed
    }

    fn drop_events(&mut self, reason: DropReason, keys: &[Key], detail: String) {
        if keys.is_empty() {
            return;
        }
        let removed = self.remove(keys);
        self.stats.dropped.add(reason, removed.len() as u64);
        self.actions.push_back(Action::Delete(keys.to_vec()));
        self.actions.push_back(Action::Report(Report::Dropped {
            reason,
            ids: removed.into_iter().map(|q| q.id).collect(),
            detail,
        }));
    }

    /// Sorted: batches take keys in queue order, and pieces keep that order.
    fn in_flight_keys(&self) -> &[Key] {
        self.in_flight.as_ref().map_or(&[], |f| f.keys.as_slice())
    }

    /// Drops the oldest events past the count and byte limits and every event past its
    /// age. Events in flight are spared: their answer decides.
    fn enforce_limits(&mut self, now: u64) {
        let max_age = self.config.max_event_age_ms;
        let in_flight = self.in_flight_keys().to_vec();
        let expired: Vec<Key> = self
            .queue
            .iter()
            .filter(|(k, q)| {
                q.ts.saturating_add(max_age) < now && in_flight.binary_search(k).is_err()
            })
            .map(|(k, _)| *k)
            .collect();
        self.drop_events(
            DropReason::Age,
            &expired,
            format!("older than maxEventAgeMs ({max_age} ms)"),
        );

        let mut over: Vec<Key> = Vec::new();
        let mut count = self.queue.len();
        let mut bytes = self.queue_bytes;
        for (key, queued) in &self.queue {
            if count <= self.config.max_stored_events && bytes <= self.config.max_stored_bytes {
                break;
            }
            if in_flight.binary_search(key).is_ok() {
                continue;
            }
            over.push(*key);
            count -= 1;
            bytes -= queued.encoded.len();
        }
        let detail = format!(
            "storage is full (maxStoredEvents {}, maxStoredBytes {}); the oldest events go first",
            self.config.max_stored_events, self.config.max_stored_bytes
        );
        self.drop_events(DropReason::StorageLimit, &over, detail);
    }

    fn split(&mut self, keys: Vec<Key>) {
        let (first, second) = keys.split_at(keys.len() / 2);
        self.pieces.push_front(second.to_vec());
        self.pieces.push_front(first.to_vec());
    }

    /// A request failed: its events stay, and the next send waits `wait`.
    fn fail(
        &mut self,
        now: u64,
        from_split: bool,
        keys: Vec<Key>,
        outcome: SendOutcome,
        wait: u64,
    ) {
        self.stats.failed_requests += 1;
        // A piece that failed for a transient reason keeps its place at the head of the line.
        if from_split {
            self.pieces.push_front(keys);
        }
        self.schedule_retry(now, outcome, wait);
    }

    fn schedule_retry(&mut self, now: u64, outcome: SendOutcome, wait: u64) {
        self.stats.retries += 1;
        self.attempt = self.attempt.saturating_add(1);
        let retry_at = now + wait;
        self.retry_at = Some(retry_at);
        self.actions
            .push_back(Action::RememberBackoff(Some((retry_at, self.attempt))));
        let detail = match &outcome {
            SendOutcome::Status { status, .. } => format!("the server answered {status}"),
            SendOutcome::NetworkError(cause) => format!("network error: {cause}"),
        };
        for (waiter, _) in self.flush_waiters.drain(..) {
            self.actions.push_back(Action::FlushSettled {
                waiter,
                result: Err(FlushError::SendFailed {
                    detail: detail.clone(),
                    retry_at,
                }),
            });
        }
        self.flush_now = false;
        self.actions.push_back(Action::Report(Report::SendFailed {
            outcome,
            retry_at,
            detail,
        }));
    }

    /// Ends a 400 bisection: if the server accepted some piece, the events it rejected
    /// alone are poison and dropped; if it accepted nothing, the endpoint is refusing
    /// everything, so keep them all and wait the cap.
    fn finish_bisection(&mut self, now: u64) {
        let Some(bisection) = self.bisection.take() else {
            return;
        };
        if bisection.suspects.is_empty() {
            return;
        }
        if bisection.acknowledged_any {
            self.drop_events(
                DropReason::Poison,
                &bisection.suspects,
                "the server rejected this event with 400 Bad Request".into(),
            );
        } else {
            let wait = self.config.retry_max_ms;
            self.schedule_retry(now, SendOutcome::status(400), wait);
        }
    }

    fn refuse_waiters(&mut self, error: FlushError) {
        for (waiter, _) in self.flush_waiters.drain(..) {
            self.actions.push_back(Action::FlushSettled {
                waiter,
                result: Err(error.clone()),
            });
        }
    }

    /// Settles the waiters whose events are all acknowledged or dropped.
    fn settle_flush_waiters(&mut self) {
        if self.flush_waiters.is_empty() {
            return;
        }
        let oldest_pending = self
            .unpersisted
            .iter()
            .chain(&self.persisting)
            .map(|e| e.ord)
            .chain(self.queue.values().map(|q| q.ord))
            .min();
        let actions = &mut self.actions;
        self.flush_waiters.retain(|&(waiter, upto)| {
            let done = oldest_pending.is_none_or(|ord| ord > upto);
            if done {
                actions.push_back(Action::FlushSettled {
                    waiter,
                    result: Ok(()),
                });
            }
            !done
        });
    }

    fn can_send(&self) -> bool {
        self.leader && self.online && self.in_flight.is_none()
    }

    /// Hands unpersisted events to storage and starts a send when one is due.
    fn drive(&mut self, now: u64) {
        if self.persisting.is_empty() && !self.unpersisted.is_empty() {
            self.persisting = self.unpersisted.drain(..).collect();
            self.actions
                .push_back(Action::Persist(self.persisting.clone()));
        }
        let queue = &self.queue;
        self.pieces
            .retain(|piece| piece.iter().any(|k| queue.contains_key(k)));
        if self.pieces.is_empty() && self.in_flight.is_none() {
            self.finish_bisection(now);
        }
        self.settle_flush_waiters();
        if !self.can_send() || self.queue.is_empty() {
            return;
        }
        if self.retry_at.is_some_and(|at| now < at) {
            return;
        }
        let due = self.retry_at.is_some()
            || self.flush_now
            || !self.flush_waiters.is_empty()
            || !self.pieces.is_empty()
            || self.flush_at.is_some_and(|at| now >= at)
            || self.queue.len() >= self.config.max_buffer_size
            || self.queue_bytes + self.envelope_bound >= self.config.max_batch_bytes;
        if !due {
            return;
        }
        let (keys, from_split) = self.next_batch_keys();
        if keys.is_empty() {
            return;
        }
        self.flush_now = false;
        self.retry_at = None;
        self.flush_at = Some(now + self.config.flush_interval_ms);
        let batch = self.batch(now, keys);
        self.stats.in_flight_events = batch.keys.len() as u64;
        self.in_flight = Some(InFlight {
            batch_id: batch.id,
            keys: batch.keys.clone(),
            from_split,
        });
        self.actions.push_back(Action::Send(batch));
    }

    /// Builds the request for these queued keys.
    fn batch(&mut self, now: u64, keys: Vec<Key>) -> Batch {
        let body = wire::body(
            now,
            &self.device,
            keys.iter().map(|k| self.queue[k].encoded.as_str()),
        );
        debug_assert!(body.len() <= self.config.max_batch_bytes || keys.len() == 1);
        let id = self.next_batch_id;
        self.next_batch_id += 1;
        self.stats.requests += 1;
        self.stats.sent += keys.len() as u64;
        Batch { id, keys, body }
    }

    /// The next pieces of a split, or the oldest events that fit the batch limits.
    fn next_batch_keys(&mut self) -> (Vec<Key>, bool) {
        while let Some(piece) = self.pieces.pop_front() {
            let alive: Vec<Key> = piece
                .into_iter()
                .filter(|k| self.queue.contains_key(k))
                .collect();
            if !alive.is_empty() {
                return (alive, true);
            }
        }
        (
            self.fill_batch(None, self.config.max_batch_bytes, true),
            false,
        )
    }

    /// The oldest queued keys after `after` that fit `max_bytes` and the event limit.
    /// With `alone_if_too_large`, an event larger than the limit goes alone: it was stored
    /// under another configuration, and the server decides (413 drops it).
    fn fill_batch(
        &self,
        after: Option<Key>,
        max_bytes: usize,
        alone_if_too_large: bool,
    ) -> Vec<Key> {
        let suspects: &[Key] = self
            .bisection
            .as_ref()
            .map_or(&[], |b| b.suspects.as_slice());
        let mut keys = Vec::new();
        let mut bytes = self.envelope_bound;
        let start = after.map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded);
        for (key, queued) in self.queue.range((start, std::ops::Bound::Unbounded)) {
            if keys.len() == self.config.max_batch_events {
                break;
            }
            if suspects.contains(key) {
                continue;
            }
            let add = queued.encoded.len() + usize::from(!keys.is_empty());
            if bytes + add > max_bytes && (!keys.is_empty() || !alone_if_too_large) {
                break;
            }
            bytes += add;
            keys.push(*key);
        }
        keys
    }
}
