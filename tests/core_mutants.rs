//! Decisions of the core that the mutation check (`cargo mutants`, see docs/mutants.md)
//! found untested: each test is named after the behaviour it pins down.
#![cfg(not(target_arch = "wasm32"))]

mod sim;

use evbuf::core::{
    parse_retry_after, wire, Action, Batch, Config, Core, DropReason, FlushError, LogError,
    MemoryStore, NewEvent, Report, SendOutcome, StoredEvent, MAX_TIMER_MS,
};
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
    assert!(
        big.body.len() > 4 * small.body.len(),
        "{} / {}",
        big.body.len(),
        small.body.len()
    );
    sim.unload.clear();
    // The page lives: the big post fails, the small one is still out.
    let failed = SendOutcome::NetworkError("keepalive failed".into());
    sim.core.handle_unload_result(sim.now, big.id, &failed);
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
    let core = Core::new(config.clone(), "d".into(), "s").unwrap();
    assert_eq!(core.config(), &config);
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
fn an_invalid_payload_counts_as_logged_and_dropped() {
    let mut sim = Sim::with_defaults();
    sim.core.handle_invalid_payload();
    sim.core.handle_invalid_payload();
    let stats = sim.core.stats(sim.now);
    assert_eq!(stats.logged, 2);
    assert_eq!(stats.dropped.invalid, 2);
}

// ---- loading and snapshots ----------------------------------------------------------

const T0: u64 = 1_700_000_000_000;

fn stored(key: u64) -> StoredEvent {
    StoredEvent {
        key,
        session: "s".into(),
        seq: key,
        id: format!("s{key}"),
        ts: T0,
        payload: "{}".into(),
    }
}

/// Loads `events` and flushes: the request that goes out.
fn flushed(core: &mut Core, events: Vec<StoredEvent>) -> Batch {
    core.handle_loaded(T0, events);
    core.handle_flush(T0, 1);
    actions(core)
        .into_iter()
        .find_map(|a| match a {
            Action::Send(batch) => Some(batch),
            _ => None,
        })
        .expect("a flush of loaded events sends them")
}

fn actions(core: &mut Core) -> Vec<Action> {
    std::iter::from_fn(|| core.poll_action()).collect()
}

#[test]
fn each_event_loaded_from_storage_is_counted_once() {
    let mut core = Core::new(Config::default(), DEVICE.into(), "s").unwrap();
    core.handle_loaded(T0, vec![stored(1), stored(2), stored(3)]);
    core.handle_loaded(T0, vec![stored(3), stored(4)]);
    assert_eq!(core.stats(T0).loaded, 4);
}

#[test]
fn a_snapshot_forgets_only_missing_keys_below_its_mark() {
    let mut core = Core::new(Config::default(), DEVICE.into(), "s").unwrap();
    core.handle_loaded(
        T0,
        vec![stored(1), stored(2), stored(3), stored(5), stored(6)],
    );
    actions(&mut core);
    // Taken when keys below 5 had been assigned: 2 is gone (another tab acknowledged it),
    // 5 was assigned after the read (it is not in it, but is not gone), 6 is read.
    core.handle_snapshot(T0, vec![stored(1), stored(3), stored(6)], 5);
    assert_eq!(core.queued_keys().collect::<Vec<_>>(), vec![1, 3, 5, 6]);
    assert_eq!(
        core.stats(T0).loaded,
        5,
        "keys already known are not loaded again"
    );
    // What is left goes out at once (an earlier page left it).
    assert!(
        actions(&mut core)
            .iter()
            .all(|action| matches!(action, Action::Send(_))),
        "forgotten, not deleted nor reported"
    );
}

// ---- a remembered backoff -------------------------------------------------------------

#[test]
fn a_remembered_backoff_that_ends_now_is_over_and_the_interval_decides() {
    let mut core = Core::new(Config::default(), DEVICE.into(), "s").unwrap();
    core.handle_loaded(T0, vec![stored(1)]);
    core.handle_backoff_restored(T0, Some((T0, 2)));
    assert!(
        !actions(&mut core)
            .iter()
            .any(|a| matches!(a, Action::Send(_))),
        "no send before the interval"
    );
    assert_eq!(core.stats(T0).retry_at, None);
    assert_eq!(core.poll_timeout(), Some(T0 + 3_000));
}

