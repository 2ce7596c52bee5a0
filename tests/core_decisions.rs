//! One named test per decision of the delivery core, on a simulated clock and collector.
#![cfg(not(target_arch = "wasm32"))]

mod sim;

use evbuf::core::{
    Action, Config, Core, DropReason, FlushError, LogError, Report, SendOutcome, StoredEvent,
};
use sim::{batch_ids, Sim};

fn status(status: u16) -> SendOutcome {
    SendOutcome::status(status)
}

fn with_retry_after(status: u16, value: &str) -> SendOutcome {
    SendOutcome::Status {
        status,
        retry_after: Some(value.into()),
    }
}

// ---- storing -------------------------------------------------------------------

#[test]
fn logs_made_while_a_write_is_pending_go_to_storage_in_one_write() {
    let mut sim = Sim::with_defaults();
    sim.persist_at_once = false;
    sim.log_many(10);
    sim.complete_persist(); // the first log's write
    sim.complete_persist(); // the other nine together
    assert_eq!(sim.store.len(), 10);
    assert_eq!(sim.core.stats(sim.now).persisted, 10);
}

#[test]
fn events_are_not_sent_until_they_are_stored() {
    let mut sim = Sim::with_defaults();
    sim.persist_at_once = false;
    sim.log();
    sim.advance(10_000);
    assert!(sim.sent.is_empty());
    sim.complete_persist();
    sim.advance(3_000);
    assert_eq!(sim.sent.len(), 1);
}

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
fn an_invalid_payload_is_counted() {
    let mut sim = Sim::with_defaults();
    sim.core.handle_invalid_payload();
    assert_eq!(sim.core.stats(sim.now).dropped.invalid, 1);
}

// ---- when to send ----------------------------------------------------------------

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

// ---- acknowledgement ---------------------------------------------------------------

#[test]
fn a_2xx_deletes_exactly_the_sent_events() {
    // Loss bug (a): events logged while the request was in flight must survive it.
    let mut sim = Sim::with_defaults();
    let first = sim.log_many(5);
    sim.advance(3_000);
    let late = sim.log_many(3);
    sim.ok();
    assert_eq!(sim.stored_ids(), late.iter().cloned().collect());
    assert_eq!(sim.collector.distinct(), 5);
    assert!(first
        .iter()
        .all(|id| sim.collector.acknowledged.contains_key(id)));
    sim.advance(3_000);
    sim.ok();
    assert!(sim.store.is_empty());
    assert_eq!(sim.collector.distinct(), 8);
}

#[test]
fn a_failure_deletes_nothing() {
    let mut sim = Sim::with_defaults();
    let ids = sim.log_many(5);
    sim.advance(3_000);
    sim.answer(status(500));
    assert_eq!(sim.stored_ids(), ids.into_iter().collect());
    let stats = sim.core.stats(sim.now);
    assert_eq!(stats.failed_requests, 1);
    assert_eq!(stats.acknowledged, 0);
}

#[test]
fn events_left_by_an_earlier_page_go_out_with_the_next_flush() {
    let mut sim = Sim::with_defaults();
    let ids = sim.log_many(4);
    sim.crash_and_reload(false);
    assert_eq!(sim.core.stats(sim.now).loaded, 4);
    sim.advance(3_000);
    assert_eq!(batch_ids(&sim.sent[0]), ids);
    sim.ok();
    assert!(sim.store.is_empty());
}

#[test]
fn loading_a_key_already_known_is_ignored() {
    let mut sim = Sim::with_defaults();
    sim.log_many(3);
    let again = sim.store.load();
    sim.core.handle_loaded(sim.now, again);
    assert_eq!(sim.core.stats(sim.now).queued, 3);
}

// ---- outcomes by status ----------------------------------------------------------

#[test]
fn retry_after_in_seconds_is_obeyed_on_429_and_503() {
    for code in [429, 503] {
        let mut sim = Sim::with_defaults();
        sim.log();
        sim.advance(3_000);
        sim.answer(with_retry_after(code, "20"));
        assert_eq!(sim.core.stats(sim.now).retry_at, Some(sim.now + 20_000));
        sim.advance(19_999);
        assert_eq!(sim.sent.len(), 1, "{code}: retried before Retry-After");
        sim.advance(1);
        assert_eq!(sim.sent.len(), 2, "{code}: not retried at Retry-After");
    }
}

