//! Issue 13's bounds on a reduced fleet (5,000 devices, a 2-minute outage), so that a
//! change to the backoff cannot bring the thundering herd back unnoticed. The full run
//! (100,000 devices, 10 minutes) is `cargo run --release --example fleet`.
//!
//! Slow in a debug build: `scripts/test.sh` runs it in release
//! (`cargo test --release --test fleet_bounds`), and the debug run skips it.
#![cfg(not(target_arch = "wasm32"))]

mod fleet;

use fleet::{missed_targets, run, Outage, Params, Policy, Report};

const DEVICES: usize = 5_000;

fn reduced(policy: Policy, outage: Outage, retry_after_s: Option<u64>, outage_s: u64) -> Params {
    let mut p = Params::new(DEVICES);
    p.policy = policy;
    p.outage = outage;
    p.retry_after_s = retry_after_s;
    p.steady_ms = 90_000;
    p.outage_ms = outage_s * 1000;
    p.after_ms = 120_000;
    p
}

/// Where a restart falls in the devices' retry cycles decides how many it resets at once;
/// these outage lengths put it at different points of a 90 s cycle (30 s hang + 60 s wait).
const RESTARTS_S: [u64; 4] = [120, 135, 150, 165];

fn describe(r: &Report) -> String {
    format!(
        "{} ({} s outage): peak {:.2}× C, outage load {:.0} req/s (steady {:.0}), drain {:?} ms",
        r.params.label(),
        r.params.outage_ms / 1000,
        r.peak_ratio(),
        r.outage_rate,
        r.steady_rate,
        r.drain_ms
    )
}

#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "slow in debug: scripts/test.sh runs it with --release"
)]
fn the_shipped_policy_keeps_the_bounds_after_an_outage() {
    let mut runs = vec![
        reduced(Policy::Shipped, Outage::Refuse, None, 120),
        reduced(Policy::Shipped, Outage::Refuse, Some(5), 120),
    ];
    runs.extend(RESTARTS_S.map(|s| reduced(Policy::Shipped, Outage::Hang, None, s)));
    for p in runs {
        let r = run(&p);
        let missed = missed_targets(&r);
        assert!(missed.is_empty(), "{}: {missed:?}", describe(&r));
        assert!(r.logged > 0 && r.delivered == r.logged, "{}", describe(&r));
    }
}

/// The bounds have teeth: the obvious worse policies break them in the same model.
#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "slow in debug: scripts/test.sh runs it with --release"
)]
fn a_herd_breaks_the_bounds() {
    // Without jitter the fleet stays in step: some restart resets most of it at once, and
    // it comes back as one wave, again and again.
    let herds: Vec<Report> = RESTARTS_S
        .iter()
        .map(|&s| run(&reduced(Policy::NoJitter, Outage::Hang, None, s)))
        .collect();
    assert!(
        herds.iter().any(|r| r.peak_ratio() > 3.0),
        "no jitter never stampeded: {:#?}",
        herds.iter().map(describe).collect::<Vec<_>>()
    );
    // Retrying every second hammers the dead server and then the recovering one.
    let hammer = run(&reduced(Policy::Fixed(1_000), Outage::Refuse, None, 120));
    assert!(
        !missed_targets(&hammer).is_empty() && hammer.outage_rate > hammer.steady_rate,
        "{}",
        describe(&hammer)
    );
}
