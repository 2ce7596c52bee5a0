//! Inputs about the other tabs of the origin: who sends, who else lives, and the events a
//! tab that cannot store them hands to the sender.

use super::keyed::KeyedVec;
use super::types::{Action, FlushError, Key, NewEvent};
use super::{wire, Core};

impl Core {
    /// The sending tab is backing off until `retry_at`: this tab's `flush()` calls settle
    /// with that.
    pub fn handle_sender_backing_off(&mut self, now: u64, retry_at: u64) {
        if !self.leader && retry_at > now {
            let actions = &mut self.actions;
            self.waiters
                .refuse_all(&FlushError::BackingOff { retry_at }, actions);
        }
    }

    /// This tab became (or stopped being) the one that sends for the origin.
    pub fn handle_leadership(&mut self, now: u64, leader: bool) {
        self.leader = leader;
        // Flushes that waited for a sender get the answer a sender gives at once.
        if let Some(retry_at) = self.retry_at.filter(|&at| leader && at > now) {
            let actions = &mut self.actions;
            self.waiters
                .refuse_all(&FlushError::BackingOff { retry_at }, actions);
        }
        self.drive(now);
    }

    /// Whether another tab of the origin waits to take over sending. Only tabs that can
    /// read storage wait ([`Action::StepDown`]): a sender in memory lets one take over.
    pub fn handle_other_tabs(&mut self, now: u64, alive: bool) {
        self.others_alive = alive;
        self.step_down_for_a_reader(now);
    }

    /// Another tab said it is closing: if it was the sender, a tab in memory may be the
    /// last one left, and sends its own events then ([`Action::LeadIfFree`]).
    pub fn handle_tab_closing(&mut self) {
        if !self.leader && self.memory_from.is_some() {
            self.actions.push(Action::LeadIfFree);
        }
    }

    /// Storage failed to write and keeps events in memory from `first_key` on (above
    /// every key storage handed out so far). While another tab sends, they are handed to it.
    ///
    /// A tab in memory cannot read what other tabs store, so it must not become the
    /// sender while one that can lives: it stops waiting for the role, and a sender steps
    /// down while another tab waits to take over (and hands its events over too).
    pub fn handle_memory_fallback(&mut self, now: u64, first_key: Key) {
        self.memory_from.get_or_insert(first_key);
        if !self.leader {
            self.actions.push(Action::StepDown);
        }
        self.step_down_for_a_reader(now);
    }

    fn step_down_for_a_reader(&mut self, now: u64) {
        if self.leader && self.others_alive && self.memory_from.is_some() {
            self.actions.push(Action::StepDown);
            self.handle_leadership(now, false);
        }
    }

    /// Tells the other tabs which of `keys`, just stored or freed, the sender may load:
    /// not those a keepalive post of this tab carries (the sender would send them again
    /// before its answer; a 2xx deletes them here, a failure announces them then), nor
    /// those in this tab's memory, which no other tab can read. The sender announces
    /// nothing: only a sender loads what is announced, and a tab that takes over from it
    /// starts from a full read of storage.
    pub(super) fn announce(&mut self, keys: &[Key]) {
        if self.leader {
            return;
        }
        let memory_from = self.memory_from;
        let free = self
            .queue
            .free_among(keys, &|k| memory_from.is_none_or(|from| k < from));
        if !free.is_empty() {
            self.actions.push(Action::AnnounceStored(free));
        }
    }

    /// Another tab hands over events it holds in memory only (wire lines behind its keys):
    /// store them here, keeping their ids, sessions, seqs and timestamps, and confirm with
    /// [`Action::ConfirmAdopted`] once they are stored.
    pub fn handle_adopt(&mut self, now: u64, tab: String, lines: &[String]) {
        let parsed = lines
            .iter()
            .filter_map(|l| wire::parse_keyed(l))
            .filter_map(|(key, line)| Some((key, wire::parse_event(line)?)));
        for (their_key, event) in parsed {
            let ticket = self.next_ticket;
            self.next_ticket += 1;
            self.stats.adopted += 1;
            self.adopting.push((ticket, tab.clone(), their_key));
            self.unpersisted.push(NewEvent {
                ticket,
                id: event.id,
                session: event.session.into(),
                seq: event.seq,
                ts: event.ts,
                payload: event.payload.to_owned(),
            });
        }
        self.drive(now);
    }

    /// The sending tab stored these events this tab handed over: they are its now.
    pub fn handle_handed_over(&mut self, now: u64, keys: &[Key]) {
        let memory_from = self.memory_from;
        let keys = self
            .queue
            .free_among(keys, &|k| memory_from.is_some_and(|from| k >= from));
        self.stats.handed_over += keys.len() as u64;
        self.forget(&keys);
        self.delete(keys);
        self.drive(now);
    }

    /// Another tab became the sender: offer it again what this tab holds in memory only
    /// (the earlier sender may have closed before storing it).
    pub fn handle_new_sender(&mut self) {
        if !self.leader {
            let keys = self.queue.free_keys(&|_, _| true);
            self.hand_over(&keys);
        }
    }

    /// Offers the free memory-only events among `keys` to the sending tab.
    pub(super) fn hand_over(&mut self, keys: &[Key]) {
        let Some(from) = self.memory_from else { return };
        let lines: Vec<String> = keys
            .iter()
            .filter(|&&k| k >= from && self.queue.is_free(k))
            .filter_map(|&k| {
                self.queue.encoded(k).map(|line| {
                    let mut keyed = String::new();
                    wire::push_keyed(&mut keyed, k, line);
                    keyed
                })
            })
            .collect();
        if !lines.is_empty() {
            self.actions.push(Action::HandOver(lines));
        }
    }

    /// Tells the tabs whose events just got stored here that they are.
    pub(super) fn confirm_adopted(&mut self, persisted: &[NewEvent]) {
        if self.adopting.is_empty() {
            return;
        }
        let mut tickets = KeyedVec::default();
        for event in persisted {
            tickets.insert(event.ticket, ());
        }
        let (stored, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.adopting)
            .into_iter()
            .partition(|(ticket, _, _)| tickets.contains_key(*ticket));
        self.adopting = waiting;
        let mut by_tab: Vec<(String, Vec<Key>)> = Vec::new();
        for (_, tab, key) in stored {
            match by_tab.iter_mut().find(|(t, _)| *t == tab) {
                Some((_, keys)) => keys.push(key),
                None => by_tab.push((tab, vec![key])),
            }
        }
        for (tab, keys) in by_tab {
            self.actions.push(Action::ConfirmAdopted { tab, keys });
        }
    }
}
