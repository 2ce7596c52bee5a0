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
//! to the *queue*. Only queued events are sent, each by one unanswered request at a time
//! (see `queue`), and a queued event leaves the queue only by a 2xx for a request that
//! carried it ([`Action::Delete`]) or by a counted drop ([`Action::Report`] with
//! [`Report::Dropped`]).

mod answers;
pub mod config;
pub(crate) mod keyed;
mod logs;
mod memory_store;
mod queue;
mod recovery;
mod retry;
mod stats;
mod storage_inputs;
mod tabs;
mod types;
mod unload;
mod waiters;
pub mod wire;

pub use config::{Config, ConfigError, KEEPALIVE_BUDGET_BYTES, MAX_TIMER_MS};
pub use memory_store::MemoryStore;
pub use retry::{backoff_bound_ms, parse_retry_after, SendOutcome, MIN_WAIT_MS};
pub use stats::{DropCounts, DropReason, Stats};
pub use types::{Action, Batch, FlushError, Key, LogError, NewEvent, Report, StoredEvent, Ticket};
pub use unload::NAVIGATION_HANDOFF_MS;

use std::rc::Rc;

use queue::{Queue, Queued};
use recovery::Recovery;
use unload::UnloadPost;
use waiters::FlushWaiters;

/// The normal request out (at most one: the in-flight guard).
#[derive(Debug)]
struct InFlight {
    batch_id: u64,
    keys: Vec<Key>,
    /// The batch is a piece of a split (413) or a bisection (400).
    from_split: bool,
}

/// The state machine. See the module documentation.
#[derive(Debug)]
pub struct Core {
    config: Config,
    device: String,
    /// The page session whose events this tab logs (see [`wire`]).
    session: Rc<str>,
    envelope_bound: usize,
    next_ticket: Ticket,
    next_batch_id: u64,
    /// Logged, not yet handed to storage.
    unpersisted: Vec<NewEvent>,
    /// Handed to storage, not yet confirmed: shared with the `Persist` action, so that a
    /// write copies no event.
    persisting: Rc<Vec<NewEvent>>,
    /// Stored and not yet acknowledged or dropped.
    queue: Queue,
    in_flight: Option<InFlight>,
    /// Keys handed to storage to delete and not yet deleted. No send starts until they
    /// are: a page killed at any moment has at most one acknowledged batch still stored,
    /// which the next page sends again.
    awaiting_delete: usize,
    /// Keepalive posts not yet answered.
    unload_out: Vec<UnloadPost>,
    /// Events a keepalive post carried before their write completed: the post, or `None`
    /// once its 2xx acknowledged them (they are deleted as soon as they are stored).
    posted_unstored: Vec<(Ticket, Option<u64>)>,
    recovery: Recovery,
    /// When the interval flush is due; set while the queue is not empty.
    flush_at: Option<u64>,
    /// A failure is waiting to be retried at this moment; no send before it.
    retry_at: Option<u64>,
    attempt: u32,
    /// Send at the next chance whatever the thresholds say (an `online` event, a hint).
    flush_now: bool,
    waiters: FlushWaiters,
    leader: bool,
    online: bool,
    /// The page was hidden and has not been visible since: it may die at any moment.
    hidden: bool,
    /// When a same-origin navigation to another document last started and the page has
    /// not been visible since: the next page of the site sends what is stored (`unload`).
    navigating_since: Option<u64>,
    /// Another tab of the origin lives and would take over sending if this one closed.
    others_alive: bool,
    /// Storage failed to write: from this key on, events live in this tab's memory only.
    memory_from: Option<Key>,
    /// Events adopted from other tabs and not yet stored: their ticket here, the tab and
    /// its key for them.
    adopting: Vec<(Ticket, String, Key)>,
    /// Actions not yet polled, oldest first.
    actions: Vec<Action>,
    stats: Stats,
}

