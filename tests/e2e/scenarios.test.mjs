// Delivery scenarios end to end, in headless Chromium against the reference collector:
// a burst, a steady rate, a page closed early, a browser killed, an outage, 429 with
// Retry-After, 413 splitting, a poison event, several tabs, offline. Each asserts the exact
// number of distinct events delivered for its run tag and reports the wire duplicates.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  eventually, sleep, stats, logPaced, drained, browserPids, killBrowser, scenarioFile,
} from './harness.mjs';

const {
  collector, openPage, init, delivered, deliveredCount, deltas, report, scenario, nextPageDelivers,
} = scenarioFile('scenarios');

/** A payload of about 100-500 bytes (JSON), varying with `i`. */
const padded = (run, i) => ({ run, i, kind: 'burst', pad: 'x'.repeat(60 + ((i * 37) % 340)) });

test('burst: 10,000 logEvent calls in a tight loop, all delivered in full batches', { timeout: 90_000 }, scenario(async ({ t, launch, run }) => {
  const N = 10_000;
  const maxBatchEvents = 100; // the default
  const maxBatchBytes = 61_440; // the default
  // The largest event on the wire: the payload plus id, session, seq, ts and keys (< 150 bytes).
  const largest = Math.max(...Array.from({ length: 340 }, (_, i) => JSON.stringify(padded(run, i)).length)) + 150;
  assert.ok(largest * maxBatchEvents < maxBatchBytes, 'full batches are limited by count, not bytes');
  const bound = Math.ceil(N / maxBatchEvents) + 1;

  const context = await launch();
  const page = await openPage(context);
  await init(page, { flushIntervalMs: 1_000 });
  const since = await collector().summary();
  await page.evaluate(async ({ run, N }) => {
    const logged = [];
    for (let i = 0; i < N; i++) {
      logged.push(window.evbuf.logEvent({ run, i, kind: 'burst', pad: 'x'.repeat(60 + ((i * 37) % 340)) }));
    }
    await Promise.all(logged);
  }, { run, N });
  await deliveredCount(since, N, 60_000, `${N} events`);
  const s = await drained(page);
  const d = await deltas(since);
  report(t, 'burst', d, { bound, stats_requests: s.requests, retries: s.retries });
  assert.equal((await delivered(run)).length, N);
  assert.equal(s.dropped.total, 0);
  assert.ok(d.requests <= bound, `${d.requests} requests for ${N} events (at most ${bound})`);
}));

/** Logs N events at `rate` per second in the page, paced against the clock. */
const logSteady = (page, { run, N, rate }) => page.evaluate(async ({ run, N, rate }) => {
  const start = performance.now();
  const logged = [];
  for (let i = 0; i < N; i++) {
    const due = start + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    logged.push(window.evbuf.logEvent({ run, i, kind: 'steady' }));
  }
  await Promise.all(logged);
  return performance.now() - start;
}, { run, N, rate });

test('steady with default options: 50 events/s for 20 s go out in batches of about 50 (the early flush)', { timeout: 60_000 }, scenario(async ({ t, launch, run }) => {
  const rate = 50;
  const N = rate * 20;
  const maxBufferSize = 50; // the default: a send starts once 50 events wait
  const context = await launch();
  const page = await openPage(context);
  await init(page);
  const since = await collector().summary();
  const took = await logSteady(page, { run, N, rate });
  await deliveredCount(since, N, 20_000, `${N} events`);
  const s = await drained(page);
  const d = await deltas(since);
  report(t, 'steady (defaults)', d, { logging_ms: Math.round(took) });
  assert.equal((await delivered(run)).length, N);
  // One request per 50 events, and the tail by the 3 s timer. Fewer only where a slow answer
  // let a batch grow past 50 (the in-flight guard); a timer-only sender would make 7.
  const expected = Math.ceil(N / maxBufferSize);
  assert.ok(d.requests >= expected - 2 && d.requests <= expected + 2,
    `${d.requests} requests for ${N} events at ${rate}/s (about ${expected})`);
  assert.equal(s.dropped.total, 0);
}));

