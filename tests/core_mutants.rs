//! Decisions of the core that the mutation check (`cargo mutants`, see docs/mutants.md)
//! found untested: each test is named after the behaviour it pins down.
#![cfg(not(target_arch = "wasm32"))]

mod sim;

use evbuf::core::{wire, Config, Core, LogError, SendOutcome};
use sim::{batch_ids, Sim, DEVICE};

// ---- unload ---------------------------------------------------------------------

#[test]
fn each_keepalive_post_is_counted_as_an_unload_request() {
    let mut sim = Sim::with_defaults();
    sim.log_many(5);
    assert_eq!(sim.post_on_hide(), 1);
    let stats = sim.core.stats(sim.now);
    assert_eq!(stats.unload_requests, 1);
    assert_eq!(stats.requests, 1);
}

#[test]
fn a_keepalive_post_that_fails_is_counted_as_a_failed_request() {
    let mut sim = Sim::with_defaults();
    sim.log_many(5);
    sim.post_on_hide();
    sim.answer_unload(false, true);
    assert_eq!(sim.core.stats(sim.now).failed_requests, 1);
}

#[test]
fn an_answered_keepalive_post_gives_its_bytes_back_to_the_budget_and_one_still_out_keeps_them() {
    let mut sim = Sim::with_defaults();
    sim.core.handle_online(sim.now, false); // nothing goes out on the normal path
    sim.core.handle_online(sim.now, true);
    sim.pump();
    // ~100 kB stored with one ~1 kB batch in flight: the hide spends the whole budget in
    // two posts, a full batch and the rest of the 64 KiB.
    for _ in 0..100 {
        sim.log_sized(900).unwrap();
    }
    assert!(sim.in_flight.is_some());
    assert_eq!(sim.post_on_hide(), 2);
    let (big, small) = (sim.unload[0].clone(), sim.unload[1].clone());
    assert!(big.body.len() > 4 * small.body.len(), "{} / {}", big.body.len(), small.body.len());
    sim.unload.clear();
    // The page lives: the big post fails, the small one is still out.
    let failed = SendOutcome::NetworkError("keepalive failed".into());
    sim.core
        .handle_unload_result(sim.now, big.id, &big.keys, &failed);
    sim.pump();
    // A second hide may spend what the big post gave back, not what the small one holds.
    assert_eq!(sim.post_on_hide(), 1);
    assert_eq!(batch_ids(&sim.unload[0]), batch_ids(&big));
    assert!(sim.unload[0].body.len() + small.body.len() <= 64 * 1024);
}

// ---- logging ----------------------------------------------------------------------

#[test]
fn the_core_keeps_the_config_it_was_given() {
    let config = Config {
        flush_interval_ms: 1_234,
        max_buffer_size: 7,
        ..Config::default()
    };
    let core = Core::new(config.clone(), "d".into()).unwrap();
    assert_eq!(core.config(), &config);
}

#[test]
fn an_event_that_exactly_fills_a_batch_is_accepted_and_one_byte_more_is_refused() {
    let config = Config::default();
    let mut core = Core::new(config.clone(), DEVICE.into()).unwrap();
    let (id, now) = ("e1", 1_700_000_000_000);
    let room = config.max_batch_bytes
        - wire::envelope_len_bound(DEVICE)
        - wire::event_len_bound(id, now, "\"\"");
    let fits = format!("\"{}\"", "x".repeat(room));
    assert_eq!(
        wire::envelope_len_bound(DEVICE) + wire::event_len_bound(id, now, &fits),
        config.max_batch_bytes
    );
    assert!(core.handle_log(now, id.into(), fits).is_ok());
    let over = format!("\"{}\"", "x".repeat(room + 1));
    assert_eq!(
        core.handle_log(now, "e2".into(), over),
        Err(LogError::TooLarge {
            bytes: config.max_batch_bytes + 1,
            limit: config.max_batch_bytes
        })
    );
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
