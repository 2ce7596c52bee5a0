//! The options: each is accepted at its limits and refused one past them, and the core keeps
//! the configuration it was given.
#![cfg(not(target_arch = "wasm32"))]

use evbuf::core::{Config, Core, MAX_TIMER_MS};

#[test]
fn each_option_accepts_its_limits_and_refuses_one_past_them() {
    type Set = fn(&mut Config);
    let at_limit: Vec<(&str, Set, Set)> = vec![
        (
            "flushIntervalMs",
            |c| c.flush_interval_ms = 10,
            |c| c.flush_interval_ms = 9,
        ),
        (
            "maxBatchBytes",
            |c| c.max_batch_bytes = 1024,
            |c| c.max_batch_bytes = 1023,
        ),
        (
            "maxBatchBytes",
            |c| c.max_batch_bytes = 64 * 1024,
            |c| c.max_batch_bytes = 64 * 1024 + 1,
        ),
        (
            "maxStoredBytes",
            |c| c.max_stored_bytes = c.max_batch_bytes,
            |c| c.max_stored_bytes = c.max_batch_bytes - 1,
        ),
        (
            "maxEventAgeMs",
            |c| c.max_event_age_ms = c.flush_interval_ms,
            |c| c.max_event_age_ms = c.flush_interval_ms - 1,
        ),
        (
            "retry.baseMs",
            |c| c.retry_base_ms = 1,
            |c| c.retry_base_ms = 0,
        ),
        (
            "retry.maxMs",
            |c| c.retry_max_ms = c.retry_base_ms,
            |c| c.retry_max_ms = c.retry_base_ms - 1,
        ),
        (
            "sendTimeoutMs",
            |c| c.send_timeout_ms = 100,
            |c| c.send_timeout_ms = 99,
        ),
        (
            "sendTimeoutMs",
            |c| c.send_timeout_ms = MAX_TIMER_MS,
            |c| c.send_timeout_ms = MAX_TIMER_MS + 1,
        ),
        (
            "maxBufferSize",
            |c| c.max_buffer_size = 1,
            |c| c.max_buffer_size = 0,
        ),
        (
            "maxBatchEvents",
            |c| c.max_batch_events = 1,
            |c| c.max_batch_events = 0,
        ),
        (
            "maxStoredEvents",
            |c| c.max_stored_events = 1,
            |c| c.max_stored_events = 0,
        ),
    ];
    for (option, ok, bad) in at_limit {
        let mut config = Config::default();
        ok(&mut config);
        assert_eq!(config.validate(), Ok(()), "{option} at its limit");
        bad(&mut config);
        assert_eq!(config.validate().map_err(|e| e.option), Err(option));
    }
}

#[test]
fn the_core_keeps_the_config_it_was_given() {
    let config = Config {
        flush_interval_ms: 1_234,
        max_buffer_size: 7,
        ..Config::default()
    };
    let core = Core::new(config.clone(), "d".into(), "s").unwrap();
    assert_eq!(core.config(), &config);
}