test('steady with large batches: 50 events/s for 20 s, early flush above one interval, go out once per flush interval', { timeout: 60_000 }, scenario(async ({ t, launch, run }) => {
  const rate = 50;
  const N = rate * 20;
  const context = await launch();
  const page = await openPage(context);
  // The early flush above the ~150 events of one interval, so one interval is one request.
  await init(page, { flushIntervalMs: 3_000, maxBufferSize: 10_000, maxBatchEvents: 1_000 });
  const since = await collector().summary();
  const took = await logSteady(page, { run, N, rate });
  await deliveredCount(since, N, 20_000, `${N} events`);
  const s = await drained(page);
  const d = await deltas(since);
  report(t, 'steady (large batches)', d, { logging_ms: Math.round(took) });
  assert.equal((await delivered(run)).length, N);
  // 20 s of logging plus the tail: 7 ticks of 3 s, one more or less by where they fall.
  assert.ok(d.requests >= 6 && d.requests <= 8, `${d.requests} requests in ${Math.round(took)} ms`);
  assert.equal(s.dropped.total, 0);
}));

// Close and crash each run twice: with default options (early flushes race with the end of
// the page) and in a quiet first session where nothing is sent before it ends, so delivery
// rests on the unload path, IndexedDB and the next page. Quiet means no timer, no count
// trigger, and 300 compact events (~170 bytes each) below the byte trigger of a full batch.
const QUIET = { flushIntervalMs: 60_000, maxBufferSize: 100_000, maxBatchBytes: 65_536 };
const FIRST_SESSIONS = [['default options', {}, false], ['nothing sent before', QUIET, true]];

for (const [variant, options, quiet] of FIRST_SESSIONS) {
  test(`close early (${variant}): the page closed 50 ms after the last call, all delivered after reopening`, { timeout: 60_000 }, scenario(async ({ t, launch, run }) => {
    const N = 300;
    const context = await launch();
    const page = await openPage(context);
    await init(page, options);
    const since = await collector().summary();
    // The calls only: their promises are not awaited, as a page that leaves right away.
    // How long after the last call they were all durable is kept for the report.
    await page.evaluate(({ run, N }) => {
      const logged = [];
      for (let i = 0; i < N; i++) logged.push(window.evbuf.logEvent({ run, i }));
      const last = performance.now();
      Promise.all(logged).then(() => { window.durableAfterMs = performance.now() - last; });
    }, { run, N });
    await sleep(50);
    const atClose = await page.evaluate(() => ({ durable: window.durableAfterMs, stats: window.evbuf.stats() }));
    await page.close();
    await context.close();
    const beforeReopen = await deltas(since);

    const { s, d } = await nextPageDelivers(launch, since, N);
    report(t, `close early (${variant})`, d, {
      durable_after_ms: atClose.durable === undefined ? 'not yet' : Math.round(atClose.durable),
      requests_at_close: atClose.stats.requests, unpersisted_at_close: atClose.stats.unpersisted,
      delivered_before_reopen: beforeReopen.count, requests_before_reopen: beforeReopen.requests,
      loaded_after: s.loaded,
    });
    if (quiet) assert.equal(atClose.stats.requests, 0, 'precondition: nothing sent before the close');
    // Duplicates are not bounded here: what the unload path delivered stays stored when the
    // page is gone before the answer, and the next page sends it again (by design).
    assert.equal((await delivered(run)).length, N);
    assert.equal(s.dropped.total, 0);
  }, { unloadPath: true }));
}

for (const [variant, options, quiet] of FIRST_SESSIONS) {
  test(`crash (${variant}): Chromium killed with SIGKILL 100 ms after the last event was stored, all delivered after relaunch`, { timeout: 60_000 }, scenario(async ({ t, p, launch, run }) => {
    const N = 300;
    const context = await launch();
    const page = await openPage(context);
    await init(page, options);
    const pids = browserPids(p.dir);
    assert.ok(pids.length >= 1, 'found the browser process');
    const since = await collector().summary();
    const atStored = await page.evaluate(async ({ run, N }) => {
      const logged = [];
      for (let i = 0; i < N; i++) logged.push(window.evbuf.logEvent({ run, i }));
      await Promise.all(logged); // resolved: committed to IndexedDB
      return window.evbuf.stats();
    }, { run, N });
    await sleep(100);
    await killBrowser(context, p, pids);
    const beforeRelaunch = await deltas(since);

    const { s, d } = await nextPageDelivers(launch, since, N);
    report(t, `crash (${variant})`, d, {
      stored_at_kill: atStored.stored, queued_bytes_at_kill: atStored.queuedBytes,
      delivered_before_kill: beforeRelaunch.count, requests_before_kill: beforeRelaunch.requests,
      loaded_after: s.loaded,
    });
    assert.equal(atStored.unpersisted, 0, 'every event was durable before the kill');
    if (quiet) {
      assert.equal(beforeRelaunch.requests, 0, 'precondition: nothing sent before the kill');
      assert.equal(s.loaded, N, 'the relaunched page loaded every stored event');
    }
    assert.equal((await delivered(run)).length, N);
    assert.equal(s.dropped.total, 0);
  }));
}

