// `npm run bench`: what evbuf costs and saves, in headless Chromium against the reference
// collector, beside the legacy one-fetch-per-event logEvent. Prints a table and writes
// bench/results.json. Takes 2–4 minutes; `--quick` runs a smaller version to try changes;
// `--only perTick` or `--only persistence` runs only that part and prints its figures as
// JSON (bench/results.json untouched).
//
//   1. logEvent cost on the main thread (µs/call, 10,000-call burst, median of 5 runs),
//      beside JSON.stringify + array.push timed in the same page; and one call per task
//      at 50/s, as a steady app calls
//   2. persistence: durable events/s beside raw IndexedDB; logEvent → durable p50/p99,
//      and with nothing sent meanwhile beside the same strategy in plain JS
//   3. request economy: a 10,000-event burst and 50 events/s for 20 s, at the collector
//   4. size: shipped gzip bytes; functions and crates by code size (wasm name section)
//   5. memory: wasm linear memory and JS heap while 100,000 events meet a failing server
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { CHROMIUM_ARGS, profile } from '../tests/e2e/harness.mjs';
import { sizes } from '../scripts/sizes.mjs';
import { startCollector } from '../tests/e2e/harness.mjs';
import { analyzeBuild } from './wasm-names.mjs';
import { measureFloor } from './floor/measure.mjs';

const QUICK = process.argv.includes('--quick');
const ONLY = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : null;
if (ONLY !== null && ONLY !== 'perTick' && ONLY !== 'persistence') {
  console.error(`bench: --only takes perTick or persistence, not ${ONLY}`);
  process.exit(2);
}

const N = 10_000; // events per burst
const RUNS = QUICK ? 2 : 5; // runs per variant for the cost (median)
const RAW_RUNS = QUICK ? 1 : 3; // runs of the raw IndexedDB limit (median)
const WARMUP = 1_000; // events logged (and discarded) in each page before it is timed
// Each evbuf figure the median of `runs` pages: one slow write decides a page's p99.
const LATENCY = { ticks: 100, perTick: 100, runs: QUICK ? 1 : 3 };
// A steady app: one logEvent per task at 50/s, in `runs` pages.
const PER_TICK = { calls: QUICK ? 200 : 1_000, everyMs: 20, runs: QUICK ? 1 : 3 };
// Default options: flushIntervalMs 3,000, maxBufferSize 50 (the early flush), maxBatchEvents 100.
const STEADY = { rate: 50, ms: QUICK ? 6_000 : 20_000, flushIntervalMs: 3_000, maxBufferSize: 50 };
const MEMORY = { total: QUICK ? 30_000 : 100_000, chunk: 1_000 };
const MEMORY_CHECKPOINTS = QUICK ? [10_000, 20_000, 30_000] : [10_000, 25_000, 50_000, 75_000, 100_000];

const TARGETS = {
  logEventUs: 3, // µs per call, amortized until durable
  logEventVsStringify: 2, // × JSON.stringify + array.push, loop only, same page
  perTickVsStringify: 1.5, // × JSON.stringify + array.push, one call per task, same page
  durableVsRaw: 5, // × the raw IndexedDB put-per-event rate
  p99DurableMs: 20,
  burstAllMs: 5_000,
  shippedGzip: 56 * 1024,
  memoryVsQueued: 2, // wasm memory at its peak ÷ the queued bytes then
};

const started = Date.now();
const stamp = started.toString(36);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
const latencySummary = (latencies) => {
  const sorted = [...latencies].sort((a, b) => a - b);
  return { p50Ms: percentile(sorted, 50), p99Ms: percentile(sorted, 99), maxMs: sorted.at(-1) };
};
const round = (x, d = 2) => (x == null || !Number.isFinite(x) ? x : Math.round(x * 10 ** d) / 10 ** d);
const log = (...args) => console.error(`[bench +${((Date.now() - started) / 1000).toFixed(0)}s]`, ...args);

async function poll(check, { every = 50, timeout = 30_000, what = 'condition' } = {}) {
  const end = Date.now() + timeout;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(every);
  }
}

// --- machine -------------------------------------------------------------------------

function machine() {
  const osRelease = (() => {
    try { return /PRETTY_NAME="?([^"\n]+)/.exec(readFileSync('/etc/os-release', 'utf8'))[1]; } catch { return os.type(); }
  })();
  const cpu = (() => {
    try { return /model name\s*:\s*(.+)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))[1].trim(); } catch { return os.cpus()[0]?.model; }
  })();
  let chromium = null;
  try {
    const out = execFileSync(process.env.CHROMIUM || '/usr/bin/chromium', ['--version'], {
      encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'],
    });
    chromium = /Chrom\w* [\d.]+/.exec(out)?.[0] ?? null;
  } catch { /* read from the user agent below */ }
  return {
    os: `${osRelease} (${os.type()} ${os.release()} ${os.arch()})`,
    cpu,
    cores: os.cpus().length,
    memoryGiB: round(os.totalmem() / 2 ** 30, 1),
    loadAverageAtStart: os.loadavg().map((x) => round(x, 2)),
    node: process.version,
    chromium,
  };
}

// --- pages -----------------------------------------------------------------------------

let collector;

