//! A fleet of browsers against one endpoint through a steady state, an outage and the
//! recovery (issue 13): prints the table and writes the picture of the README's "Fleet
//! behaviour" section.
//!
//! ```sh
//! cargo run --release --example fleet -- --devices 100000 --svg docs/fleet.svg
//! ```
//!
//! Options: `--devices N` (100000), `--seed S` (1), `--outage-min M` (10),
//! `--retry-after S` (the `Retry-After` seconds of the scenarios that send one: 5),
//! `--svg PATH` (write the picture), `--threads T` (scenarios run side by side: 2),
//! `--sweep-devices N` (the fleet of the restart sweep: a tenth of `--devices`; 0 skips it).
#[path = "../tests/fleet/mod.rs"]
mod fleet;

use std::fmt::Write as _;

use fleet::{Outage, Params, Policy, Report};

struct Args {
    devices: usize,
    seed: u64,
    outage_min: f64,
    retry_after_s: u64,
    svg: Option<String>,
    threads: usize,
    sweep_devices: Option<usize>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        devices: 100_000,
        seed: 1,
        outage_min: 10.0,
        retry_after_s: 5,
        svg: None,
        threads: 2,
        sweep_devices: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        let number = |v: String| v.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--devices" => args.devices = number(value()?)? as usize,
            "--seed" => args.seed = number(value()?)?,
            "--outage-min" => {
                let v = value()?;
                args.outage_min = v.parse().map_err(|e| format!("{flag}: {e}"))?;
            }
            "--retry-after" => args.retry_after_s = number(value()?)?,
            "--threads" => args.threads = number(value()?)?.max(1) as usize,
            "--svg" => args.svg = Some(value()?),
            "--sweep-devices" => args.sweep_devices = Some(number(value()?)? as usize),
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    Ok(args)
}

/// The scenarios of one run: what evbuf ships, then the obvious worse policies.
fn scenarios(args: &Args) -> Vec<Params> {
    let only = std::env::var("FLEET_ONLY").ok();
    let cases = [
        (Policy::Shipped, Outage::Refuse, false),
        (Policy::Shipped, Outage::Refuse, true),
        (Policy::Shipped, Outage::Hang, false),
        (Policy::NoJitter, Outage::Refuse, false),
        (Policy::NoJitter, Outage::Hang, false),
        (Policy::Fixed(5_000), Outage::Refuse, false),
    ];
    cases
        .into_iter()
        .enumerate()
        .filter(|(i, _)| only.as_ref().is_none_or(|o| o.split(',').any(|x| x == i.to_string())))
        .map(|(_, (policy, outage, hint))| {
            let mut p = Params::new(args.devices);
            p.seed = args.seed;
            p.outage_ms = (args.outage_min * 60_000.0) as u64;
            p.policy = policy;
            p.outage = outage;
            p.retry_after_s = hint.then_some(args.retry_after_s);
            p
        })
        .collect()
}

/// Where the restart that ends a no-answer outage falls in the devices' retry cycles
/// decides how many of them it resets at once: the same outage, ending up to 45 s later.
const SWEEP_S: [u64; 4] = [0, 15, 30, 45];

fn sweep(args: &Args, devices: usize) -> Vec<Params> {
    let mut all = Vec::new();
    for policy in [Policy::Shipped, Policy::NoJitter] {
        for extra in SWEEP_S {
            let mut p = Params::new(devices);
            p.seed = args.seed;
            p.outage_ms = (args.outage_min * 60_000.0) as u64 + extra * 1000;
            p.policy = policy;
            p.outage = Outage::Hang;
            all.push(p);
        }
    }
    all
}

fn sweep_table(reports: &[Report]) -> String {
    let mut out = String::new();
    out.push_str("| no-answer outage of | evbuf (shipped): peak ÷ C | drain | no jitter: peak ÷ C | drain |\n");
    out.push_str("|---|--:|--:|--:|--:|\n");
    let (shipped, no_jitter) = reports.split_at(reports.len() / 2);
    let drain = |r: &Report| r.drain_ms.map_or("not drained".into(), |d| secs(d as f64));
    for (a, b) in shipped.iter().zip(no_jitter) {
        let _ = writeln!(
            out,
            "| {} s | {:.2}× | {} | {:.2}× | {} |",
            a.params.outage_ms / 1000,
            a.peak_ratio(),
            drain(a),
            b.peak_ratio(),
            drain(b)
        );
    }
    out
}

