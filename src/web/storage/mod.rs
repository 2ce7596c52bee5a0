//! The storage driver: IndexedDB through rexie, or the memory twin when IndexedDB fails
//! (`Store` owns that switch).
//!
//! Schema (version 1):
//! - `events`: records of up to 100 events, keyed by the storage key of their first event;
//!   the value is one line per event, its key and the event as it goes on the wire
//!   (`wire::push_keyed`). Many events per record keep a burst's write to a handful of
//!   requests, so events are durable within a tick or two. ARCHITECTURE.md has the whole
//!   schema.
//! - `meta`: `"device"` (the stable id of this browser profile) and `"next_seq"` (the
//!   next storage key).
//!
//! Keys come from `next_seq`, checked (or read) and advanced inside the write's own
//! read-write transaction; IndexedDB runs overlapping read-write transactions one after
//! another, so several tabs never hand out the same key.

use std::cell::RefCell;
use std::rc::Rc;

use crate::core::{Key, MemoryStore, NewEvent, StoredEvent};

use super::Error;

mod idb;

pub use idb::IdbStorage;

/// A client's storage: IndexedDB until it cannot open or a write fails, then memory for
/// the rest of the page, with keys above every key IndexedDB handed out (none is reused).
pub struct Store {
    current: RefCell<Rc<Storage>>,
    /// After a failed write: IndexedDB, still holding the keys below the first memory key.
    /// Their deletes go there, or the next sender would send them all again.
    left: RefCell<Option<(Rc<Storage>, Key)>>,
}

/// A write that did not happen: why, and the first memory key when it made the store
/// switch to memory.
pub struct WriteFailed {
    pub error: Error,
    pub memory_from: Option<Key>,
}

impl Store {
    /// The IndexedDB database `name` and the device id kept there (`new_device` on its
    /// first use), or memory and `new_device` when it cannot open (with why) or
    /// `force_memory`.
    pub async fn open(
        name: &str,
        new_device: String,
        force_memory: bool,
    ) -> (Store, String, Option<Error>) {
        let (storage, device, error) = if force_memory {
            (Storage::memory(1), new_device, None)
        } else {
            match IdbStorage::open(name, new_device.clone()).await {
                Ok((idb, device)) => (Storage::IndexedDb(idb), device, None),
                Err(err) => (Storage::memory(1), new_device, Some(err)),
            }
        };
        let store = Store {
            current: RefCell::new(Rc::new(storage)),
            left: RefCell::new(None),
        };
        (store, device, error)
    }

    /// The storage in use; kept across an `await` even if the store switches meanwhile.
    pub fn get(&self) -> Rc<Storage> {
        self.current.borrow().clone()
    }

    pub fn is_memory(&self) -> bool {
        self.get().is_memory()
    }

    /// Those of `keys` that other tabs can see (IndexedDB's): what to tell them deleted.
    pub fn shared(&self, keys: &[Key]) -> Vec<Key> {
        if !self.is_memory() {
            return keys.to_vec();
        }
        match &*self.left.borrow() {
            Some((_, memory_from)) => keys.iter().copied().filter(|k| k < memory_from).collect(),
            None => Vec::new(),
        }
    }

    /// Deletes `keys` where each lives.
    pub async fn delete(&self, keys: &[Key]) -> Result<(), Error> {
        let (rest, left_behind) = self.delete_left_behind(keys).await;
        self.get().delete(&rest).await.and(left_behind)
    }

    /// Deletes in IndexedDB the keys it still holds after a fallback; returns the others
    /// and how that went.
    async fn delete_left_behind(&self, keys: &[Key]) -> (Vec<Key>, Result<(), Error>) {
        let left = self.left.borrow().clone();
        let Some((idb, memory_from)) = left.filter(|_| self.is_memory()) else {
            return (keys.to_vec(), Ok(()));
        };
        let (there, here): (Vec<Key>, Vec<Key>) = keys.iter().partition(|&&k| k < memory_from);
        let deleted = if there.is_empty() {
            Ok(())
        } else {
            idb.delete(&there).await
        };
        (here, deleted)
    }

