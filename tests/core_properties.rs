//! Property tests: random interleavings of logs, time, server answers, flushes, network
//! changes, leadership changes, crashes and reloads, checked against ARCHITECTURE.md's
//! invariants. The harness itself asserts "one send in flight", "batch limits" and "the
//! timer never re-arms in the past" on every step.
#![cfg(not(target_arch = "wasm32"))]

mod sim;

use evbuf::core::{
    backoff_bound_ms, Action, Config, Core, SendOutcome, StoredEvent, KEEPALIVE_BUDGET_BYTES,
    MAX_TIMER_MS, MIN_WAIT_MS,
};
use proptest::prelude::*;
use sim::Sim;

#[derive(Debug, Clone)]
enum Step {
    Log {
        size: usize,
    },
    Burst {
        n: usize,
    },
    Advance {
        ms: u64,
    },
    Answer {
        status: u16,
        retry_after: Option<String>,
        jitter: f64,
    },
    NetworkError {
        jitter: f64,
    },
    TimeOut {
        delivered: bool,
        jitter: f64,
    },
    Flush,
    Online(bool),
    Leader(bool),
    PersistLater(bool),
    CrashAndReload {
        delivered: bool,
    },
    Hide,
    Show,
    AnswerUnload {
        delivered: bool,
    },
    OtherTabs(bool),
}

fn status() -> impl Strategy<Value = u16> {
    prop_oneof![
        6 => Just(200),
        1 => Just(204),
        1 => Just(400),
        1 => Just(401),
        1 => Just(404),
        1 => Just(408),
        1 => Just(413),
        1 => Just(429),
        1 => Just(500),
        1 => Just(503),
        1 => 0u16..1000,
    ]
}

fn retry_after() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        3 => Just(None),
        1 => (0u64..200).prop_map(|s| Some(s.to_string())),
        1 => Just(Some("Tue, 14 Nov 2023 22:13:33 GMT".to_string())),
        1 => ".{0,12}".prop_map(Some),
    ]
}

fn jitter() -> impl Strategy<Value = f64> {
    prop_oneof![8 => 0.0f64..1.0, 1 => Just(f64::NAN), 1 => Just(7.5), 1 => Just(-1.0)]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        10 => (0usize..3_000).prop_map(|size| Step::Log { size }),
        2 => (1usize..150).prop_map(|n| Step::Burst { n }),
        6 => (0u64..20_000).prop_map(|ms| Step::Advance { ms }),
        8 => (status(), retry_after(), jitter())
            .prop_map(|(status, retry_after, jitter)| Step::Answer { status, retry_after, jitter }),
        1 => jitter().prop_map(|jitter| Step::NetworkError { jitter }),
        1 => (any::<bool>(), jitter()).prop_map(|(delivered, jitter)| Step::TimeOut { delivered, jitter }),
        2 => Just(Step::Flush),
        1 => any::<bool>().prop_map(Step::Online),
        1 => any::<bool>().prop_map(Step::Leader),
        1 => any::<bool>().prop_map(Step::PersistLater),
        1 => any::<bool>().prop_map(|delivered| Step::CrashAndReload { delivered }),
        2 => Just(Step::Hide),
        2 => Just(Step::Show),
        2 => any::<bool>().prop_map(|delivered| Step::AnswerUnload { delivered }),
        1 => any::<bool>().prop_map(Step::OtherTabs),
    ]
}

fn config() -> impl Strategy<Value = Config> {
    (1usize..60, 1usize..40, 2_048usize..20_000, 20usize..300).prop_map(
        |(max_buffer_size, max_batch_events, max_batch_bytes, max_stored_events)| Config {
            max_buffer_size,
            max_batch_events,
            max_batch_bytes,
            max_stored_events,
            max_stored_bytes: max_batch_bytes * 20,
            max_event_age_ms: 600_000,
            ..Config::default()
        },
    )
}

/// The largest whole number `init()` takes for an option (JS's `Number.MAX_SAFE_INTEGER`).
const MAX_OPTION: u64 = (1 << 53) - 1;