test('outage: 10 s of 503 while 1,000 events are logged at 100/s, retried with backoff, all delivered', { timeout: 90_000 }, scenario(async ({ t, launch, run }) => {
  const N = 1_000;
  const outageMs = 10_000;
  const retry = { baseMs: 500, maxMs: 4_000 };
  // The jitter is an input: fixed at 0.5 (evbuf draws it from Math.random), each wait is
  // what the formula gives, min(maxMs, baseMs * 2^attempt) * 0.5 floored at 50 ms.
  const jitter = 0.5;
  const formulaWait = (attempt) => Math.max(50, Math.floor(Math.min(retry.maxMs, retry.baseMs * 2 ** attempt) * jitter));
  const context = await launch();
  const page = await openPage(context);
  const sends = [];
  page.on('response', (response) => {
    if (response.url() === collector().endpoint) sends.push({ at: Date.now(), status: response.status() });
  });
  await page.evaluate((jitter) => { Math.random = () => jitter; }, jitter);
  await init(page, { retry });
  const since = await collector().summary();
  await collector().control({ fail_status: 503, fail_for_ms: outageMs });
  const outageStart = Date.now();
  await logPaced(page, { run, N, everyMs: 10, kind: 'outage' });
  const during = await stats(page);
  await deliveredCount(since, N, 40_000, `${N} events`);
  const s = await drained(page);
  const d = await deltas(since);
  const failed = d.rejected['503'] ?? 0;
  const failedAt = sends.filter((x) => x.status === 503).map((x) => x.at - outageStart);
  const gaps = failedAt.slice(1).map((at, i) => at - failedAt[i]);
  report(t, 'outage', d, { failed_503: failed, retries: s.retries, gaps_ms: gaps.join('/') });
  assert.equal((await delivered(run)).length, N);
  assert.equal(during.failed > 0 || during.retries > 0, true, 'the sender saw the outage');
  const told = (await page.evaluate(() => window.evbufErrorCodes)).filter((e) => e.code === 'send-failed');
  assert.ok(told.length > 0 && told.every((e) => e.status === 503 && e.retryAt > outageStart),
    `onError got { code: 'send-failed', status: 503, retryAt } for each failure: ${JSON.stringify(told.slice(0, 3))}`);
  // Each retry comes the formula's wait after the failure before it (plus a request's time
  // and a late timer), so the gaps grow 250, 500, 1000, 2000 ms: a fixed interval, no
  // backoff or a missing cap all fail here.
  assert.ok(gaps.length >= 4, `${failed} failed requests: too few to see the backoff grow`);
  gaps.forEach((gap, attempt) => {
    const wait = formulaWait(attempt);
    assert.ok(gap >= wait - 20 && gap <= wait + 300,
      `retry ${attempt + 1} came ${gap} ms after the failure (the formula waits ${wait} ms): ${gaps.join('/')}`);
  });
  // And so the count: the tries that fit in the outage after the first failure.
  let allowed = 0;
  for (let at = failedAt[0]; at <= outageMs + 300; at += formulaWait(allowed - 1)) allowed++;
  assert.ok(failed <= allowed, `${failed} requests failed during the outage (the formula allows ${allowed})`);
  assert.equal(s.dropped.total, 0);
}));