#[test]
fn retry_after_as_an_http_date_is_obeyed() {
    let mut sim = Sim::with_defaults();
    sim.log();
    sim.advance(3_000);
    // 1_700_000_003_000 ms is Tue, 14 Nov 2023 22:13:23 GMT; ask for 10 s later.
    assert_eq!(sim.now, 1_700_000_003_000);
    sim.answer(with_retry_after(503, "Tue, 14 Nov 2023 22:13:33 GMT"));
    assert_eq!(sim.core.stats(sim.now).retry_at, Some(sim.now + 10_000));
}

#[test]
fn no_wait_is_shorter_than_the_50_ms_floor() {
    // A jitter of 0 and a `Retry-After: 0` both wait the floor, never a tight loop.
    let mut sim = Sim::with_defaults();
    sim.log();
    sim.advance(3_000);
    sim.answer_with_jitter(status(503), 0.0);
    assert_eq!(sim.core.stats(sim.now).retry_at, Some(sim.now + 50));
    sim.advance(49);
    assert_eq!(sim.sent.len(), 1, "retried before the floor");
    sim.advance(1);
    assert_eq!(sim.sent.len(), 2, "not retried at the floor");
    sim.answer(with_retry_after(429, "0"));
    assert_eq!(sim.core.stats(sim.now).retry_at, Some(sim.now + 50));
}

#[test]
fn retry_after_is_capped_by_retry_max() {
    let mut sim = Sim::with_defaults();
    sim.log();
    sim.advance(3_000);
    sim.answer(with_retry_after(429, "86400"));
    assert_eq!(sim.core.stats(sim.now).retry_at, Some(sim.now + 60_000));
}

#[test]
fn a_retry_max_below_the_floor_caps_retry_after_too() {
    // The cap wins over the 50 ms floor, for a server's wait as for a backoff.
    let mut sim = Sim::new(Config {
        retry_base_ms: 10,
        retry_max_ms: 20,
        ..Config::default()
    });
    sim.log();
    sim.advance(3_000);
    sim.answer(with_retry_after(429, "3"));
    assert_eq!(sim.core.stats(sim.now).retry_at, Some(sim.now + 20));
    sim.advance(20);
    sim.answer(with_retry_after(503, "0"));
    assert_eq!(sim.core.stats(sim.now).retry_at, Some(sim.now + 20));
}

#[test]
fn transient_failures_back_off_exponentially_with_full_jitter() {
    for outcome in [
        status(500),
        status(502),
        status(503),
        status(408),
        status(429),
        SendOutcome::NetworkError("connection refused".into()),
    ] {
        let mut sim = Sim::with_defaults();
        sim.log();
        sim.advance(3_000);
        let mut waits = Vec::new();
        for _ in 0..8 {
            sim.answer_with_jitter(outcome.clone(), 0.5);
            let at = sim.core.stats(sim.now).retry_at.expect("backing off");
            waits.push(at - sim.now);
            sim.advance(at - sim.now);
        }
        // Half of min(60 s, 1 s * 2^attempt).
        assert_eq!(
            waits,
            vec![500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000],
            "{outcome:?}"
        );
    }
}

#[test]
fn the_jitter_spans_the_whole_window() {
    let mut waits = Vec::new();
    for jitter in [0.0, 0.25, 0.999] {
        let mut sim = Sim::with_defaults();
        sim.log();
        sim.advance(3_000);
        sim.answer(status(503));
        sim.advance(2_000);
        sim.answer_with_jitter(status(503), jitter);
        waits.push(sim.core.stats(sim.now).retry_at.unwrap() - sim.now);
    }
    assert_eq!(waits, vec![50, 500, 1_998]);
}

#[test]
fn the_attempt_count_resets_after_a_success() {
    let mut sim = Sim::with_defaults();
    sim.log();
    sim.advance(3_000);
    for _ in 0..4 {
        sim.answer(status(500));
        sim.advance(60_000);
    }
    assert_eq!(sim.core.stats(sim.now).backoff_attempt, 4);
    sim.ok();
    assert_eq!(sim.core.stats(sim.now).backoff_attempt, 0);
    sim.log();
    sim.advance(3_000);
    sim.answer(status(500));
    assert_eq!(sim.core.stats(sim.now).retry_at, Some(sim.now + 500));
}

