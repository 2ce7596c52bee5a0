// Delivery on conditions loopback hides (issue 9), end to end in headless Chromium against
// the reference collector: a server that never answers for a while, tab switches with slow
// answers, a kill right after a burst, a page that logs and leaves at once, senders closing
// one after another among five tabs, a follower whose IndexedDB writes fail. Each asserts that every logged event reached the
// collector exactly (by tab and index) and bounds the wire duplicates.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  assertNumberedAsLogged, eventually, sleep, stats, logPaced, drained, browserPids, killBrowser, scenarioFile,
} from './harness.mjs';

const {
  collector, openPage, init, delivered, assertExactly, deliveredCount, deltas, report, scenario, nextPageDelivers,
} = scenarioFile('delivery');

/** One batch: the most a send whose answer was lost may repeat (maxBatchEvents default). */
const BATCH = 100;

/** How a page-side promise ended within `ms`: 'resolved', 'rejected: …' or 'still pending'. */
async function settleWithin(page, fn, ms) {
  const started = Date.now();
  const ended = page.evaluate((fn) => window.evbuf[fn]().then(() => 'resolved', (e) => `rejected: ${e?.message ?? e}`), fn);
  const outcome = await Promise.race([ended, sleep(ms).then(() => 'still pending')]);
  return { outcome, ms: Date.now() - started };
}

/** Headless Chromium never hides a page. This fakes what a tab switch looks like to the
 *  page: `visibilityState` (and `hidden`) change, then `visibilitychange` fires. */
function fakeVisibility(page) {
  return page.evaluate(() => {
    let state = 'visible';
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => state });
    Object.defineProperty(document, 'hidden', { configurable: true, get: () => state === 'hidden' });
    window.setVisibility = (next) => {
      if (next === state) return;
      state = next;
      document.dispatchEvent(new Event('visibilitychange'));
    };
  });
}

/** Opens a page of `context`, starts evbuf there and waits until it is the sender. */
async function openSender(context, options) {
  const sender = await openPage(context);
  await init(sender, options);
  await eventually(async () => (await stats(sender)).sender, 10_000, 'the first tab to send');
  return sender;
}

/** Index of the page whose evbuf is the origin's sender, or -1. */
async function senderOf(pages) {
  const all = await Promise.all(pages.map((page) => stats(page)));
  return all.findIndex((s) => s.sender);
}

test('hang: the server holds every request for 10 s, then answers; 300 events at 30/s all delivered within one timeout plus one backoff of the recovery, flush and shutdown settle', { timeout: 75_000 }, scenario(async ({ t, launch, run }) => {
  const N = 300;
  const hangMs = 10_000;
  const sendTimeoutMs = 3_000;
  const retry = { baseMs: 500, maxMs: 2_000 };
  const flushIntervalMs = 3_000; // the default, named for the bound below
  // A request held at the recovery times out, then one backoff; a flush interval of slack.
  const boundAfterRecovery = sendTimeoutMs + retry.maxMs + flushIntervalMs;
  const context = await launch();
  const page = await openPage(context);
  await init(page, { sendTimeoutMs, retry, flushIntervalMs });
  const since = await collector().summary();
  await collector().control({ hang_for_ms: hangMs });
  // Taken after the collector set its window: never earlier than the real recovery.
  const recoveredAt = Date.now() + hangMs;
  const logging = logPaced(page, { run, N, everyMs: 1000 / 30, kind: 'hang' });
  await sleep(4_000);
  // A flush while requests hang: it must settle (either way) by the delivery deadline.
  const flushed = await settleWithin(page, 'flush', recoveredAt + boundAfterRecovery - Date.now());
  await logging;
  const held = (await collector().summary()).hung_requests - since.hung_requests;
  const all = await eventually(async () => {
    const s = await collector().summary();
    return s.count - since.count >= N && s;
  }, recoveredAt + boundAfterRecovery + 5_000 - Date.now(), `${N} events (the recovery was at ${new Date(recoveredAt).toISOString()})`)
    .catch((error) => error);
  const events = await delivered(run);
  const lastAt = Math.max(...events.map((e) => e.received_at));
  const afterRecovery = lastAt - recoveredAt;
  const s = await stats(page);
  report(t, 'hang', await deltas(since), {
    held_requests: held, flush: `${flushed.outcome} after ${flushed.ms} ms`,
    delivered_after_recovery_ms: events.length === N ? afterRecovery : `never (${events.length} of ${N})`,
    retries: s.retries, failed: s.failed,
  });
  assert.ok(held >= 1, 'precondition: the collector held requests');
  assert.notEqual(flushed.outcome, 'still pending', `flush() during the hang did not settle in ${flushed.ms} ms`);
  assert.ok(!(all instanceof Error), all.message);
  assert.ok(afterRecovery <= boundAfterRecovery,
    `the last event arrived ${afterRecovery} ms after the recovery (at most ${boundAfterRecovery})`);

  // shutdown() while the server hangs again: it resolves once its send times out.
  await drained(page);
  await collector().control({ hang_for_ms: 60_000 });
  const extra = 10;
  await page.evaluate(async ({ run, N, extra }) => {
    await Promise.all(Array.from({ length: extra }, (_, k) => window.evbuf.logEvent({ run, i: N + k, kind: 'hang' })));
  }, { run, N, extra });
  const shutdownBound = 2 * sendTimeoutMs + 2_000;
  const shut = await settleWithin(page, 'shutdown', shutdownBound + 5_000);
  t.diagnostic(`hang: shutdown() during a hang: ${shut.outcome} after ${shut.ms} ms`);
  assert.equal(shut.outcome, 'resolved', `shutdown() during a hang: ${shut.outcome} after ${shut.ms} ms`);
  assert.ok(shut.ms <= shutdownBound, `shutdown() took ${shut.ms} ms (at most ${shutdownBound})`);

  // What shutdown could not send stays stored for the next page.
  await collector().control({});
  const next = await openPage(context);
  await init(next, { flushIntervalMs: 500 });
  await deliveredCount(since, N + extra, 20_000, `${N + extra} events`);
  await drained(next);
  const d = await deltas(since);
  await assertExactly(run, [N + extra]);
  // Held requests store nothing and every answer was heard: nothing may arrive twice.
  assert.equal(d.duplicates, 0, `${d.duplicates} wire duplicates`);
}));

