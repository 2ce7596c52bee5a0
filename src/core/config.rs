//! The core's settings and their validation. The JS option names appear in the error
//! messages because that is what a user typed.

use std::fmt;

use super::types::{concat, number};

/// The largest request body a page may have in flight on the keepalive path (fetch
/// `keepalive` and `sendBeacon` share this budget).
pub const KEEPALIVE_BUDGET_BYTES: usize = 64 * 1024;

/// The longest delay a browser timer takes (`setTimeout` holds a signed 32-bit number;
/// a longer one fires at once).
pub const MAX_TIMER_MS: u64 = i32::MAX as u64;

/// Everything the core needs to decide when and what to send. Times are milliseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// How often stored events go out when no threshold is reached first.
    pub flush_interval_ms: u64,
    /// Stored-event count at which a flush starts early (`maxBufferSize`).
    pub max_buffer_size: usize,
    /// At most this many events in one request.
    pub max_batch_events: usize,
    /// At most this many bytes of request body; the default leaves room in the keepalive budget.
    pub max_batch_bytes: usize,
    /// Storage limits: past these the oldest events are dropped (and counted).
    pub max_stored_events: usize,
    pub max_stored_bytes: usize,
    pub max_event_age_ms: u64,
    /// Backoff: full jitter over `min(retry_max_ms, retry_base_ms * 2^attempt)`.
    pub retry_base_ms: u64,
    pub retry_max_ms: u64,
    /// A request with no answer after this long is aborted and counts as a network error:
    /// a server or proxy that never answers must not hold the in-flight guard forever.
    pub send_timeout_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            flush_interval_ms: 3_000,
            max_buffer_size: 50,
            max_batch_events: 100,
            max_batch_bytes: 60 * 1024,
            max_stored_events: 10_000,
            max_stored_bytes: 8 * 1024 * 1024,
            max_event_age_ms: 7 * 24 * 60 * 60 * 1000,
            retry_base_ms: 1_000,
            retry_max_ms: 60_000,
            send_timeout_ms: 30_000,
        }
    }
}

/// An option that cannot work, named as the user spelled it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConfigError {
    pub option: &'static str,
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&concat(&[
            "invalid option `",
            self.option,
            "`: ",
            &self.reason,
        ]))
    }
}

impl std::error::Error for ConfigError {}

fn bad(option: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        option,
        reason: reason.into(),
    }
}

impl Config {
    /// Checks every option; the first bad one is named in the error.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.flush_interval_ms < 10 {
            return Err(bad("flushIntervalMs", "must be at least 10 ms"));
        }
        if self.max_buffer_size == 0 {
            return Err(bad("maxBufferSize", "must be at least 1 event"));
        }
        if self.max_batch_events == 0 {
            return Err(bad("maxBatchEvents", "must be at least 1 event"));
        }
        if self.max_batch_bytes < 1024 || self.max_batch_bytes > KEEPALIVE_BUDGET_BYTES {
            return Err(bad(
                "maxBatchBytes",
                concat(&[
                    "must be between 1024 and ",
                    &number(KEEPALIVE_BUDGET_BYTES as u64),
                    " bytes (the keepalive budget of a page)",
                ]),
            ));
        }
        if self.max_stored_events == 0 {
            return Err(bad("maxStoredEvents", "must be at least 1 event"));
        }
        if self.max_stored_bytes < self.max_batch_bytes {
            return Err(bad(
                "maxStoredBytes",
                concat(&[
                    "must be at least maxBatchBytes (",
                    &number(self.max_batch_bytes as u64),
                    " bytes)",
                ]),
            ));
        }
        if self.max_event_age_ms < self.flush_interval_ms {
            return Err(bad(
                "maxEventAgeMs",
                "must be at least flushIntervalMs, or events would expire before their first send",
            ));
        }
        if self.retry_base_ms == 0 {
            return Err(bad("retry.baseMs", "must be at least 1 ms"));
        }
        if self.retry_max_ms < self.retry_base_ms {
            return Err(bad("retry.maxMs", "must be at least retry.baseMs"));
        }
        if !(100..=MAX_TIMER_MS).contains(&self.send_timeout_ms) {
            return Err(bad(
                "sendTimeoutMs",
                concat(&["must be between 100 and ", &number(MAX_TIMER_MS), " ms"]),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn each_bad_option_is_named() {
        type Breaker = Box<dyn Fn(&mut Config)>;
        let cases: Vec<(&str, Breaker)> = vec![
            ("flushIntervalMs", Box::new(|c| c.flush_interval_ms = 0)),
            ("maxBufferSize", Box::new(|c| c.max_buffer_size = 0)),
            ("maxBatchEvents", Box::new(|c| c.max_batch_events = 0)),
            ("maxBatchBytes", Box::new(|c| c.max_batch_bytes = 100_000)),
            ("maxStoredEvents", Box::new(|c| c.max_stored_events = 0)),
            ("maxStoredBytes", Box::new(|c| c.max_stored_bytes = 10)),
            ("maxEventAgeMs", Box::new(|c| c.max_event_age_ms = 1)),
            ("retry.baseMs", Box::new(|c| c.retry_base_ms = 0)),
            ("retry.maxMs", Box::new(|c| c.retry_max_ms = 1)),
            ("sendTimeoutMs", Box::new(|c| c.send_timeout_ms = 10)),
        ];
        for (option, break_it) in cases {
            let mut config = Config::default();
            break_it(&mut config);
            let err = config.validate().unwrap_err();
            assert_eq!(err.option, option);
            assert!(err.to_string().contains(option), "{err}");
        }
    }
}