async function openPage(context) {
  const page = await context.newPage();
  // Cross-origin isolated, so that performance.now() counts in 5 µs steps instead of 100:
  // a single call takes tens of µs. The page loads only same-origin files.
  await page.route(`${collector.url}/index.html`, async (route) => {
    const response = await route.fetch();
    await route.fulfill({
      response,
      headers: { ...response.headers(), 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' },
    });
  });
  await page.goto(`${collector.url}/index.html`);
  await page.waitForFunction(() => window.evbufReady === true && !!window.bench);
  if (!(await page.evaluate(() => window.crossOriginIsolated))) throw new Error('bench: the page is not cross-origin isolated');
  const cdp = await context.newCDPSession(page);
  await cdp.send('Performance.enable');
  // Renderer main-thread counters (seconds): TaskDuration is the time its tasks ran
  // (what blocks the page), ThreadTime its CPU time (less inflated by a busy machine).
  page.mainThread = async () => {
    const { metrics } = await cdp.send('Performance.getMetrics');
    const m = Object.fromEntries(metrics.map((x) => [x.name, x.value]));
    return { taskMs: m.TaskDuration * 1000, cpuMs: m.ThreadTime * 1000, scriptMs: m.ScriptDuration * 1000 };
  };
  return page;
}

const since = (a, b) => ({ taskMs: b.taskMs - a.taskMs, cpuMs: b.cpuMs - a.cpuMs, scriptMs: b.scriptMs - a.scriptMs });

function initEvbuf(page, options) {
  return page.evaluate(async (options) => {
    window.evbufErrors = [];
    await window.evbuf.init({ ...options, onError: (e) => window.evbufErrors.push(e.message) });
  }, { endpoint: collector.endpoint, ...options });
}

const stats = (page) => page.evaluate(() => window.evbuf.stats());

function drained(page, timeout = 30_000) {
  return poll(async () => {
    const s = await stats(page);
    return s.queued === 0 && s.inFlight === 0 && s.unpersisted === 0 && s;
  }, { every: 100, timeout, what: 'evbuf to have sent everything' });
}

/** Waits until the collector's counters moved by `n` since `before` (polls every 50 ms). */
function collectorReached(before, field, n, timeout) {
  return poll(async () => {
    const s = await collector.summary();
    return s[field] - before[field] >= n && s;
  }, { every: 50, timeout, what: `the collector to count ${n} more ${field}` });
}

// --- 1. logEvent cost ------------------------------------------------------------------

/** Waits until the collector's request counter has not moved for `quietMs` (or reached `n`). */
async function collectorQuiet(before, n, quietMs = 1_500, timeout = 120_000) {
  const end = Date.now() + timeout;
  let last = await collector.summary();
  let lastChange = Date.now();
  while (last.requests - before.requests < n && Date.now() - lastChange < quietMs) {
    if (Date.now() > end) throw new Error('timed out waiting for the legacy requests to end');
    await sleep(250);
    const now = await collector.summary();
    if (now.requests !== last.requests) lastChange = Date.now();
    last = now;
  }
  return { summary: last, at: lastChange };
}

/** One timed run of `variant` in a fresh page, after a warm-up in that page. */
async function costRun(context, variant, run) {
  const page = await openPage(context);
  // Requests the browser refused or failed show up as console errors: count them by cause.
  const failures = {};
  page.on('console', (m) => {
    const cause = /net::(ERR_\w+)/.exec(m.text())?.[1];
    if (cause) failures[cause] = (failures[cause] ?? 0) + 1;
  });
  try {
    let stringifyPush = null;
    if (variant === 'evbuf') {
      await initEvbuf(page, { storageName: `bench-warm-${stamp}-${run}` });
      await page.evaluate(async (n) => { await window.bench.evbuf(n); await window.evbuf.flush(); }, WARMUP);
      // A fresh, empty database for the timed run (init replaces the warm-up instance).
      await initEvbuf(page, { storageName: `bench-cost-${stamp}-${run}` });
      // The floor of serializing at the call, warmed up and timed in this page just
      // before logEvent, on the same payloads.
      stringifyPush = await page.evaluate(async ({ warmup, n }) => {
        await window.bench.stringifyPush(warmup);
        const r = await window.bench.stringifyPush(n);
        window.benchSink = null;
        return r;
      }, { warmup: WARMUP, n: N });
    } else if (variant === 'legacy') {
      const before = await collector.summary();
      await page.evaluate(({ n, endpoint }) => window.bench.legacy(n, endpoint), { n: WARMUP, endpoint: collector.endpoint });
      await collectorQuiet(before, WARMUP);
    } else {
      await page.evaluate((n) => window.bench.push(n), WARMUP);
    }
    await sleep(100);
    for (const k of Object.keys(failures)) delete failures[k];
    const before = await collector.summary();
    const m0 = await page.mainThread();
    const r = variant === 'legacy'
      ? await page.evaluate(({ n, endpoint }) => window.bench.legacy(n, endpoint), { n: N, endpoint: collector.endpoint })
      : await page.evaluate(({ fn, n }) => window.bench[fn](n), { fn: variant, n: N });
    const m1 = await page.mainThread();
    const result = { variant, run, loopMs: r.loopMs, usPerCall: (r.loopMs * 1000) / N, longTasks: r.longTasks };
    if (variant === 'evbuf') {
      const untilDurable = since(m0, m1);
      const stringifyPushUsPerCall = (stringifyPush.loopMs * 1000) / N;
      Object.assign(result, {
        stringifyPushUsPerCall,
        vsStringifyPush: result.usPerCall / stringifyPushUsPerCall,
        durableMs: r.durableMs,
        durablePerSec: (N / r.durableMs) * 1000,
        promises: r.promises,
        persisted: r.stats.persisted,
        requestsWhileDurable: r.stats.requests,
        mainThreadUntilDurable: untilDurable,
        usPerCallUntilDurable: (untilDurable.taskMs * 1000) / N,
        cpuUsPerCallUntilDurable: (untilDurable.cpuMs * 1000) / N,
      });
      result.dropped = r.stats.dropped.total;
      if (r.stats.persisted < N) throw new Error(`evbuf: only ${r.stats.persisted} of ${N} persisted when the promises resolved`);
      await drained(page); // not timed: leave nothing in flight when the page closes
    } else if (variant === 'legacy') {
      // Not awaited in the page (as legacy call sites did not): the requests are over when
      // the collector's counter stops moving; those that never arrived failed in the browser.
      const t1 = Date.now();
      const { summary: after, at } = await collectorQuiet(before, N);
      const m2 = await page.mainThread();
      const received = after.requests - before.requests;
      Object.assign(result, {
        requests: received,
        lost: N - received,
        failures: { ...failures },
        sentWithinMs: at - t1,
        bodyBytes: after.bytes - before.bytes,
        mainThreadUntilSent: since(m0, m2),
      });
    } else {
      Object.assign(result, { mainThread: since(m0, m1) });
    }
    return result;
  } finally {
    await page.close();
  }
}

async function measureCost(context) {
  const runs = { push: [], legacy: [], evbuf: [] };
  for (const variant of ['push', 'legacy', 'evbuf']) {
    for (let run = 0; run < RUNS; run++) {
      runs[variant].push(await costRun(context, variant, run));
    }
    log(`cost ${variant}: ${runs[variant].map((r) => r.usPerCall.toFixed(2)).join(' ')} µs/call (loop)`);
    if (variant === 'evbuf') log(`cost stringify+push, same pages: ${runs.evbuf.map((r) => r.stringifyPushUsPerCall.toFixed(2)).join(' ')} µs/call`);
  }
  const med = (variant, f) => median(runs[variant].map(f));
  const summary = {
    pushUsPerCall: med('push', (r) => r.usPerCall),
    legacyUsPerCall: med('legacy', (r) => r.usPerCall),
    evbufUsPerCall: med('evbuf', (r) => r.usPerCall),
    stringifyPushUsPerCall: med('evbuf', (r) => r.stringifyPushUsPerCall),
    // Each run's ratio is of two loops in one page; the median of those ratios.
    ratioVsStringifyPush: med('evbuf', (r) => r.vsStringifyPush),
    evbufUsPerCallUntilDurable: med('evbuf', (r) => r.usPerCallUntilDurable),
    evbufCpuUsPerCallUntilDurable: med('evbuf', (r) => r.cpuUsPerCallUntilDurable),
    legacyMainThreadUsPerCallUntilSent: med('legacy', (r) => (r.mainThreadUntilSent.taskMs * 1000) / N),
    pushMainThreadUsPerCall: med('push', (r) => (r.mainThread.taskMs * 1000) / N),
    evbufDurableMs: med('evbuf', (r) => r.durableMs),
    evbufDurablePerSec: med('evbuf', (r) => r.durablePerSec),
    // Over the runs where some requests arrived (a legacy burst can lose every one).
    legacyBodyBytes: runs.legacy.some((r) => r.requests > 0)
      ? median(runs.legacy.filter((r) => r.requests > 0).map((r) => r.bodyBytes / r.requests))
      : null,
    legacyLost: med('legacy', (r) => r.lost),
    legacyFailures: runs.legacy.map((r) => r.failures),
    longTasks: Object.fromEntries(Object.entries(runs).map(([v, rs]) => [v, {
      count: median(rs.map((r) => r.longTasks.count ?? 0)),
      blockingMs: median(rs.map((r) => r.longTasks.blockingMs ?? 0)),
      longestMs: median(rs.map((r) => r.longTasks.longestMs ?? 0)),
    }])),
  };
  summary.ratioVsPush = summary.evbufUsPerCall / summary.pushUsPerCall;
  summary.ratioVsLegacy = summary.evbufUsPerCall / summary.legacyUsPerCall;
  summary.untilDurableVsLegacy = summary.evbufUsPerCallUntilDurable / summary.legacyUsPerCall;
  return { runs, summary };
}

/**
 * One call per task at 50/s, the way a steady app calls: the call's own time (mean µs,
 * performance.now() around it) and the page's main-thread time per call over the run (the
 * tasks the call leads to included: the hand-over, the write, its completion), each beside
 * JSON.stringify + push measured the same way in the same page, in alternating order.
 */
async function measurePerTick(context) {
  const runs = [];
  for (let run = 0; run < PER_TICK.runs; run++) {
    const page = await openPage(context);
    try {
      await initEvbuf(page, { storageName: `bench-tick-${stamp}-${run}` });
      await page.evaluate(async (n) => { await window.bench.evbuf(n); await window.evbuf.flush(); }, WARMUP);
      const result = { run };
      const order = run % 2 ? ['evbuf', 'stringifyPush'] : ['stringifyPush', 'evbuf'];
      for (const what of order) {
        const m0 = await page.mainThread();
        const us = await page.evaluate(({ what, calls, everyMs }) => window.bench.perTick(what, calls, everyMs), { what, ...PER_TICK });
        const m1 = await page.mainThread();
        const sorted = [...us].sort((a, b) => a - b);
        result[what] = {
          meanUs: us.reduce((a, b) => a + b, 0) / us.length,
          p50Us: percentile(sorted, 50),
          p99Us: percentile(sorted, 99),
          mainThreadUsPerCall: (since(m0, m1).taskMs * 1000) / PER_TICK.calls,
          cpuUsPerCall: (since(m0, m1).cpuMs * 1000) / PER_TICK.calls,
        };
      }
      await drained(page);
      result.callRatio = result.evbuf.meanUs / result.stringifyPush.meanUs;
      result.mainThreadRatio = result.evbuf.mainThreadUsPerCall / result.stringifyPush.mainThreadUsPerCall;
      runs.push(result);
    } finally {
      await page.close();
    }
  }
  const med = (f) => median(runs.map(f));
  const summary = {
    evbufUs: med((r) => r.evbuf.meanUs),
    stringifyPushUs: med((r) => r.stringifyPush.meanUs),
    callRatio: med((r) => r.callRatio),
    evbufMainThreadUs: med((r) => r.evbuf.mainThreadUsPerCall),
    stringifyPushMainThreadUs: med((r) => r.stringifyPush.mainThreadUsPerCall),
    mainThreadRatio: med((r) => r.mainThreadRatio),
    evbufCpuUs: med((r) => r.evbuf.cpuUsPerCall),
    stringifyPushCpuUs: med((r) => r.stringifyPush.cpuUsPerCall),
  };
  log(`per tick: evbuf ${runs.map((r) => r.evbuf.meanUs.toFixed(1)).join(' ')} µs/call, stringify+push ${runs.map((r) => r.stringifyPush.meanUs.toFixed(1)).join(' ')} µs/call`);
  return { ...PER_TICK, runs, summary };
}

// --- 2. persistence --------------------------------------------------------------------

async function measurePersistence(context) {
  const page = await openPage(context);
  let raw;
  let rawLatency;
  let rawGroupLatency;
  try {
    await page.evaluate((name) => window.bench.rawIdb(1_000, name), `bench-raw-warm-${stamp}`);
    raw = [];
    for (let run = 0; run < RAW_RUNS; run++) {
      const r = await page.evaluate(({ n, name }) => window.bench.rawIdb(n, name), { n: N, name: `bench-raw-${stamp}-${run}` });
      raw.push({ ...r, perSec: (N / r.durableMs) * 1000 });
    }
    const r = await page.evaluate(({ ticks, perTick, name }) => window.bench.rawLatency(ticks, perTick, name),
      { ...LATENCY, name: `bench-raw-latency-${stamp}` });
    rawLatency = latencySummary(r.latencies);
    const g = await page.evaluate(({ ticks, perTick, name }) => window.bench.rawGroupLatency(ticks, perTick, name),
      { ...LATENCY, name: `bench-raw-group-${stamp}` });
    rawGroupLatency = latencySummary(g.latencies);
  } finally {
    await page.close();
  }
  const rawPerSec = median(raw.map((r) => r.perSec));
  log(`raw IndexedDB: ${raw.map((r) => r.perSec.toFixed(0)).join(' ')} events/s; a transaction per tick: p50 ${rawLatency.p50Ms.toFixed(1)} ms, p99 ${rawLatency.p99Ms.toFixed(1)} ms; one transaction at a time: p50 ${rawGroupLatency.p50Ms.toFixed(1)} ms, p99 ${rawGroupLatency.p99Ms.toFixed(1)} ms`);

  const latency = await measureLatency(context, 'lat', { sending: true });
  const p99s = (l) => l.runs.map((r) => r.p99Ms.toFixed(1)).join(' ');
  log(`latency logEvent→durable: p50 ${latency.p50Ms.toFixed(1)} ms, p99 ${latency.p99Ms.toFixed(1)} ms (pages: ${p99s(latency)})`);
  const latencyNotSending = await measureLatency(context, 'lat-held', { sending: false });
  log(`latency logEvent→durable, nothing sent meanwhile: p50 ${latencyNotSending.p50Ms.toFixed(1)} ms, p99 ${latencyNotSending.p99Ms.toFixed(1)} ms (pages: ${p99s(latencyNotSending)})`);
  return {
    rawIdbPerSec: rawPerSec,
    rawRuns: raw,
    latency,
    latencyNotSending,
    rawLatency,
    rawGroupLatency,
  };
}

/**
 * logEvent → durable in a fresh page and database, after a warm-up. Without `sending`,
 * the collector holds the first send unanswered, so that no other starts meanwhile: what
 * sending costs the writes shows as the difference.
 */
async function measureLatency(context, name, { sending }) {
  const runs = [];
  for (let run = 0; run < LATENCY.runs; run++) runs.push(await latencyRun(context, `${name}-${run}`, { sending }));
  const med = (field) => median(runs.map((r) => r[field]));
  return {
    ticks: LATENCY.ticks, perTick: LATENCY.perTick, runs,
    loggedOverMs: med('loggedOverMs'), allDurableMs: med('allDurableMs'),
    p50Ms: med('p50Ms'), p90Ms: med('p90Ms'), p99Ms: med('p99Ms'), maxMs: med('maxMs'),
  };
}

/** One page of {@link measureLatency}. */
async function latencyRun(context, name, { sending }) {
  const page = await openPage(context);
  try {
    await initEvbuf(page, { storageName: `bench-${name}-warm-${stamp}` });
    await page.evaluate(async (n) => { await window.bench.evbuf(n); await window.evbuf.flush(); }, WARMUP);
    await initEvbuf(page, { storageName: `bench-${name}-${stamp}` });
    if (!sending) await collector.control({ hang_count: 1 });
    const r = await page.evaluate(({ ticks, perTick }) => window.bench.latency(ticks, perTick), LATENCY);
    const sorted = [...r.latencies].sort((a, b) => a - b);
    if (sending) await drained(page);
    return {
      loggedOverMs: r.loggedMs, allDurableMs: r.totalMs,
      p50Ms: percentile(sorted, 50), p90Ms: percentile(sorted, 90), p99Ms: percentile(sorted, 99), maxMs: sorted.at(-1),
    };
  } finally {
    if (!sending) await collector.control({ hang_count: 0 });
    await page.close();
  }
}

// --- 3. request economy ----------------------------------------------------------------

/**
 * A burst of N logEvent calls (not awaited) in a fresh page with `options`: collector
 * counters before and after, and when the last event arrived (polled every 50 ms) — all N,
 * or all that evbuf did not drop (the SDK has nothing left to send).
 */
async function burstRun(context, name, options) {
  const page = await openPage(context);
  try {
    await initEvbuf(page, { storageName: `bench-${name}-${stamp}`, ...options });
    await sleep(200);
    const before = await collector.summary();
    const t0 = Date.now();
    await page.evaluate((n) => window.bench.burst(n), N);
    let count = before.count;
    let lastArrival = t0;
    let polls = 0;
    let sdk = null;
    for (;;) {
      const now = await collector.summary();
      if (now.count !== count) { count = now.count; lastArrival = Date.now(); }
      if (count - before.count >= N) break;
      if (++polls % 10 === 0) {
        const s = await stats(page);
        if (s.queued === 0 && s.inFlight === 0 && s.unpersisted === 0 && s.logged >= N) { sdk = s; break; }
      }
      if (Date.now() - t0 > 60_000) throw new Error(`burst ${name}: not delivered after 60 s`);
      await sleep(50);
    }
    sdk ??= await drained(page);
    await sleep(200);
    const after = await collector.summary();
    return {
      options, events: N, allAtCollectorMs: lastArrival - t0,
      delivered: after.count - before.count, droppedBySdk: sdk.dropped,
      requests: after.requests - before.requests, bytes: after.bytes - before.bytes,
      duplicates: after.duplicates - before.duplicates, maxBatchEvents: options.maxBatchEvents ?? 100,
      sdkRequests: sdk.requests, errors: await page.evaluate(() => [...new Set(window.evbufErrors)].slice(0, 5)),
    };
  } finally {
    await page.close();
  }
}

async function measureEconomy(context, legacyBodyBytes) {
  // The default options (maxStoredBytes 8 MiB holds the 10,000 events of this size).
  const burst = await burstRun(context, 'burst', {});
  log(`burst (defaults): ${burst.delivered} delivered, ${burst.droppedBySdk.total} dropped, ${burst.requests} requests, ${burst.bytes} B, last arrival after ${burst.allAtCollectorMs} ms`);

  // A steady rate.
  let steady;
  {
    const page = await openPage(context);
    try {
      await initEvbuf(page, { storageName: `bench-steady-${stamp}` });
      await sleep(200);
      const before = await collector.summary();
      const t0 = Date.now();
      const r = await page.evaluate(({ rate, ms }) => window.bench.steady(rate, ms), STEADY);
      const during = await collector.summary();
      await collectorReached(before, 'count', r.logged, STEADY.flushIntervalMs * 3 + 5_000);
      const untilAllMs = Date.now() - t0;
      await drained(page);
      const after = await collector.summary();
      steady = {
        rate: STEADY.rate, durationMs: STEADY.ms, events: r.logged, flushIntervalMs: STEADY.flushIntervalMs,
        maxBufferSize: STEADY.maxBufferSize,
        requestsDuring: during.requests - before.requests,
        requests: after.requests - before.requests, bytes: after.bytes - before.bytes,
        delivered: after.count - before.count, untilAllMs,
        // With the defaults, the early flush sends once maxBufferSize events wait: at 50/s
        // that is one request a second, well before the 3 s timer.
        expectedRequests: Math.ceil(r.logged / STEADY.maxBufferSize),
      };
    } finally {
      await page.close();
    }
  }
  log(`steady: ${steady.requests} requests, ${steady.bytes} B for ${steady.events} events`);

  const legacy = (events) => ({ requests: events, bytes: Math.round(events * legacyBodyBytes) });
  return {
    legacyBodyBytes,
    burst: { ...burst, legacy: legacy(burst.events) },
    steady: { ...steady, legacy: legacy(steady.events) },
  };
}

/** Bytes on the wire for the same 100 events (~500 B each), plain and with
 *  `compression: 'gzip'` (as the collector counts them: before decoding). */
async function measureCompression(context) {
  const events = 100;
  const bytes = {};
  for (const compression of ['none', 'gzip']) {
    const page = await openPage(context);
    try {
      await initEvbuf(page, { storageName: `bench-${compression}-${stamp}`, flushIntervalMs: 60_000, maxBufferSize: 10_000, compression });
      const before = await collector.summary();
      await page.evaluate(async (n) => {
        window.bench.burst(n);
        await window.evbuf.flush();
      }, events);
      const after = await collector.summary();
      bytes[compression] = { bytes: after.bytes - before.bytes, requests: after.requests - before.requests };
    } finally {
      await page.close();
    }
  }
  const saved = bytes.none.bytes - bytes.gzip.bytes;
  log(`compression: ${events} events, ${bytes.none.bytes} B plain, ${bytes.gzip.bytes} B gzip (${saved} B saved)`);
  return { events, plain: bytes.none, gzip: bytes.gzip, savedBytes: saved, ratio: bytes.gzip.bytes / bytes.none.bytes };
}

// --- 4. size ---------------------------------------------------------------------------

function measureSize() {
  const shipped = sizes();
  const notes = [];
  let analysis;
  try {
    analysis = analyzeBuild({ top: 20 });
  } catch (error) {
    notes.push(`no function breakdown: ${error.message.split('\n')[0]} (needs target/evbuf-for-bindgen.wasm from npm run build and wasm-bindgen on PATH or in ~/.cargo/bin)`);
    analysis = { matchesShipped: null, top: [], crates: [], modules: [] };
  }
  if (analysis.matchesShipped === false) {
    notes.push('pkg/ is not the current cargo build (wasm-opt of it differs from pkg/evbuf_bg.wasm): the gzip sizes are of pkg/, the function list of target/; run `npm run build` to align them');
  }
  let budget = null;
  try { budget = JSON.parse(readFileSync(new URL('./size-budget.json', import.meta.url), 'utf8')).maxShippedGzipBytes; } catch { /* none */ }
  let floor = null;
  try {
    floor = measureFloor();
  } catch (error) {
    notes.push(`no floor: ${error.message.split('\n')[0]} (bench/floor/measure.mjs builds it with cargo)`);
  }
  return { shipped, budget, floor, ...analysis, notes };
}

// --- 5. memory -------------------------------------------------------------------------

async function measureMemory() {
  const p = profile();
  const context = await p.launch({
    args: [...CHROMIUM_ARGS, '--enable-precise-memory-info', '--js-flags=--expose-gc'],
  });
  try {
    const page = await openPage(context);
    await collector.control({ fail_status: 503, fail_for_ms: 600_000 });
    await initEvbuf(page, { storageName: `bench-memory-${stamp}` });
    const r = await page.evaluate(({ total, chunk, checkpoints }) => window.bench.memory(total, chunk, checkpoints),
      { ...MEMORY, checkpoints: MEMORY_CHECKPOINTS });
    const samples = r.samples;
    const at = (events) => samples.find((s) => s.events === events);
    const first = at(MEMORY_CHECKPOINTS[0]);
    const last = samples.at(-1);
    const base = samples[0];
    // Bounded: from the first checkpoint (already past the storage limit) to the last,
    // growth stays under half of what the first checkpoint's events took (linear growth
    // would add (last/first − 1) times that), with 1 MiB of slack for allocator noise.
    const bounded = (field) => {
      const growth = last[field] - first[field];
      const allowance = Math.max(2 ** 20, 0.5 * (first[field] - base[field]));
      return { growth, allowance, ok: growth <= allowance };
    };
    // The sample where wasm memory first reached its peak (it never shrinks), with what
    // was queued then.
    const peak = samples.reduce((p, x) => (x.wasmBytes > p.wasmBytes ? x : p));
    return {
      samples, peak, ms: r.ms, gcAvailable: r.gcAvailable, wasmMemoryFound: r.wasmMemoryFound,
      maxStoredEvents: 10_000,
      wasm: bounded('wasmBytes'), jsHeap: bounded('jsHeapUsed'),
      storageLimitHeld: samples.every((s) => s.queued <= 10_000),
      errors: (await page.evaluate(() => window.evbufErrors.length)),
    };
  } finally {
    await collector.control({});
    await context.close();
    p.dispose();
  }
}

// --- report ----------------------------------------------------------------------------

const fmt = {
  us: (x) => `${x.toFixed(2)} µs`,
  ms: (x) => `${x.toFixed(x < 10 ? 2 : 0)} ms`,
  n: (x) => Math.round(x).toLocaleString('en-US'),
  perSec: (x) => `${Math.round(x).toLocaleString('en-US')}/s`,
  bytes: (x) => (x >= 1024 * 1024 ? `${(x / 2 ** 20).toFixed(2)} MiB` : x >= 1024 ? `${(x / 1024).toFixed(1)} KiB` : `${x} B`),
  x: (x) => `${x >= 100 ? Math.round(x) : x >= 1 ? x.toFixed(x >= 10 ? 1 : 2) : x.toPrecision(2)}×`,
};

function table(rows, columns) {
  const cells = rows.map((r) => columns.map((c) => String(r[c] ?? '')));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((r) => r[i].length)));
  const line = (values) => values.map((v, i) => v.padEnd(widths[i])).join(' │ ');
  return [line(columns), widths.map((w) => '─'.repeat(w)).join('─┼─'), ...cells.map(line)].join('\n');
}

