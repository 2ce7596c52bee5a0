//! The unload path: keepalive posts as the page is hidden or closed, and their answers.

use super::config::KEEPALIVE_BUDGET_BYTES;
use super::retry::{verdict, SendOutcome, Verdict};
use super::types::{Action, Key};
use super::Core;

impl Core {
    /// The page was hidden or is being closed (`visibilitychange` to hidden, `pagehide`).
    /// If no other tab could take over, the sending tab posts with keepalive, oldest
    /// first and within the page's keepalive budget, the stored events that no request
    /// carries yet; they stay stored until an answer acknowledges them (a closed page
    /// never hears back, and the next page sends them again: the server deduplicates by
    /// id). A later hide or `pagehide` posts only what no earlier post carried. Tabs that
    /// do not send, and a sender another tab can replace, leave their events to the sender.
    pub fn handle_page_hidden(&mut self, now: u64) {
        if !self.leader || !self.online || self.others_alive {
            return;
        }
        let out: usize = self.unload_out.iter().map(|(_, bytes)| bytes).sum();
        let mut budget = KEEPALIVE_BUDGET_BYTES.saturating_sub(out);
        loop {
            let keys = self.fill(budget.min(self.config.max_batch_bytes), false);
            if keys.is_empty() {
                break;
            }
            let batch = self.batch(now, keys);
            self.stats.unload_requests += 1;
            budget -= batch.body.len().min(budget);
            self.unload_out.push((batch.id, batch.body.len()));
            self.actions.push(Action::SendUnload(batch));
        }
    }

    /// The answer (or failure, or timeout) of an [`Action::SendUnload`] arrived: the page
    /// lived on. A 2xx acknowledges its events; otherwise they are free for the next send.
    pub fn handle_unload_result(
        &mut self,
        now: u64,
        batch_id: u64,
        keys: &[Key],
        outcome: &SendOutcome,
    ) {
        self.unload_out.retain(|(id, _)| *id != batch_id);
        let keys = self.queue.release(keys, batch_id);
        if verdict(outcome, now) == Verdict::Acknowledged {
            self.acknowledge(keys);
        } else {
            self.stats.failed_requests += 1;
        }
        self.drive(now);
    }
}
