//! Waiting before a retry, one named test per decision: exponential backoff with full
//! jitter, `Retry-After` in seconds or as a date, the 50 ms floor and the `retry.maxMs` cap,
//! sends that time out, and a backoff remembered over a reload.
#![cfg(not(target_arch = "wasm32"))]

mod sim;

use evbuf::core::{parse_retry_after, Action, Config, Core, SendOutcome};
use sim::{actions, flushed, status, stored, with_retry_after, Sim, DEVICE, T0};

// ---- Retry-After --------------------------------------------------------------------

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

// ---- backoff ------------------------------------------------------------------------

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

// ---- sends that time out ------------------------------------------------------------

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

// ---- a backoff remembered over a reload ---------------------------------------------

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