    /// [`Storage::put_all`]; when IndexedDB fails, the store goes on in memory from the
    /// key `first_free()` gives at that moment (above every key the client holds).
    pub async fn put_all(
        &self,
        events: &[NewEvent],
        deletes: &[Key],
        first_free: impl FnOnce() -> Key,
    ) -> Result<Vec<Key>, WriteFailed> {
        let storage = self.get();
        // Keys IndexedDB failed to delete stay there, as after any failed delete: the next
        // sender sends them again and the server deduplicates. Failing the write for them
        // would only retry it for ever.
        let (deletes, _) = self.delete_left_behind(deletes).await;
        let error = match storage.put_all(events, &deletes).await {
            Ok(keys) => return Ok(keys),
            Err(error) => error,
        };
        let memory_from = (!storage.is_memory()).then(|| {
            let first = first_free();
            *self.current.borrow_mut() = Rc::new(Storage::memory(first));
            *self.left.borrow_mut() = Some((storage, first));
            first
        });
        Err(WriteFailed { error, memory_from })
    }
}

/// Where events live.
pub enum Storage {
    IndexedDb(IdbStorage),
    Memory(RefCell<MemoryStore>),
}

impl Storage {
    fn memory(first_key: Key) -> Storage {
        Storage::Memory(RefCell::new(MemoryStore::new(first_key)))
    }

    pub fn is_memory(&self) -> bool {
        matches!(self, Storage::Memory(_))
    }

    /// Writes `events` and, in the same transaction, deletes `deletes` (acknowledged
    /// keys waiting for storage): under sustained logging writes run back to back, and a
    /// delete that waited for a pause would never run.
    pub async fn put_all(&self, events: &[NewEvent], deletes: &[Key]) -> Result<Vec<Key>, Error> {
        match self {
            Storage::IndexedDb(idb) => idb.put_all(events, deletes).await,
            Storage::Memory(memory) => {
                let mut memory = memory.borrow_mut();
                memory.delete(deletes);
                Ok(memory.put_all(events))
            }
        }
    }

    pub async fn delete(&self, keys: &[Key]) -> Result<(), Error> {
        match self {
            Storage::IndexedDb(idb) => idb.delete(keys).await,
            Storage::Memory(memory) => {
                memory.borrow_mut().delete(keys);
                Ok(())
            }
        }
    }

    /// Everything stored, the first key not yet assigned when it was read, and the
    /// backoff an earlier page remembered (memory remembers none).
    pub async fn load(&self) -> Result<Snapshot, Error> {
        match self {
            Storage::IndexedDb(idb) => idb.load().await,
            Storage::Memory(memory) => {
                let memory = memory.borrow();
                Ok(Snapshot {
                    events: memory.load(),
                    below: memory.next_key(),
                    backoff: None,
                })
            }
        }
    }

    /// Keeps (or clears) the sender's backoff for the next page.
    pub async fn remember_backoff(&self, backoff: Option<(u64, u32)>) -> Result<(), Error> {
        match self {
            Storage::IndexedDb(idb) => idb.remember_backoff(backoff).await,
            Storage::Memory(_) => Ok(()),
        }
    }

    /// The events another tab wrote with keys `first..=last`.
    pub async fn load_range(&self, first: Key, last: Key) -> Result<Vec<StoredEvent>, Error> {
        match self {
            Storage::IndexedDb(idb) => idb.load_range(first, last).await,
            // Memory is this tab's alone: no other tab writes there.
            Storage::Memory(_) => Ok(Vec::new()),
        }
    }
}

/// A full read of storage, what a tab starts sending from.
pub struct Snapshot {
    pub events: Vec<StoredEvent>,
    /// The first key not yet assigned when it was read.
    pub below: Key,
    /// The sender's backoff an earlier page remembered.
    pub backoff: Option<(u64, u32)>,
}