#[test]
fn a_reloaded_page_keeps_waiting_out_the_backoff() {
    let mut sim = Sim::with_defaults();
    sim.log();
    sim.advance(3_000);
    sim.answer(status(503));
    sim.advance(60_000);
    sim.answer(status(503)); // second failure: up to 2 s
    let (retry_at, attempt) = sim.remembered_backoff.expect("the backoff is persisted");
    assert_eq!(attempt, 2);
    sim.crash_and_reload(false);
    sim.advance(retry_at - sim.now - 1);
    assert_eq!(sim.sent.len(), 2, "the new page does not hammer the server");
    sim.advance(1);
    assert_eq!(sim.sent.len(), 3);
    sim.ok();
    assert_eq!(sim.remembered_backoff, None, "a success clears it");
}

#[test]
fn a_reloaded_page_with_a_full_buffer_stored_keeps_waiting_out_the_backoff() {
    // More stored than maxBufferSize: the snapshot alone would trigger an early flush if
    // the backoff were restored after it (the driver restores it first).
    let mut sim = Sim::with_defaults();
    for _ in 0..80 {
        sim.log();
    }
    assert_eq!(sim.sent.len(), 1, "the early flush at 50 events");
    sim.answer(status(503));
    let (retry_at, _) = sim.remembered_backoff.expect("the backoff is persisted");
    sim.crash_and_reload(false);
    assert_eq!(sim.core.stats(sim.now).loaded, 80);
    sim.advance(retry_at - sim.now - 1);
    assert_eq!(sim.sent.len(), 1, "the new page waits out the backoff");
    sim.advance(1);
    assert_eq!(sim.sent.len(), 2);
}

#[test]
fn a_backoff_restored_while_a_send_is_out_is_left_to_its_answer() {
    let mut sim = Sim::new(Config {
        max_buffer_size: 1,
        ..Config::default()
    });
    sim.log(); // sent at once
    sim.core
        .handle_backoff_restored(sim.now, Some((sim.now + 30_000, 3)));
    let stats = sim.core.stats(sim.now);
    assert_eq!((stats.retry_at, stats.backoff_attempt), (None, 0));
    sim.answer(status(503));
    assert_eq!(sim.core.stats(sim.now).backoff_attempt, 1);
    sim.advance(1_000);
    sim.ok();
    let stats = sim.core.stats(sim.now);
    assert_eq!(
        (stats.retry_at, stats.backoff_attempt),
        (None, 0),
        "a success ends it"
    );
}

#[test]
fn status_413_splits_the_batch_and_sends_both_halves() {
    let mut sim = Sim::with_defaults();
    let ids = sim.log_many(8);
    sim.advance(3_000);
    sim.answer(status(413));
    assert_eq!(batch_ids(sim.in_flight.as_ref().unwrap()), ids[..4]);
    sim.ok();
    assert_eq!(batch_ids(sim.in_flight.as_ref().unwrap()), ids[4..]);
    sim.ok();
    assert_eq!(sim.collector.distinct(), 8);
    assert!(sim.store.is_empty());
    assert_eq!(sim.core.stats(sim.now).dropped.total(), 0);
}

#[test]
fn a_lone_event_answered_413_is_dropped_counted_and_reported() {
    let mut sim = Sim::with_defaults();
    let ids = sim.log_many(2);
    sim.advance(3_000);
    sim.answer(status(413)); // [a, b] -> [a], [b]
    sim.answer(status(413)); // [a] alone: too large for this server
    sim.ok();
    assert_eq!(sim.core.stats(sim.now).dropped.oversize, 1);
    assert!(sim.dropped.contains(&ids[0]));
    assert!(sim.collector.acknowledged.contains_key(&ids[1]));
    assert!(sim.store.is_empty());
    assert!(sim.reports.iter().any(|r| matches!(
        r,
        Report::Dropped { reason: DropReason::Oversize, ids: dropped, .. } if dropped == &ids[..1]
    )));
}

/// 400 and 422 say the same: something in this content is refused. Both bisect.
const CONTENT_REFUSALS: [u16; 2] = [400, 422];