function burstRows(b, label, c, withLegacyLoss) {
  const yes = (ok) => (ok ? 'yes' : 'NO');
  const limit = Math.ceil(N / b.maxBatchEvents) + 1;
  const rows = [
    { metric: `burst ${fmt.n(N)} (${label}): requests`, evbuf: fmt.n(b.requests), baseline: `legacy ${fmt.n(b.legacy.requests)}`, ratio: fmt.x(b.requests / b.legacy.requests), target: `≤ ${limit}`, 'met?': yes(b.requests <= limit) },
    { metric: `burst ${fmt.n(N)} (${label}): body bytes`, evbuf: fmt.bytes(b.bytes), baseline: `legacy ${fmt.bytes(b.legacy.bytes)}`, ratio: fmt.x(b.bytes / b.legacy.bytes), target: '(info)', 'met?': '' },
    { metric: `burst ${fmt.n(N)} (${label}): delivered, last after`, evbuf: `${fmt.n(b.delivered)} in ${fmt.ms(b.allAtCollectorMs)}${b.droppedBySdk.total ? ` (${fmt.n(b.droppedBySdk.total)} dropped)` : ''}`, baseline: withLegacyLoss ? `legacy ${fmt.n(N - c.legacyLost)} (rest: ${Object.keys(Object.assign({}, ...c.legacyFailures)).join(', ') || 'lost'})` : '', ratio: '', target: `all ${fmt.n(N)} ≤ ${TARGETS.burstAllMs / 1000} s`, 'met?': yes(b.delivered >= N && b.allAtCollectorMs <= TARGETS.burstAllMs) },
  ];
  return rows;
}

