//! A fleet of browsers against one endpoint, in virtual time: every device is a real
//! [`Core`] with default options, the endpoint has a capacity in requests per second, and
//! an outage ends at a known moment. Shared by the bounds test (`tests/fleet_bounds.rs`)
//! and the full run (`bench/fleet.rs`).
//!
//! Model (what is simplified, and why it does not flatter the core):
//! - each device logs one event every 5–30 s (uniform), the first within 30 s of the
//!   start, and never closes its page: a device holds its backlog through the outage;
//! - storage completes every write and delete at once (the simulation tests do the same):
//!   the core's decisions, not IndexedDB's latency, shape the traffic;
//! - a request reaches the endpoint when it is sent and its answer comes back at once:
//!   a round trip of a few hundred milliseconds does not shape traffic counted per second,
//!   and leaving it out saves a third of the work;
//! - the endpoint admits up to `capacity` requests in each second of virtual time and
//!   answers the rest 429 (with `Retry-After` if configured);
//! - during the outage it answers 503 (with `Retry-After` if configured), or holds every
//!   request unanswered until the device's `sendTimeoutMs` aborts it. A held request still
//!   hanging when the outage ends is reset at that moment (the server restarts and its
//!   connections drop), which is the one moment a fleet shares: its devices fail together.
//!
//! One seeded random source drives arrivals and jitter, so a run is repeatable.
#![allow(dead_code)] // the test and the example use different parts

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use evbuf::core::{Action, Config, Core, Key, SendOutcome};

mod report;
pub use report::{missed_targets, Report};

const START: u64 = 1_700_000_000_000;

/// splitmix64: small, fast and good enough to spread arrivals and jitter.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[lo, hi]`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }
}

/// How devices wait after a failure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Policy {
    /// Default options, jitter drawn uniformly: what evbuf ships.
    Shipped,
    /// Default options, but every wait is the full bound (1, 2, 4 ... 60 s): backoff
    /// without jitter. Done through the jitter input; the core is unchanged.
    NoJitter,
    /// `retry.baseMs = retry.maxMs =` this, without jitter: retry every so many ms.
    Fixed(u64),
}

impl Policy {
    pub fn name(self) -> String {
        match self {
            Policy::Shipped => "evbuf (shipped)".into(),
            Policy::NoJitter => "no jitter".into(),
            Policy::Fixed(ms) => format!("fixed {} s", ms as f64 / 1000.0),
        }
    }

    pub fn config(self) -> Config {
        let mut config = Config::default();
        if let Policy::Fixed(ms) = self {
            config.retry_base_ms = ms;
            config.retry_max_ms = ms;
        }
        config
    }

