//! The unload path: keepalive posts as the page is hidden or closed, and their answers.

use super::config::KEEPALIVE_BUDGET_BYTES;
use super::retry::{verdict, SendOutcome, Verdict};
use super::types::{Action, Batch, Key, NewEvent};
use super::Core;

/// How long after a same-origin navigation starts a hide still counts as leaving for the
/// next page: the time its document takes to arrive. A tab closed within it while the
/// navigation waits leaves what is stored to the next page of the site that opens.
pub const NAVIGATION_HANDOFF_MS: u64 = 10_000;

/// A keepalive post not yet answered.
#[derive(Debug)]
pub(super) struct UnloadPost {
    batch_id: u64,
    /// Its body's bytes, which count against the page's keepalive budget.
    bytes: usize,
    /// The stored events it carries (those it carried unstored join as they are stored).
    keys: Vec<Key>,
}

impl Core {
    /// The page was hidden or is being closed (`visibilitychange` to hidden, `pagehide`).
    ///
    /// Any tab posts with keepalive the events whose write has not completed: a closing
    /// page may never see it complete, and they exist nowhere else. Then, if no other tab
    /// could take over, the sending tab posts the stored events that no request carries
    /// yet, oldest first, in what is left of the page's keepalive budget: they are safe in
    /// storage, and the next page sends what does not fit. Posted events stay stored (or
    /// are stored when their write completes) until an answer acknowledges them: a closed
    /// page never hears back, and the next page sends them again (the server deduplicates
    /// by id). A later hide or `pagehide` posts only what no earlier post carried. Tabs
    /// that do not send, a sender another tab can replace, and a page leaving for the next
    /// page of the site ([`Core::handle_navigation`]) leave their stored events to the
    /// sender that comes.
    pub fn handle_page_hidden(&mut self, now: u64) {
        self.hidden = true;
        if !self.online {
            return;
        }
        self.post_unstored(now);
        let leaving_for_next_page = self
            .navigating_since
            .is_some_and(|at| now.saturating_sub(at) <= NAVIGATION_HANDOFF_MS);
        if self.leader && !self.others_alive && !leaving_for_next_page {
            loop {
                let keys = self.fill(self.unload_budget(), false);
                if keys.is_empty() {
                    break;
                }
                let batch = self.batch(now, keys, &[]);
                self.post(batch);
            }
        }
    }

    /// The page is visible again (`visibilitychange` to visible, `pageshow` after the
    /// back-forward cache): events logged from now on wait for their write and the normal
    /// send.
    pub fn handle_page_visible(&mut self) {
        self.hidden = false;
        self.navigating_since = None;
    }

    /// A navigation of this page starts (the Navigation API's `navigate`); `leaving` if it
    /// goes to another document of the same origin, or false once a navigation ended
    /// with the page still there (`navigatesuccess`, `navigateerror`).
    ///
    /// If the page hides within [`NAVIGATION_HANDOFF_MS`] of a leaving one, its stored
    /// events stay stored for the next page, which sends them as it starts
    /// ([`Core::handle_snapshot`]) and hears the answer: a keepalive post of them is
    /// answered to no page, so every later page of the site would post them again. Events
    /// whose write has not completed are posted as on any hide. Being visible again ends it.
    pub fn handle_navigation(&mut self, now: u64, leaving: bool) {
        self.navigating_since = leaving.then_some(now);
    }

    /// While the page is hidden, events just logged are posted at once, as well as written:
    /// an app's own `pagehide` or `visibilitychange` handler runs after evbuf's, and no
    /// later event comes to post what it logs before the page dies with the write.
    pub(super) fn post_if_hidden(&mut self, now: u64) {
        if self.hidden && self.online {
            self.post_unstored(now);
        }
    }

    /// What one more keepalive post may weigh: the budget less the posts unanswered (the
    /// browser counts them until they complete), within a batch.
    fn unload_budget(&self) -> usize {
        let out: usize = self.unload_out.iter().map(|post| post.bytes).sum();
        KEEPALIVE_BUDGET_BYTES
            .saturating_sub(out)
            .min(self.config.max_batch_bytes)
    }

    /// Posts, in one request within the budget, the events whose write has not completed
    /// and that no post carried yet.
    fn post_unstored(&mut self, now: u64) {
        let budget = self.unload_budget();
        let mut bytes = self.envelope_bound;
        let mut lines = Vec::new();
        for event in self.persisting.iter().chain(&self.unpersisted) {
            if self.posted_unstored.iter().any(|&(t, _)| t == event.ticket) {
                continue;
            }
            let line = event.wire_line();
            bytes += line.len() + 1;
            if bytes > budget || lines.len() == self.config.max_batch_events {
                break;
            }
            lines.push((event.ticket, line));
        }
        if lines.is_empty() {
            return;
        }
        let batch = self.batch(now, Vec::new(), &lines);
        for &(ticket, _) in &lines {
            self.posted_unstored.push((ticket, Some(batch.id)));
        }
        self.post(batch);
    }

    fn post(&mut self, batch: Batch) {
        self.stats.unload_requests += 1;
        self.unload_out.push(UnloadPost {
            batch_id: batch.id,
            bytes: batch.body.len(),
            keys: batch.keys.clone(),
        });
        self.actions.push(Action::SendUnload(batch));
    }

    /// Events just stored (`keys` in their order) that a keepalive post carried before
    /// their write completed: carried by it while it is unanswered, acknowledged if its
    /// 2xx came first.
    pub(super) fn store_posted(&mut self, events: &[NewEvent], keys: &[Key]) {
        if self.posted_unstored.is_empty() {
            return;
        }
        let mut acknowledged = Vec::new();
        for (event, &key) in events.iter().zip(keys) {
            let Some(at) = self
                .posted_unstored
                .iter()
                .position(|&(t, _)| t == event.ticket)
            else {
                continue;
            };
            match self.posted_unstored.swap_remove(at).1 {
                None => acknowledged.push(key),
                Some(batch_id) => {
                    // A post leaves `unload_out` only with its tickets.
                    let post = self.unload_out.iter_mut().find(|p| p.batch_id == batch_id);
                    post.expect("the post is out").keys.push(key);
                    self.queue.carry(&[key], batch_id);
                }
            }
        }
        self.acknowledge(acknowledged);
    }

    /// The answer (or failure, or timeout) of an [`Action::SendUnload`] arrived: the page
    /// lived on. A 2xx acknowledges its events (those still being written as they are
    /// stored); otherwise they are free for the next send.
    pub fn handle_unload_result(&mut self, now: u64, batch_id: u64, outcome: &SendOutcome) {
        let acknowledged = verdict(outcome, now) == Verdict::Acknowledged;
        let mut keys = Vec::new();
        if let Some(at) = self.unload_out.iter().position(|p| p.batch_id == batch_id) {
            keys = self
                .queue
                .release(&self.unload_out.remove(at).keys, batch_id);
        }
        let post = Some(batch_id);
        self.posted_unstored.retain_mut(|(_, by)| {
            if *by == post && acknowledged {
                *by = None;
            }
            *by != post
        });
        if acknowledged {
            self.acknowledge(keys);
        } else {
            self.stats.failed_requests += 1;
            self.announce(&keys);
        }
        self.drive(now);
    }
}