test('tab switches: hidden and shown every 1.5 s while 600 events are logged at 30/s, answers take 400 ms: all delivered, at most 1% duplicates', { timeout: 60_000 }, scenario(async ({ t, launch, run }) => {
  const N = 600;
  const periodMs = 1_500;
  const bound = Math.floor(N / 100);
  const context = await launch();
  const page = await openPage(context);
  await fakeVisibility(page);
  await init(page);
  await collector().control({ delay_ms: 400 });
  const since = await collector().summary();
  // Each period: hidden, then shown half a period later.
  await page.evaluate((periodMs) => {
    window.hides = 0;
    window.switching = setInterval(() => {
      window.setVisibility('hidden');
      window.hides++;
      setTimeout(() => window.setVisibility('visible'), periodMs / 2);
    }, periodMs);
  }, periodMs);
  await logPaced(page, { run, N, everyMs: 1000 / 30, kind: 'switch' });
  const hides = await page.evaluate(() => {
    clearInterval(window.switching);
    window.setVisibility('visible');
    return window.hides;
  });
  const logged = Date.now();
  await deliveredCount(since, N, 20_000, `${N} events`).catch(() => {});
  const deliveredAfter = Date.now() - logged;
  const s = await drained(page).catch(() => stats(page));
  const d = await deltas(since);
  report(t, 'tab switches', d, { hides, unload_requests: s.unloadRequests, tail_ms: deliveredAfter });
  await assertExactly(run, [N]);
  assert.ok(d.duplicates <= bound, `${d.duplicates} wire duplicates over ${hides} tab switches (at most ${bound})`);
}, { unloadPath: true }));

test('kill after a burst: SIGKILL 100 ms after the last of 500 logEvent calls, fast answers: all delivered after relaunch, at most one batch again', { timeout: 60_000 }, scenario(async ({ t, p, launch, run }) => {
  const N = 500;
  const context = await launch();
  const page = await openPage(context);
  await init(page);
  const pids = browserPids(p.dir);
  assert.ok(pids.length >= 1, 'found the browser process');
  const since = await collector().summary();
  // The calls only, as a page does; when they were all durable is kept for the report.
  // ~500-byte events, as ARCHITECTURE.md measures bursts: their writes still run when the
  // first answers come back.
  await page.evaluate(({ run, N }) => {
    const logged = [];
    for (let i = 0; i < N; i++) logged.push(window.evbuf.logEvent({ run, i, kind: 'kill', pad: 'x'.repeat(440) }));
    const last = performance.now();
    Promise.all(logged).then(() => { window.durableAfterMs = performance.now() - last; });
  }, { run, N });
  await sleep(95);
  const atKill = await page.evaluate(() => ({ durable: window.durableAfterMs, stats: window.evbuf.stats() }));
  await killBrowser(context, p, pids);
  const beforeRelaunch = await deltas(since);

  const { s, d } = await nextPageDelivers(launch, since, N);
  report(t, 'kill after burst', d, {
    durable_after_ms: atKill.durable === undefined ? 'not yet' : Math.round(atKill.durable),
    acknowledged_at_kill: atKill.stats.acknowledged, delivered_before_relaunch: beforeRelaunch.count,
    requests_before_relaunch: beforeRelaunch.requests, loaded_after: s.loaded, bound: BATCH,
  });
  await assertExactly(run, [N]);
  assert.ok(d.duplicates <= BATCH, `${d.duplicates} wire duplicates; ${atKill.stats.acknowledged} of ${N} ` +
    `were acknowledged at the kill, ${s.loaded} loaded again after it (at most ${BATCH})`);
}));

// A page that logs and leaves in the same task (`logEvent(…); location.href = …`, or the tab
// closed): it hides before the write of those events completes, and the browser drops the
// write more often than not. Before they went out on the unload path, most runs lost all 100.
for (const leave of ['navigates away', 'is closed']) {
  test(`log and leave: 100 events logged, then the page ${leave} at once, nothing sent before: all delivered`, { timeout: 60_000 }, scenario(async ({ t, launch, run }) => {
    const N = 100; // ~35 KB: within the keepalive budget
    const context = await launch();
    const page = await openPage(context);
    await init(page, { flushIntervalMs: 60_000, maxBufferSize: 100_000 });
    const since = await collector().summary();
    const logAll = ({ run, N, leave }) => {
      for (let i = 0; i < N; i++) window.evbuf.logEvent({ run, i, kind: 'leave', pad: 'x'.repeat(300) });
      if (leave) location.href = 'about:blank';
    };
    if (leave === 'navigates away') {
      await page.evaluate(logAll, { run, N, leave: true });
      await page.waitForURL('about:blank');
    } else {
      await page.evaluate(logAll, { run, N, leave: false });
      await page.close({ runBeforeUnload: true });
    }
    await deliveredCount(since, N, 10_000, `${N} events from the unload path`);
    await context.close();
    const { s, d } = await nextPageDelivers(launch, since, N);
    report(t, `log and ${leave === 'is closed' ? 'close' : 'navigate'}`, d, { write_survived: s.loaded > 0 });
    await assertExactly(run, [N]);
  }, { unloadPath: true }));
}

