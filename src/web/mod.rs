//! The browser drivers and the wasm-bindgen API. Each driver does one thing: `storage`
//! (IndexedDB or memory), `transport` (fetch), `timer`, `lifecycle` (online/offline,
//! page hide); `client` runs the core's loop over them and `api` is the JS face.

mod api;
mod channel;
mod client;
mod clock;
pub(crate) mod errors;
mod leader;
mod lifecycle;
mod options;
mod random;
pub mod storage;
mod timer;
mod transport;

use std::fmt;

use crate::core::{FlushError, LogError};

pub use client::Client;
pub use clock::Clock;
pub use options::Options;

/// What can go wrong at the JS boundary; each becomes a JS `Error` with this message and
/// a `code` (`errors`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Error {
    /// `init()` got an option it cannot use.
    Options(String),
    /// IndexedDB refused (the client carries on in memory).
    Storage(String),
    /// `logEvent` refused the event.
    Log(LogError),
    /// `flush()` could not deliver everything.
    Flush(FlushError),
    /// A call needs `init()` first, or came after `shutdown()`.
    NotStarted,
    /// `optOut()` withdrew consent.
    OptedOut,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Options(message) | Error::Storage(message) => f.write_str(message),
            Error::Log(err) => err.fmt(f),
            Error::Flush(err) => err.fmt(f),
            Error::NotStarted => f.write_str("evbuf is not started: call init({ endpoint }) first"),
            Error::OptedOut => {
                f.write_str("failed to flush: optOut() withdrew consent; call init() again to log")
            }
        }
    }
}

impl std::error::Error for Error {}
