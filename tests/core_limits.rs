//! What the core refuses or drops, and how it counts it, one named test per decision: an
//! event larger than a batch or with an invalid payload at `logEvent`, and the stored
//! count, byte and age limits, which drop the oldest events.
#![cfg(not(target_arch = "wasm32"))]

mod sim;

use evbuf::core::{wire, Config, Core, DropReason, LogError, Report};
use sim::{stored, stored_of_len, Sim, DEVICE, T0};

// ---- at logEvent --------------------------------------------------------------------

#[test]
fn an_event_larger_than_a_batch_is_refused_and_counted() {
    let mut sim = Sim::with_defaults();
    let err = sim.log_sized(70_000).unwrap_err();
    assert!(matches!(err, LogError::TooLarge { limit: 61_440, .. }));
    assert!(err.to_string().contains("maxBatchBytes"), "{err}");
    let stats = sim.core.stats(sim.now);
    assert_eq!(stats.dropped.oversize, 1);
    assert_eq!(stats.logged, 1);
    assert!(sim.store.is_empty());
}

#[test]
fn an_event_that_exactly_fills_a_batch_is_accepted_and_one_byte_more_is_refused() {
    let config = Config::default();
    let mut core = Core::new(config.clone(), DEVICE.into(), "s").unwrap();
    let (id, now) = ("s-1", 1_700_000_000_000);
    let room = config.max_batch_bytes
        - wire::envelope_len_bound(DEVICE)
        - wire::event_len(id, "s", 1, now, "\"\"");
    let fits = format!("\"{}\"", "x".repeat(room));
    assert_eq!(
        wire::envelope_len_bound(DEVICE) + wire::event_len(id, "s", 1, now, &fits),
        config.max_batch_bytes
    );
    assert!(core.handle_log(now, id.into(), 1, fits).is_ok());
    let over = format!("\"{}\"", "x".repeat(room + 1));
    assert_eq!(
        core.handle_log(now, "s-2".into(), 2, over),
        Err(LogError::TooLarge {
            bytes: config.max_batch_bytes + 1,
            limit: config.max_batch_bytes
        })
    );
}

#[test]
fn an_invalid_payload_is_counted() {
    let mut sim = Sim::with_defaults();
    sim.core.handle_invalid_payload();
    assert_eq!(sim.core.stats(sim.now).dropped.invalid, 1);
}

#[test]
fn an_invalid_payload_counts_as_logged_and_dropped() {
    let mut sim = Sim::with_defaults();
    sim.core.handle_invalid_payload();
    sim.core.handle_invalid_payload();
    let stats = sim.core.stats(sim.now);
    assert_eq!(stats.logged, 2);
    assert_eq!(stats.dropped.invalid, 2);
}

// ---- stored limits ------------------------------------------------------------------

#[test]
fn the_event_count_limit_drops_the_oldest_and_counts_them() {
    let mut sim = Sim::new(Config {
        max_stored_events: 10,
        max_buffer_size: 1_000,
        ..Config::default()
    });
    sim.core.handle_online(sim.now, false);
    let ids = sim.log_many(15);
    assert_eq!(sim.stored_ids(), ids[5..].iter().cloned().collect());
    assert_eq!(sim.dropped, ids[..5].iter().cloned().collect());
    assert_eq!(sim.core.stats(sim.now).dropped.storage_limit, 5);
}

#[test]
fn the_byte_limit_drops_the_oldest_and_counts_them() {
    let mut sim = Sim::new(Config {
        max_stored_bytes: 100_000,
        max_buffer_size: 1_000,
        ..Config::default()
    });
    sim.core.handle_online(sim.now, false);
    for _ in 0..30 {
        sim.log_sized(10_000).unwrap();
    }
    let stats = sim.core.stats(sim.now);
    assert!(stats.queued_bytes <= 100_000);
    assert_eq!(stats.queued, 9);
    assert_eq!(stats.dropped.storage_limit, 21);
}

#[test]
fn the_byte_limit_drops_as_many_of_the_oldest_as_it_takes_to_fit() {
    let config = Config {
        max_batch_bytes: 1_024,
        max_stored_bytes: 1_024,
        ..Config::default()
    };
    let mut core = Core::new(config, DEVICE.into(), "s").unwrap();
    core.handle_online(T0, false); // nothing is sent
                                   // 1,500 bytes stored: two of the five must go.
    core.handle_loaded(T0, (1..=5).map(|k| stored_of_len(k, 300)).collect());
    let stats = core.stats(T0);
    assert_eq!(stats.dropped.storage_limit, 2);
    assert_eq!(core.queued_keys().collect::<Vec<_>>(), vec![3, 4, 5]);
    assert_eq!(stats.queued_bytes, 900);
}

#[test]
fn events_older_than_the_age_limit_are_dropped_and_counted() {
    let mut sim = Sim::new(Config {
        max_event_age_ms: 60_000,
        ..Config::default()
    });
    sim.core.handle_online(sim.now, false);
    let old = sim.log();
    sim.advance(30_000);
    let young = sim.log();
    sim.advance(30_001);
    assert_eq!(sim.dropped, [old].into_iter().collect());
    assert_eq!(sim.stored_ids(), [young].into_iter().collect());
    assert_eq!(sim.core.stats(sim.now).dropped.age, 1);
}

#[test]
fn an_event_expires_one_millisecond_after_its_age_limit() {
    let config = Config::default();
    let mut core = Core::new(config.clone(), DEVICE.into(), "s").unwrap();
    core.handle_online(T0, false); // nothing is sent
    core.handle_loaded(T0, vec![stored(1)]);
    core.handle_timeout(T0 + config.max_event_age_ms);
    assert_eq!(core.stats(T0).dropped.age, 0, "exactly maxEventAgeMs old");
    core.handle_timeout(T0 + config.max_event_age_ms + 1);
    assert_eq!(core.stats(T0).dropped.age, 1);
}

#[test]
fn events_in_flight_are_not_dropped_by_limits() {
    let mut sim = Sim::new(Config {
        max_stored_events: 60,
        ..Config::default()
    });
    let first = sim.log_many(50); // in flight at once
    sim.log_many(30);
    assert!(first.iter().all(|id| !sim.dropped.contains(id)));
    sim.ok();
    assert!(first
        .iter()
        .all(|id| sim.collector.acknowledged.contains_key(id)));
}

// ---- drop counts and names ----------------------------------------------------------

#[test]
fn drop_counts_are_read_by_reason_and_add_up() {
    let mut sim = Sim::new(Config {
        max_stored_events: 2,
        ..Config::default()
    });
    sim.core.handle_online(sim.now, false);
    sim.log_many(3); // one over the count limit
    sim.core.handle_invalid_payload();
    sim.core.handle_invalid_payload();
    let dropped = sim.core.stats(sim.now).dropped;
    assert_eq!(dropped.get(DropReason::StorageLimit), 1);
    assert_eq!(dropped.get(DropReason::Invalid), 2);
    assert_eq!(dropped.get(DropReason::Age), 0);
    assert_eq!(dropped.total(), 3);
}

#[test]
fn each_drop_reason_has_the_name_stats_use_and_reports_show() {
    let names: Vec<&str> = DropReason::ALL.iter().map(|r| r.name()).collect();
    assert_eq!(
        names,
        vec!["oversize", "invalid", "poison", "storageLimit", "age"]
    );
    let report = Report::Dropped {
        reason: DropReason::StorageLimit,
        ids: vec!["a".into(), "b".into()],
        detail: "storage is full".into(),
        status: None,
    };
    assert_eq!(
        report.to_string(),
        "dropped 2 event(s) (storageLimit): storage is full"
    );
}
