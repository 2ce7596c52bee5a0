//! Sending out of turn, one named test per decision: `flush()` and what it settles with, a
//! flush hint, and going offline and online again.
#![cfg(not(target_arch = "wasm32"))]

mod sim;

use evbuf::core::{Config, FlushError, SendOutcome};
use sim::{status, Sim};

// ---- flush() ------------------------------------------------------------------------

#[test]
fn flush_sends_now_and_settles_once_everything_is_acknowledged() {
    let mut sim = Sim::new(Config {
        max_batch_events: 10,
        max_buffer_size: 1_000,
        ..Config::default()
    });
    sim.log_many(25);
    let waiter = sim.flush();
    assert_eq!(sim.sent.len(), 1);
    sim.ok();
    sim.ok();
    assert_eq!(sim.settled(waiter), None);
    sim.ok();
    assert_eq!(sim.settled(waiter), Some(&Ok(())));
    assert_eq!(sim.collector.distinct(), 25);
}

#[test]
fn flush_with_nothing_stored_settles_at_once() {
    let mut sim = Sim::with_defaults();
    let waiter = sim.flush();
    assert_eq!(sim.settled(waiter), Some(&Ok(())));
}

#[test]
fn flush_settles_with_the_error_when_the_send_fails() {
    let mut sim = Sim::with_defaults();
    sim.log();
    let waiter = sim.flush();
    sim.answer(status(503));
    assert!(matches!(
        sim.settled(waiter),
        Some(Err(FlushError::SendFailed { .. }))
    ));
    // While backing off, a flush says so instead of hammering the server.
    let again = sim.flush();
    assert!(matches!(
        sim.settled(again),
        Some(Err(FlushError::BackingOff { .. }))
    ));
    assert_eq!(sim.sent.len(), 1);
}

#[test]
fn a_flush_at_the_moment_the_backoff_ends_sends_instead_of_refusing() {
    let mut sim = Sim::with_defaults();
    sim.log();
    sim.advance(3_000);
    sim.answer(SendOutcome::status(503));
    let retry_at = sim.core.stats(sim.now).retry_at.expect("backing off");
    sim.now = retry_at; // the flush comes before the timer fires
    let waiter = sim.flush();
    assert_eq!(sim.settled(waiter), None);
    assert_eq!(sim.sent.len(), 2, "the retry goes out with the flush");
    sim.ok();
    assert_eq!(sim.settled(waiter), Some(&Ok(())));
}

#[test]
fn a_flush_after_a_reload_waits_for_the_events_loaded_from_storage() {
    let mut sim = Sim::with_defaults();
    sim.log_many(3);
    sim.crash_and_reload(false);
    let waiter = sim.flush();
    assert_eq!(
        sim.settled(waiter),
        None,
        "three loaded events are still stored"
    );
    sim.ok();
    assert_eq!(sim.settled(waiter), Some(&Ok(())));
}

#[test]
fn a_flush_settles_once_the_acknowledged_are_deleted_so_the_next_page_sends_none_again() {
    let mut sim = Sim::with_defaults();
    sim.log_many(3);
    let waiter = sim.flush();
    sim.persist_at_once = false;
    sim.log(); // its write is out when the answer comes: the deletes wait for it
    sim.ok();
    assert_eq!(
        sim.pending_deletes.len(),
        3,
        "precondition: the deletes wait"
    );
    assert_eq!(
        sim.settled(waiter),
        None,
        "acknowledged, but a page opened now would send them again"
    );
    sim.complete_persist();
    assert_eq!(sim.settled(waiter), Some(&Ok(())));
    sim.crash_and_reload(false);
    assert_eq!(
        sim.collector.answer_lost.len(),
        0,
        "nothing of the flush is sent again"
    );
}