/// Runs the scenarios on `threads` threads (each run is single-threaded and independent).
fn run_all(all: &[Params], threads: usize) -> Vec<Report> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let done = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..threads.min(all.len()) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(p) = all.get(i) else { break };
                let report = fleet::run(p);
                eprintln!("  ran {} ({} devices) in {}", p.label(), p.devices, run_time(&report));
                // A poisoned lock means another run panicked: that panic is the news.
                done.lock().expect("no run panicked").push((i, report));
            });
        }
    });
    let mut done = done.into_inner().expect("no run panicked");
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

fn run_time(r: &Report) -> String {
    let wall = secs(r.wall_ms as f64);
    match r.cpu_ms {
        Some(cpu) => format!("{} CPU ({wall} wall)", secs(cpu as f64)),
        None => format!("{wall} wall"),
    }
}

fn secs(ms: f64) -> String {
    format!("{:.1} s", ms / 1000.0)
}

fn table(reports: &[Report]) -> String {
    let mut out = String::new();
    out.push_str("| scenario | steady req/s | outage req/s | peak after recovery | peak ÷ C | backlog: events (requests) | drain | ideal drain | drain ÷ ideal | lost | duplicates | requests/event | run time |\n");
    out.push_str("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
    for r in reports {
        let drain = r.drain_ms.map_or("not drained".into(), |d| secs(d as f64));
        let ratio = r.drain_ratio().map_or("–".into(), |x| format!("{x:.1}×"));
        let _ = writeln!(
            out,
            "| {} | {:.0} | {:.0} | {} | **{:.2}×** | {} ({}) | {} | {} | {} | {} | {} | {:.3} | {} |",
            r.params.label(),
            r.steady_rate,
            r.outage_rate,
            r.peak_after,
            r.peak_ratio(),
            r.backlog_events,
            r.backlog_requests,
            drain,
            secs(r.ideal_drain_ms()),
            ratio,
            r.lost,
            r.duplicates,
            r.requests_per_event(),
            run_time(r),
        );
    }
    out
}

/// The targets of issue 13 (see `fleet::missed_targets`), for the shipped policy.
fn verdicts(reports: &[Report]) -> String {
    let mut out = String::new();
    for r in reports.iter().filter(|r| r.params.policy == Policy::Shipped) {
        let missed = fleet::missed_targets(r);
        let cpu = r.cpu_ms.unwrap_or(r.wall_ms as u64);
        let _ = writeln!(
            out,
            "{}: {}; run {} {} 60 s",
            r.params.label(),
            if missed.is_empty() { "targets met".into() } else { format!("MISSED {}", missed.join(", ")) },
            run_time(r),
            if cpu < 60_000 { "<" } else { "≥ (MISSED)" },
        );
    }
    out
}

const COLORS: [&str; 6] = ["#1b7837", "#2166ac", "#66bd63", "#d6604d", "#b2182b", "#8c510a"];

/// Offered requests/s per second for every scenario, the capacity, and the outage.
fn svg(reports: &[Report]) -> String {
    let (w, h) = (960.0, 460.0);
    let (left, right, top, bottom) = (70.0, 20.0, 20.0, 150.0);
    let (pw, ph) = (w - left - right, h - top - bottom);
    let first = &reports[0];
    let c = first.capacity as f64;
    let seconds = reports.iter().map(|r| r.offered.len()).max().unwrap_or(1) as f64;
    let peak = reports.iter().map(|r| r.offered.iter().copied().max().unwrap_or(0)).max();
    let y_max = (peak.unwrap_or(0) as f64).max(1.6 * c) * 1.05;
    let x = |s: f64| left + s / seconds * pw;
    let y = |v: f64| top + ph - v / y_max * ph;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let (o0, o1) = (first.outage_start as f64 / 1000.0, first.outage_end as f64 / 1000.0);
    let _ = writeln!(
        out,
        r##"<rect x="{:.1}" y="{top}" width="{:.1}" height="{ph}" fill="#eeeeee"/><text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#555">outage ({:.0} min)</text>"##,
        x(o0),
        x(o1) - x(o0),
        (x(o0) + x(o1)) / 2.0,
        top + 14.0,
        (o1 - o0) / 60.0
    );
    for (factor, label) in [(1.0, "C"), (1.5, "1.5 C"), (3.0, "3 C")] {
        if factor * c > y_max {
            continue;
        }
        let _ = writeln!(
            out,
            r##"<line x1="{left}" x2="{:.1}" y1="{yy:.1}" y2="{yy:.1}" stroke="#444" stroke-dasharray="4 3"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="#444">{label}</text>"##,
            left + pw,
            left + pw - 4.0,
            y(factor * c) - 4.0,
            yy = y(factor * c),
        );
    }
    let _ = writeln!(
        out,
        r##"<line x1="{left}" x2="{left}" y1="{top}" y2="{:.1}" stroke="#000"/><line x1="{left}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="#000"/>"##,
        top + ph,
        left + pw,
        top + ph,
        top + ph
    );
    let step = if y_max > 50_000.0 { 10_000.0 } else if y_max > 10_000.0 { 5_000.0 } else { 1_000.0 };
    let mut tick = 0.0;
    while tick <= y_max {
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{tick:.0}</text>"#,
            left - 6.0,
            y(tick) + 4.0
        );
        tick += step;
    }
    for minute in (0..=(seconds as u64 / 60)).step_by(2) {
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{minute}</text>"#,
            x(minute as f64 * 60.0),
            top + ph + 16.0
        );
    }
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">minutes (requests/s offered to the endpoint, admitted or not, per second; C = {:.0} requests/s = 3× steady)</text>"#,
        left + pw / 2.0,
        top + ph + 34.0,
        c
    );
    for (i, r) in reports.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let mut points = String::new();
        for (s, &n) in r.offered.iter().enumerate() {
            let _ = write!(points, "{:.1},{:.1} ", x(s as f64), y(f64::from(n)));
        }
        let _ = writeln!(
            out,
            r#"<polyline fill="none" stroke="{color}" stroke-width="1.2" points="{}"/>"#,
            points.trim_end()
        );
        let ly = top + ph + 56.0 + (i / 2) as f64 * 18.0;
        let lx = left + (i % 2) as f64 * pw / 2.0;
        let _ = writeln!(
            out,
            r#"<line x1="{lx:.1}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="{color}" stroke-width="3"/><text x="{:.1}" y="{ly:.1}">{} — peak after recovery {:.2}× C</text>"#,
            lx + 24.0,
            ly - 4.0,
            ly - 4.0,
            lx + 30.0,
            r.params.label(),
            r.peak_ratio()
        );
    }
    out.push_str("</svg>\n");
    out
}

fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("fleet: {e}");
            std::process::exit(2);
        }
    };
    let all = scenarios(&args);
    let c = all[0].capacity();
    println!(
        "{} devices, one event every 5–30 s each; endpoint capacity C = {c} requests/s (3× the steady {:.0}); {} min steady, {} min outage, {} min after; seed {}",
        args.devices,
        all[0].steady_rate(),
        all[0].steady_ms / 60_000,
        args.outage_min,
        all[0].after_ms / 60_000,
        args.seed
    );
    let clock = std::time::Instant::now();
    let reports = run_all(&all, args.threads);
    println!();
    print!("{}", table(&reports));
    println!();
    print!("{}", verdicts(&reports));
    println!(
        "\n{} scenarios in {:.1} s on {} thread(s)",
        reports.len(),
        clock.elapsed().as_secs_f64(),
        args.threads
    );
    let sweep_devices = args.sweep_devices.unwrap_or(args.devices / 10);
    if sweep_devices > 0 {
        let sweeps = run_all(&sweep(&args, sweep_devices), args.threads);
        println!(
            "\nThe no-answer outage ending later ({} devices, C = {} requests/s):\n",
            sweep_devices,
            sweeps[0].capacity
        );
        print!("{}", sweep_table(&sweeps));
    }
    if let Some(path) = &args.svg {
        if let Err(e) = std::fs::write(path, svg(&reports)) {
            eprintln!("fleet: cannot write {path}: {e}");
            std::process::exit(1);
        }
        println!("wrote {path}");
    }
}
