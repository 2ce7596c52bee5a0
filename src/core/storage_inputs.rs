//! Storage's answers: what was persisted or failed to be, what was loaded (an earlier
//! page's events, another tab's), what other tabs removed, the backoff a sender left and
//! what was deleted.

use std::rc::Rc;

use super::keyed::KeyedVec;
use super::types::{Action, Key, Report, StoredEvent};
use super::Core;

impl Core {
    /// The last [`Action::Persist`] is durable; `keys` are in the order of its events.
    ///
    /// # Panics
    /// If the number of keys differs from the number of events handed out: the driver is broken.
    pub fn handle_persisted(&mut self, now: u64, keys: &[Key]) {
        assert!(
            keys.len() == self.persisting.len(),
            "storage must return one key per persisted event"
        );
        let persisted = std::mem::take(&mut self.persisting);
        self.stats.persisted += persisted.len() as u64;
        self.confirm_adopted(&persisted);
        for (event, &key) in persisted.iter().zip(keys) {
            self.enqueue(now, key, event);
        }
        self.store_posted(&persisted, keys);
        self.announce(keys);
        self.enforce_limits(now);
        if !self.leader {
            self.hand_over(keys);
        }
        self.drive(now);
    }

    /// The last [`Action::Persist`] failed. Its events go back to the front of the line,
    /// to be handed to storage again (the driver may have switched to memory).
    pub fn handle_persist_failed(&mut self, now: u64, detail: String) {
        // A copy only where the driver still holds the write's events.
        let mut failed = Rc::unwrap_or_clone(std::mem::take(&mut self.persisting));
        failed.append(&mut self.unpersisted);
        self.unpersisted = failed;
        self.actions
            .push(Action::Report(Report::StorageFailed { detail }));
        self.drive(now);
    }

    /// Events found in storage (left by an earlier page, or written by another tab).
    /// Keys already known are ignored.
    pub fn handle_loaded(&mut self, now: u64, events: Vec<StoredEvent>) {
        self.load(now, events);
        self.drive(now);
    }

    fn load(&mut self, now: u64, events: Vec<StoredEvent>) {
        let added = self.queue.load(events, &mut self.next_ticket);
        self.stats.loaded += added as u64;
        if added > 0 && self.flush_at.is_none() {
            self.flush_at = Some(now.saturating_add(self.config.flush_interval_ms));
        }
        self.enforce_limits(now);
    }

    /// A full read of storage, taken when every key below `below` had been assigned: a
    /// queued key below it that storage no longer holds was acknowledged (or dropped) by
    /// another tab, so it leaves the queue without being counted here. Then as
    /// [`Core::handle_loaded`], except that what is stored goes out at the first chance
    /// (this tab's start, or when it becomes the sender): an earlier page left it, and
    /// pages of a multi-page site may live too short for an interval.
    pub fn handle_snapshot(&mut self, now: u64, events: Vec<StoredEvent>, below: Key) {
        let mut present = KeyedVec::default();
        for event in &events {
            present.insert(event.key, ());
        }
        let gone = self
            .queue
            .free_keys(&|k, _| k < below && !present.contains_key(k));
        self.stats.settled_elsewhere += self.forget(&gone).len() as u64;
        self.load(now, events);
        self.flush_now |= self.queue.free_len() > 0;
        self.drive(now);
    }

    /// Another tab deleted these keys (it acknowledged or dropped them): forget them
    /// without counting them here. Keys from [`Core::handle_memory_fallback`] on name
    /// IndexedDB events this tab never held, not its memory events.
    pub fn handle_removed_elsewhere(&mut self, now: u64, keys: &[Key]) {
        let memory_from = self.memory_from;
        let gone = self
            .queue
            .free_among(keys, &|k| memory_from.is_none_or(|from| k < from));
        self.stats.settled_elsewhere += self.forget(&gone).len() as u64;
        self.drive(now);
    }

    /// The backoff storage remembers (what [`Action::RememberBackoff`] last wrote, by this
    /// tab or the sender before it), read as a page starts or takes over sending: wait it
    /// out (never longer than `retry.maxMs` from now, in case the clock moved); none
    /// remembered ends any backoff this tab guessed. A send already out decides for itself.
    pub fn handle_backoff_restored(&mut self, now: u64, remembered: Option<(u64, u32)>) {
        if self.in_flight.is_none() {
            let (retry_at, attempt) = remembered.unwrap_or((0, 0));
            self.retry_at = (retry_at > now)
                .then(|| retry_at.min(now.saturating_add(self.config.retry_max_ms)));
            self.attempt = attempt;
        }
        self.drive(now);
    }

    /// Storage deleted (or failed to delete: the next page sends them again) `count` keys
    /// of earlier [`Action::Delete`]s.
    pub fn handle_deleted(&mut self, now: u64, count: usize) {
        self.awaiting_delete = self.awaiting_delete.saturating_sub(count);
        self.drive(now);
    }
}