#[test]
fn status_400_and_422_bisect_to_drop_only_the_poison_event() {
    for code in CONTENT_REFUSALS {
        let mut sim = Sim::with_defaults();
        let ids = sim.log_many(8);
        let poison = ids[5].clone();
        sim.advance(3_000);
        let mut guard = 0;
        while let Some(batch) = sim.in_flight.clone() {
            let has_poison = batch_ids(&batch).contains(&poison);
            sim.answer(status(if has_poison { code } else { 200 }));
            guard += 1;
            assert!(guard < 20, "{code}: the bisection does not end");
        }
        assert_eq!(sim.collector.distinct(), 7, "{code}");
        assert!(!sim.collector.acknowledged.contains_key(&poison), "{code}");
        assert_eq!(sim.dropped, [poison].into_iter().collect(), "{code}");
        assert_eq!(sim.core.stats(sim.now).dropped.poison, 1, "{code}");
        assert!(sim.store.is_empty(), "{code}");
    }
}

#[test]
fn a_server_that_rejects_everything_with_400_or_422_loses_nothing() {
    for code in CONTENT_REFUSALS {
        let mut sim = Sim::with_defaults();
        let ids = sim.log_many(4);
        sim.advance(3_000);
        let mut guard = 0;
        while sim.in_flight.is_some() {
            sim.answer(status(code));
            guard += 1;
            assert!(guard < 20, "{code}: the bisection does not end");
        }
        assert!(guard > 1, "{code}: bisected before giving up");
        assert_eq!(sim.stored_ids(), ids.into_iter().collect(), "{code}");
        let stats = sim.core.stats(sim.now);
        assert_eq!(stats.dropped.total(), 0, "{code}");
        assert_eq!(
            stats.retry_at,
            Some(sim.now + 60_000),
            "{code}: waits the cap"
        );
        assert!(
            sim.reports
                .iter()
                .any(|r| matches!(r, Report::SendFailed { .. })
                    && r.to_string().contains(&code.to_string())),
            "{code}: the report names the status: {:?}",
            sim.reports
        );
    }
}

#[test]
fn misconfigured_endpoints_keep_the_events_wait_the_cap_and_report() {
    for code in [401, 403, 404, 405, 410] {
        let mut sim = Sim::with_defaults();
        let ids = sim.log_many(3);
        sim.advance(3_000);
        sim.answer(status(code));
        assert_eq!(sim.stored_ids(), ids.iter().cloned().collect(), "{code}");
        assert_eq!(sim.core.stats(sim.now).retry_at, Some(sim.now + 60_000));
        let report = sim.reports.last().unwrap();
        assert!(report.to_string().contains(&code.to_string()), "{report}");
        sim.advance(60_000);
        assert_eq!(sim.sent.len(), 2, "{code}: retried after the cap");
    }
}

// ---- limits ---------------------------------------------------------------------

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

// ---- flush, online, leadership ---------------------------------------------------

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
fn a_tab_that_is_not_the_sender_stores_but_does_not_send() {
    let mut sim = Sim::with_defaults();
    sim.core.handle_leadership(sim.now, false);
    sim.log_many(60);
    sim.advance(10_000);
    assert!(sim.sent.is_empty());
    assert_eq!(sim.store.len(), 60);
    sim.core.handle_leadership(sim.now, true);
    sim.pump();
    assert_eq!(sim.sent.len(), 1);
}

#[test]
fn a_flush_in_a_tab_that_does_not_send_asks_the_sender_and_waits_for_its_deletes() {
    let mut sim = Sim::with_defaults();
    sim.core.handle_leadership(sim.now, false);
    sim.log_many(3);
    let waiter = sim.flush();
    assert_eq!(sim.asked_sender, 1);
    assert_eq!(sim.settled(waiter), None);
    let keys: Vec<u64> = sim.store.load().iter().map(|e| e.key).collect();
    sim.core.handle_removed_elsewhere(sim.now, &keys);
    sim.pump();
    assert_eq!(sim.settled(waiter), Some(&Ok(())));
    assert_eq!(sim.core.stats(sim.now).queued, 0);
    assert_eq!(
        sim.core.stats(sim.now).acknowledged,
        0,
        "counted by the sender, not here"
    );
}

