//! The stored events a core knows of, oldest first, and the one rule of what may go into
//! a request: an event carried by a request still unanswered (a normal send or a keepalive
//! post) goes into no other request, never expires nor is dropped for the limits, and is
//! not forgotten when another tab deletes it. Its answer decides.

use std::collections::BTreeMap;

use super::types::{Key, StoredEvent, Ticket};
use super::wire;

#[derive(Debug, Clone)]
pub(super) struct Queued {
    pub ticket: Ticket,
    pub id: String,
    pub ts: u64,
    /// The event as it goes on the wire.
    pub encoded: String,
    /// The unanswered request that carries it.
    carried_by: Option<u64>,
}

#[derive(Debug, Default)]
pub(super) struct Queue {
    events: BTreeMap<Key, Queued>,
    bytes: usize,
    /// How many events, and how many of their bytes, unanswered requests carry.
    carried: usize,
    carried_bytes: usize,
}

impl Queue {
    /// Adds a stored event; false if its key is already known.
    pub fn insert(&mut self, key: Key, ticket: Ticket, event: StoredEvent) -> bool {
        if self.events.contains_key(&key) {
            return false;
        }
        let mut encoded = String::new();
        wire::push_event(&mut encoded, &event.id, key, event.ts, &event.payload);
        self.bytes += encoded.len();
        self.events.insert(
            key,
            Queued {
                ticket,
                id: event.id,
                ts: event.ts,
                encoded,
                carried_by: None,
            },
        );
        true
    }

    /// Removes these keys (whatever carries them) and returns what was there.
    pub fn remove(&mut self, keys: &[Key]) -> Vec<Queued> {
        let removed: Vec<Queued> = keys.iter().filter_map(|k| self.events.remove(k)).collect();
        for queued in &removed {
            self.bytes -= queued.encoded.len();
            if queued.carried_by.is_some() {
                self.carried -= 1;
                self.carried_bytes -= queued.encoded.len();
            }
        }
        removed
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Events free for a new request (see [`Queue::free`]).
    pub fn free_len(&self) -> usize {
        self.events.len() - self.carried
    }

    pub fn free_bytes(&self) -> usize {
        self.bytes - self.carried_bytes
    }

    pub fn contains(&self, key: Key) -> bool {
        self.events.contains_key(&key)
    }

    pub fn encoded(&self, key: Key) -> Option<&str> {
        self.events.get(&key).map(|q| q.encoded.as_str())
    }

    pub fn all(&self) -> impl Iterator<Item = (Key, &Queued)> + '_ {
        self.events.iter().map(|(k, q)| (*k, q))
    }

    /// The events that no unanswered request carries, oldest first: the only ones a new
    /// request, an expiry, a limit or another tab's delete may touch.
    pub fn free(&self) -> impl Iterator<Item = (Key, &Queued)> + '_ {
        self.events
            .iter()
            .filter(|(_, q)| q.carried_by.is_none())
            .map(|(k, q)| (*k, q))
    }

    pub fn is_free(&self, key: Key) -> bool {
        self.events
            .get(&key)
            .is_some_and(|q| q.carried_by.is_none())
    }

    /// The request `request` now carries these keys.
    ///
    /// # Panics
    /// If a key is already carried: a batch was filled past the rule.
    pub fn carry(&mut self, keys: &[Key], request: u64) {
        for key in keys {
            if let Some(queued) = self.events.get_mut(key) {
                assert!(queued.carried_by.is_none(), "key {key} is in two requests");
                queued.carried_by = Some(request);
                self.carried += 1;
                self.carried_bytes += queued.encoded.len();
            }
        }
    }

    /// The answer of `request` came (or it was given up): the keys it carried that are
    /// still queued, now free again.
    pub fn release(&mut self, keys: &[Key], request: u64) -> Vec<Key> {
        let mut released = Vec::new();
        for key in keys {
            if let Some(queued) = self.events.get_mut(key) {
                if queued.carried_by == Some(request) {
                    queued.carried_by = None;
                    self.carried -= 1;
                    self.carried_bytes -= queued.encoded.len();
                    released.push(*key);
                }
            }
        }
        released
    }

    /// The oldest free keys that fit `max_bytes` (with the envelope) and `max_events`,
    /// skipping `skip`. With `alone_if_too_large`, an event larger than the
    /// limit goes alone: it was stored under another configuration, and the server decides.
    pub fn fill(
        &self,
        envelope: usize,
        max_bytes: usize,
        max_events: usize,
        alone_if_too_large: bool,
        skip: impl Fn(Key) -> bool,
    ) -> Vec<Key> {
        let mut keys = Vec::new();
        let mut bytes = envelope;
        for (key, queued) in self.free() {
            if keys.len() == max_events {
                break;
            }
            if skip(key) {
                continue;
            }
            let add = queued.encoded.len() + usize::from(!keys.is_empty());
            if bytes + add > max_bytes && (!keys.is_empty() || !alone_if_too_large) {
                break;
            }
            bytes += add;
            keys.push(key);
        }
        keys
    }

    /// Free events older than `max_age_ms` at `now`.
    pub fn expired(&self, now: u64, max_age_ms: u64) -> Vec<Key> {
        self.free()
            .filter(|(_, q)| q.ts.saturating_add(max_age_ms) < now)
            .map(|(k, _)| k)
            .collect()
    }

    /// The oldest free events to drop so that the queue fits the limits (as far as free
    /// events allow).
    pub fn over_limits(&self, max_events: usize, max_bytes: usize) -> Vec<Key> {
        let mut over = Vec::new();
        let mut count = self.len();
        let mut bytes = self.bytes;
        for (key, queued) in self.free() {
            if count <= max_events && bytes <= max_bytes {
                break;
            }
            over.push(key);
            count -= 1;
            bytes -= queued.encoded.len();
        }
        over
    }
}