// An app logs its own last words ("session end", "time on page") from the pagehide and
// visibilitychange handlers it adds after init(): they run after evbuf's, which has posted
// what it held, and no later lifecycle event comes. Before such calls went out at once
// while the page is hidden, their write died with the page in about one session in five.
test('the app logs last: ten sessions, each closed 200 ms after a click, whose own pagehide and visibilitychange handlers log as it closes: all delivered', { timeout: 90_000 }, scenario(async ({ t, launch, run }) => {
  const SESSIONS = 10;
  const PER_SESSION = 3; // the click, then one event from each of the app's handlers
  const context = await launch();
  const since = await collector().summary();
  for (let tab = 0; tab < SESSIONS; tab++) {
    const page = await openPage(context);
    await init(page);
    await page.evaluate(({ run, tab }) => {
      const opened = performance.now();
      // A trace the next page can read: proof that the handlers ran as the page closed.
      const ran = (kind) => localStorage.setItem(`last-${run}-${tab}-${kind}`, '1');
      addEventListener('pagehide', () => {
        window.evbuf.logEvent({ run, tab, i: 1, kind: 'session end' });
        ran('pagehide');
      });
      document.addEventListener('visibilitychange', () => {
        if (document.visibilityState !== 'hidden') return;
        window.evbuf.logEvent({ run, tab, i: 2, kind: 'time on page', ms: performance.now() - opened });
        ran('hidden');
      });
      window.evbuf.logEvent({ run, tab, i: 0, kind: 'click' });
    }, { run, tab });
    await sleep(200);
    await page.close({ runBeforeUnload: true });
  }
  const closed = await deltas(since);
  const check = await openPage(context);
  const traces = await check.evaluate(({ run, SESSIONS }) => Array.from({ length: SESSIONS },
    (_, tab) => ['pagehide', 'hidden'].every((kind) => localStorage.getItem(`last-${run}-${tab}-${kind}`) === '1')),
  { run, SESSIONS });
  await context.close();
  const total = SESSIONS * PER_SESSION;
  // Whatever is missing, assertExactly names it.
  const next = await nextPageDelivers(launch, since, total).catch(() => null);
  const d = next?.d ?? await deltas(since);
  report(t, 'app logs last', d, { delivered_as_closed: closed.count, loaded_after: next?.s.loaded });
  assert.ok(traces.every(Boolean), `precondition: both handlers ran as each page closed: ${JSON.stringify(traces)}`);
  await assertExactly(run, Array(SESSIONS).fill(PER_SESSION));
}, { unloadPath: true }));

// The same before the client has started: init() is called and not awaited, as an app
// boots, and the page leaves while the module loads and storage opens. The calls wait in
// the entry; before they went out on the unload path, every run lost them all.
test('log and leave before init finished: 20 events logged right after init(), then the page navigates away: all delivered', { timeout: 60_000 }, scenario(async ({ t, launch, run }) => {
  const N = 20;
  const context = await launch();
  const page = await openPage(context);
  const since = await collector().summary();
  const statsAtLeave = await page.evaluate(({ run, N, endpoint }) => {
    window.evbuf.init({ endpoint, flushIntervalMs: 60_000 });
    for (let i = 0; i < N; i++) window.evbuf.logEvent({ run, i, kind: 'boot' });
    const at = window.evbuf.stats();
    location.href = 'about:blank';
    return at;
  }, { run, N, endpoint: collector().endpoint });
  await page.waitForURL('about:blank');
  assert.equal(statsAtLeave.started, false, 'precondition: the page left before init() finished');
  await deliveredCount(since, N, 10_000, `${N} events from the unload path`);
  await context.close();
  const { d } = await nextPageDelivers(launch, since, 0);
  report(t, 'log before init and navigate', d, { waiting_at_leave: statsAtLeave.waitingCalls });
  await assertExactly(run, [N]);
  assertNumberedAsLogged(await delivered(run));
}, { unloadPath: true }));

// The app's last words before init() finished: its own pagehide and visibilitychange
// handlers, added after init() was called, log as the page closes, while the module still
// loads (held 3 s here). They run after the entry's handlers, which posted the calls
// waiting then; before the calls made later were posted too, both were lost.
test('the app logs last before init finished: its pagehide and visibilitychange handlers log as the page closes while the module loads: all delivered', { timeout: 60_000 }, scenario(async ({ launch, run }) => {
  const context = await launch();
  const page = await openPage(context);
  await page.route('**/evbuf_bg.wasm', async (route) => {
    await sleep(3_000);
    await route.continue().catch(() => {});
  });
  const since = await collector().summary();
  await page.evaluate(({ run, endpoint }) => {
    const { init, logEvent, stats } = window.evbuf;
    init({ endpoint, flushIntervalMs: 60_000 }).catch(() => {});
    const ran = (kind) => localStorage.setItem(`early-last-${run}-${kind}`, String(stats().started));
    addEventListener('pagehide', () => {
      logEvent({ run, i: 1, kind: 'session end' });
      ran('pagehide');
    });
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState !== 'hidden') return;
      logEvent({ run, i: 2, kind: 'time on page' });
      ran('hidden');
    });
    logEvent({ run, i: 0, kind: 'click' });
  }, { run, endpoint: collector().endpoint });
  await page.close({ runBeforeUnload: true });
  await deliveredCount(since, 3, 10_000, '3 events from the unload path').catch(() => {});
  const check = await openPage(context);
  const started = await check.evaluate((run) => ['pagehide', 'hidden'].map((kind) => localStorage.getItem(`early-last-${run}-${kind}`)), run);
  assert.deepEqual(started, ['false', 'false'], 'precondition: both handlers ran as the page closed, before init() finished');
  await assertExactly(run, [3]);
  assertNumberedAsLogged(await delivered(run));
}, { unloadPath: true }));