/// Executes the sending tab's actions as its driver would, against a collector that
/// answers 200 at once; returns whether there were any.
fn run_sender(
    sender: &mut Core,
    other: &mut Core,
    store: &mut evbuf::core::MemoryStore,
    delivered: &mut Vec<String>,
    now: u64,
) -> bool {
    let mut busy = false;
    while let Some(action) = sender.poll_action() {
        busy = true;
        match action {
            Action::Persist(events) => {
                let keys = store.put_all(&events);
                sender.handle_persisted(now, &keys);
            }
            Action::Send(batch) => {
                delivered.extend(batch_ids(&batch));
                sender.handle_send_result(now, batch.id, SendOutcome::status(200), 0.5);
            }
            Action::Delete(keys) => {
                store.delete(&keys);
                sender.handle_deleted(now, keys.len());
                // The "deleted" broadcast.
                other.handle_removed_elsewhere(now, &keys);
            }
            _ => {}
        }
    }
    busy
}

#[test]
fn two_tabs_sharing_storage_deliver_every_event_exactly_once() {
    use evbuf::core::MemoryStore;
    let config = Config::default();
    let mut store = MemoryStore::new(1);
    let mut sender = Core::new(config.clone(), sim::DEVICE.into(), "s").unwrap();
    let mut other = Core::new(config, sim::DEVICE.into(), "s").unwrap();
    other.handle_leadership(0, false);
    let mut delivered: Vec<String> = Vec::new();
    let mut now = 0;
    for round in 0..40u64 {
        now += 100;
        for (tab, core) in [(0, &mut sender), (1, &mut other)] {
            for i in 0..25 {
                core.handle_log(
                    now,
                    format!("t{tab}-r{round}-{i}"),
                    round * 25 + i,
                    "{}".into(),
                )
                .unwrap();
            }
        }
        // Execute both tabs' actions until quiet, as their drivers would.
        loop {
            let mut busy = false;
            while let Some(action) = other.poll_action() {
                busy = true;
                match action {
                    Action::Persist(events) => {
                        let keys = store.put_all(&events);
                        other.handle_persisted(now, &keys);
                        // The "stored" broadcast: the sender reads what the other wrote.
                        sender.handle_loaded(now, store.load());
                    }
                    Action::Send(_) | Action::SendUnload(_) => panic!("only the sender sends"),
                    _ => {}
                }
            }
            busy |= run_sender(&mut sender, &mut other, &mut store, &mut delivered, now);
            if !busy {
                break;
            }
        }
        sender.handle_timeout(now + 3_000);
    }
    sender.handle_flush(now, 1);
    run_sender(&mut sender, &mut other, &mut store, &mut delivered, now);
    let distinct: std::collections::BTreeSet<&String> = delivered.iter().collect();
    assert_eq!(distinct.len(), 2_000);
    assert_eq!(delivered.len(), 2_000, "no duplicates between tabs");
    assert_eq!(
        other.stats(now).queued,
        0,
        "the other tab forgot what the sender deleted"
    );
}

#[test]
fn a_new_sender_forgets_what_the_old_one_acknowledged() {
    let mut sim = Sim::with_defaults();
    sim.core.handle_leadership(sim.now, false);
    sim.log_many(5);
    // The old sender delivered and deleted keys 1-3; this tab missed the broadcast.
    sim.store.delete(&[1, 2, 3]);
    let snapshot = sim.store.load();
    sim.core.handle_snapshot(sim.now, snapshot, 6);
    sim.core.handle_leadership(sim.now, true);
    sim.pump();
    sim.core.handle_flush_hint(sim.now);
    sim.pump();
    let sent = sim.in_flight.as_ref().unwrap();
    assert_eq!(
        sent.keys,
        vec![4, 5],
        "never resends what another tab acknowledged"
    );
}

#[test]
fn a_flush_hint_sends_without_waiting_for_the_interval() {
    let mut sim = Sim::with_defaults();
    sim.log();
    sim.core.handle_flush_hint(sim.now);
    sim.pump();
    assert_eq!(sim.sent.len(), 1);
}

#[test]
fn a_failed_write_is_handed_to_storage_again() {
    let mut sim = Sim::with_defaults();
    sim.persist_at_once = false;
    let id = sim.log();
    sim.core
        .handle_persist_failed(sim.now, "QuotaExceededError".into());
    let mut actions = Vec::new();
    while let Some(action) = sim.core.poll_action() {
        actions.push(action);
    }
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::Persist(events) if events[0].id == id)),
        "{actions:?}"
    );
    assert!(actions.iter().any(|a| matches!(a,
        Action::Report(r @ Report::StorageFailed { .. }) if r.to_string().contains("QuotaExceeded"))));
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