function buildRows(r) {
  const c = r.logEventCost.summary;
  const p = r.persistence;
  const e = r.economy;
  const s = r.size;
  const m = r.memory;
  const yes = (ok) => (ok ? 'yes' : 'NO');
  const mem0 = m.samples.find((x) => x.events === MEMORY_CHECKPOINTS[0]);
  const memN = m.samples.at(-1);
  const peak = m.peak;
  return [
    { metric: 'logEvent, loop only (µs/call)', evbuf: fmt.us(c.evbufUsPerCall), baseline: `legacy fetch ${fmt.us(c.legacyUsPerCall)}`, ratio: fmt.x(c.ratioVsLegacy), target: '(info)', 'met?': '' },
    { metric: 'logEvent, loop only vs serializing', evbuf: fmt.us(c.evbufUsPerCall), baseline: `JSON.stringify + push ${fmt.us(c.stringifyPushUsPerCall)} (same page)`, ratio: fmt.x(c.ratioVsStringifyPush), target: `≤ ${TARGETS.logEventVsStringify}×`, 'met?': yes(c.ratioVsStringifyPush <= TARGETS.logEventVsStringify) },
    { metric: `logEvent, one call per task at ${1000 / r.perTick.everyMs}/s vs serializing`, evbuf: fmt.us(r.perTick.summary.evbufUs), baseline: `JSON.stringify + push ${fmt.us(r.perTick.summary.stringifyPushUs)} (same page)`, ratio: fmt.x(r.perTick.summary.callRatio), target: `≤ ${TARGETS.perTickVsStringify}×`, 'met?': yes(r.perTick.summary.callRatio <= TARGETS.perTickVsStringify) },
    { metric: `logEvent, one call per task at ${1000 / r.perTick.everyMs}/s: main thread per call`, evbuf: fmt.us(r.perTick.summary.evbufMainThreadUs), baseline: `JSON.stringify + push ${fmt.us(r.perTick.summary.stringifyPushMainThreadUs)} (same page)`, ratio: fmt.x(r.perTick.summary.mainThreadRatio), target: '(info)', 'met?': '' },
    { metric: `logEvent, one call per task at ${1000 / r.perTick.everyMs}/s: main-thread CPU per call`, evbuf: fmt.us(r.perTick.summary.evbufCpuUs), baseline: `JSON.stringify + push ${fmt.us(r.perTick.summary.stringifyPushCpuUs)} (same page)`, ratio: fmt.x(r.perTick.summary.evbufCpuUs / r.perTick.summary.stringifyPushCpuUs), target: '(info)', 'met?': '' },
    { metric: 'logEvent, loop only vs floor', evbuf: fmt.us(c.evbufUsPerCall), baseline: `array.push ${fmt.us(c.pushUsPerCall)}`, ratio: fmt.x(c.ratioVsPush), target: '(info)', 'met?': '' },
    { metric: 'logEvent, main thread until durable (µs/call)', evbuf: fmt.us(c.evbufUsPerCallUntilDurable), baseline: `legacy fetch ${fmt.us(c.legacyUsPerCall)}`, ratio: fmt.x(c.untilDurableVsLegacy), target: `≤ ${TARGETS.logEventUs} µs`, 'met?': yes(c.evbufUsPerCallUntilDurable <= TARGETS.logEventUs) },
    { metric: 'durable events/s (10k burst)', evbuf: fmt.perSec(p.evbufDurablePerSec), baseline: `raw IDB put/event ${fmt.perSec(p.rawIdbPerSec)}`, ratio: fmt.x(p.ratio), target: `≥ ${TARGETS.durableVsRaw}× raw`, 'met?': yes(p.ratio >= TARGETS.durableVsRaw) },
    { metric: 'logEvent → durable p50', evbuf: fmt.ms(p.latency.p50Ms), baseline: `raw IDB tx per tick ${fmt.ms(p.rawLatency.p50Ms)}`, ratio: fmt.x(p.latency.p50Ms / p.rawLatency.p50Ms), target: '(info)', 'met?': '' },
    { metric: 'logEvent → durable p99', evbuf: fmt.ms(p.latency.p99Ms), baseline: `raw IDB tx per tick ${fmt.ms(p.rawLatency.p99Ms)}`, ratio: fmt.x(p.latency.p99Ms / p.rawLatency.p99Ms), target: `≤ ${TARGETS.p99DurableMs} ms`, 'met?': yes(p.latency.p99Ms <= TARGETS.p99DurableMs) },
    { metric: 'logEvent → durable p99, nothing sent meanwhile', evbuf: fmt.ms(p.latencyNotSending.p99Ms), baseline: `plain JS, one IDB tx at a time ${fmt.ms(p.rawGroupLatency.p99Ms)}`, ratio: fmt.x(p.latencyNotSending.p99Ms / p.rawGroupLatency.p99Ms), target: '(info)', 'met?': '' },
    ...burstRows(e.burst, 'defaults', c, true),
    { metric: `steady ${e.steady.rate}/s × ${e.steady.durationMs / 1000} s: requests`, evbuf: fmt.n(e.steady.requests), baseline: `legacy ${fmt.n(e.steady.legacy.requests)}`, ratio: fmt.x(e.steady.requests / e.steady.legacy.requests), target: `≈ 1 per ${e.steady.maxBufferSize} events (≤ ${e.steady.expectedRequests + 1})`, 'met?': yes(e.steady.requests <= e.steady.expectedRequests + 1 && e.steady.delivered >= e.steady.events) },
    { metric: `steady ${e.steady.rate}/s × ${e.steady.durationMs / 1000} s: body bytes`, evbuf: fmt.bytes(e.steady.bytes), baseline: `legacy ${fmt.bytes(e.steady.legacy.bytes)}`, ratio: fmt.x(e.steady.bytes / e.steady.legacy.bytes), target: '(info)', 'met?': '' },
    { metric: `compression: 'gzip', ${r.compression.events} events: body bytes`, evbuf: fmt.bytes(r.compression.gzip.bytes), baseline: `plain ${fmt.bytes(r.compression.plain.bytes)}`, ratio: fmt.x(r.compression.ratio), target: '(info)', 'met?': '' },
    { metric: 'shipped gzip (wasm + glue + wrapper)', evbuf: fmt.bytes(s.shipped.totalGzip), baseline: s.floor ? `floor ${fmt.bytes(s.floor.totalGzip)} (rexie + wasm-bindgen)` : '', ratio: s.floor ? fmt.x(s.shipped.totalGzip / s.floor.totalGzip) : '', target: `≤ ${fmt.bytes(TARGETS.shippedGzip)}`, 'met?': yes(s.shipped.totalGzip <= TARGETS.shippedGzip) },
    { metric: `wasm memory peak ÷ queued bytes at peak (${fmt.n(peak.events)} events, server down)`, evbuf: fmt.bytes(peak.wasmBytes), baseline: `queued ${fmt.bytes(peak.queuedBytes)}`, ratio: fmt.x(peak.wasmBytes / peak.queuedBytes), target: `< ${TARGETS.memoryVsQueued}×`, 'met?': yes(peak.wasmBytes < TARGETS.memoryVsQueued * peak.queuedBytes) },
    { metric: `wasm memory ${fmt.n(mem0.events)} → ${fmt.n(memN.events)} events, server down`, evbuf: `${fmt.bytes(mem0.wasmBytes)} → ${fmt.bytes(memN.wasmBytes)}`, baseline: '', ratio: '', target: 'bounded', 'met?': yes(m.wasm.ok) },
    { metric: `JS heap ${fmt.n(mem0.events)} → ${fmt.n(memN.events)} events, server down`, evbuf: `${fmt.bytes(mem0.jsHeapUsed)} → ${fmt.bytes(memN.jsHeapUsed)}`, baseline: '', ratio: '', target: 'bounded', 'met?': yes(m.jsHeap.ok && m.storageLimitHeld) },
  ];
}