test('log and leave before init finished, beyond the keepalive budget in UTF-8: what fits goes out, not nothing', { timeout: 60_000 }, scenario(async ({ t, launch, run }) => {
  // 40 events of 1,000 '€' (3 bytes each in UTF-8, 1 code unit in JS): ~120 KB on the wire
  // but ~40,000 code units. Counted in code units, all go in one post the browser refuses.
  const N = 40;
  const context = await launch();
  const page = await openPage(context);
  const since = await collector().summary();
  await page.evaluate(({ run, N, endpoint }) => {
    window.evbuf.init({ endpoint, flushIntervalMs: 60_000 });
    for (let i = 0; i < N; i++) window.evbuf.logEvent({ run, i, kind: 'boot-wide', pad: '€'.repeat(1_000) });
    location.href = 'about:blank';
  }, { run, N, endpoint: collector().endpoint });
  await page.waitForURL('about:blank');
  const d = await eventually(async () => {
    const now = await deltas(since);
    return now.count > 0 && now;
  }, 10_000, 'events from the unload path');
  report(t, 'log before init beyond the budget', d);
  assert.ok(d.count >= 15 && d.count < N, `${d.count} of ${N} delivered: a budget's worth (about 19)`);
}, { unloadPath: true }));

test('a tab switch before init finished: the waiting calls are posted on hide, then not stored again', { timeout: 60_000 }, scenario(async ({ t, launch, run }) => {
  const N = 20;
  const context = await launch();
  const page = await openPage(context);
  await fakeVisibility(page);
  const since = await collector().summary();
  const started = await page.evaluate(async ({ run, N, endpoint }) => {
    const starting = window.evbuf.init({ endpoint, flushIntervalMs: 500 });
    const logged = [];
    for (let i = 0; i < N; i++) logged.push(window.evbuf.logEvent({ run, i, kind: 'switch-boot' }));
    const before = window.evbuf.stats().started;
    window.setVisibility('hidden');
    window.setVisibility('visible');
    await starting;
    await Promise.all(logged);
    return before;
  }, { run, N, endpoint: collector().endpoint });
  assert.equal(started, false, 'precondition: hidden before init() finished');
  await deliveredCount(since, N, 10_000, `${N} events`);
  const s = await drained(page);
  const d = await deltas(since);
  report(t, 'tab switch before init', d, { stored: s.persisted });
  await assertExactly(run, [N]);
  assert.equal(d.duplicates, 0, 'posted once, not stored and sent again');
  assert.equal(s.persisted, 0, 'the posted calls did not reach storage');
}, { unloadPath: true }));

test('log and leave before init finished: a call too large for what is left of the keepalive budget does not stop the smaller ones after it', { timeout: 60_000 }, scenario(async ({ launch, run }) => {
  // i = 0 takes 40 KB of the budget; i = 1 (30 KB) no longer fits, the ten of 500 B after it do.
  const context = await launch();
  const page = await openPage(context);
  const before = await page.evaluate(({ run, endpoint }) => {
    window.evbuf.init({ endpoint, flushIntervalMs: 60_000 });
    window.evbuf.logEvent({ run, i: 0, kind: 'boot-sizes', pad: 'x'.repeat(40_000) });
    window.evbuf.logEvent({ run, i: 1, kind: 'boot-sizes', pad: 'x'.repeat(30_000) });
    for (let i = 2; i < 12; i++) window.evbuf.logEvent({ run, i, kind: 'boot-sizes', pad: 'x'.repeat(500) });
    const started = window.evbuf.stats().started;
    location.href = 'about:blank';
    return started;
  }, { run, endpoint: collector().endpoint });
  await page.waitForURL('about:blank');
  assert.equal(before, false, 'precondition: the page left before init() finished');
  // Waited for, then asserted: the assertion says which arrived.
  await eventually(async () => (await delivered(run)).length >= 11, 10_000, '11 events from the unload path')
    .catch(() => {});
  const seen = (await delivered(run)).map((e) => e.payload.i).sort((a, b) => a - b);
  assert.deepEqual(seen, [0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], 'all but the one that did not fit');
  // The server sees what was lost: its seq (2) is missing in the page's session.
}, { unloadPath: true, missing: 1 }));

test('calls waiting for init keep the time of the call: logged 1 s before init(), their ts is when they were made', { timeout: 60_000 }, scenario(async ({ launch, run }) => {
  const context = await launch();
  const page = await openPage(context);
  const { before, after } = await page.evaluate(async ({ run, endpoint }) => {
    const before = Date.now();
    const logged = [0, 1, 2].map((i) => window.evbuf.logEvent({ run, i, kind: 'early' }));
    const after = Date.now();
    await new Promise((r) => setTimeout(r, 1_000));
    await window.evbuf.init({ endpoint, flushIntervalMs: 60_000 });
    await Promise.all(logged);
    await window.evbuf.flush();
    return { before, after };
  }, { run, endpoint: collector().endpoint });
  const events = await delivered(run);
  assert.equal(events.length, 3);
  for (const e of events) assert.ok(e.ts >= before && e.ts <= after, `ts ${e.ts} is the call's (${before}..${after}), not init's`);
}));

