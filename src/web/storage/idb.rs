//! The IndexedDB side of storage: the schema's two stores, the record index, and every
//! transaction evbuf runs (writes, deletes, loads).

use std::cell::{Cell, RefCell};
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::Poll;

use js_sys::Array;
use rexie::{KeyRange, ObjectStore, Rexie, TransactionMode};
use wasm_bindgen::{JsCast, JsValue};

use crate::core::{wire, Key, NewEvent, StoredEvent};

use super::super::transport::describe;
use super::super::Error;
use super::Snapshot;

const EVENTS: &str = "events";
const META: &str = "meta";
/// The meta key of the first key not yet assigned, shared by every tab.
const NEXT_SEQ: &str = "next_seq";
const SCHEMA_VERSION: u32 = 1;
/// Events per record: small enough that acknowledging a batch rewrites little, large
/// enough that a burst costs few requests.
const EVENTS_PER_RECORD: usize = 100;
/// The key and the space before each event's line in a record, and the newline after it.
const MAX_KEY_PREFIX: usize = 22;

fn storage_error(action: &str, err: rexie::Error) -> Error {
    let mut message = String::from("failed to ");
    message.push_str(action);
    message.push_str(": ");
    // The browser's own words (a DOMException's name and message) rather than rexie's
    // Display, whose table of texts for every IndexedDB call weighs kilobytes of wasm.
    match idb_cause(&err) {
        Some(cause) => message.push_str(&describe(cause)),
        None => message.push_str("IndexedDB failed without saying why"),
    }
    Error::Storage(message)
}

/// Waits until `tx` ends and fails unless it committed. A full disk fails late: every
/// request of a write succeeds, then the transaction aborts at commit
/// (`QuotaExceededError` on the transaction, no request error), and rexie reports an
/// abort as a result, not an error.
async fn committed(tx: rexie::Transaction, action: &str) -> Result<(), Error> {
    match tx.done().await {
        Ok(result) if result.is_committed() => Ok(()),
        Ok(_) => Err(Error::Storage(format!(
            "failed to {action}: IndexedDB aborted the transaction as it committed \
             (QuotaExceededError: the origin's storage is full, or the disk failed)"
        ))),
        Err(err) => Err(storage_error(action, err)),
    }
}

/// The JS value an IndexedDB failure carries, where it carries one.
fn idb_cause(err: &rexie::Error) -> Option<&JsValue> {
    use idb::Error::*;
    let rexie::Error::IdbError(err) = err else {
        return None;
    };
    match err {
        AddFailed(cause)
        | ClearFailed(cause)
        | CountFailed(cause)
        | CursorAdvanceFailed(cause)
        | CursorContinueFailed(cause)
        | CursorKeyNotFound(cause)
        | CursorPrimaryKeyNotFound(cause)
        | CursorValueNotFound(cause)
        | DeleteFailed(cause)
        | GetAllFailed(cause)
        | GetAllKeysFailed(cause)
        | GetFailed(cause)
        | GetKeyFailed(cause)
        | IndexCreateFailed(cause)
        | IndexDeleteFailed(cause)
        | IndexedDbDeleteFailed(cause)
        | IndexedDbNotFound(cause)
        | IndexedDbOpenFailed(cause)
        | IndexNotFound(cause)
        | KeyPathNotFound(cause)
        | KeyRangeBoundNotFound(cause)
        | KeyRangeCreateFailed(cause)
        | KeyRangeIncludesFailed(cause)
        | ObjectStoreCreateFailed(cause)
        | ObjectStoreDeleteFailed(cause)
        | ObjectStoreNotFound(cause)
        | OpenCursorFailed(cause)
        | OpenKeyCursorFailed(cause)
        | RequestErrorNotFound(cause)
        | RequestResultNotFound(cause)
        | TransactionAbortError(cause)
        | TransactionCommitError(cause)
        | TransactionModeNotFound(cause)
        | TransactionOpenFailed(cause)
        | UnexpectedJsType(_, cause)
        | UpdateFailed(cause) => Some(cause),
        DomException(exception) => Some(exception.as_ref()),
        _ => None,
    }
}

/// The IndexedDB store of one `storageName`.
pub struct IdbStorage {
    db: Rexie,
    /// Every record this tab knows of: a delete must find the records its keys live in.
    records: RefCell<Records>,
    /// `next_seq` as this tab's last load or write left it, which the next write assumes.
    next_seq: Cell<Option<Key>>,
}

