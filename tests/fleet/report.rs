//! What a fleet run measured, and the targets of issue 13.

use super::Params;

/// What a run measured. Times are milliseconds from the start of the run.
#[derive(Debug, Clone)]
pub struct Report {
    pub params: Params,
    pub capacity: u64,
    /// Requests that reached the endpoint in each second, admitted or not.
    pub offered: Vec<u32>,
    pub outage_start: u64,
    pub outage_end: u64,
    /// Mean offered requests/s over the minute before the outage.
    pub steady_rate: f64,
    /// Mean offered requests/s during the outage.
    pub outage_rate: f64,
    /// Highest offered requests/s in any second from the end of the outage on.
    pub peak_after: u32,
    /// Events stored and not acknowledged as the outage ends, and the requests they need
    /// at `maxBatchEvents` per request.
    pub backlog_events: u64,
    pub backlog_requests: u64,
    /// From the end of the outage until the last of the backlog is acknowledged.
    pub drain_ms: Option<u64>,
    pub logged: u64,
    pub delivered: u64,
    pub duplicates: u64,
    pub dropped: u64,
    /// Logged, never acknowledged, not dropped, and no longer held by any device.
    pub lost: u64,
    /// Still held by a device when the run stopped.
    pub still_queued: u64,
    pub requests: u64,
    pub rejected: u64,
    pub wall_ms: u128,
    /// CPU time of the thread that ran it (Linux), which other work on the machine does
    /// not inflate.
    pub cpu_ms: Option<u64>,
}

impl Report {
    pub fn peak_ratio(&self) -> f64 {
        f64::from(self.peak_after) / self.capacity as f64
    }

    /// What the backlog would take if every spare request/s went to it from the first
    /// second of the recovery.
    pub fn ideal_drain_ms(&self) -> f64 {
        let spare = self.capacity as f64 - self.steady_rate;
        self.backlog_requests as f64 / spare * 1000.0
    }

    pub fn drain_ratio(&self) -> Option<f64> {
        self.drain_ms.map(|d| d as f64 / self.ideal_drain_ms())
    }

    pub fn requests_per_event(&self) -> f64 {
        self.requests as f64 / self.logged as f64
    }
}

/// The targets of issue 13 this run misses, in words; empty if it meets them all. Offered
/// load after the outage: at most 1.5× C when the endpoint sends `Retry-After`, 3× C when
/// it does not. The backlog drains within 1.3× of backlog ÷ spare capacity when the
/// endpoint sends `Retry-After`; without one no device can learn of the recovery before
/// its next try, so the bound is the longest backoff (`retry.maxMs`) plus that same 1.3×.
/// Nothing is lost, nothing is left behind, nothing arrives twice (every answer is heard).
pub fn missed_targets(r: &Report) -> Vec<String> {
    let mut missed = Vec::new();
    let bound = if r.params.retry_after_s.is_some() {
        1.5
    } else {
        3.0
    };
    if r.peak_ratio() > bound {
        missed.push(format!("peak {:.2}× C > {bound}× C", r.peak_ratio()));
    }
    let ideal = r.ideal_drain_ms();
    let allowed = match r.params.retry_after_s {
        Some(_) => 1.3 * ideal,
        None => r.params.policy.config().retry_max_ms as f64 + 1.3 * ideal,
    };
    match r.drain_ms {
        Some(ms) if ms as f64 <= allowed => {}
        drain => missed.push(format!(
            "drain {drain:?} ms > {allowed:.0} ms (ideal {ideal:.0} ms)"
        )),
    }
    if r.lost > 0 || r.still_queued > 0 || r.dropped > 0 || r.duplicates > 0 {
        missed.push(format!(
            "lost {}, left {}, dropped {}, duplicates {}",
            r.lost, r.still_queued, r.dropped, r.duplicates
        ));
    }
    missed
}