test('a tab switch before init finished, the post answered 503: the calls wait again in their place, delivered in the order they were made', { timeout: 60_000 }, scenario(async ({ launch, run }) => {
  const context = await launch();
  const page = await openPage(context);
  await fakeVisibility(page);
  await collector().control({ fail_status: 503, fail_count: 1 });
  await page.evaluate(async ({ run, endpoint }) => {
    const starting = window.evbuf.init({ endpoint, flushIntervalMs: 60_000 });
    const logged = [];
    for (let i = 0; i < 5; i++) logged.push(window.evbuf.logEvent({ run, i, kind: 'requeue' }));
    window.setVisibility('hidden');
    window.setVisibility('visible');
    for (let i = 5; i < 10; i++) logged.push(window.evbuf.logEvent({ run, i, kind: 'requeue' }));
    await starting;
    await Promise.all(logged);
    await window.evbuf.flush();
  }, { run, endpoint: collector().endpoint });
  assert.deepEqual((await collector().summary()).rejected_requests, { 503: 1 }, 'precondition: the post on hide failed');
  const events = await delivered(run);
  assert.deepEqual(events.sort((a, b) => a.seq - b.seq).map((e) => e.payload.i), Array.from({ length: 10 }, (_, i) => i));
}, { unloadPath: true }));

test('a tab switch before init finished, the post never answered: it times out after sendTimeoutMs and the calls are logged by the client', { timeout: 60_000 }, scenario(async ({ launch, run }) => {
  const context = await launch();
  const page = await openPage(context);
  await fakeVisibility(page);
  await collector().control({ hang_count: 1 });
  const outcome = await page.evaluate(async ({ run, endpoint }) => {
    const starting = window.evbuf.init({ endpoint, flushIntervalMs: 60_000, sendTimeoutMs: 500 });
    const logged = [];
    for (let i = 0; i < 5; i++) logged.push(window.evbuf.logEvent({ run, i, kind: 'hung-boot' }));
    window.setVisibility('hidden');
    window.setVisibility('visible');
    await starting;
    return Promise.race([Promise.all(logged).then(() => window.evbuf.flush()).then(() => 'resolved', (e) => `rejected: ${e.message}`),
      new Promise((r) => setTimeout(r, 10_000, 'pending after 10 s'))]);
  }, { run, endpoint: collector().endpoint });
  assert.equal(outcome, 'resolved', 'the calls settle and are flushed');
  assert.equal((await delivered(run)).length, 5);
}, { unloadPath: true }));

test('five tabs at 50/s, the sender closed three times in a row, answers take 100 ms: all delivered, at most one batch again per closed sender', { timeout: 90_000 }, scenario(async ({ t, launch, run }) => {
  const TABS = 5;
  const perTab = 250; // 5 s at 50/s
  const everyMs = 20;
  const closeAtMs = [2_000, 3_000, 4_000];
  const context = await launch();
  const pages = [];
  for (let tab = 0; tab < TABS; tab++) pages.push(await openPage(context));
  await Promise.all(pages.map((page) => init(page)));
  await eventually(async () => (await senderOf(pages)) >= 0, 10_000, 'a sender among the tabs');
  await collector().control({ delay_ms: 100 });
  const since = await collector().summary();
  // Loggers that can be stopped at once, and a pagehide that leaves a trace the other tabs
  // can read: proof that the close ran the page's unload.
  await Promise.all(pages.map((page, tab) => page.evaluate(({ run, tab, perTab, everyMs }) => {
    window.logged = 0;
    window.durable = 0;
    window.stopped = false;
    window.pending = [];
    addEventListener('pagehide', () => localStorage.setItem(`pagehide-${run}-${tab}`, String(window.logged)));
    window.logging = (async () => {
      const start = performance.now();
      for (let i = 0; i < perTab; i++) {
        const wait = start + i * everyMs - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        if (window.stopped) return;
        window.pending.push(window.evbuf.logEvent({ run, tab, i, kind: 'tabs' })
          .then(() => { window.durable = Math.max(window.durable, i + 1); }));
        window.logged = i + 1;
      }
    })();
  }, { run, tab, perTab, everyMs })));
  const started = Date.now();

  const open = new Set(pages.keys());
  const counts = Array(TABS).fill(perTab);
  const closings = [];
  for (const at of closeAtMs) {
    await sleep(started + at - Date.now());
    const openList = [...open];
    const current = await eventually(async () => {
      const i = await senderOf(openList.map((tab) => pages[tab]));
      return i >= 0 && { tab: openList[i] };
    }, 1_000, 'a sender').catch(() => undefined);
    const tab = current?.tab ?? openList[0];
    // What it logged, durable or not: a write still out as it closes goes out on pagehide.
    const logged = await pages[tab].evaluate(() => {
      window.stopped = true;
      return { logged: window.logged, durable: window.durable };
    });
    counts[tab] = logged.logged;
    const closed = pages[tab].waitForEvent('close', { timeout: 10_000 });
    await pages[tab].close({ runBeforeUnload: true });
    await closed;
    open.delete(tab);
    closings.push({ tab, sender: current !== undefined, logged, at: Date.now() - started });
  }
  const survivors = [...open].map((tab) => pages[tab]);
  await Promise.all(survivors.map((page) => page.evaluate(async () => {
    await window.logging;
    await Promise.all(window.pending);
  })));
  const total = counts.reduce((a, b) => a + b, 0);
  await deliveredCount(since, total, 20_000, `${total} events`).catch(() => {});
  const sender = survivors[await senderOf(survivors)];
  if (sender) await drained(sender).catch(() => {});
  const d = await deltas(since);
  const pagehides = await survivors[0].evaluate(({ run, tabs }) => tabs.map((tab) => localStorage.getItem(`pagehide-${run}-${tab}`)),
    { run, tabs: closings.map((c) => c.tab) });
  const closedSenders = closings.filter((c) => c.sender).length;
  const bound = BATCH * closedSenders;
  report(t, 'five tabs closing', d, {
    closed: closings.map((c) => `tab${c.tab}${c.sender ? '(sender)' : ''}@${c.at}ms:${c.logged.durable}/${c.logged.logged}`).join('/'),
    bound,
  });
  assert.ok(pagehides.every((v) => v !== null), `pagehide ran in every closed tab: ${JSON.stringify(pagehides)}`);
  assert.ok(closedSenders >= 1, 'precondition: the first tab closed was the sender');
  await assertExactly(run, counts);
  assert.ok(d.duplicates <= bound, `${d.duplicates} wire duplicates for ${closedSenders} closed senders (at most ${bound})`);
}, { unloadPath: true }));