impl IdbStorage {
    /// Opens (or creates) the database and returns it with this profile's device id.
    pub async fn open(name: &str, new_device_id: String) -> Result<(IdbStorage, String), Error> {
        let db = Rexie::builder(name)
            .version(SCHEMA_VERSION)
            .add_object_store(ObjectStore::new(EVENTS))
            .add_object_store(ObjectStore::new(META))
            .build()
            .await
            .map_err(|e| storage_error("open IndexedDB", e))?;
        let storage = IdbStorage {
            db,
            records: RefCell::new(Records::default()),
            next_seq: Cell::new(None),
        };
        let device = storage.device_id(new_device_id).await?;
        Ok((storage, device))
    }

    async fn device_id(&self, new_device_id: String) -> Result<String, Error> {
        let fail = |e| storage_error("read the device id", e);
        let tx = self
            .db
            .transaction(&[META], TransactionMode::ReadWrite)
            .map_err(fail)?;
        let meta = tx.store(META).map_err(fail)?;
        let key = JsValue::from_str("device");
        let device = match meta
            .get(key.clone())
            .await
            .map_err(fail)?
            .and_then(|v| v.as_string())
        {
            Some(device) => device,
            None => {
                meta.put(&JsValue::from_str(&new_device_id), Some(&key))
                    .await
                    .map_err(fail)?;
                new_device_id
            }
        };
        committed(tx, "read the device id").await?;
        Ok(device)
    }

    pub(super) async fn remember_backoff(&self, backoff: Option<(u64, u32)>) -> Result<(), Error> {
        let fail = |e| storage_error("remember the backoff", e);
        let tx = self
            .db
            .transaction(&[META], TransactionMode::ReadWrite)
            .map_err(fail)?;
        let meta = tx.store(META).map_err(fail)?;
        let key = JsValue::from_str("backoff");
        match backoff {
            Some((retry_at, attempt)) => {
                let value = Array::of2(&(retry_at as f64).into(), &attempt.into());
                meta.put(&value, Some(&key)).await.map_err(fail)?;
            }
            None => meta.delete(key).await.map_err(fail)?,
        }
        committed(tx, "remember the backoff").await?;
        Ok(())
    }

    /// Writes the events and deletes `deletes` in one transaction; returns the events'
    /// keys once it has committed.
    ///
    /// A tab knows `next_seq` from its own last write, unless another tab wrote since: the
    /// write goes out at once and checks it in the same transaction, rather than read it
    /// first (a round trip before any event goes out, long while the page is busy). A
    /// write that finds another tab's keys undoes itself and goes again, reading first.
    pub async fn put_all(&self, events: &[NewEvent], deletes: &[Key]) -> Result<Vec<Key>, Error> {
        let stale = Cell::new(false);
        let written = self
            .write(events, deletes, self.next_seq.take(), &stale)
            .await;
        if !stale.get() {
            return written;
        }
        self.write(events, deletes, None, &stale).await
    }

    /// [`IdbStorage::put_all`] from the key `assumed` (checked against `next_seq`, and
    /// `stale` set if it was not), or from `next_seq` read first.
    async fn write(
        &self,
        events: &[NewEvent],
        deletes: &[Key],
        assumed: Option<Key>,
        stale: &Cell<bool>,
    ) -> Result<Vec<Key>, Error> {
        let fail = |e| storage_error("store events", e);
        let touched = self.records_touched(deletes);
        let tx = self
            .db
            .transaction(&[EVENTS, META], TransactionMode::ReadWrite)
            .map_err(fail)?;
        let meta = tx.store(META).map_err(fail)?;
        let store = tx.store(EVENTS).map_err(fail)?;
        let next_key = JsValue::from_str(NEXT_SEQ);
        let first = match assumed {
            Some(first) => first,
            None => next_seq_in(&meta).await.map_err(fail)?,
        };
        let keys: Vec<Key> = (first..first + events.len() as u64).collect();
        let next_seq = first + keys.len() as u64;
        let mut records: Vec<(JsValue, JsValue)> =
            vec![(JsValue::from_f64(next_seq as f64), next_key.clone())];
        let mut new_records = Vec::new();
        for (chunk, chunk_keys) in events
            .chunks(EVENTS_PER_RECORD)
            .zip(keys.chunks(EVENTS_PER_RECORD))
        {
            // Sized up front: a record is ~64 KB, grown by doubling it would be copied
            // a dozen times on the way to durability.
            let bound: usize = chunk.iter().map(|e| e.wire_len() + MAX_KEY_PREFIX).sum();
            let mut record = String::with_capacity(bound);
            for (event, &key) in chunk.iter().zip(chunk_keys) {
                if !record.is_empty() {
                    record.push('\n');
                }
                wire::push_keyed(&mut record, key, &event.wire_line());
            }
            records.push((
                JsValue::from_str(&record),
                JsValue::from_f64(chunk_keys[0] as f64),
            ));
            new_records.push((chunk_keys[0], chunk_keys.to_vec()));
        }
        let mut requests: Vec<Request<'_>> = Vec::with_capacity(records.len() + 2);
        if let Some(assumed) = assumed {
            // First, so that it reads what the transactions before this one committed.
            let (meta, next_key) = (&meta, &next_key);
            requests.push(Box::pin(async move {
                if next_seq_in(meta).await? != assumed {
                    stale.set(true);
                    // rexie's abort takes the transaction, held below; a failed request
                    // aborts it as surely, and `next_seq` was put in it, so adding it fails.
                    meta.add(&JsValue::TRUE, Some(next_key)).await?;
                }
                Ok(())
            }));
        }
        requests.extend(records.iter().enumerate().map(|(i, (value, key))| {
            let target = if i == 0 { &meta } else { &store };
            Box::pin(async move { target.put(value, Some(key)).await.map(drop) }) as Request
        }));
        requests.push(Box::pin(delete_in(&store, &touched)));
        for result in all_at_once(requests).await {
            result.map_err(fail)?;
        }
        committed(tx, "store events").await?;
        // After a write that met another tab's, the next reads first.
        if !stale.get() {
            self.next_seq.set(Some(next_seq));
        }
        self.forget_records(touched);
        let mut records = self.records.borrow_mut();
        for (first, record_keys) in new_records {
            records.set(first, record_keys);
        }
        Ok(keys)
    }

