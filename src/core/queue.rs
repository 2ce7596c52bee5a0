//! The stored events a core knows of, oldest first, and the one rule of what may go into
//! a request: an event carried by a request still unanswered (a normal send or a keepalive
//! post) goes into no other request, never expires nor is dropped for the limits, and is
//! not forgotten when another tab deletes it. Its answer decides.

use std::num::NonZeroU64;

use super::keyed::KeyedVec;
use super::types::{Key, NewEvent, StoredEvent, Ticket};
use super::wire;

/// One queued event, as small as it can be: a long outage holds thousands of them.
#[derive(Debug, Clone)]
pub(super) struct Queued {
    pub ticket: Ticket,
    pub ts: u64,
    /// The event as it goes on the wire, with no spare capacity (its id is read back
    /// from it when a report needs it).
    pub encoded: Box<str>,
    /// The unanswered request that carries it (batch ids start at 1).
    carried_by: Option<NonZeroU64>,
}

impl Queued {
    fn new(ticket: Ticket, id: &str, session: &str, seq: u64, ts: u64, payload: &str) -> Queued {
        let mut encoded = String::with_capacity(wire::event_len(id, session, seq, ts, payload));
        wire::push_event(&mut encoded, id, session, seq, ts, payload);
        Queued {
            ticket,
            ts,
            encoded: encoded.into_boxed_str(),
            carried_by: None,
        }
    }

    /// The event's id, read back from its wire line.
    pub fn id(&self) -> String {
        // The line was written by `wire::push_event`, which `parse_event` reads back.
        wire::parse_event(&self.encoded).map_or_else(String::new, |event| event.id)
    }
}

#[derive(Debug, Default)]
pub(super) struct Queue {
    events: KeyedVec<Queued>,
    bytes: usize,
    /// How many events, and how many of their bytes, unanswered requests carry.
    carried: usize,
    carried_bytes: usize,
}

impl Queue {
    /// Adds a stored event; false if its key is already known.
    pub fn insert(&mut self, key: Key, ticket: Ticket, event: &NewEvent) -> bool {
        if self.events.contains_key(key) {
            return false;
        }
        let queued = Queued::new(
            ticket,
            &event.id,
            &event.session,
            event.seq,
            event.ts,
            &event.payload,
        );
        self.bytes += queued.encoded.len();
        self.events.insert(key, queued)
    }

    /// Adds the events loaded from storage whose keys are not known yet, each with the
    /// next ticket, and returns how many. Storage returns them in key order; those below
    /// the newest queued key (other tabs' events) are merged in one pass.
    pub fn load(&mut self, events: Vec<StoredEvent>, next_ticket: &mut Ticket) -> usize {
        let mut fresh = KeyedVec::default();
        for event in events {
            if self.events.contains_key(event.key) || fresh.contains_key(event.key) {
                continue;
            }
            let queued = Queued::new(
                *next_ticket,
                &event.id,
                &event.session,
                event.seq,
                event.ts,
                &event.payload,
            );
            *next_ticket += 1;
            self.bytes += queued.encoded.len();
            fresh.insert(event.key, queued);
        }
        let added = fresh.len();
        self.events.merge(fresh);
        added
    }

    /// Removes these keys (whatever carries them) and returns what was there.
    pub fn remove(&mut self, keys: &[Key]) -> Vec<Queued> {
        let removed = self.events.remove(keys);
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

    pub fn encoded(&self, key: Key) -> Option<&str> {
        self.events.get(key).map(|q| &*q.encoded)
    }

    pub fn all(&self) -> impl Iterator<Item = (Key, &Queued)> + '_ {
        self.events.iter()
    }

    /// The events that no unanswered request carries, oldest first: the only ones a new
    /// request, an expiry, a limit or another tab's delete may touch.
    pub fn free(&self) -> impl Iterator<Item = (Key, &Queued)> + '_ {
        self.events.iter().filter(|(_, q)| q.carried_by.is_none())
    }

    pub fn is_free(&self, key: Key) -> bool {
        self.events.get(key).is_some_and(|q| q.carried_by.is_none())
    }

    /// The request `request` now carries these keys.
    ///
    /// # Panics
    /// If a key is already carried: a batch was filled past the rule.
    pub fn carry(&mut self, keys: &[Key], request: u64) {
        for key in keys {
            if let Some(queued) = self.events.get_mut(*key) {
                assert!(queued.carried_by.is_none(), "a key is in two requests");
                queued.carried_by = NonZeroU64::new(request);
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
            if let Some(queued) = self.events.get_mut(*key) {
                if queued.carried_by.map(NonZeroU64::get) == Some(request) {
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

    /// The free keys, oldest first, for which `keep` holds. Callers share this one
    /// function (and one `Vec` builder): each `filter().collect()` of its own is
    /// compiled apart.
    pub fn free_keys(&self, keep: &dyn Fn(Key, &Queued) -> bool) -> Vec<Key> {
        let mut keys = Vec::new();
        for (key, queued) in self.free() {
            if keep(key, queued) {
                keys.push(key);
            }
        }
        keys
    }

    /// Those of `keys` that are queued, free, and for which `keep` holds, in their order.
    pub fn free_among(&self, keys: &[Key], keep: &dyn Fn(Key) -> bool) -> Vec<Key> {
        let mut free = Vec::new();
        for &key in keys {
            if self.is_free(key) && keep(key) {
                free.push(key);
            }
        }
        free
    }

    /// Free events older than `max_age_ms` at `now`.
    pub fn expired(&self, now: u64, max_age_ms: u64) -> Vec<Key> {
        self.free_keys(&|_, q| q.ts.saturating_add(max_age_ms) < now)
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