// ---- requests that overlap: timeouts (hide and unload: core_unload.rs) ------------------------------

#[test]
fn a_send_that_never_answers_times_out_and_is_retried_with_backoff() {
    let mut sim = Sim::with_defaults();
    let ids = sim.log_many(5);
    sim.advance(3_000);
    sim.time_out(false, 0.5);
    let stats = sim.core.stats(sim.now);
    assert_eq!(stats.failed_requests, 1);
    assert_eq!(
        stats.retry_at,
        Some(sim.now + 500),
        "half of the first bound"
    );
    assert_eq!(sim.store.len(), 5, "nothing deleted");
    assert!(sim
        .reports
        .iter()
        .any(|r| r.to_string().contains("TimeoutError")));
    sim.advance(500);
    sim.ok();
    assert!(ids.iter().all(|id| sim.collector.acknowledged[id] == 1));
}

#[test]
fn a_send_delivered_but_timed_out_is_the_only_way_to_a_duplicate() {
    let mut sim = Sim::with_defaults();
    sim.log_many(5);
    sim.advance(3_000);
    sim.time_out(true, 0.5);
    sim.advance(60_000);
    sim.ok();
    assert_eq!(sim.collector.duplicates(), 5);
    assert!(sim.store.is_empty());
}

// ---- answers about content: 413 and 400 -----------------------------------------

#[test]
fn status_413_on_everything_keeps_every_event_and_waits_the_cap() {
    let mut sim = Sim::with_defaults();
    sim.log_many(8);
    sim.advance(3_000);
    let mut rounds = 0;
    while sim.in_flight.is_some() {
        sim.answer(status(413));
        rounds += 1;
        assert!(rounds < 100);
    }
    let stats = sim.core.stats(sim.now);
    assert_eq!(
        stats.dropped.total(),
        0,
        "a misconfigured endpoint burns no data"
    );
    assert_eq!(sim.store.len(), 8);
    assert_eq!(stats.retry_at, Some(sim.now + sim.config.retry_max_ms));
}

// ---- tabs -------------------------------------------------------------------------

#[test]
fn a_follower_flush_settles_with_the_senders_backoff() {
    let mut sim = Sim::with_defaults();
    sim.core.handle_leadership(sim.now, false);
    sim.log();
    let waiter = sim.flush();
    assert_eq!(sim.asked_sender, 1);
    assert!(sim.settled(waiter).is_none());
    sim.core.handle_sender_backing_off(sim.now, sim.now + 8_000);
    sim.pump();
    assert_eq!(
        sim.settled(waiter),
        Some(&Err(FlushError::BackingOff {
            retry_at: sim.now + 8_000
        }))
    );
}

#[test]
fn a_follower_flush_gives_up_when_the_sender_stays_silent() {
    let mut sim = Sim::with_defaults();
    sim.core.handle_leadership(sim.now, false);
    sim.log();
    let waiter = sim.flush();
    let patience = sim.config.send_timeout_ms + sim.config.flush_interval_ms;
    sim.advance(patience - 1);
    assert!(sim.settled(waiter).is_none());
    sim.advance(1);
    assert!(matches!(
        sim.settled(waiter),
        Some(Err(FlushError::SenderSilent { .. }))
    ));
}

#[test]
fn a_sender_asked_to_flush_while_backing_off_announces_its_backoff() {
    let mut sim = Sim::with_defaults();
    sim.log();
    sim.advance(3_000);
    sim.answer(status(503));
    let remembered = sim.remembered_backoff;
    sim.remembered_backoff = None;
    sim.core.handle_flush_hint(sim.now);
    sim.pump();
    assert_eq!(sim.remembered_backoff, remembered);
}

#[test]
fn a_tab_taking_over_drops_a_backoff_the_last_sender_ended() {
    let mut sim = Sim::with_defaults();
    sim.core.handle_leadership(sim.now, false);
    // Read as the page started, while the old sender was backing off.
    sim.core
        .handle_backoff_restored(sim.now, Some((sim.now + 60_000, 4)));
    sim.log();
    sim.advance(5_000);
    // The old sender recovered and closed; this tab takes over and reads storage again.
    sim.core.handle_backoff_restored(sim.now, None);
    sim.core.handle_leadership(sim.now, true);
    sim.pump();
    let stats = sim.core.stats(sim.now);
    assert_eq!((stats.retry_at, stats.backoff_attempt), (None, 0));
    assert_eq!(sim.sent.len(), 1, "sends at once: its interval is past");
}