/// Any config `init()` accepts, edges included: tiny and huge times, one-event batches,
/// the smallest and largest batch bytes. Built valid (each option at or above the one it
/// must not undercut) rather than filtered, so that every edge comes up often.
fn any_config() -> impl Strategy<Value = Config> {
    fn ms() -> impl Strategy<Value = u64> {
        prop_oneof![
            0u64..60,
            60u64..200,
            200u64..100_000,
            Just(MAX_TIMER_MS),
            Just(MAX_OPTION / 2)
        ]
    }
    fn count() -> impl Strategy<Value = usize> {
        prop_oneof![1usize..4, 4usize..500, Just(MAX_OPTION as usize)]
    }
    let sizes = (
        count(),
        count(),
        1_024usize..=KEEPALIVE_BUDGET_BYTES,
        count(),
        count(),
    );
    let base = prop_oneof![1u64..50, 50u64..2_000];
    let times = (10u64..100_000, ms(), base, ms(), 100..=MAX_TIMER_MS);
    (sizes, times).prop_map(
        |(
            (max_buffer_size, max_batch_events, max_batch_bytes, max_stored_events, extra_bytes),
            (flush_interval_ms, extra_age, retry_base_ms, extra_retry, send_timeout_ms),
        )| Config {
            flush_interval_ms,
            max_buffer_size,
            max_batch_events,
            max_batch_bytes,
            max_stored_events,
            max_stored_bytes: max_batch_bytes.saturating_add(extra_bytes),
            max_event_age_ms: flush_interval_ms + extra_age,
            retry_base_ms,
            retry_max_ms: retry_base_ms + extra_retry,
            send_timeout_ms,
        },
    )
}

/// Applies one step.
fn apply(sim: &mut Sim, step: &Step) {
    match step {
        Step::Log { size } => {
            let _ = sim.log_sized(*size);
        }
        Step::Burst { n } => {
            for _ in 0..*n {
                let _ = sim.log_sized(100);
            }
        }
        Step::Advance { ms } => sim.advance(*ms),
        Step::Answer {
            status,
            retry_after,
            jitter,
        } => {
            if sim.in_flight.is_some() {
                let before = sim.now;
                sim.answer_with_jitter(
                    SendOutcome::Status {
                        status: *status,
                        retry_after: retry_after.clone(),
                    },
                    *jitter,
                );
                check_backoff(sim, before);
            }
        }
        Step::NetworkError { jitter } => {
            if sim.in_flight.is_some() {
                let before = sim.now;
                sim.answer_with_jitter(SendOutcome::NetworkError("reset".into()), *jitter);
                check_backoff(sim, before);
            }
        }
        Step::TimeOut { delivered, jitter } => {
            if sim.in_flight.is_some() {
                sim.time_out(*delivered, *jitter);
                check_backoff(sim, sim.now);
            }
        }
        Step::Flush => {
            sim.flush();
        }
        Step::Online(online) => {
            sim.core.handle_online(sim.now, *online);
            sim.pump();
        }
        Step::Leader(leader) => {
            sim.core.handle_leadership(sim.now, *leader);
            sim.pump();
        }
        Step::PersistLater(later) => {
            sim.persist_at_once = !*later;
            if !*later {
                sim.complete_persist_if_pending();
            }
        }
        Step::CrashAndReload { delivered } => sim.crash_and_reload(*delivered),
        Step::Hide => {
            sim.post_on_hide();
        }
        Step::Show => sim.core.handle_page_visible(),
        Step::AnswerUnload { delivered } => sim.answer_unload(*delivered, true),
        Step::OtherTabs(alive) => sim.core.handle_other_tabs(sim.now, *alive),
    }
}

/// Invariant 5: a wait is at least the floor and at most the cap.
fn check_backoff(sim: &Sim, now: u64) {
    if let Some(at) = sim.core.stats(now).retry_at {
        let wait = at - now;
        assert!(
            wait >= MIN_WAIT_MS.min(sim.config.retry_base_ms),
            "wait {wait}"
        );
        assert!(wait <= sim.config.retry_max_ms, "wait {wait} over the cap");
    }
}