    /// Removes these keys: records left empty are deleted, others rewritten without them.
    pub async fn delete(&self, keys: &[Key]) -> Result<(), Error> {
        let fail = |e| storage_error("delete events", e);
        let touched = self.records_touched(keys);
        if touched.is_empty() {
            return Ok(());
        }
        let tx = self
            .db
            .transaction(&[EVENTS], TransactionMode::ReadWrite)
            .map_err(fail)?;
        let store = tx.store(EVENTS).map_err(fail)?;
        delete_in(&store, &touched).await.map_err(fail)?;
        committed(tx, "delete events").await?;
        self.forget_records(touched);
        Ok(())
    }

    /// The records these keys live in, and the keys each keeps.
    fn records_touched(&self, keys: &[Key]) -> Records {
        let mut touched = Records::default();
        let records = self.records.borrow();
        for &key in keys {
            let Some((first, record_keys)) = records.containing(key) else {
                continue;
            };
            let index = match touched.position(first) {
                Ok(index) => index,
                Err(index) => {
                    touched.0.insert(index, (first, record_keys.to_vec()));
                    index
                }
            };
            touched.0[index].1.retain(|&s| s != key);
        }
        touched
    }

    /// After the transaction that deleted them committed.
    fn forget_records(&self, touched: Records) {
        let mut records = self.records.borrow_mut();
        for (first, remaining) in touched.0 {
            records.set(first, remaining);
        }
    }

    /// Everything stored, oldest first, with `next_seq` and the remembered backoff as of
    /// the same transaction (one transaction where the backoff had one of its own).
    pub async fn load(&self) -> Result<Snapshot, Error> {
        let fail = |e| storage_error("load stored events", e);
        let tx = self
            .db
            .transaction(&[EVENTS, META], TransactionMode::ReadOnly)
            .map_err(fail)?;
        let meta = tx.store(META).map_err(fail)?;
        let backoff = meta
            .get(JsValue::from_str("backoff"))
            .await
            .map_err(fail)?
            .and_then(|v| {
                let pair = v.dyn_into::<Array>().ok()?;
                Some((pair.get(0).as_f64()? as u64, pair.get(1).as_f64()? as u32))
            });
        let next_seq = next_seq_in(&meta).await.map_err(fail)?;
        let store = tx.store(EVENTS).map_err(fail)?;
        let pairs = store.scan(None, None, None, None).await.map_err(fail)?;
        committed(tx, "load stored events").await?;
        self.next_seq.set(Some(next_seq));
        Ok(Snapshot {
            events: self.index(pairs),
            below: next_seq,
            backoff,
        })
    }

    /// The records whose first key is in `first..=last`: what one write of another tab made.
    pub async fn load_range(&self, first: Key, last: Key) -> Result<Vec<StoredEvent>, Error> {
        let fail = |e| storage_error("load stored events", e);
        let range = KeyRange::bound(
            &JsValue::from_f64(first as f64),
            &JsValue::from_f64(last as f64),
            None,
            None,
        )
        .map_err(|e| fail(e.into()))?;
        let tx = self
            .db
            .transaction(&[EVENTS], TransactionMode::ReadOnly)
            .map_err(fail)?;
        let store = tx.store(EVENTS).map_err(fail)?;
        let pairs = store
            .scan(Some(range), None, None, None)
            .await
            .map_err(fail)?;
        committed(tx, "load stored events").await?;
        Ok(self.index(pairs))
    }