#[test]
fn a_remembered_backoff_is_never_waited_longer_than_the_cap_from_now() {
    let config = Config::default();
    let mut core = Core::new(config.clone(), DEVICE.into(), "s").unwrap();
    core.handle_loaded(T0, vec![stored(1)]);
    // A clock that moved back: the remembered moment is far in the future.
    core.handle_backoff_restored(T0, Some((T0 + 100 * config.retry_max_ms, 3)));
    let stats = core.stats(T0);
    assert_eq!(stats.retry_at, Some(T0 + config.retry_max_ms));
    assert_eq!(stats.backoff_attempt, 3);
    assert_eq!(core.poll_timeout(), Some(T0 + config.retry_max_ms));
}

// ---- flush and the backoff ------------------------------------------------------------

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
fn a_tab_that_stopped_sending_waits_for_the_sender_instead_of_its_own_old_backoff() {
    let mut sim = Sim::with_defaults();
    sim.log();
    sim.advance(3_000);
    sim.answer(SendOutcome::status(503));
    assert!(sim.core.stats(sim.now).retry_at.is_some());
    sim.core.handle_leadership(sim.now, false);
    sim.pump();
    let waiter = sim.flush();
    assert_eq!(sim.asked_sender, 1);
    assert_eq!(sim.settled(waiter), None, "it waits for the sender");
    let patience = sim.config.send_timeout_ms + sim.config.flush_interval_ms;
    sim.advance(patience);
    assert!(matches!(
        sim.settled(waiter),
        Some(Err(FlushError::SenderSilent { waited_ms })) if *waited_ms == patience
    ));
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
fn a_tab_that_stopped_sending_does_not_announce_its_old_backoff_on_a_hint() {
    let mut sim = Sim::with_defaults();
    sim.log();
    sim.advance(3_000);
    sim.answer(SendOutcome::status(503));
    sim.core.handle_leadership(sim.now, false);
    sim.pump();
    // Announcing it would overwrite what the new sender remembers.
    sim.remembered_backoff = None;
    sim.core.handle_flush_hint(sim.now);
    sim.pump();
    assert_eq!(sim.remembered_backoff, None);
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

// ---- online and offline ---------------------------------------------------------------

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

// ---- stats ----------------------------------------------------------------------------

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

// ---- when to send ------------------------------------------------------------------------

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

// ---- answers ----------------------------------------------------------------------------

#[test]
fn a_success_without_an_earlier_failure_writes_no_backoff() {
    let mut core = Core::new(Config::default(), DEVICE.into(), "s").unwrap();
    let batch = flushed(&mut core, vec![stored(1)]);
    core.handle_send_result(T0, batch.id, SendOutcome::status(200), 0.5);
    let after = actions(&mut core);
    assert!(
        !after
            .iter()
            .any(|a| matches!(a, Action::RememberBackoff(_))),
        "{after:?}"
    );
    assert!(after
        .iter()
        .any(|a| matches!(a, Action::Delete(keys) if keys == &[1])));
}

#[test]
fn an_event_over_this_pages_limit_answered_413_alone_is_dropped_at_once() {
    let config = Config {
        max_batch_bytes: 2_048,
        max_stored_bytes: 1_000_000,
        ..Config::default()
    };
    let mut core = Core::new(config, DEVICE.into(), "s").unwrap();
    // Stored under another configuration: larger than this page's batch limit.
    let big = StoredEvent {
        key: 1,
        session: "s".into(),
        seq: 1,
        id: "big".into(),
        ts: T0,
        payload: format!("\"{}\"", "x".repeat(5_000)),
    };
    let batch = flushed(&mut core, vec![big]);
    core.handle_send_result(T0, batch.id, SendOutcome::status(413), 0.5);
    let after = actions(&mut core);
    assert!(
        after.iter().any(|a| matches!(a,
            Action::Report(Report::Dropped { reason: DropReason::Oversize, ids, .. }) if ids == &["big"])),
        "{after:?}"
    );
    let stats = core.stats(T0);
    assert_eq!(stats.dropped.oversize, 1);
    assert_eq!(
        stats.retry_at, None,
        "no server will take it: nothing to wait for"
    );
}

#[test]
fn an_event_exactly_at_this_pages_limit_answered_413_alone_is_kept() {
    let config = Config::default();
    let mut core = Core::new(config.clone(), DEVICE.into(), "s").unwrap();
    let room = config.max_batch_bytes
        - wire::envelope_len_bound(DEVICE)
        - wire::event_len("full", "s", 1, T0, "\"\"");
    let payload = format!("\"{}\"", "x".repeat(room));
    assert_eq!(
        wire::envelope_len_bound(DEVICE) + wire::event_len("full", "s", 1, T0, &payload),
        config.max_batch_bytes
    );
    let event = StoredEvent {
        key: 1,
        session: "s".into(),
        seq: 1,
        id: "full".into(),
        ts: T0,
        payload,
    };
    let batch = flushed(&mut core, vec![event]);
    // It fits this page's limit: a 413 for it alone, with nothing else accepted, says the
    // endpoint refuses everything, and nothing is dropped.
    core.handle_send_result(T0, batch.id, SendOutcome::status(413), 0.5);
    let stats = core.stats(T0);
    assert_eq!(stats.dropped.oversize, 0);
    assert_eq!(stats.queued, 1);
    assert_eq!(stats.retry_at, Some(T0 + config.retry_max_ms));
}

#[test]
fn the_report_of_a_drop_names_the_status_that_caused_it() {
    for (status, reason, says) in [
        (413, DropReason::Oversize, "413 Payload Too Large"),
        (400, DropReason::Poison, "400 Bad Request"),
        (422, DropReason::Poison, "422 Unprocessable Content"),
    ] {
        let mut sim = Sim::with_defaults();
        let ids = sim.log_many(2);
        sim.advance(3_000);
        sim.answer(SendOutcome::status(status)); // [a, b] -> [a], [b]
        sim.answer(SendOutcome::status(status)); // [a] alone
        sim.ok(); // [b]: the server works, so [a] is refused for itself
        let detail = sim
            .reports
            .iter()
            .find_map(|r| match r {
                Report::Dropped {
                    reason: r,
                    ids: dropped,
                    detail,
                } if *r == reason && dropped == &ids[..1] => Some(detail.clone()),
                _ => None,
            })
            .expect("the drop is reported");
        assert!(detail.contains(says), "{status}: {detail}");
    }
}

#[test]
fn an_endpoint_refusing_everything_is_reported_with_the_status_it_answered() {
    for status in [400, 413, 422] {
        let mut sim = Sim::with_defaults();
        sim.log_many(4);
        sim.advance(3_000);
        while sim.in_flight.is_some() {
            sim.answer(SendOutcome::status(status));
        }
        match sim.reports.last() {
            Some(Report::SendFailed {
                outcome, detail, ..
            }) => {
                assert_eq!(outcome, &SendOutcome::status(status));
                assert!(detail.contains(&status.to_string()), "{detail}");
            }
            other => panic!("{status}: {other:?}"),
        }
    }
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

// ---- the queue's accounting ------------------------------------------------------------

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

// ---- options ----------------------------------------------------------------------------

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

/// A stored event whose wire encoding is exactly `len` bytes.
fn stored_of_len(key: u64, len: usize) -> StoredEvent {
    let id = format!("s{key}");
    let pad = len - wire::event_len(&id, "s", key, T0, "\"\"");
    StoredEvent {
        key,
        session: "s".into(),
        seq: key,
        payload: format!("\"{}\"", "x".repeat(pad)),
        id,
        ts: T0,
    }
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

// ---- 413 and 400 searches ------------------------------------------------------------------

#[test]
fn a_piece_that_fails_for_a_transient_reason_goes_again_before_the_other_half() {
    let mut sim = Sim::with_defaults();
    sim.log_many(4);
    sim.advance(3_000);
    let all = sim.answer(SendOutcome::status(413)).keys; // -> [a, b], [c, d]
    let first = sim.answer(SendOutcome::status(503)).keys;
    assert_eq!(first, all[..2]);
    sim.advance(60_000);
    let again = sim.ok().keys;
    assert_eq!(again, first, "the failed piece keeps its place");
    let second = sim.ok().keys;
    assert_eq!(second, all[2..]);
}

#[test]
fn a_hide_during_a_search_does_not_post_an_event_refused_alone() {
    let mut sim = Sim::with_defaults();
    sim.log_many(4);
    sim.advance(3_000);
    let all = sim.answer(SendOutcome::status(413)).keys; // -> [a, b], [c, d]
    sim.answer(SendOutcome::status(413)); // [a, b] -> [a], [b]
    let alone = sim.answer(SendOutcome::status(413)).keys; // [a] refused alone
    assert_eq!(alone, all[..1]);
    assert_eq!(
        sim.in_flight.as_ref().unwrap().keys,
        all[1..2],
        "[b] is out"
    );
    assert_eq!(sim.post_on_hide(), 1);
    assert_eq!(sim.unload[0].keys, all[2..], "[c, d], not [a]");
}

// ---- stats ----------------------------------------------------------------------------------

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

// ---- answers outside 2xx-5xx and Retry-After dates ------------------------------------------

#[test]
fn an_unexpected_1xx_3xx_or_6xx_answer_backs_off_like_a_transient_failure() {
    for status in [101, 302, 600] {
        let mut sim = Sim::with_defaults();
        sim.log();
        sim.advance(3_000);
        sim.answer_with_jitter(SendOutcome::status(status), 0.5);
        // The first backoff is up to 1 s (jitter 0.5: 500 ms), not the 60 s cap of a 4xx.
        assert_eq!(
            sim.core.stats(sim.now).retry_at,
            Some(sim.now + 500),
            "{status}"
        );
    }
}

#[test]
fn retry_after_dates_are_read_in_every_month() {
    // 2024-01-01T00:00:00Z, and the day of the year each month of 2024 starts on.
    let new_year = 1_704_067_200_000u64;
    let months = [
        ("Jan", 0),
        ("Feb", 31),
        ("Mar", 60),
        ("Apr", 91),
        ("May", 121),
        ("Jun", 152),
        ("Jul", 182),
        ("Aug", 213),
        ("Sep", 244),
        ("Oct", 274),
        ("Nov", 305),
        ("Dec", 335),
    ];
    for (month, day_of_year) in months {
        let date = format!("Mon, 01 {month} 2024 00:00:00 GMT");
        assert_eq!(
            parse_retry_after(&date, 0),
            Some(new_year + day_of_year * 86_400_000),
            "{date}"
        );
    }
}

#[test]
fn retry_after_dates_with_a_field_out_of_range_are_ignored() {
    let at = |date: &str| parse_retry_after(date, 0);
    assert_eq!(
        at("Sun, 31 Dec 2023 23:59:60 GMT"),
        Some(1_704_067_200_000),
        "a leap second"
    );
    for bad in [
        "Sun, 31 Dec 2023 23:59:59 UTC",
        "Sun, 32 Dec 2023 23:59:59 GMT",
        "Sun, 00 Dec 2023 23:59:59 GMT",
        "Sun, 31 Dec 2023 24:59:59 GMT",
        "Sun, 31 Dec 2023 23:60:59 GMT",
        "Sun, 31 Dec 2023 23:59:61 GMT",
    ] {
        assert_eq!(at(bad), None, "{bad}");
    }
}

// ---- the wire ---------------------------------------------------------------------------------

#[test]
fn the_length_of_an_event_is_exact_for_every_kind_of_character() {
    for id in ["a b", "\u{1}", "x\u{1f}y", "tab\there", "é€😀", "\"\\"] {
        let mut out = String::new();
        wire::push_event(&mut out, id, id, 7, T0, "{}");
        assert_eq!(out.len(), wire::event_len(id, id, 7, T0, "{}"), "{out}");
    }
    let mut out = String::new();
    wire::push_json_string(&mut out, " \u{1f}\u{7f}");
    assert_eq!(
        out, "\" \\u001f\u{7f}\"",
        "only controls below 0x20 are escaped"
    );
}

#[test]
fn the_bound_of_an_envelope_is_its_largest_length() {
    for device in [DEVICE, "dev\"ice\u{1}"] {
        let empty = wire::body(u64::MAX, device, std::iter::empty());
        assert_eq!(wire::envelope_len_bound(device), empty.len(), "{empty}");
    }
}

// ---- tabs -------------------------------------------------------------------------------------

#[test]
fn only_a_tab_that_does_not_send_settles_its_flushes_with_the_senders_backoff() {
    // The sender itself ignores the announcement (it is its own).
    let mut sender = Sim::with_defaults();
    sender.log();
    let waiter = sender.flush();
    sender
        .core
        .handle_sender_backing_off(sender.now, sender.now + 5_000);
    sender.pump();
    assert_eq!(sender.settled(waiter), None);
    // A follower ignores a backoff that has already ended, even at this very moment.
    let mut follower = Sim::with_defaults();
    follower.core.handle_leadership(follower.now, false);
    follower.log();
    let waiter = follower.flush();
    for retry_at in [follower.now - 1, follower.now] {
        follower
            .core
            .handle_sender_backing_off(follower.now, retry_at);
        follower.pump();
        assert_eq!(follower.settled(waiter), None, "{retry_at}");
    }
    follower
        .core
        .handle_sender_backing_off(follower.now, follower.now + 1);
    follower.pump();
    assert_eq!(
        follower.settled(waiter),
        Some(&Err(FlushError::BackingOff {
            retry_at: follower.now + 1
        }))
    );
}

/// A tab that does not send, with a flush waiting and a backoff read from storage that
/// ends `ends_in` ms from now.
fn follower_waiting_with_backoff(ends_in: u64) -> (Sim, u64) {
    let mut sim = Sim::with_defaults();
    sim.core.handle_leadership(sim.now, false);
    sim.log();
    let waiter = sim.flush();
    sim.core
        .handle_backoff_restored(sim.now, Some((sim.now + ends_in, 1)));
    sim.pump();
    assert_eq!(sim.settled(waiter), None);
    (sim, waiter)
}

#[test]
fn a_tab_becoming_the_sender_while_backing_off_settles_waiting_flushes_with_the_backoff() {
    let (mut sim, waiter) = follower_waiting_with_backoff(5_000);
    let retry_at = sim.now + 5_000;
    sim.core.handle_leadership(sim.now, false); // told again: still not the sender
    sim.pump();
    assert_eq!(sim.settled(waiter), None);
    sim.core.handle_leadership(sim.now, true);
    sim.pump();
    assert_eq!(
        sim.settled(waiter),
        Some(&Err(FlushError::BackingOff { retry_at }))
    );
    assert!(sim.sent.is_empty());
}

#[test]
fn a_tab_becoming_the_sender_as_the_backoff_ends_sends_for_the_waiting_flush() {
    let (mut sim, waiter) = follower_waiting_with_backoff(5_000);
    sim.now += 5_000;
    sim.core.handle_leadership(sim.now, true);
    sim.pump();
    assert_eq!(sim.settled(waiter), None);
    assert_eq!(sim.sent.len(), 1);
    sim.ok();
    assert_eq!(sim.settled(waiter), Some(&Ok(())));
}

#[test]
fn a_flush_in_the_sender_waits_for_the_events_it_adopted() {
    let mut follower = follower_in_memory();
    follower.log_many(2);
    let lines: Vec<String> = follower.handed.drain(..).flatten().collect();
    let mut sender = Sim::with_defaults();
    sender.core.handle_online(sender.now, false); // the adopted events stay queued
    sender.core.handle_adopt(sender.now, "tab-2".into(), &lines);
    sender.pump();
    assert_eq!(sender.core.stats(sender.now).queued, 2);
    sender.core.handle_online(sender.now, true);
    sender.pump();
    let waiter = sender.flush();
    assert_eq!(sender.settled(waiter), None);
    sender.advance(3_000);
    while sender.in_flight.is_some() {
        sender.ok();
    }
    assert_eq!(sender.settled(waiter), Some(&Ok(())));
}

fn follower_in_memory() -> Sim {
    let mut follower = Sim::with_defaults();
    follower.core.handle_leadership(follower.now, false);
    follower.core.handle_memory_fallback(follower.now, 1_000);
    follower.store = MemoryStore::new(1_000);
    follower
}

/// A tab that does not send, with events 1 and 2 in IndexedDB and 1000 and 1001 in
/// memory (its storage failed in between).
fn follower_with_stored_and_memory_events() -> Sim {
    let mut follower = Sim::with_defaults();
    follower.core.handle_leadership(follower.now, false);
    follower.log_many(2);
    follower.core.handle_memory_fallback(follower.now, 1_000);
    follower.store = MemoryStore::new(1_000);
    follower.log_many(2);
    follower.handed.clear();
    assert_eq!(
        follower.core.queued_keys().collect::<Vec<_>>(),
        vec![1, 2, 1_000, 1_001]
    );
    follower
}

#[test]
fn a_follower_offers_a_new_sender_only_its_memory_events() {
    let mut follower = follower_with_stored_and_memory_events();
    follower.core.handle_new_sender();
    follower.pump();
    let offered: Vec<u64> = follower
        .handed
        .concat()
        .iter()
        .map(|line| wire::parse_keyed(line).unwrap().0)
        .collect();
    assert_eq!(offered, vec![1_000, 1_001], "1 and 2 are in IndexedDB");
}

#[test]
fn a_handover_confirmation_never_forgets_an_event_stored_in_indexeddb() {
    let mut follower = follower_with_stored_and_memory_events();
    follower.core.handle_handed_over(follower.now, &[1, 1_000]);
    follower.pump();
    assert_eq!(
        follower.core.queued_keys().collect::<Vec<_>>(),
        vec![1, 2, 1_001]
    );
    assert_eq!(follower.core.stats(follower.now).handed_over, 1);
}

// ---- names and messages -------------------------------------------------------------------

#[test]
fn a_memory_store_hands_out_keys_from_its_first_key_on() {
    let mut store = MemoryStore::new(1_000);
    assert_eq!(store.next_key(), 1_000);
    let new = |ticket| NewEvent {
        ticket,
        id: format!("e{ticket}"),
        session: "s".into(),
        seq: ticket,
        ts: T0,
        payload: "{}".into(),
    };
    assert_eq!(store.put_all(&[new(1), new(2)]), vec![1_000, 1_001]);
    assert_eq!(store.next_key(), 1_002);
    assert_eq!(MemoryStore::new(0).next_key(), 1, "keys start at 1");
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
    };
    assert_eq!(
        report.to_string(),
        "dropped 2 event(s) (storageLimit): storage is full"
    );
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

#[test]
fn a_body_does_not_depend_on_how_much_its_iterator_says_it_holds() {
    let mut event = String::new();
    wire::push_event(&mut event, "s-7", "s", 7, T0, r#"{"type":"VIEW"}"#);
    let events = [event.as_str(), event.as_str()];
    let exact = wire::body(T0, DEVICE, events.iter().copied());
    // A filter knows no lower bound: its size hint says 0.
    let unknown = wire::body(T0, DEVICE, events.iter().copied().filter(|_| true));
    assert_eq!(unknown, exact);
    assert_eq!(
        wire::body(T0, DEVICE, std::iter::empty()),
        format!(r#"{{"sent_at":{T0},"device":"{DEVICE}","events":[]}}"#)
    );
}
