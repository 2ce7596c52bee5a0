//! What an answer to a normal send does: acknowledge, split or bisect (413, 400, 422), or
//! keep everything and back off.

use super::recovery::Ending;
use super::retry::{backoff_ms, verdict, within_limits, SendOutcome, Verdict};
use super::stats::DropReason;
use super::types::{concat, number, Action, FlushError, Key, Report};
use super::Core;

impl Core {
    /// The answer (or failure, or timeout) of the batch `batch_id`. `jitter` is uniform
    /// in `[0, 1)`.
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
        let keys = self.queue.release(&flight.keys, flight.batch_id);
        match verdict(&outcome, now) {
            Verdict::Acknowledged => {
                if self.attempt > 0 {
                    self.actions.push(Action::RememberBackoff(None));
                }
                self.attempt = 0;
                self.recovery.acknowledged();
                self.acknowledge(keys);
            }
            Verdict::TooLarge => self.refused_for_content(keys, 413),
            Verdict::Rejected { status } => self.refused_for_content(keys, status),
            Verdict::Retry { server_wait_ms } => {
                let wait = match server_wait_ms {
                    Some(ms) => within_limits(ms, self.config.retry_max_ms),
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

    /// A 413, 400 or 422 (`status`): split a batch of several events; judge a lone event
    /// at the end of the search, except one that exceeds this page's own batch limit
    /// (stored under another configuration), which no server will take.
    pub(super) fn refused_for_content(&mut self, keys: Vec<Key>, status: u16) {
        match keys.as_slice() {
            [] => {}
            [key] => {
                let own_limit = self.envelope_bound + self.queue.encoded(*key).map_or(0, str::len)
                    > self.config.max_batch_bytes;
                if status == 413 && own_limit {
                    let (reason, detail) = refused_alone(status);
                    self.drop_events(reason, &keys, detail.into(), Some(status));
                } else {
                    self.recovery.suspect(*key, status);
                }
            }
            _ => self.recovery.split(keys),
        }
    }

    /// Ends a 413/400 search once nothing of it is left to send: see [`Recovery`].
    pub(super) fn finish_recovery(&mut self, now: u64) {
        match self.recovery.finish(&self.queue) {
            None => {}
            Some(Ending::Drop(suspects)) => {
                for status in [413, 400, 422] {
                    let keys: Vec<Key> = suspects
                        .iter()
                        .filter(|(_, s)| *s == status)
                        .map(|(k, _)| *k)
                        .collect();
                    let (reason, detail) = refused_alone(status);
                    self.drop_events(reason, &keys, detail.into(), Some(status));
                }
            }
            Some(Ending::RefusedEverything(status)) => {
                // The endpoint refuses everything: a misconfiguration must not burn data.
                let wait = self.config.retry_max_ms;
                self.schedule_retry(now, SendOutcome::status(status), wait);
            }
        }
    }

    /// A request failed: its events stay, and the next send waits `wait`.
    pub(super) fn fail(
        &mut self,
        now: u64,
        from_split: bool,
        keys: Vec<Key>,
        outcome: SendOutcome,
        wait: u64,
    ) {
        self.stats.failed_requests += 1;
        if from_split {
            self.recovery.retry_piece(keys);
        }
        self.schedule_retry(now, outcome, wait);
    }

    pub(super) fn schedule_retry(&mut self, now: u64, outcome: SendOutcome, wait: u64) {
        self.stats.retries += 1;
        self.attempt = self.attempt.saturating_add(1);
        let retry_at = now + wait;
        self.retry_at = Some(retry_at);
        self.actions
            .push(Action::RememberBackoff(Some((retry_at, self.attempt))));
        let detail = match &outcome {
            SendOutcome::Status { status, .. } => {
                concat(&["the server answered ", &number(u64::from(*status))])
            }
            SendOutcome::NetworkError(cause) => concat(&["network error: ", cause]),
        };
        let actions = &mut self.actions;
        self.waiters.refuse_all(
            &FlushError::SendFailed {
                detail: detail.clone(),
                retry_at,
            },
            actions,
        );
        self.flush_now = false;
        self.actions.push(Action::Report(Report::SendFailed {
            outcome,
            retry_at,
            detail,
        }));
    }
}

/// Why an event refused alone with `status` (413, 400 or 422) is dropped, and the words of
/// its report.
fn refused_alone(status: u16) -> (DropReason, &'static str) {
    match status {
        413 => (
            DropReason::Oversize,
            "the server answered 413 Payload Too Large for this event alone",
        ),
        422 => (
            DropReason::Poison,
            "the server rejected this event with 422 Unprocessable Content",
        ),
        _ => (
            DropReason::Poison,
            "the server rejected this event with 400 Bad Request",
        ),
    }
}
