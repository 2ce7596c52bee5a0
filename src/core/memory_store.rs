//! Storage in memory: the twin of the IndexedDB driver. The simulation tests run the
//! core against it, and the browser driver falls back to it when IndexedDB fails.

use super::keyed::KeyedVec;
use super::{Key, NewEvent, StoredEvent};

/// Events by key; keys are assigned in increasing order like an auto-increment store.
#[derive(Debug, Default, Clone)]
pub struct MemoryStore {
    next_key: Key,
    events: KeyedVec<StoredEvent>,
}

impl MemoryStore {
    /// A store whose first key is `first_key` (above any key already in use elsewhere).
    pub fn new(first_key: Key) -> Self {
        MemoryStore {
            next_key: first_key.max(1),
            events: KeyedVec::default(),
        }
    }

    /// Stores the events and returns their keys, in order.
    pub fn put_all(&mut self, events: &[NewEvent]) -> Vec<Key> {
        events
            .iter()
            .map(|event| {
                let key = self.next_key;
                self.next_key += 1;
                self.events.insert(
                    key,
                    StoredEvent {
                        key,
                        id: event.id.clone(),
                        session: event.session.clone(),
                        seq: event.seq,
                        ts: event.ts,
                        payload: event.payload.clone(),
                    },
                );
                key
            })
            .collect()
    }

    /// The key the next event will get.
    pub fn next_key(&self) -> Key {
        self.next_key
    }

    pub fn delete(&mut self, keys: &[Key]) {
        self.events.remove(keys);
    }

    /// Everything stored, oldest first.
    pub fn load(&self) -> Vec<StoredEvent> {
        self.events.values().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}