function report(r) {
  const out = [];
  const mc = r.machine;
  out.push(`evbuf benchmark — ${r.date}${QUICK ? ' (--quick)' : ''}`);
  out.push(`machine: ${mc.os}; ${mc.cpu}, ${mc.cores} cores, ${mc.memoryGiB} GiB; load avg ${mc.loadAverageAtStart.join(' ')} at start, ${mc.loadAverageAtEnd.join(' ')} at end; ${mc.chromium}; node ${mc.node}`);
  out.push(`payload ${r.config.payloadBytes} B JSON; cost: median of ${RUNS} runs of ${fmt.n(N)} calls, each in a fresh page after ${fmt.n(WARMUP)} warm-up calls; evbuf in a fresh IndexedDB database each run`);
  out.push('ratio = evbuf ÷ baseline (lower is better for µs, requests and bytes; higher for events/s)');
  out.push('');
  out.push(table(r.table, ['metric', 'evbuf', 'baseline', 'ratio', 'target', 'met?']));
  out.push('');
  const c = r.logEventCost.summary;
  out.push('main thread per call (renderer main thread, CDP Performance metrics; median):');
  out.push(table([
    { variant: 'array.push (floor)', 'loop µs/call': c.pushUsPerCall.toFixed(2), 'main thread µs/call': `${c.pushMainThreadUsPerCall.toFixed(2)} (loop)`, 'long tasks': c.longTasks.push.count, 'blocking ms': round(c.longTasks.push.blockingMs, 0) },
    { variant: 'JSON.stringify + push (in the evbuf pages)', 'loop µs/call': c.stringifyPushUsPerCall.toFixed(2), 'main thread µs/call': '', 'long tasks': '', 'blocking ms': '' },
    { variant: 'legacy fetch per event', 'loop µs/call': c.legacyUsPerCall.toFixed(2), 'main thread µs/call': `${c.legacyMainThreadUsPerCallUntilSent.toFixed(2)} (until all sent)`, 'long tasks': c.longTasks.legacy.count, 'blocking ms': round(c.longTasks.legacy.blockingMs, 0) },
    { variant: 'evbuf logEvent', 'loop µs/call': c.evbufUsPerCall.toFixed(2), 'main thread µs/call': `${c.evbufUsPerCallUntilDurable.toFixed(2)} (until durable; CPU ${c.evbufCpuUsPerCallUntilDurable.toFixed(2)})`, 'long tasks': c.longTasks.evbuf.count, 'blocking ms': round(c.longTasks.evbuf.blockingMs, 0) },
  ], ['variant', 'loop µs/call', 'main thread µs/call', 'long tasks', 'blocking ms']));
  out.push('');
  const l = r.persistence.latency;
  out.push(`logEvent → durable, ${l.ticks} ticks × ${l.perTick} events, median of ${l.runs.length} pages: p50 ${l.p50Ms.toFixed(1)} ms, p90 ${l.p90Ms.toFixed(1)} ms, p99 ${l.p99Ms.toFixed(1)} ms, max ${l.maxMs.toFixed(1)} ms (logged over ${l.loggedOverMs.toFixed(0)} ms)`);
  const { latencyNotSending: q, rawGroupLatency: g } = r.persistence;
  out.push(`  nothing sent meanwhile: p50 ${q.p50Ms.toFixed(1)} ms, p99 ${q.p99Ms.toFixed(1)} ms; plain JS, one transaction at a time, nothing sent: p50 ${g.p50Ms.toFixed(1)} ms, p99 ${g.p99Ms.toFixed(1)} ms`);
  out.push('');
  const s = r.size;
  out.push(`size: ${s.shipped.files.map((f) => `${f.name} ${fmt.bytes(f.bytes)} → ${fmt.bytes(f.gzip)} gzip`).join(', ')}; total ${fmt.bytes(s.shipped.totalGzip)} gzip`);
  if (s.top.length) {
    out.push(`code before wasm-opt: ${fmt.bytes(s.codeTotal)} in ${s.functionCount} functions (${s.importedFunctions ?? s.beforeWasmOpt.importedFunctions} imports); sections: ${Object.entries(s.beforeWasmOpt.sections).slice(0, 4).map(([k, v]) => `${k} ${fmt.bytes(v)}`).join(', ')}; shipped wasm code ${fmt.bytes(s.shippedWasm.sections.code)}, data ${fmt.bytes(s.shippedWasm.sections.data ?? 0)}`);
    out.push('top 20 functions by code size (before wasm-opt):');
    out.push(table(s.top.map((f) => ({ bytes: f.size, '% code': f.shareOfCode.toFixed(2), crate: f.crate, function: f.name.length > 110 ? `${f.name.slice(0, 107)}...` : f.name })), ['bytes', '% code', 'crate', 'function']));
    out.push('by crate:');
    out.push(table(s.crates.map((x) => ({ crate: x.crate, functions: x.functions, bytes: x.size, '% code': x.shareOfCode.toFixed(2) })), ['crate', 'functions', 'bytes', '% code']));
  }
  for (const n of s.notes) out.push(`note: ${n}`);
  out.push('');
  out.push(`memory, collector answering 503, defaults (maxStoredEvents 10,000, maxStoredBytes 8 MiB)${r.memory.gcAvailable ? ', after gc()' : ''}:`);
  out.push(table(r.memory.samples.map((x) => ({
    events: fmt.n(x.events), 'wasm memory': fmt.bytes(x.wasmBytes), 'JS heap used': x.jsHeapUsed == null ? 'n/a' : fmt.bytes(x.jsHeapUsed),
    queued: fmt.n(x.queued), 'queued bytes': fmt.bytes(x.queuedBytes), 'dropped (limit)': fmt.n(x.droppedStorageLimit),
    'IDB usage': x.storageUsage == null ? 'n/a' : fmt.bytes(x.storageUsage), requests: x.requests,
  })), ['events', 'wasm memory', 'JS heap used', 'queued', 'queued bytes', 'dropped (limit)', 'IDB usage', 'requests']));
  out.push('');
  out.push(`took ${((Date.now() - started) / 1000).toFixed(0)} s; results in bench/results.json`);
  return out.join('\n');
}