test('a follower whose IndexedDB writes fail: its events are still delivered while another tab sends', { timeout: 60_000 }, scenario(async ({ t, launch, run }) => {
  const N = 20;
  const context = await launch();
  const sender = await openSender(context, { flushIntervalMs: 1_000 });
  const follower = await openPage(context);
  await init(follower, { flushIntervalMs: 1_000 });
  assert.equal((await stats(follower)).sender, false, 'precondition: the second tab follows');
  const since = await collector().summary();
  const atFailure = await follower.evaluate(async ({ run, N }) => {
    await window.evbuf.logEvent({ run, tab: 1, i: 0, kind: 'follower' });
    // From now on every write of this tab fails as a full disk does.
    const full = function () { throw new DOMException('the quota has been exceeded', 'QuotaExceededError'); };
    IDBObjectStore.prototype.put = full;
    IDBObjectStore.prototype.add = full;
    const logged = [];
    for (let i = 1; i < N; i++) logged.push(window.evbuf.logEvent({ run, tab: 1, i, kind: 'follower' }));
    await Promise.all(logged);
    return window.evbuf.stats();
  }, { run, N });
  await sender.evaluate(async ({ run, N }) => {
    await Promise.all(Array.from({ length: N }, (_, i) => window.evbuf.logEvent({ run, tab: 0, i, kind: 'follower' })));
  }, { run, N });
  await deliveredCount(since, 2 * N, 20_000, `${2 * N} events`).catch(() => {});
  await drained(sender).catch(() => {});
  const d = await deltas(since);
  const after = await stats(follower);
  report(t, 'follower in memory', d, {
    follower_mode: atFailure.mode, follower_leader: after.sender, follower_queued: after.queued,
  });
  assert.equal(atFailure.mode, 'memory', 'precondition: the follower fell back to memory');
  await assertExactly(run, [N, N]);
  assert.ok(d.duplicates <= 5, `${d.duplicates} wire duplicates (at most 5)`);
  await eventually(async () => (await stats(follower)).queued === 0, 10_000, 'the follower to forget what was delivered');
}));

test('a sender whose IndexedDB writes fail steps down: another tab sends, and every event of both is delivered', { timeout: 60_000 }, scenario(async ({ t, launch, run }) => {
  const N = 20;
  const context = await launch();
  const first = await openPage(context);
  await init(first, { flushIntervalMs: 1_000 });
  await eventually(async () => (await stats(first)).sender, 10_000, 'the first tab to send');
  const second = await openPage(context);
  await init(second, { flushIntervalMs: 1_000 });
  // The sender learns that another tab waits for its lock.
  await sleep(1_000);
  const since = await collector().summary();
  const atFailure = await first.evaluate(async ({ run, N }) => {
    await window.evbuf.logEvent({ run, tab: 0, i: 0, kind: 'sender-memory' });
    const full = function () { throw new DOMException('the quota has been exceeded', 'QuotaExceededError'); };
    IDBObjectStore.prototype.put = full;
    IDBObjectStore.prototype.add = full;
    const logged = [];
    for (let i = 1; i < N; i++) logged.push(window.evbuf.logEvent({ run, tab: 0, i, kind: 'sender-memory' }));
    await Promise.all(logged);
    return window.evbuf.stats();
  }, { run, N });
  // The other tab keeps writing to IndexedDB: the tab that sends must be able to read it.
  await second.evaluate(async ({ run, N }) => {
    await Promise.all(Array.from({ length: N }, (_, i) => window.evbuf.logEvent({ run, tab: 1, i, kind: 'sender-memory' })));
  }, { run, N });
  await deliveredCount(since, 2 * N, 20_000, `${2 * N} events`).catch(() => {});
  const d = await deltas(since);
  const [a, b] = [await stats(first), await stats(second)];
  report(t, 'sender in memory', d, { first_mode: atFailure.mode, first_leader: a.sender, second_leader: b.sender });
  assert.equal(atFailure.mode, 'memory', 'precondition: the sender fell back to memory');
  await assertExactly(run, [N, N]);
  assert.ok(d.duplicates <= 5, `${d.duplicates} wire duplicates (at most 5)`);
  assert.ok(!a.sender && b.sender, 'the tab that can store became the sender');
}));