impl Core {
    /// A core for this device id and the page session it logs for, if the config passes
    /// [`Config::validate`].
    pub fn new(config: Config, device: String, session: &str) -> Result<Core, ConfigError> {
        config.validate()?;
        Ok(Core {
            envelope_bound: wire::envelope_len_bound(&device),
            config,
            device,
            session: session.into(),
            next_ticket: 1,
            next_batch_id: 1,
            unpersisted: Vec::new(),
            persisting: Rc::default(),
            queue: Queue::default(),
            in_flight: None,
            awaiting_delete: 0,
            unload_out: Vec::new(),
            posted_unstored: Vec::new(),
            recovery: Recovery::default(),
            flush_at: None,
            retry_at: None,
            attempt: 0,
            flush_now: false,
            waiters: FlushWaiters::default(),
            leader: true,
            online: true,
            hidden: false,
            navigating_since: None,
            others_alive: false,
            memory_from: None,
            adopting: Vec::new(),
            actions: Vec::new(),
            stats: Stats::default(),
        })
    }

    /// The page session whose events this tab logs.
    pub fn session(&self) -> Rc<str> {
        Rc::clone(&self.session)
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    // ---- inputs: time and flushes (events logged: `logs`; storage's answers:
    // `storage_inputs`; answers: `answers`; tabs: `tabs`; unload: `unload`)

    /// The timer armed for [`Core::poll_timeout`] fired (or any later moment).
    pub fn handle_timeout(&mut self, now: u64) {
        self.enforce_limits(now);
        self.drive(now);
    }

    /// `flush()` was called: send now, and settle `waiter` once everything logged so far
    /// is acknowledged (or dropped), or as soon as that cannot happen. A tab that does not
    /// send gives the sender `sendTimeoutMs` plus one interval.
    pub fn handle_flush(&mut self, now: u64, waiter: u64) {
        if !self.leader {
            self.actions.push(Action::AskSenderToFlush);
        }
        let refusal = if !self.online {
            Some(FlushError::Offline)
        } else {
            self.retry_at
                .filter(|&at| self.leader && at > now)
                .map(|retry_at| FlushError::BackingOff { retry_at })
        };
        match refusal {
            Some(error) => self.actions.push(Action::FlushSettled {
                waiter,
                result: Err(error),
            }),
            None => {
                let patience = (!self.leader).then(|| {
                    self.config
                        .send_timeout_ms
                        .saturating_add(self.config.flush_interval_ms)
                });
                self.waiters
                    .add(waiter, self.next_ticket - 1, now, patience);
            }
        }
        self.drive(now);
    }

    /// Send at the next chance, without waiting for the interval (another tab's buffer
    /// is full, or it called `flush()`). While backing off, the backoff is announced
    /// again so that the asking tab's `flush()` settles with it.
    pub fn handle_flush_hint(&mut self, now: u64) {
        if let Some(retry_at) = self.retry_at.filter(|&at| self.leader && at > now) {
            self.actions
                .push(Action::RememberBackoff(Some((retry_at, self.attempt))));
        }
        self.flush_now = true;
        self.drive(now);
    }

    // ---- inputs: network -----------------------------------------------------------

    /// The browser went online or offline.
    pub fn handle_online(&mut self, now: u64, online: bool) {
        let came_online = online && !self.online;
        self.online = online;
        if came_online {
            // Whatever the backoff was guessing about the network, the browser now knows.
            self.retry_at = self.retry_at.map(|at| at.min(now));
            self.flush_now = true;
        } else if !online {
            let actions = &mut self.actions;
            self.waiters.refuse_all(&FlushError::Offline, actions);
        }
        self.drive(now);
    }

    // ---- outputs ------------------------------------------------------------------

    /// The next thing to do, if any.
    pub fn poll_action(&mut self) -> Option<Action> {
        // A handful at a time: shifting them is cheaper in code than a ring buffer.
        (!self.actions.is_empty()).then(|| self.actions.remove(0))
    }

    /// When to call [`Core::handle_timeout`] next. Never a moment at which the core would
    /// do nothing, so a driver that honours it cannot spin.
    pub fn poll_timeout(&self) -> Option<u64> {
        let send = if self.can_send() && self.queue.free_len() > 0 {
            self.retry_at.or(self.flush_at)
        } else {
            None
        };
        // Keys are assigned in time order, so the first free key expires first (a clock
        // that jumped back only makes the check early, never late: it re-arms).
        let expiry = self.queue.free().next().map(|(_, q)| {
            q.ts.saturating_add(self.config.max_event_age_ms)
                .saturating_add(1)
        });
        [send, expiry, self.waiters.next_deadline()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Whether this tab is the one that sends (what [`Stats::leader`] reports).
    pub fn is_leader(&self) -> bool {
        self.leader
    }

    /// Counters and gauges as of `now`.
    pub fn stats(&self, now: u64) -> Stats {
        let mut stats = self.stats.clone();
        stats.queued = self.queue.len() as u64;
        stats.queued_bytes = self.queue.free_bytes() as u64;
        stats.unpersisted = (self.unpersisted.len() + self.persisting.len()) as u64;
        stats.oldest_age_ms = self
            .queue
            .all()
            .map(|(_, q)| q.ts)
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

    /// The keys of the events stored and not yet acknowledged, oldest first.
    pub fn queued_keys(&self) -> impl Iterator<Item = Key> + '_ {
        self.queue.all().map(|(k, _)| k)
    }

    // ---- the run loop -------------------------------------------------------------

    /// Hands unpersisted events to storage, settles what can be settled, and starts a
    /// send when one is due.
    fn drive(&mut self, now: u64) {
        if self.persisting.is_empty() && !self.unpersisted.is_empty() {
            self.persisting = Rc::new(std::mem::take(&mut self.unpersisted));
            self.actions
                .push(Action::Persist(Rc::clone(&self.persisting)));
        }
        if self.in_flight.is_none() {
            self.finish_recovery(now);
        }
        self.settle_waiters(now);
        if !self.can_send() || self.queue.free_len() == 0 {
            return;
        }
        if self.retry_at.is_some_and(|at| now < at) {
            return;
        }
        let queue = &self.queue;
        let due = self.retry_at.is_some()
            || self.flush_now
            || !self.waiters.is_empty()
            || self.recovery.has_pieces(queue)
            || self.flush_at.is_some_and(|at| now >= at)
            || queue.free_len() >= self.config.max_buffer_size
            || queue.free_bytes() + self.envelope_bound >= self.config.max_batch_bytes;
        if !due {
            return;
        }
        let (keys, from_split) = match self.recovery.next_piece(queue) {
            Some(piece) => (piece, true),
            None => (self.fill(self.config.max_batch_bytes, true), false),
        };
        if keys.is_empty() {
            return;
        }
        self.flush_now = false;
        self.retry_at = None;
        self.flush_at = Some(now.saturating_add(self.config.flush_interval_ms));
        let batch = self.batch(now, keys, &[]);
        self.stats.in_flight_events = batch.keys.len() as u64;
        self.in_flight = Some(InFlight {
            batch_id: batch.id,
            keys: batch.keys.clone(),
            from_split,
        });
        self.actions.push(Action::Send(batch));
    }

    fn can_send(&self) -> bool {
        self.leader && self.online && self.in_flight.is_none() && self.awaiting_delete == 0
    }

    /// The oldest free events that fit `max_bytes`, leaving out those a 400/413 search
    /// is judging.
    fn fill(&self, max_bytes: usize, alone_if_too_large: bool) -> Vec<Key> {
        self.queue.fill(
            self.envelope_bound,
            max_bytes,
            self.config.max_batch_events,
            alone_if_too_large,
            |k| self.recovery.is_suspect(k),
        )
    }

    /// Builds the request for these free keys and, after them, the `unstored` event lines
    /// (the unload path's); the request carries the keys until its answer.
    fn batch(&mut self, now: u64, keys: Vec<Key>, unstored: &[(Ticket, String)]) -> Batch {
        let body = wire::body(
            now,
            &self.device,
            // Every key was just taken from the queue.
            keys.iter()
                .map(|&k| self.queue.encoded(k).expect("a queued key"))
                .chain(unstored.iter().map(|(_, line)| line.as_str())),
        );
        debug_assert!(body.len() <= self.config.max_batch_bytes || keys.len() == 1);
        let id = self.next_batch_id;
        self.next_batch_id += 1;
        self.queue.carry(&keys, id);
        self.stats.requests += 1;
        self.stats.sent += (keys.len() + unstored.len()) as u64;
        Batch { id, keys, body }
    }

    // ---- internals ----------------------------------------------------------------

    fn enqueue(&mut self, now: u64, key: Key, event: &NewEvent) {
        if self.queue.insert(key, event.ticket, event) && self.flush_at.is_none() {
            self.flush_at = Some(now.saturating_add(self.config.flush_interval_ms));
        }
    }

    /// Takes keys out of the queue (acknowledged, dropped or deleted elsewhere).
    fn forget(&mut self, keys: &[Key]) -> Vec<Queued> {
        let removed = self.queue.remove(keys);
        if self.queue.is_empty() {
            self.flush_at = None;
        }
        removed
    }

    fn acknowledge(&mut self, keys: Vec<Key>) {
        self.stats.acknowledged += keys.len() as u64;
        self.forget(&keys);
        self.delete(keys);
    }

    /// Hands keys to storage to delete; [`Core::handle_deleted`] says when they are gone.
    pub(super) fn delete(&mut self, keys: Vec<Key>) {
        if keys.is_empty() {
            return;
        }
        self.awaiting_delete += keys.len();
        self.actions.push(Action::Delete(keys));
    }

    fn drop_events(
        &mut self,
        reason: DropReason,
        keys: &[Key],
        detail: String,
        status: Option<u16>,
    ) {
        if keys.is_empty() {
            return;
        }
        let ids: Vec<String> = self.forget(keys).iter().map(Queued::id).collect();
        self.stats.dropped.add(reason, ids.len() as u64);
        self.delete(keys.to_vec());
        self.actions.push(Action::Report(Report::Dropped {
            reason,
            ids,
            detail,
            status,
        }));
    }

    /// Drops the oldest free events past the count and byte limits and every free event
    /// past its age.
    fn enforce_limits(&mut self, now: u64) {
        let max_age = self.config.max_event_age_ms;
        let expired = self.queue.expired(now, max_age);
        self.drop_events(
            DropReason::Age,
            &expired,
            types::concat(&[
                "older than maxEventAgeMs (",
                &types::number(max_age),
                " ms)",
            ]),
            None,
        );
        let (max_events, max_bytes) = (self.config.max_stored_events, self.config.max_stored_bytes);
        let over = self.queue.over_limits(max_events, max_bytes);
        self.drop_events(
            DropReason::StorageLimit,
            &over,
            types::concat(&[
                "storage is full (maxStoredEvents ",
                &types::number(max_events as u64),
                ", maxStoredBytes ",
                &types::number(max_bytes as u64),
                "); the oldest events go first",
            ]),
            None,
        );
    }

    /// Settles the `flush()` callers whose events are all gone, or whose patience ran out.
    /// Gone means deleted from storage too: a page that opens after a settled `flush()`
    /// (the app's next navigation) must not find those events and send them again.
    fn settle_waiters(&mut self, now: u64) {
        if self.waiters.is_empty() {
            return;
        }
        let actions = &mut self.actions;
        if self.awaiting_delete == 0 {
            let oldest_pending = self
                .unpersisted
                .iter()
                .chain(self.persisting.iter())
                .map(|e| e.ticket)
                .chain(self.queue.all().map(|(_, q)| q.ticket))
                .min();
            self.waiters.settle_done(oldest_pending, actions);
        }
        self.waiters.expire(now, actions);
    }
}