// --- main ------------------------------------------------------------------------------

function checkPrerequisites() {
  const need = [
    ['target/release/evbuf-collector', 'cargo build --release -p evbuf-collector'],
    ['pkg/index.js', 'npm run build'],
    ['pkg/evbuf_bg.wasm', 'npm run build'],
  ].filter(([path]) => !existsSync(new URL(`../${path}`, import.meta.url)));
  if (need.length) {
    console.error(`bench: missing ${need.map(([path, how]) => `${path} (${how})`).join(', ')}`);
    process.exit(2);
  }
}

async function main() {
  checkPrerequisites();
  if (ONLY !== null) return onlyPart();
  const results = { date: new Date().toISOString(), quick: QUICK, machine: machine() };
  collector = await startCollector({ pages: fileURLToPath(new URL('./pages', import.meta.url)), checkBodies: false });
  const p = profile();
  const context = await p.launch();
  try {
    {
      const page = await openPage(context);
      results.config = {
        events: N, runs: RUNS, rawRuns: RAW_RUNS, warmup: WARMUP, latency: LATENCY, steady: STEADY, memory: MEMORY,
        payloadBytes: await page.evaluate(() => window.bench.payloadBytes()), targets: TARGETS,
      };
      if (!results.machine.chromium) results.machine.chromium = await page.evaluate(() => /Chrome\/[\d.]+/.exec(navigator.userAgent)?.[0]);
      await page.close();
    }
    log('1/5 logEvent cost');
    results.logEventCost = await measureCost(context);
    results.perTick = await measurePerTick(context);
    log('2/5 persistence');
    const { summary } = results.logEventCost;
    const persistence = await measurePersistence(context);
    results.persistence = {
      evbufDurablePerSec: summary.evbufDurablePerSec,
      evbufDurableMs: summary.evbufDurableMs,
      ratio: summary.evbufDurablePerSec / persistence.rawIdbPerSec,
      ...persistence,
    };
    log('3/5 request economy');
    // With no legacy request arrived, what each would have carried: one payload.
    const legacyBodyBytes = results.logEventCost.summary.legacyBodyBytes ?? results.config.payloadBytes;
    results.economy = await measureEconomy(context, legacyBodyBytes);
    results.compression = await measureCompression(context);
  } finally {
    await context.close();
    p.dispose();
  }
  try {
    log('4/5 size');
    results.size = measureSize();
    log('5/5 memory');
    results.memory = await measureMemory();
  } finally {
    await collector.stop();
  }
  results.table = buildRows(results);
  results.durationMs = Date.now() - started;
  results.machine.loadAverageAtEnd = os.loadavg().map((x) => round(x, 2));
  const text = report(results);
  writeFileSync(new URL('./results.json', import.meta.url), `${JSON.stringify(results, null, 2)}\n`);
  console.log(text);
}

/** `--only perTick` or `--only persistence`: that measurement alone, its figures as JSON. */
async function onlyPart() {
  collector = await startCollector({ pages: fileURLToPath(new URL('./pages', import.meta.url)), checkBodies: false });
  const p = profile();
  const context = await p.launch();
  try {
    const figures = ONLY === 'perTick'
      ? await measurePerTick(context)
      : await measurePersistence(context);
    console.log(JSON.stringify({ date: new Date().toISOString(), machine: machine(), [ONLY]: figures }, null, 2));
  } finally {
    await context.close();
    p.dispose();
    await collector.stop();
  }
}

main().catch(async (error) => {
  console.error(error);
  await collector?.stop();
  process.exit(1);
});