/// Heals everything and runs until storage is empty.
fn drain(sim: &mut Sim) {
    sim.persist_at_once = true;
    sim.complete_persist_if_pending();
    sim.core.handle_online(sim.now, true);
    sim.core.handle_leadership(sim.now, true);
    sim.pump();
    sim.answer_unload(true, true);
    let mut rounds = 0;
    loop {
        if sim.in_flight.is_some() {
            sim.ok();
        } else if sim.store.is_empty() && sim.core.stats(sim.now).unpersisted == 0 {
            break;
        } else {
            // To the core's next deadline, however far a config puts it.
            let next = sim
                .core
                .poll_timeout()
                .map(|at| at.saturating_sub(sim.now).max(1));
            sim.advance(next.unwrap_or(sim.config.retry_max_ms));
        }
        rounds += 1;
        assert!(rounds < 10_000, "storage never drains");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// Invariants 1-5 over random interleavings, crashes included.
    #[test]
    fn no_event_disappears_without_a_counted_drop(config in config(), steps in prop::collection::vec(step(), 1..80)) {
        let mut sim = Sim::new(config);
        for step in &steps {
            apply(&mut sim, step);
        }
        drain(&mut sim);
        // 1. Every durable event reached the server or was reported dropped.
        for id in &sim.durable {
            prop_assert!(
                sim.collector.acknowledged.contains_key(id) || sim.dropped.contains(id),
                "event {id} vanished"
            );
        }
        // 2. Only durable events are reported dropped, and none the server acknowledged
        // with an answer the page heard: only one whose answer was lost may be both (it
        // was resent, and the resend was refused or outlived its age).
        for id in &sim.dropped {
            prop_assert!(sim.durable.contains(id), "event {id} dropped but never durable");
            prop_assert!(
                !sim.collector.acknowledged.contains_key(id) || sim.collector.answer_lost.contains(id),
                "event {id} was acknowledged and also reported dropped"
            );
        }
    }

    /// Invariant 6: a burst costs at most ceil(N / maxBatchEvents) + 1 requests.
    #[test]
    fn a_burst_costs_few_requests(n in 1usize..2_000, max_batch_events in 1usize..200, writes in 1usize..5) {
        let mut sim = Sim::new(Config { max_batch_events, max_buffer_size: max_batch_events, ..Config::default() });
        sim.persist_at_once = false;
        // The burst reaches storage in a few writes, as in a browser.
        let per_write = n.div_ceil(writes);
        let mut logged = 0;
        while logged < n {
            let chunk = per_write.min(n - logged);
            for _ in 0..chunk { sim.log(); }
            logged += chunk;
            sim.complete_persist();
        }
        sim.complete_persist_if_pending();
        drain(&mut sim);
        prop_assert_eq!(sim.collector.distinct(), n);
        let bound = n.div_ceil(max_batch_events) + 1;
        prop_assert!(sim.sent.len() <= bound, "{} requests for {n} events (bound {bound})", sim.sent.len());
    }

    /// Arbitrary inputs in any order never panic the core (a fuzz target in proptest form):
    /// unknown statuses, odd Retry-After values, jitter outside [0, 1), time going back,
    /// keys loaded twice or out of order.
    #[test]
    fn arbitrary_inputs_never_panic(ops in prop::collection::vec((0u8..9, any::<u64>(), any::<u16>(), ".{0,8}", any::<f64>()), 0..200)) {
        let mut core = Core::new(Config::default(), "d".into(), "s").unwrap();
        let mut in_flight: Option<u64> = None;
        let mut persisting = 0usize;
        let mut next_key = 1u64;
        for (op, n, status, text, jitter) in ops {
            let now = n % 10_000_000;
            match op {
                0 => { let _ = core.handle_log(now, text.clone(), n, format!("{:?}", text)); }
                1 => core.handle_timeout(now),
                2 => if let Some(id) = in_flight.take() {
                    core.handle_send_result(now, id, SendOutcome::Status { status, retry_after: Some(text) }, jitter);
                },
                3 => core.handle_flush(now, n),
                4 => core.handle_online(now, n % 2 == 0),
                5 => core.handle_leadership(now, n % 3 != 0),
                6 => core.handle_loaded(now, vec![StoredEvent { key: n % 50, id: text, session: "s".into(), seq: n, ts: now, payload: "1".into() }]),
                7 => if persisting > 0 {
                    let keys: Vec<u64> = (0..persisting as u64).map(|i| next_key + i).collect();
                    next_key += persisting as u64;
                    persisting = 0;
                    core.handle_persisted(now, &keys);
                },
                _ => if persisting > 0 {
                    persisting = 0;
                    core.handle_persist_failed(now, text);
                },
            }
            while let Some(action) = core.poll_action() {
                match action {
                    Action::Send(batch) => { assert!(in_flight.is_none()); in_flight = Some(batch.id); }
                    Action::Persist(events) => persisting = events.len(),
                    _ => {}
                }
            }
            let _ = core.poll_timeout();
            let _ = core.stats(now);
        }
    }

    /// Invariant 5, exhaustively over attempts: the bound doubles and is capped.
    #[test]
    fn backoff_bound_grows_and_is_capped(base in 1u64..10_000, extra in 0u64..1_000_000, attempt in 0u32..100) {
        let max = base + extra;
        let bound = backoff_bound_ms(base, max, attempt);
        prop_assert!(bound <= max);
        prop_assert!(bound >= base.min(max));
        prop_assert!(backoff_bound_ms(base, max, attempt + 1) >= bound);
    }
}

#[test]
fn crash_with_an_answer_lost_resends_and_the_server_dedups() {
    let mut sim = Sim::with_defaults();
    let ids = sim.log_many(5);
    sim.advance(3_000);
    sim.crash_and_reload(true);
    drain(&mut sim);
    for id in &ids {
        assert_eq!(
            sim.collector.acknowledged[id], 2,
            "sent again after the lost answer"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    /// No option value init() accepts and no server answer panics the core: random
    /// configs, edges included, through random steps and a drain.
    #[test]
    fn no_accepted_config_and_no_answer_panics(config in any_config(), steps in prop::collection::vec(step(), 1..40)) {
        let mut sim = Sim::new(config);
        for step in &steps {
            apply(&mut sim, step);
        }
        drain(&mut sim);
    }
}