    fn jitter(self, rng: &mut Rng) -> f64 {
        match self {
            Policy::Shipped => rng.unit(),
            // The largest jitter below 1: the wait is the bound itself.
            Policy::NoJitter | Policy::Fixed(_) => 1.0 - f64::EPSILON,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outage {
    /// The endpoint answers 503.
    Refuse,
    /// The endpoint answers nothing; devices time out (see the module documentation).
    Hang,
}

#[derive(Debug, Clone)]
pub struct Params {
    pub devices: usize,
    pub seed: u64,
    /// Each device logs one event every `log_every_ms.0 ..= log_every_ms.1`.
    pub log_every_ms: (u64, u64),
    /// Requests per second the endpoint admits; `None`: 3× the steady request rate.
    pub capacity: Option<u64>,
    pub steady_ms: u64,
    pub outage_ms: u64,
    /// Logging goes on this long after the outage, then stops so the fleet can empty.
    pub after_ms: u64,
    pub outage: Outage,
    /// `Retry-After` seconds on every 429 and 503, if any.
    pub retry_after_s: Option<u64>,
    pub policy: Policy,
}

impl Params {
    pub fn new(devices: usize) -> Params {
        Params {
            devices,
            seed: 1,
            log_every_ms: (5_000, 30_000),
            capacity: None,
            steady_ms: 120_000,
            outage_ms: 600_000,
            after_ms: 240_000,
            outage: Outage::Refuse,
            retry_after_s: None,
            policy: Policy::Shipped,
        }
    }

    /// Requests per second of the fleet in steady state: one event per request (the
    /// 3 s flush interval is shorter than the gap between events).
    pub fn steady_rate(&self) -> f64 {
        let mean_ms = (self.log_every_ms.0 + self.log_every_ms.1) as f64 / 2.0;
        self.devices as f64 * 1000.0 / mean_ms
    }

    pub fn capacity(&self) -> u64 {
        self.capacity
            .unwrap_or_else(|| (3.0 * self.steady_rate()).round() as u64)
    }

    pub fn label(&self) -> String {
        let outage = match self.outage {
            Outage::Refuse => "503",
            Outage::Hang => "no answer",
        };
        let hint = match self.retry_after_s {
            Some(s) => format!("Retry-After: {s}"),
            None => "no Retry-After".into(),
        };
        format!("{} · {outage} · {hint}", self.policy.name())
    }
}

/// A request held unanswered until the device aborts it (or the endpoint resets it).
struct Pending {
    at: u64,
    batch_id: u64,
}

enum Answer {
    Now(SendOutcome),
    /// No answer: the device aborts the request (or the endpoint resets it) at `abort_at`.
    Never {
        abort_at: u64,
    },
}

struct Device {
    core: Core,
    next_log: u64,
    answer: Option<Pending>,
    /// The storage key the next write assigns (storage is a counter: nothing reads it).
    next_key: Key,
    /// How often the endpoint admitted each key (index: key).
    acked: Vec<u8>,
    /// The last key stored before the outage ended.
    backlog_last: Key,
    wake: u64,
}

struct Fleet {
    p: Params,
    capacity: u64,
    rng: Rng,
    devices: Vec<Device>,
    heap: BinaryHeap<Reverse<(u64, u32)>>,
    outage_start: u64,
    outage_end: u64,
    logging_end: u64,
    offered: Vec<u32>,
    admitted: Vec<u32>,
    logged: u64,
    delivered: u64,
    duplicates: u64,
    rejected: u64,
    backlog_left: u64,
    backlog_events: u64,
    backlog_requests: u64,
    drained_at: Option<u64>,
}

/// Runs one fleet to the end and measures it.
pub fn run(p: &Params) -> Report {
    let clock = std::time::Instant::now();
    let cpu_before = thread_cpu_ms();
    let mut rng = Rng::new(p.seed);
    let config = p.policy.config();
    let outage_start = START + p.steady_ms;
    let outage_end = outage_start + p.outage_ms;
    let logging_end = outage_end + p.after_ms;
    let devices = (0..p.devices)
        .map(|i| Device {
            // Default options are valid (the core's own unit test says so).
            core: Core::new(config.clone(), format!("d{i}"), "s").expect("valid config"),
            next_log: START + rng.range(0, p.log_every_ms.1),
            answer: None,
            next_key: 1,
            acked: vec![0],
            backlog_last: 0,
            wake: 0,
        })
        .collect();
    let mut fleet = Fleet {
        p: p.clone(),
        capacity: p.capacity(),
        rng,
        devices,
        heap: BinaryHeap::new(),
        outage_start,
        outage_end,
        logging_end,
        offered: Vec::new(),
        admitted: Vec::new(),
        logged: 0,
        delivered: 0,
        duplicates: 0,
        rejected: 0,
        backlog_left: 0,
        backlog_events: 0,
        backlog_requests: 0,
        drained_at: None,
    };
    for d in 0..p.devices {
        fleet.reschedule(d);
    }
    // Everything after the outage ends is judged against the backlog as it stands then.
    fleet.run_until(outage_end);
    fleet.mark_backlog();
    // Logging stops at `logging_end`; the fleet then has up to ten minutes to empty.
    fleet.run_until(logging_end + 600_000);
    let mut report = fleet.report(clock.elapsed().as_millis());
    report.cpu_ms = thread_cpu_ms()
        .zip(cpu_before)
        .map(|(after, before)| after - before);
    report
}

/// User plus system time of this thread, from `/proc/thread-self/stat` (in clock ticks
/// of 10 ms, the kernel's `USER_HZ` on Linux); `None` elsewhere.
fn thread_cpu_ms() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    // The command name may hold spaces; the fields after it do not.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i)?.parse::<u64>().ok();
    // utime and stime, fields 14 and 15 of the line; the first after the name is the 3rd.
    Some((ticks(11)? + ticks(12)?) * 10)
}

impl Fleet {
    fn run_until(&mut self, end: u64) {
        while let Some(&Reverse((at, d))) = self.heap.peek() {
            if at >= end {
                return;
            }
            self.heap.pop();
            let d = d as usize;
            if self.devices[d].wake != at {
                continue; // superseded by a later reschedule
            }
            self.wake(d, at);
            self.reschedule(d);
        }
    }

    /// Feeds the device everything due at `now`: its answer, its log, its timer.
    fn wake(&mut self, d: usize, now: u64) {
        let dev = &mut self.devices[d];
        if dev.answer.as_ref().is_some_and(|a| a.at <= now) {
            let jitter = self.p.policy.jitter(&mut self.rng);
            // Checked just above.
            let held = dev.answer.take().expect("an answer is due");
            let outcome = SendOutcome::NetworkError("no answer".into());
            dev.core
                .handle_send_result(now, held.batch_id, outcome, jitter);
        }
        if dev.next_log <= now && now < self.logging_end {
            let n = dev.next_key;
            // A payload of a dozen bytes always fits a batch.
            dev.core
                .handle_log(now, format!("{d}-{n}"), n, format!(r#"{{"n":{n}}}"#))
                .expect("a small event fits");
            self.logged += 1;
            let (lo, hi) = self.p.log_every_ms;
            dev.next_log = now + self.rng.range(lo, hi);
        }
        if dev.core.poll_timeout().is_some_and(|at| at <= now) {
            dev.core.handle_timeout(now);
        }
        self.pump(d, now);
    }

    /// Executes the device's actions: storage at once, requests to the endpoint.
    fn pump(&mut self, d: usize, now: u64) {
        while let Some(action) = self.devices[d].core.poll_action() {
            match action {
                Action::Persist(events) => {
                    let dev = &mut self.devices[d];
                    let keys: Vec<Key> = (dev.next_key..).take(events.len()).collect();
                    dev.next_key += events.len() as u64;
                    dev.acked.resize(dev.next_key as usize, 0);
                    dev.core.handle_persisted(now, &keys);
                }
                Action::Delete(keys) => self.devices[d].core.handle_deleted(now, keys.len()),
                Action::Send(batch) => {
                    let idle = self.devices[d].answer.is_none();
                    assert!(idle, "a second send while one is in flight");
                    match self.endpoint(d, now, &batch.keys) {
                        Answer::Now(outcome) => {
                            let jitter = self.p.policy.jitter(&mut self.rng);
                            let core = &mut self.devices[d].core;
                            core.handle_send_result(now, batch.id, outcome, jitter);
                        }
                        Answer::Never { abort_at } => {
                            self.devices[d].answer = Some(Pending {
                                at: abort_at,
                                batch_id: batch.id,
                            })
                        }
                    }
                }
                Action::SendUnload(_)
                | Action::AskSenderToFlush
                | Action::StepDown
                | Action::LeadIfFree => {
                    panic!("a lone visible tab never unloads nor hands over")
                }
                Action::HandOver(_) | Action::ConfirmAdopted { .. } => {
                    panic!("a tab with working storage adopts nothing")
                }
                Action::Report(_)
                | Action::RememberBackoff(_)
                | Action::FlushSettled { .. }
                | Action::AnnounceStored(_) => {}
            }
        }
    }

    /// A request arrives at the endpoint.
    fn endpoint(&mut self, d: usize, now: u64, keys: &[Key]) -> Answer {
        let second = ((now - START) / 1000) as usize;
        if self.offered.len() <= second {
            self.offered.resize(second + 1, 0);
            self.admitted.resize(second + 1, 0);
        }
        self.offered[second] += 1;
        let retry_after = self.p.retry_after_s.map(|s| s.to_string());
        let in_outage = (self.outage_start..self.outage_end).contains(&now);
        if in_outage && self.p.outage == Outage::Hang {
            let timeout = self.devices[d].core.config().send_timeout_ms;
            let abort_at = (now + timeout).min(self.outage_end);
            return Answer::Never { abort_at };
        }
        let status = if in_outage {
            503
        } else if u64::from(self.admitted[second]) >= self.capacity {
            429
        } else {
            self.admitted[second] += 1;
            self.accept(d, now, keys);
            return Answer::Now(SendOutcome::status(200));
        };
        self.rejected += 1;
        Answer::Now(SendOutcome::Status {
            status,
            retry_after,
        })
    }

    fn accept(&mut self, d: usize, now: u64, keys: &[Key]) {
        let dev = &mut self.devices[d];
        for &key in keys {
            let seen = &mut dev.acked[key as usize];
            if *seen == 0 {
                self.delivered += 1;
                if key <= dev.backlog_last {
                    self.backlog_left -= 1;
                    if self.backlog_left == 0 {
                        self.drained_at = Some(now);
                    }
                }
            } else {
                self.duplicates += 1;
            }
            *seen = seen.saturating_add(1);
        }
    }

    fn reschedule(&mut self, d: usize) {
        let dev = &mut self.devices[d];
        let log = (dev.next_log < self.logging_end).then_some(dev.next_log);
        let wake = [
            log,
            dev.core.poll_timeout(),
            dev.answer.as_ref().map(|a| a.at),
        ]
        .into_iter()
        .flatten()
        .min();
        match wake {
            Some(at) => {
                dev.wake = at;
                self.heap.push(Reverse((at, d as u32)));
            }
            None => dev.wake = u64::MAX,
        }
    }

    fn mark_backlog(&mut self) {
        let max_batch = self.devices[0].core.config().max_batch_events as u64;
        for dev in &mut self.devices {
            dev.backlog_last = dev.next_key - 1;
            let left = dev.acked[1..].iter().filter(|&&n| n == 0).count() as u64;
            self.backlog_left += left;
            self.backlog_events += left;
            self.backlog_requests += left.div_ceil(max_batch);
        }
    }

    fn report(self, wall_ms: u128) -> Report {
        let second = |t: u64| ((t - START) / 1000) as usize;
        let mean = |from: u64, to: u64| {
            let slice = &self.offered[second(from)..second(to).min(self.offered.len())];
            slice.iter().map(|&n| f64::from(n)).sum::<f64>() / slice.len().max(1) as f64
        };
        let (mut dropped, mut still_queued, mut requests) = (0, 0, 0);
        for dev in &self.devices {
            let stats = dev.core.stats(self.logging_end);
            dropped += stats.dropped.total();
            still_queued += stats.queued + stats.unpersisted;
            requests += stats.requests;
        }
        let peak_after = self.offered[second(self.outage_end)..]
            .iter()
            .copied()
            .max()
            .unwrap_or(0);
        Report {
            capacity: self.capacity,
            steady_rate: mean(self.outage_start - 60_000, self.outage_start),
            outage_rate: mean(self.outage_start, self.outage_end),
            peak_after,
            outage_start: self.outage_start - START,
            outage_end: self.outage_end - START,
            backlog_events: self.backlog_events,
            backlog_requests: self.backlog_requests,
            drain_ms: self.drained_at.map(|t| t - self.outage_end),
            logged: self.logged,
            delivered: self.delivered,
            duplicates: self.duplicates,
            dropped,
            lost: self.logged - self.delivered - dropped - still_queued,
            still_queued,
            requests,
            rejected: self.rejected,
            wall_ms,
            cpu_ms: None,
            offered: self.offered,
            params: self.p,
        }
    }
}
