//! What goes in and out of the core: events, batches, actions, reports and errors.

use std::fmt;
use std::rc::Rc;

use super::retry::SendOutcome;
use super::stats::DropReason;
use super::wire::push_u64;

/// A storage key. Storage assigns keys in increasing order, so a key is also the event's
/// age rank among those a tab stores.
pub type Key = u64;

/// The core's handle on one logged event, in logging order: `flush()` waits for every
/// ticket handed out before it.
pub type Ticket = u64;

/// An event to be written by [`Action::Persist`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub ticket: Ticket,
    pub id: String,
    /// The page session that logged it, and its number there (see [`super::wire`]).
    pub session: Rc<str>,
    pub seq: u64,
    pub ts: u64,
    /// The payload, already serialized as JSON.
    pub payload: String,
}

impl NewEvent {
    /// The event as it goes on the wire.
    pub fn wire_line(&self) -> String {
        let mut line = String::with_capacity(self.wire_len());
        super::wire::push_event(
            &mut line,
            &self.id,
            &self.session,
            self.seq,
            self.ts,
            &self.payload,
        );
        line
    }

    /// The length of [`NewEvent::wire_line`].
    pub fn wire_len(&self) -> usize {
        super::wire::event_len(&self.id, &self.session, self.seq, self.ts, &self.payload)
    }
}

/// An event as storage holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub key: Key,
    pub id: String,
    pub session: Rc<str>,
    pub seq: u64,
    pub ts: u64,
    pub payload: String,
}

/// One request to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// Identifies the answer in [`super::Core::handle_send_result`] or
    /// [`super::Core::handle_unload_result`].
    pub id: u64,
    /// The storage keys of the events it carries.
    pub keys: Vec<Key>,
    /// The request body in the wire format.
    pub body: String,
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Write these events in one go; answer with [`super::Core::handle_persisted`] (keys in
    /// the same order) or [`super::Core::handle_persist_failed`].
    Persist(Rc<Vec<NewEvent>>),
    /// Remove these keys from storage (acknowledged or dropped); answer with
    /// [`super::Core::handle_deleted`] once they are gone.
    Delete(Vec<Key>),
    /// POST this batch; answer with [`super::Core::handle_send_result`].
    Send(Batch),
    /// The page may be going away and no other tab can take over: POST this batch with
    /// `keepalive` and a CORS-safelisted content type. Answer with
    /// [`super::Core::handle_unload_result`] if the page lives to hear it.
    SendUnload(Batch),
    /// Tell the user (the `onError` callback).
    Report(Report),
    /// Persist the backoff (`Some((retry_at, attempt))`) or its end (`None`), so that a
    /// reloaded page keeps waiting instead of hammering a server that is down, and tell
    /// the other tabs (their `flush()` settles with it). Fed back to a new page or a new
    /// sender with [`super::Core::handle_backoff_restored`].
    RememberBackoff(Option<(u64, u32)>),
    /// This tab does not send: ask the tab that does to flush now.
    AskSenderToFlush,
    /// Tell the other tabs these keys are stored (the sender loads them).
    AnnounceStored(Vec<Key>),
    /// This tab keeps events in memory and cannot read what the others store: release
    /// the sender's lock, or stop waiting for it, and wait for it no more.
    StepDown,
    /// This tab in memory may be the last of the origin: take the sender's lock if no tab
    /// holds it, without waiting for it (every tab that waits for it can read storage).
    LeadIfFree,
    /// This tab does not send and holds these events in memory only (its storage failed):
    /// offer them, as wire lines, to the tab that sends, which answers with
    /// [`super::Core::handle_handed_over`].
    HandOver(Vec<String>),
    /// Events adopted from `tab` ([`super::Core::handle_adopt`]) are stored here now: tell
    /// it, with its own keys for them.
    ConfirmAdopted { tab: String, keys: Vec<Key> },
    /// A `flush()` call is settled.
    FlushSettled {
        waiter: u64,
        result: Result<(), FlushError>,
    },
}

/// Something the user should hear about.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Report {
    /// These events were dropped and counted.
    Dropped {
        reason: DropReason,
        ids: Vec<String>,
        detail: String,
        /// The answer that refused them (413, 400 or 422), for drops the server decided.
        status: Option<u16>,
    },
    /// A send failed; the events are kept and retried at `retry_at`.
    SendFailed {
        outcome: SendOutcome,
        retry_at: u64,
        detail: String,
    },
    /// Storage could not write; the events are kept in memory.
    StorageFailed { detail: String },
}

impl Report {
    /// What the user reads (built without the formatting machinery, which costs
    /// kilobytes of wasm).
    pub fn message(&self) -> String {
        match self {
            Report::Dropped {
                reason,
                ids,
                detail,
                ..
            } => {
                let mut out = String::from("dropped ");
                push_u64(&mut out, ids.len() as u64);
                out.push_str(" event(s) (");
                out.push_str(reason.name());
                out.push_str("): ");
                out.push_str(detail);
                out
            }
            Report::SendFailed { detail, .. } => concat(&["failed to send events: ", detail]),
            Report::StorageFailed { detail } => concat(&["failed to store events: ", detail]),
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

/// The parts, one after the other.
pub(super) fn concat(parts: &[&str]) -> String {
    let mut out = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    for part in parts {
        out.push_str(part);
    }
    out
}

/// The number in decimal.
pub(super) fn number(n: u64) -> String {
    let mut out = String::new();
    push_u64(&mut out, n);
    out
}

/// Why `logEvent` refused an event.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogError {
    /// The event cannot fit in any batch.
    TooLarge { bytes: usize, limit: usize },
}

impl LogError {
    /// What the user reads.
    pub fn message(&self) -> String {
        match self {
            LogError::TooLarge { bytes, limit } => concat(&[
                "failed to log event: it takes ",
                &number(*bytes as u64),
                " bytes on the wire, more than maxBatchBytes (",
                &number(*limit as u64),
                ")",
            ]),
        }
    }
}

impl fmt::Display for LogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for LogError {}

/// Why a `flush()` did not deliver everything logged before it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FlushError {
    /// The browser says it is offline; events stay stored.
    Offline,
    /// A send failed; events stay stored and are retried at `retry_at`.
    SendFailed { detail: String, retry_at: u64 },
    /// An earlier failure is being waited out until `retry_at`.
    BackingOff { retry_at: u64 },
    /// Another tab sends for this origin and did not deliver in time.
    SenderSilent { waited_ms: u64 },
}

impl FlushError {
    /// What the user reads.
    pub fn message(&self) -> String {
        match self {
            FlushError::Offline => {
                "failed to flush: the browser is offline; events stay stored".to_owned()
            }
            FlushError::SendFailed { detail, retry_at } => concat(&[
                "failed to flush: ",
                detail,
                "; events stay stored and are retried at ",
                &number(*retry_at),
            ]),
            FlushError::BackingOff { retry_at } => concat(&[
                "failed to flush: waiting after an earlier failure until ",
                &number(*retry_at),
                "; events stay stored",
            ]),
            FlushError::SenderSilent { waited_ms } => concat(&[
                "failed to flush: the tab that sends for this site delivered nothing within ",
                &number(*waited_ms),
                " ms; events stay stored",
            ]),
        }
    }
}

impl fmt::Display for FlushError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for FlushError {}