    /// Decodes records and remembers where each key lives, for later deletes.
    fn index(&self, pairs: Vec<(JsValue, JsValue)>) -> Vec<StoredEvent> {
        let mut events = Vec::new();
        let mut records = self.records.borrow_mut();
        for (key, value) in pairs {
            let Some(first) = key.as_f64() else { continue };
            let mut record_keys = Vec::new();
            // A record this version did not write is skipped, not fatal.
            let text = value.as_string().unwrap_or_default();
            let parsed = text
                .lines()
                .filter_map(wire::parse_keyed)
                .filter_map(|(key, line)| Some((key, wire::parse_event(line)?)));
            for (key, event) in parsed {
                record_keys.push(key);
                events.push(StoredEvent {
                    key,
                    id: event.id,
                    session: event.session.into(),
                    seq: event.seq,
                    ts: event.ts,
                    payload: event.payload.to_owned(),
                });
            }
            records.set(first as Key, record_keys);
        }
        events
    }
}

/// The first key not yet assigned, as `meta` holds it in the caller's transaction.
async fn next_seq_in(meta: &rexie::Store) -> Result<Key, rexie::Error> {
    let stored = meta.get(JsValue::from_str(NEXT_SEQ)).await?;
    Ok(stored.and_then(|v| v.as_f64()).map_or(1, |n| n as Key))
}

/// One IndexedDB step of a write, inside its transaction.
type Request<'a> = Pin<Box<dyn Future<Output = Result<(), rexie::Error>> + 'a>>;

/// Runs every request until all have finished, polling each before waiting on any, so
/// that all of them go out at once; their results come back in the order given.
async fn all_at_once(mut requests: Vec<Request<'_>>) -> Vec<Result<(), rexie::Error>> {
    let mut results: Vec<Option<Result<(), rexie::Error>>> =
        requests.iter().map(|_| None).collect();
    poll_fn(|cx| {
        let mut finished = true;
        for (request, result) in requests.iter_mut().zip(&mut results) {
            if result.is_none() {
                match request.as_mut().poll(cx) {
                    Poll::Ready(outcome) => *result = Some(outcome),
                    Poll::Pending => finished = false,
                }
            }
        }
        if finished {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    // Every slot was filled before poll_fn returned Ready.
    results.into_iter().flatten().collect()
}

/// Deletes or rewrites the touched records inside the caller's transaction.
async fn delete_in(store: &rexie::Store, touched: &Records) -> Result<(), rexie::Error> {
    for (first, remaining) in &touched.0 {
        let first = *first;
        let record_key = JsValue::from_f64(first as f64);
        if remaining.is_empty() {
            store.delete(record_key).await?;
            continue;
        }
        // Read it back inside this transaction: the stored record is the truth.
        let Some(stored) = store
            .get(record_key.clone())
            .await?
            .and_then(|v| v.as_string())
        else {
            continue;
        };
        let mut kept = String::new();
        for line in stored.lines() {
            if wire::parse_keyed(line).is_some_and(|(key, _)| remaining.contains(&key)) {
                if !kept.is_empty() {
                    kept.push('\n');
                }
                kept.push_str(line);
            }
        }
        store
            .put(&JsValue::from_str(&kept), Some(&record_key))
            .await?;
    }
    Ok(())
}

/// Records by their first key, each with the keys still in it: a Vec kept sorted by first
/// key (a map type would cost kilobytes of wasm for the few operations used here).
#[derive(Default)]
struct Records(Vec<(Key, Vec<Key>)>);

impl Records {
    /// Where the record starting at `first` is, or would be inserted.
    fn position(&self, first: Key) -> Result<usize, usize> {
        self.0.binary_search_by_key(&first, |(start, _)| *start)
    }

    /// The record holding `key`: the last one starting at or before it, if it lists it.
    fn containing(&self, key: Key) -> Option<(Key, &[Key])> {
        let after = self.0.partition_point(|(start, _)| *start <= key);
        let (first, record_keys) = self.0.get(after.checked_sub(1)?)?;
        record_keys
            .contains(&key)
            .then_some((*first, record_keys.as_slice()))
    }

    /// Sets the record_keys of the record at `first`; none left removes it.
    fn set(&mut self, first: Key, record_keys: Vec<Key>) {
        match (self.position(first), record_keys.is_empty()) {
            (Ok(index), true) => {
                self.0.remove(index);
            }
            (Ok(index), false) => self.0[index].1 = record_keys,
            (Err(_), true) => {}
            (Err(index), false) => self.0.insert(index, (first, record_keys)),
        }
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