/// A tab that does not send, whose storage failed and keeps events in memory from key 1,000.
fn follower_in_memory() -> Sim {
    let mut follower = Sim::with_defaults();
    follower.core.handle_leadership(follower.now, false);
    follower.core.handle_memory_fallback(follower.now, 1_000);
    follower.store = evbuf::core::MemoryStore::new(1_000);
    follower
}

#[test]
fn a_follower_in_memory_hands_its_events_to_the_sender() {
    let mut sender = Sim::with_defaults();
    let mut follower = follower_in_memory();
    let ids = follower.log_many(5);
    let lines: Vec<String> = follower.handed.drain(..).flatten().collect();
    assert_eq!(lines.len(), 5, "offered to the sender as they are stored");
    sender.core.handle_adopt(sender.now, "tab-2".into(), &lines);
    sender.pump();
    let (tab, keys) = sender.confirmed.pop().expect("confirmed once stored");
    assert_eq!(tab, "tab-2");
    assert_eq!(keys, (1_000..1_005).collect::<Vec<_>>());
    follower.core.handle_handed_over(follower.now, &keys);
    follower.pump();
    assert!(follower.store.is_empty());
    assert_eq!(follower.core.stats(follower.now).handed_over, 5);
    let stored = sender.store.load();
    let follower_ts = follower.now;
    assert!(
        stored.iter().all(|e| e.ts == follower_ts),
        "timestamps kept"
    );
    sender.advance(3_000);
    sender.ok();
    assert!(ids.iter().all(|id| sender.collector.acknowledged[id] == 1));
}

#[test]
fn a_sender_in_memory_steps_down_while_another_tab_can_send() {
    let mut sim = Sim::with_defaults();
    sim.core.handle_other_tabs(sim.now, true);
    sim.log();
    sim.core.handle_memory_fallback(sim.now, 1_000);
    sim.pump();
    assert_eq!(sim.stepped_down, 1);
    assert!(!sim.core.stats(sim.now).leader);
    // The last tab keeps sending from memory.
    let mut alone = Sim::with_defaults();
    alone.core.handle_memory_fallback(alone.now, 1_000);
    alone.pump();
    assert_eq!(alone.stepped_down, 0);
    assert!(alone.core.stats(alone.now).leader);
}

#[test]
fn a_follower_in_memory_offers_again_to_a_new_sender() {
    let mut follower = follower_in_memory();
    follower.log_many(3);
    follower.handed.clear(); // the sender closed before storing them
    follower.core.handle_new_sender();
    follower.pump();
    assert_eq!(follower.handed.len(), 1);
    assert_eq!(follower.handed[0].len(), 3, "all in one offer");
}

#[test]
fn another_tabs_delete_never_hits_an_event_held_in_memory_under_the_same_key() {
    let mut follower = follower_in_memory();
    follower.log_many(3);
    // The sender acknowledged IndexedDB events 1000..1002 that other tabs wrote.
    follower
        .core
        .handle_removed_elsewhere(follower.now, &[1_000, 1_001, 1_002]);
    follower.pump();
    assert_eq!(follower.core.stats(follower.now).queued, 3);
    assert_eq!(follower.store.len(), 3);
}

#[test]
fn no_send_starts_while_an_acknowledged_batch_is_still_stored() {
    let mut sim = Sim::with_defaults();
    sim.persist_at_once = false;
    sim.log_many(150);
    sim.complete_persist(); // the first event
    sim.complete_persist(); // the other 149: a full batch goes out at once
    assert_eq!(sim.sent.len(), 1);
    sim.log(); // a write starts: the delete of the next acknowledgement waits for it
    sim.ok();
    assert_eq!(sim.pending_deletes.len(), 100);
    sim.advance(10_000);
    assert_eq!(
        sim.sent.len(),
        1,
        "a kill now would resend one batch, not two"
    );
    sim.complete_persist(); // the write takes the deletes with it
    assert!(sim.pending_deletes.is_empty());
    assert_eq!(sim.sent.len(), 2);
}