test('429 with Retry-After: 2 — the retry waits at least ~2 s, all delivered', { timeout: 60_000 }, scenario(async ({ t, launch, run }) => {
  const N = 20;
  const context = await launch();
  const page = await openPage(context);
  const sends = [];
  page.on('request', (request) => {
    if (request.url() === collector().endpoint) sends.push(Date.now());
  });
  await init(page, { flushIntervalMs: 60_000, maxBufferSize: 10_000 });
  await collector().control({ fail_status: 429, fail_count: 1, retry_after: '2' });
  const since = await collector().summary();
  const flushed = await page.evaluate(async ({ run, N }) => {
    await Promise.all(Array.from({ length: N }, (_, i) => window.evbuf.logEvent({ run, i, kind: '429' })));
    return window.evbuf.flush().then(() => 'resolved', (e) => `rejected: ${e.message}`);
  }, { run, N });
  await deliveredCount(since, N, 20_000, `${N} events`);
  const s = await drained(page);
  const d = await deltas(since);
  const events = await delivered(run);
  const waited = sends.length >= 2 ? sends[1] - sends[0] : NaN;
  const receivedAfter = Math.min(...events.map((e) => e.received_at)) - sends[0];
  report(t, '429 Retry-After', d, { retry_after_ms: waited, received_after_ms: receivedAfter, flush: flushed });
  assert.equal(events.length, N);
  assert.deepEqual(d.rejected, { 429: 1 });
  assert.equal(d.requests, 2, 'one refused request, one retry');
  assert.ok(waited >= 1_800, `the retry came ${waited} ms after the 429 request`);
  assert.ok(receivedAfter >= 1_800, `delivered ${receivedAfter} ms after the 429 request`);
  assert.ok(waited <= 8_000, `the retry came ${waited} ms after (Retry-After: 2, not the 60 s cap)`);
}));

test('413 above 8,000 bytes: batches are split, every event delivered, none dropped', { timeout: 60_000 }, scenario(async ({ t, launch, run }) => {
  const N = 300;
  const context = await launch();
  const page = await openPage(context);
  await init(page, { flushIntervalMs: 500 });
  await collector().control({ max_body_bytes: 8_000 });
  const since = await collector().summary();
  // ~150-byte payloads: a batch of 100 is ~25 KB, far above 8,000; one event is far below.
  await page.evaluate(async ({ run, N }) => {
    const logged = [];
    for (let i = 0; i < N; i++) logged.push(window.evbuf.logEvent({ run, i, kind: '413', pad: 'y'.repeat(120) }));
    await Promise.all(logged);
  }, { run, N });
  await deliveredCount(since, N, 30_000, `${N} events`);
  const s = await drained(page);
  const d = await deltas(since);
  report(t, '413 split', d, { dropped_oversize: s.dropped.oversize });
  assert.equal((await delivered(run)).length, N);
  assert.ok((d.rejected['413'] ?? 0) >= 1, 'the server did refuse large batches');
  assert.equal(s.dropped.oversize, 0);
  assert.equal(s.dropped.total, 0);
}));

test('poison: one event the server rejects with 400 is dropped alone, the other 99 delivered', { timeout: 60_000 }, scenario(async ({ t, launch, run }) => {
  const N = 100;
  const poisonAt = 37;
  const context = await launch();
  const page = await openPage(context);
  await init(page, { flushIntervalMs: 500 });
  await collector().control({ poison_key: 'poison' });
  const since = await collector().summary();
  await page.evaluate(async ({ run, N, poisonAt }) => {
    const logged = [];
    for (let i = 0; i < N; i++) {
      logged.push(window.evbuf.logEvent(i === poisonAt ? { run, i, poison: true } : { run, i, kind: 'poison' }));
    }
    await Promise.all(logged);
  }, { run, N, poisonAt });
  const s = await eventually(async () => {
    const s = await stats(page);
    return s.dropped.poison === 1 && s.queued === 0 && s.inFlight === 0 && s;
  }, 30_000, 'the poison event to be dropped and the rest sent');
  const d = await deltas(since);
  const errors = await page.evaluate(() => window.evbufErrors);
  const codes = await page.evaluate(() => window.evbufErrorCodes);
  assert.ok(codes.some((e) => e.code === 'dropped' && e.reason === 'poison' && e.events === 1 && e.status === 400),
    `onError got { code: 'dropped', reason: 'poison', events: 1, status: 400 }: ${JSON.stringify(codes)}`);
  report(t, 'poison', d, { dropped_poison: s.dropped.poison });
  const events = await delivered(run);
  assert.equal(events.length, N - 1);
  assert.ok(!events.some((e) => e.payload.i === poisonAt), 'the poison event is not stored');
  assert.deepEqual(events.map((e) => e.payload.i).sort((a, b) => a - b),
    Array.from({ length: N }, (_, i) => i).filter((i) => i !== poisonAt));
  assert.equal(s.dropped.poison, 1);
  assert.equal(s.dropped.total, 1);
  assert.ok(errors.some((m) => /400|reject|poison/i.test(m)), `onError told about it: ${JSON.stringify(errors)}`);
}, { missing: 1 }));

