//! Counters and gauges, as `stats()` shows them.

/// Why an event left without being acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Larger than `maxBatchBytes` at `logEvent`, or a lone event answered with 413.
    Oversize,
    /// The payload could not be serialized.
    Invalid,
    /// The server rejected it with 400 or 422 while accepting others.
    Poison,
    /// Storage was full; the oldest went first.
    StorageLimit,
    /// Older than `maxEventAgeMs`.
    Age,
}

impl DropReason {
    pub const ALL: [DropReason; 5] = [
        DropReason::Oversize,
        DropReason::Invalid,
        DropReason::Poison,
        DropReason::StorageLimit,
        DropReason::Age,
    ];

    /// The name used in `stats().dropped` and in messages.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::Oversize => "oversize",
            DropReason::Invalid => "invalid",
            DropReason::Poison => "poison",
            DropReason::StorageLimit => "storageLimit",
            DropReason::Age => "age",
        }
    }
}

/// Dropped events by reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DropCounts {
    pub oversize: u64,
    pub invalid: u64,
    pub poison: u64,
    pub storage_limit: u64,
    pub age: u64,
}

impl DropCounts {
    pub fn add(&mut self, reason: DropReason, n: u64) {
        *self.slot(reason) += n;
    }

    pub fn get(&self, reason: DropReason) -> u64 {
        match reason {
            DropReason::Oversize => self.oversize,
            DropReason::Invalid => self.invalid,
            DropReason::Poison => self.poison,
            DropReason::StorageLimit => self.storage_limit,
            DropReason::Age => self.age,
        }
    }

    pub fn total(&self) -> u64 {
        DropReason::ALL.iter().map(|&r| self.get(r)).sum()
    }

    fn slot(&mut self, reason: DropReason) -> &mut u64 {
        match reason {
            DropReason::Oversize => &mut self.oversize,
            DropReason::Invalid => &mut self.invalid,
            DropReason::Poison => &mut self.poison,
            DropReason::StorageLimit => &mut self.storage_limit,
            DropReason::Age => &mut self.age,
        }
    }
}

/// What this page's core has done and holds. Counters start at zero with each page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    /// `logEvent` calls, refused ones included.
    pub logged: u64,
    /// Events written to storage by this page.
    pub persisted: u64,
    /// Events found in storage, left by an earlier page or another tab.
    pub loaded: u64,
    /// Events another tab held in memory only and handed to this one, the sender.
    pub adopted: u64,
    /// Events held in memory only that the sending tab took over.
    pub handed_over: u64,
    /// Events this tab held that another tab acknowledged or dropped (it deleted them).
    pub settled_elsewhere: u64,
    /// Events put on the wire (an event sent twice counts twice).
    pub sent: u64,
    /// Events acknowledged by a 2xx.
    pub acknowledged: u64,
    /// Requests made, unload requests included.
    pub requests: u64,
    /// Keepalive requests made as the page was hidden or closed.
    pub unload_requests: u64,
    /// Requests that failed (no answer, or an answer that keeps the events).
    pub failed_requests: u64,
    /// Retries scheduled after a failure.
    pub retries: u64,
    pub dropped: DropCounts,
    /// Events stored and waiting for an acknowledgement.
    pub queued: u64,
    pub queued_bytes: u64,
    /// Events logged and not yet durable.
    pub unpersisted: u64,
    pub in_flight_events: u64,
    pub oldest_age_ms: Option<u64>,
    pub next_flush_at: Option<u64>,
    /// While backing off: when the next try happens.
    pub retry_at: Option<u64>,
    pub backoff_attempt: u32,
    pub leader: bool,
    pub online: bool,
}

impl Stats {
    /// Events that came in (logged, loaded, adopted) minus those accounted for (settled
    /// here or elsewhere, handed over, still held): zero unless one vanished. Every
    /// state keeps it zero; `stats()` shows each term, so a page can check it too.
    pub fn unaccounted(&self) -> i64 {
        let came_in = self.logged + self.loaded + self.adopted;
        let accounted = self.acknowledged
            + self.dropped.total()
            + self.handed_over
            + self.settled_elsewhere
            + self.queued
            + self.unpersisted;
        came_in as i64 - accounted as i64
    }
}
