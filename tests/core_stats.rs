//! What `stats()` reports, one named test per counter: the queue, the bytes queued, the
//! writes in progress, requests, failures and retries, and the backoff.
#![cfg(not(target_arch = "wasm32"))]

mod sim;

use evbuf::core::SendOutcome;
use sim::Sim;

// ---- the queue ----------------------------------------------------------------------

#[test]
fn the_stats_show_the_queue() {
    let mut sim = Sim::with_defaults();
    sim.log_many(3);
    sim.advance(1_000);
    let stats = sim.core.stats(sim.now);
    assert_eq!(stats.logged, 3);
    assert_eq!(stats.queued, 3);
    assert!(stats.queued_bytes > 0);
    assert_eq!(stats.oldest_age_ms, Some(1_000));
    assert_eq!(stats.next_flush_at, Some(sim.now + 2_000));
    assert!(stats.leader && stats.online);
}

#[test]
fn queued_bytes_count_only_what_is_stored_and_free() {
    let mut sim = Sim::with_defaults();
    sim.log_many(2);
    let two = sim.core.stats(sim.now).queued_bytes;
    assert!(two > 0);
    sim.flush();
    assert_eq!(
        sim.core.stats(sim.now).queued_bytes,
        0,
        "both are in flight"
    );
    sim.log();
    let one = sim.core.stats(sim.now).queued_bytes;
    assert!(one > 0 && one < two, "{one} of {two}");
    sim.ok();
    let stats = sim.core.stats(sim.now);
    assert_eq!((stats.queued, stats.queued_bytes), (1, one));
    sim.advance(3_000);
    sim.ok();
    let stats = sim.core.stats(sim.now);
    assert_eq!((stats.queued, stats.queued_bytes), (0, 0));
}

#[test]
fn unpersisted_counts_the_write_in_progress_and_the_logs_behind_it() {
    let mut sim = Sim::with_defaults();
    sim.persist_at_once = false;
    sim.log(); // handed to storage
    sim.log_many(2); // waiting for that write
    assert_eq!(sim.core.stats(sim.now).unpersisted, 3);
    sim.complete_persist();
    assert_eq!(sim.core.stats(sim.now).unpersisted, 2);
}

// ---- requests -----------------------------------------------------------------------

#[test]
fn every_request_has_its_own_id_and_is_counted_with_its_events() {
    let mut sim = Sim::with_defaults();
    sim.log_many(3);
    sim.advance(3_000);
    sim.ok();
    sim.log_many(2);
    sim.advance(3_000);
    sim.ok();
    assert_eq!(sim.post_on_hide(), 0);
    sim.core.handle_page_visible();
    sim.log_many(4);
    assert_eq!(sim.post_on_hide(), 1);
    let ids: Vec<u64> = sim.sent.iter().chain(&sim.unload).map(|b| b.id).collect();
    assert_eq!(ids, vec![1, 2, 3]);
    let stats = sim.core.stats(sim.now);
    assert_eq!(stats.requests, 3);
    assert_eq!(stats.sent, 9);
}

#[test]
fn each_failed_send_counts_a_failed_request_and_a_retry() {
    let mut sim = Sim::with_defaults();
    sim.log();
    sim.advance(3_000);
    sim.answer(SendOutcome::status(503));
    sim.advance(60_000);
    sim.answer(SendOutcome::NetworkError("reset".into()));
    let stats = sim.core.stats(sim.now);
    assert_eq!(stats.failed_requests, 2);
    assert_eq!(stats.retries, 2);
    sim.advance(60_000);
    sim.ok();
    let stats = sim.core.stats(sim.now);
    assert_eq!(
        (stats.failed_requests, stats.retries, stats.requests),
        (2, 2, 3)
    );
}

// ---- the backoff --------------------------------------------------------------------

#[test]
fn the_stats_show_no_backoff_at_the_moment_it_ends() {
    let mut sim = Sim::with_defaults();
    sim.log();
    sim.advance(3_000);
    sim.answer(SendOutcome::status(503));
    let retry_at = sim.core.stats(sim.now).retry_at.expect("backing off");
    assert_eq!(sim.core.stats(retry_at - 1).retry_at, Some(retry_at));
    assert_eq!(sim.core.stats(retry_at).retry_at, None);
}