#[test]
fn a_flush_does_not_wait_for_events_logged_after_it() {
    let mut sim = Sim::with_defaults();
    sim.log_many(3);
    let waiter = sim.flush();
    assert_eq!(sim.sent.len(), 1);
    sim.log_many(2); // logged after the call, while its send is out
    sim.ok();
    assert_eq!(sim.settled(waiter), Some(&Ok(())));
    assert_eq!(sim.core.stats(sim.now).queued, 2);
}

#[test]
fn each_flush_error_says_what_happened_and_that_events_stay_stored() {
    let cases = [
        (FlushError::Offline, "offline"),
        (
            FlushError::SendFailed {
                detail: "the server answered 503".into(),
                retry_at: 1_234,
            },
            "the server answered 503; events stay stored and are retried at 1234",
        ),
        (FlushError::BackingOff { retry_at: 1_234 }, "until 1234"),
        (
            FlushError::SenderSilent { waited_ms: 33_000 },
            "within 33000 ms",
        ),
    ];
    for (error, says) in cases {
        let text = error.to_string();
        assert!(text.starts_with("failed to flush: "), "{text}");
        assert!(text.contains(says), "{text}");
        assert!(text.contains("events stay stored"), "{text}");
    }
}

// ---- a flush hint -------------------------------------------------------------------

#[test]
fn a_flush_hint_sends_without_waiting_for_the_interval() {
    let mut sim = Sim::with_defaults();
    sim.log();
    sim.core.handle_flush_hint(sim.now);
    sim.pump();
    assert_eq!(sim.sent.len(), 1);
}

#[test]
fn a_hint_at_the_moment_the_backoff_ends_sends_without_announcing_it() {
    let mut sim = Sim::with_defaults();
    sim.log();
    sim.advance(3_000);
    sim.answer(SendOutcome::status(503));
    let retry_at = sim.core.stats(sim.now).retry_at.expect("backing off");
    sim.now = retry_at; // the hint comes before the timer fires
    sim.remembered_backoff = None;
    sim.core.handle_flush_hint(sim.now);
    sim.pump();
    assert_eq!(sim.remembered_backoff, None, "the backoff is over");
    assert_eq!(sim.sent.len(), 2);
}

// ---- online and offline -------------------------------------------------------------

#[test]
fn offline_sends_nothing_and_online_flushes() {
    let mut sim = Sim::with_defaults();
    sim.core.handle_online(sim.now, false);
    sim.log_many(60);
    sim.advance(60_000);
    assert!(sim.sent.is_empty());
    let waiter = sim.flush();
    assert_eq!(sim.settled(waiter), Some(&Err(FlushError::Offline)));
    sim.core.handle_online(sim.now, true);
    sim.pump();
    assert_eq!(sim.sent.len(), 1);
}

#[test]
fn being_told_online_while_online_changes_nothing() {
    let mut sim = Sim::with_defaults();
    sim.core.handle_online(sim.now, true);
    sim.log();
    sim.pump();
    assert!(sim.sent.is_empty(), "only a change to online flushes");
}

#[test]
fn going_online_cuts_a_backoff_short() {
    let mut sim = Sim::with_defaults();
    sim.log();
    sim.advance(3_000);
    sim.answer(SendOutcome::NetworkError("offline".into()));
    sim.core.handle_online(sim.now, false);
    sim.advance(100);
    sim.core.handle_online(sim.now, true);
    sim.pump();
    assert_eq!(sim.sent.len(), 2);
}

#[test]
fn going_offline_settles_the_waiting_flushes_with_offline() {
    let mut sim = Sim::with_defaults();
    sim.log();
    let waiter = sim.flush();
    assert_eq!(sim.settled(waiter), None, "its send is out");
    sim.core.handle_online(sim.now, true); // no change: it keeps waiting
    sim.pump();
    assert_eq!(sim.settled(waiter), None);
    sim.core.handle_online(sim.now, false);
    sim.pump();
    assert_eq!(sim.settled(waiter), Some(&Err(FlushError::Offline)));
}