test('several tabs: two pages logging 1,000 each, 2,000 distinct events, no wire duplicates', { timeout: 60_000 }, scenario(async ({ t, launch, run }) => {
  const N = 1_000;
  const context = await launch();
  const pages = [await openPage(context), await openPage(context)];
  await Promise.all(pages.map((page) => init(page, { flushIntervalMs: 500 })));
  const since = await collector().summary();
  await Promise.all(pages.map((page, tab) => page.evaluate(async ({ run, tab, N }) => {
    const logged = [];
    for (let i = 0; i < N; i++) logged.push(window.evbuf.logEvent({ run, tab, i, kind: 'tabs' }));
    await Promise.all(logged);
  }, { run, tab, N })));
  await deliveredCount(since, 2 * N, 30_000, `${2 * N} events`);
  const all = await Promise.all(pages.map((page) => stats(page)));
  const leader = pages[all.findIndex((s) => s.sender)];
  assert.ok(leader, 'one tab sends');
  await drained(leader);
  const d = await deltas(since);
  const st = await Promise.all(pages.map((page) => stats(page)));
  report(t, 'several tabs', d, { leaders: st.filter((s) => s.sender).length,
    tab_requests: st.map((s) => s.requests).join('/') });
  const events = await delivered(run);
  assert.equal(events.length, 2 * N);
  for (const tab of [0, 1]) assert.equal(events.filter((e) => e.payload.tab === tab).length, N);
  assert.equal(st.filter((s) => s.sender).length, 1, 'exactly one sender');
  assert.equal(d.duplicates, 0, 'wire duplicates');
}));

test('offline while logging, then back online: all delivered', { timeout: 60_000 }, scenario(async ({ t, launch, run }) => {
  const N = 600;
  const context = await launch();
  const page = await openPage(context);
  await init(page, { flushIntervalMs: 300, retry: { baseMs: 200, maxMs: 2_000 } });
  const since = await collector().summary();
  // 200 events/s for 3 s; offline from 1 s to 2.5 s into it.
  // The page's own requests: an offline context cannot reach the collector to be counted.
  const sends = [];
  page.on('request', (request) => {
    if (request.url() === collector().endpoint) sends.push(Date.now());
  });
  const logging = logPaced(page, { run, N, everyMs: 5, kind: 'offline' });
  await sleep(1_000);
  await context.setOffline(true);
  const offlineAt = await collector().summary();
  const offlineSince = Date.now();
  const offlineStats = await stats(page);
  await sleep(1_500);
  const offline = await stats(page);
  const offlineUntil = Date.now();
  await context.setOffline(false);
  // A send that started just before the switch may end in the window, not one that starts.
  const whileOffline = sends.filter((at) => at > offlineSince + 100 && at < offlineUntil).length;
  await logging;
  await deliveredCount(since, N, 30_000, `${N} events`);
  const s = await drained(page);
  const d = await deltas(since);
  report(t, 'offline', d, { delivered_before_offline: offlineAt.count - since.count,
    requests_while_offline: whileOffline });
  assert.equal(offline.online, false, 'the SDK saw it was offline');
  assert.ok(offline.queued > 0, 'events waited while offline');
  assert.equal(whileOffline, 0, 'no request started while offline');
  assert.equal(offline.requests + offline.unloadRequests,
    offlineStats.requests + offlineStats.unloadRequests, 'the SDK counted no request while offline');
  assert.equal(offline.failed, offlineStats.failed, 'no send failed while offline: none was tried');
  assert.equal((await delivered(run)).length, N);
  assert.equal(s.dropped.total, 0);
}));
