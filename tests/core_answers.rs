//! What each answer of the server does, one named test per decision: a 2xx deletes what
//! was sent, a failure keeps it, a 413 splits the batch, a 400 or 422 bisects to the poison
//! event, and an endpoint that refuses everything keeps every event and waits the cap.
#![cfg(not(target_arch = "wasm32"))]

mod sim;

use evbuf::core::{wire, Action, Config, Core, DropReason, Report, SendOutcome, StoredEvent};
use sim::{actions, batch_ids, flushed, status, Sim, DEVICE, T0};

// ---- 2xx and failures ---------------------------------------------------------------

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

// ---- 413: too large -----------------------------------------------------------------

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

// ---- 400 and 422: refused content ---------------------------------------------------

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
                    status: refused,
                } if *r == reason && dropped == &ids[..1] => {
                    assert_eq!(*refused, Some(status), "the drop names the answer");
                    Some(detail.clone())
                }
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

// ---- during a search ----------------------------------------------------------------

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

// ---- misconfigured endpoints --------------------------------------------------------

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
