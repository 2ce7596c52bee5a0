//! When a request goes out and what it carries, one named test per decision: the flush
//! interval, the early flush of a full buffer, one send in flight, and the count and byte
//! limits of a batch.
#![cfg(not(target_arch = "wasm32"))]

mod sim;

use evbuf::core::{wire, Action, Config, Core, StoredEvent};
use sim::{actions, batch_ids, stored_of_len, Sim, DEVICE, T0};

// ---- the interval -------------------------------------------------------------------

#[test]
fn nothing_is_sent_before_the_interval() {
    let mut sim = Sim::with_defaults();
    sim.log_many(5);
    sim.advance(2_999);
    assert!(sim.sent.is_empty());
    sim.advance(1);
    assert_eq!(sim.sent.len(), 1);
    assert_eq!(batch_ids(&sim.sent[0]).len(), 5);
}

#[test]
fn later_logs_do_not_postpone_the_interval_flush() {
    let mut sim = Sim::with_defaults();
    sim.log();
    sim.advance(2_000);
    sim.log();
    sim.advance(999);
    assert!(sim.sent.is_empty());
    sim.advance(1);
    assert_eq!(sim.sent.len(), 1, "3 s after the first log");
    assert_eq!(batch_ids(&sim.sent[0]).len(), 2);
}

#[test]
fn the_first_event_after_the_queue_empties_waits_a_full_interval() {
    let mut sim = Sim::with_defaults();
    sim.log();
    sim.advance(3_000);
    sim.ok();
    assert_eq!(
        sim.core.stats(sim.now).next_flush_at,
        None,
        "nothing to flush"
    );
    sim.advance(10_000);
    sim.log();
    assert_eq!(sim.sent.len(), 1, "not at once");
    assert_eq!(sim.core.stats(sim.now).next_flush_at, Some(sim.now + 3_000));
    sim.advance(3_000);
    assert_eq!(sim.sent.len(), 2);
}

#[test]
fn an_idle_core_arms_no_timer() {
    let mut sim = Sim::with_defaults();
    assert_eq!(sim.core.poll_timeout(), None);
    sim.log();
    sim.advance(3_000);
    sim.ok();
    assert!(sim.store.is_empty());
    assert_eq!(sim.core.poll_timeout(), None);
}

#[test]
fn the_interval_sends_everything_stored_as_one_request() {
    let mut sim = Sim::with_defaults();
    let ids = sim.log_many(40);
    sim.advance(3_000);
    assert_eq!(sim.sent.len(), 1);
    assert_eq!(batch_ids(&sim.sent[0]), ids);
}

// ---- a full buffer ------------------------------------------------------------------

#[test]
fn a_full_buffer_flushes_early_and_keeps_the_event_that_filled_it() {
    // Loss bug (b): the event that triggers the early flush must be stored and sent.
    let mut sim = Sim::with_defaults();
    let ids = sim.log_many(50);
    assert_eq!(sim.sent.len(), 1, "the 50th event starts a flush at once");
    let sent = batch_ids(&sim.sent[0]);
    assert_eq!(sent.len(), 50);
    assert_eq!(sent.last(), ids.last());
    assert!(sim.stored_ids().contains(ids.last().unwrap()));
}

#[test]
fn a_buffer_full_by_bytes_flushes_early() {
    let mut sim = Sim::with_defaults();
    for _ in 0..6 {
        sim.log_sized(10_000).unwrap();
    }
    assert!(sim.sent.is_empty(), "six events of 10 kB fit in one batch");
    sim.log_sized(10_000).unwrap();
    assert_eq!(sim.sent.len(), 1, "the seventh fills a batch");
}

// ---- one send at a time -------------------------------------------------------------

#[test]
fn only_one_send_is_in_flight() {
    let mut sim = Sim::with_defaults();
    sim.log_many(50);
    assert_eq!(sim.sent.len(), 1);
    sim.log_many(120);
    sim.advance(30_000);
    assert_eq!(
        sim.sent.len(),
        1,
        "no second request while the first is unanswered"
    );
    sim.ok();
    assert_eq!(sim.sent.len(), 2);
}

#[test]
fn a_burst_costs_at_most_one_request_per_full_batch_plus_one() {
    let mut sim = Sim::with_defaults();
    sim.persist_at_once = false;
    for _ in 0..1_000 {
        sim.log_sized(400).unwrap();
    }
    sim.complete_persist();
    sim.complete_persist();
    while sim.in_flight.is_some() || !sim.store.is_empty() {
        if sim.in_flight.is_some() {
            sim.ok();
        } else {
            sim.advance(100);
        }
    }
    assert_eq!(sim.collector.distinct(), 1_000);
    assert!(
        sim.sent.len() <= 1_000usize.div_ceil(100) + 1,
        "{} requests",
        sim.sent.len()
    );
}

// ---- the limits of a batch ----------------------------------------------------------

#[test]
fn batches_respect_the_count_and_byte_limits() {
    let mut sim = Sim::new(Config {
        max_batch_events: 7,
        max_buffer_size: 1_000,
        ..Config::default()
    });
    sim.log_many(20);
    let sent: Vec<usize> = (0..3)
        .map(|i| {
            if i == 0 {
                sim.advance(3_000);
            }
            let n = batch_ids(sim.in_flight.as_ref().unwrap()).len();
            sim.flush();
            sim.ok();
            n
        })
        .collect();
    assert_eq!(sent, vec![7, 7, 6]);

    let mut sim = Sim::with_defaults();
    for _ in 0..10 {
        sim.log_sized(9_000).unwrap();
    }
    sim.advance(3_000);
    while sim.in_flight.is_some() {
        let batch = sim.ok();
        assert!(batch.body.len() <= 61_440, "{}", batch.body.len());
        sim.flush();
    }
    assert_eq!(sim.collector.distinct(), 10);
    assert!(sim.sent.len() >= 2);
}

fn sent(actions: &[Action]) -> Vec<Vec<u64>> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(batch) => Some(batch.keys.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_batch_may_fill_the_byte_limit_exactly() {
    let config = Config {
        max_batch_bytes: 1_024,
        ..Config::default()
    };
    let mut core = Core::new(config, DEVICE.into(), "s").unwrap();
    let envelope = wire::envelope_len_bound(DEVICE);
    // envelope + first + ',' + second == 1024
    let first = 300;
    let second = 1_024 - envelope - first - 1;
    core.handle_loaded(T0, vec![stored_of_len(1, first), stored_of_len(2, second)]);
    core.handle_flush(T0, 1);
    assert_eq!(sent(&actions(&mut core)), vec![vec![1, 2]]);
}

#[test]
fn an_oversized_event_loaded_from_storage_is_sent_alone() {
    let config = Config {
        max_batch_bytes: 2_048,
        max_stored_bytes: 1_000_000,
        ..Config::default()
    };
    let mut core = Core::new(config, sim::DEVICE.into(), "s").unwrap();
    core.handle_loaded(
        0,
        vec![StoredEvent {
            key: 1,
            session: "s".into(),
            seq: 1,
            id: "big".into(),
            ts: 0,
            payload: format!("\"{}\"", "x".repeat(5_000)),
        }],
    );
    core.handle_flush(0, 1);
    let sent = std::iter::from_fn(|| core.poll_action())
        .any(|a| matches!(a, Action::Send(b) if b.keys == vec![1]));
    assert!(sent);
}