test('a follower hidden while its write is out: the sender does not send again what the follower posted', { timeout: 60_000 }, scenario(async ({ t, launch, run }) => {
  const context = await launch();
  const sender = await openSender(context, { flushIntervalMs: 60_000 });
  const follower = await openPage(context);
  await fakeVisibility(follower);
  await init(follower, { flushIntervalMs: 60_000 });
  // The follower's keepalive post is answered after the sender's flush has started.
  await collector().control({ delay_ms: 1_500 });
  const since = await collector().summary();
  await follower.evaluate(async ({ run }) => {
    const stored = window.evbuf.logEvent({ run, tab: 1, i: 0, kind: 'posted-unstored' });
    await Promise.resolve(); // the write starts
    window.setVisibility('hidden');
    await stored;
  }, { run });
  await sleep(200); // the sender hears what was stored
  await sender.evaluate(() => window.evbuf.flush());
  await deliveredCount(since, 1, 10_000, 'the event');
  await eventually(async () => (await stats(follower)).queued === 0, 10_000, 'the follower to hear its answer');
  await sleep(2_000); // a second send would have arrived by now
  const d = await deltas(since);
  const [s, f] = [await stats(sender), await stats(follower)];
  report(t, 'follower posted unstored', d, { follower_unload: f.unloadRequests, sender_sent: s.sent });
  assert.equal(f.unloadRequests, 1, 'precondition: the follower posted it on hide');
  await assertExactly(run, [0, 1]);
  assert.equal(d.duplicates, 0, 'sent once');
  assert.equal(s.sent, 0, 'the sender left it to the post');
  assert.equal(f.acknowledged, 1, 'the post acknowledged it');
  assert.equal(f.stored, 0, 'and the follower deleted it');
}, { unloadPath: true }));

test("a follower's shutdown while its writes are out: the sender still loads and delivers them", { timeout: 60_000 }, scenario(async ({ t, launch, run }) => {
  const N = 30;
  const context = await launch();
  const sender = await openSender(context, { flushIntervalMs: 1_000 });
  const follower = await openPage(context);
  await init(follower, { flushIntervalMs: 1_000 });
  const since = await collector().summary();
  const atShutdown = await follower.evaluate(async ({ run, N }) => {
    for (let i = 0; i < N; i++) window.evbuf.logEvent({ run, tab: 1, i, kind: 'follower-shutdown' });
    await Promise.resolve(); // the write starts
    await window.evbuf.shutdown();
    return window.evbuf.stats();
  }, { run, N });
  await deliveredCount(since, N, 10_000, `${N} events`).catch(() => {});
  const d = await deltas(since);
  const s = await drained(sender).catch(() => stats(sender));
  report(t, 'follower shutdown', d, { sender_loaded: s.loaded });
  assert.equal(atShutdown.started, false, 'precondition: the follower shut down');
  await assertExactly(run, [0, N]);
  assert.equal(s.loaded, N, 'the sender loaded what the follower stored');
  assert.equal(s.acknowledged, N);
}));

test('a lone sender whose IndexedDB writes fail deletes there what it delivered: the next page sends nothing again', { timeout: 60_000 }, scenario(async ({ t, launch, run }) => {
  const N = 10;
  const context = await launch();
  const page = await openPage(context);
  await init(page, { flushIntervalMs: 60_000 });
  const since = await collector().summary();
  const atFailure = await page.evaluate(async ({ run, N }) => {
    const log = (from) => Promise.all(Array.from({ length: N }, (_, i) => window.evbuf.logEvent({ run, i: from + i, kind: 'lone-memory' })));
    await log(0);
    const full = function () { throw new DOMException('the quota has been exceeded', 'QuotaExceededError'); };
    IDBObjectStore.prototype.put = full;
    IDBObjectStore.prototype.add = full;
    await log(N);
    await window.evbuf.flush();
    return window.evbuf.stats();
  }, { run, N });
  await page.reload();
  await page.waitForFunction(() => window.evbufReady === true, null, { timeout: 10_000 });
  await init(page, { flushIntervalMs: 60_000 });
  await page.evaluate(() => window.evbuf.flush());
  const d = await deltas(since);
  const next = await stats(page);
  report(t, 'lone sender in memory', d, { next_loaded: next.loaded });
  assert.equal(atFailure.mode, 'memory', 'precondition: it fell back to memory');
  assert.equal(atFailure.acknowledged, 2 * N);
  await assertExactly(run, [2 * N]);
  assert.equal(next.loaded, 0, 'the next page found nothing left');
  assert.equal(d.duplicates, 0);
}));

test('a flush answered while storage is busy resolves after the delete: a reload right after it sends nothing again', { timeout: 60_000 }, scenario(async ({ t, launch, run }) => {
  const N = 10;
  const BUSY_MS = 1_500;
  const context = await launch();
  const page = await openPage(context);
  await init(page, { flushIntervalMs: 60_000 });
  const since = await collector().summary();
  await page.evaluate(({ run, N }) => Promise.all(Array.from({ length: N }, (_, i) =>
    window.evbuf.logEvent({ run, i, kind: 'flush-then-reload' }))), { run, N });
  await collector().control({ delay_ms: 300 });
  const waited = await page.evaluate(async (busyMs) => {
    const started = performance.now();
    const flushing = window.evbuf.flush();
    // The page's own read-write transaction on evbuf's store, opened while the send is
    // out and kept busy past its answer: IndexedDB queues the delete behind it.
    const db = await new Promise((resolve, reject) => {
      const open = indexedDB.open('evbuf');
      open.onsuccess = () => resolve(open.result);
      open.onerror = () => reject(open.error);
    });
    const store = db.transaction(['events'], 'readwrite').objectStore('events');
    const spin = () => { if (performance.now() - started < busyMs) store.count().onsuccess = spin; };
    spin();
    await flushing;
    return performance.now() - started;
  }, BUSY_MS);
  await page.reload();
  await page.waitForFunction(() => window.evbufReady === true, null, { timeout: 10_000 });
  await collector().control({});
  await init(page, { flushIntervalMs: 60_000 });
  await page.evaluate(() => window.evbuf.flush());
  const d = await deltas(since);
  const next = await stats(page);
  report(t, 'flush then reload', d, { flush_ms: Math.round(waited), next_loaded: next.loaded });
  await assertExactly(run, [N]);
  assert.equal(next.loaded, 0, 'the next page found nothing left');
  assert.ok(waited >= BUSY_MS, `flush() resolved after ${Math.round(waited)} ms, while its delete waited for storage`);
  assert.equal(d.duplicates, 0);
}));

test('a follower in memory does not become the sender while a tab that can store lives', { timeout: 60_000 }, scenario(async ({ t, launch, run }) => {
  const N = 10;
  const context = await launch();
  const first = await openPage(context);
  await init(first, { flushIntervalMs: 1_000 });
  await eventually(async () => (await stats(first)).sender, 10_000, 'the first tab to send');
  const inMemory = await openPage(context);
  await init(inMemory, { flushIntervalMs: 1_000 });
  const since = await collector().summary();
  const atFailure = await inMemory.evaluate(async ({ run }) => {
    const full = function () { throw new DOMException('the quota has been exceeded', 'QuotaExceededError'); };
    IDBObjectStore.prototype.put = full;
    IDBObjectStore.prototype.add = full;
    await window.evbuf.logEvent({ run, tab: 1, i: 0, kind: 'memory-follower' });
    return window.evbuf.stats();
  }, { run });
  // A tab that can store opens after it, then the sender closes.
  const third = await openPage(context);
  await init(third, { flushIntervalMs: 1_000 });
  await first.close({ runBeforeUnload: true });
  await eventually(async () => (await stats(third)).sender, 10_000, 'the tab that can store to send').catch(() => {});
  await third.evaluate(async ({ run, N }) => {
    await Promise.all(Array.from({ length: N }, (_, i) => window.evbuf.logEvent({ run, tab: 2, i, kind: 'memory-follower' })));
  }, { run, N });
  await deliveredCount(since, N + 1, 15_000, `${N + 1} events`).catch(() => {});
  const d = await deltas(since);
  const [m, c] = [await stats(inMemory), await stats(third)];
  report(t, 'memory follower', d, { memory_leader: m.sender, third_leader: c.sender });
  assert.equal(atFailure.mode, 'memory', 'precondition: the follower fell back to memory');
  assert.ok(!m.sender && c.sender, 'the tab that can store became the sender');
  await assertExactly(run, [0, 1, N]);
}));

test('unload path alone: a page closed with ~140 KB stored and no page left to send delivers 64 KiB of it as text/plain; the next page the rest', { timeout: 60_000 }, scenario(async ({ t, launch, run }) => {
  const N = 600;
  const budget = 65_536; // the page's keepalive budget
  const context = await launch();
  const page = await openPage(context);
  // No timer tick or count trigger; the byte trigger's one send is refused with a 5 s
  // Retry-After, so ~140 KB wait stored (more than the budget) when the page closes.
  await init(page, { flushIntervalMs: 60_000, maxBufferSize: 100_000 });
  await collector().control({ fail_status: 503, fail_count: 1, retry_after: '5' });
  const since = await collector().summary();
  const atClose = await page.evaluate(async ({ run, N }) => {
    // ~230 bytes on the wire each.
    await Promise.all(Array.from({ length: N }, (_, i) => window.evbuf.logEvent({ run, i, pad: 'u'.repeat(60) })));
    while (window.evbuf.stats().failed === 0) await new Promise((r) => setTimeout(r, 10));
    return window.evbuf.stats();
  }, { run, N });
  assert.equal(atClose.requests, 1, 'precondition: one send, refused');
  assert.equal(atClose.acknowledged, 0, 'precondition: nothing delivered before the close');
  assert.ok(atClose.queuedBytes > budget, `precondition: ${atClose.queuedBytes} bytes stored, more than the budget`);
  const closing = await collector().summary();
  await page.close();
  // Only the unload path can deliver now: no page of this origin is open.
  await eventually(async () => (await deltas(closing)).count > 0, 10_000, 'the unload send');
  await sleep(1_000);
  const unloaded = await collector().summary();
  const d = await deltas(closing);
  const posts = unloaded.unload_requests - closing.unload_requests;
  const bytes = unloaded.unload_bytes - closing.unload_bytes;
  report(t, 'unload path alone', d, { unload_requests: posts, unload_bytes: bytes });
  assert.equal(d.requests, posts, 'every request at close was a text/plain unload post');
  assert.ok(bytes <= budget, `${bytes} bytes posted at unload (at most ${budget})`);
  const fit = Math.floor(budget / (atClose.queuedBytes / N));
  assert.ok(d.count >= fit * 0.8 && d.count < N, `${d.count} of ${N} delivered by the unload send: about the budget's worth (${fit})`);

  await context.close();
  const next = await nextPageDelivers(launch, since, N);
  await assertExactly(run, [N]);
  assert.equal(next.s.dropped.total, 0);
}, { unloadPath: true }));
