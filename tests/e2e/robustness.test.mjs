// The browser-robustness guarantees (docs/behaviour.md "In the browser", ARCHITECTURE.md), each in
// headless Chromium against the reference collector: several tabs (with and without Web
// Locks), a sender handing over on close and on shutdown(), offline, headers, no
// IndexedDB, a worker, unload.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually, logWithHeadersFunction, sleep, stats, scenarioFile } from './harness.mjs';

const {
  collector, openPage, init, delivered, deltas, report, scenario,
} = scenarioFile('robustness');

/** Logs events i = 0..n-1 in `page` (tagged with `tab` when given) and waits until stored. */
const logStored = (page, { run, n, tab }) => page.evaluate(async ({ run, n, tab }) => {
  await Promise.all(Array.from({ length: n }, (_, i) => window.evbuf.logEvent({ run, tab, i })));
}, { run, n, tab });

test('two tabs logging 1,000 each deliver 2,000 distinct events through one sender, no wire duplicates', scenario(async ({ t, launch, run }) => {
  const context = await launch();
  const pages = [await openPage(context), await openPage(context)];
  await Promise.all(pages.map((page) => init(page, { flushIntervalMs: 500 })));
  const since = await collector().summary();
  await Promise.all(pages.map((page, tab) => logStored(page, { run, n: 1_000, tab })));
  await eventually(async () => (await delivered(run)).length === 2000, 30_000, '2,000 events');
  const all = await Promise.all(pages.map((page) => stats(page)));
  assert.equal(all.filter((s) => s.sender).length, 1, 'exactly one tab sends');
  const follower = all.find((s) => !s.sender);
  assert.equal(follower.requests, 0, 'the other tab makes no request');
  const d = await deltas(since);
  report(t, 'two tabs', d);
  assert.equal(d.duplicates, 0, 'wire duplicates');
  await eventually(async () => (await stats(pages[all.indexOf(follower)])).queued === 0,
    10_000, 'the other tab to forget what the sender deleted');
}));

test('without Web Locks, each of two tabs sends only the events it logged itself', scenario(async ({ t, launch, run }) => {
  const context = await launch();
  // As in browsers before Web Locks: navigator.locks is missing.
  await context.addInitScript(() => {
    Object.defineProperty(Navigator.prototype, 'locks', { configurable: true, get: () => undefined });
  });
  const pages = [await openPage(context), await openPage(context)];
  assert.equal(await pages[0].evaluate(() => navigator.locks), undefined, 'precondition: no Web Locks');
  await Promise.all(pages.map((page) => init(page, { flushIntervalMs: 300 })));
  const since = await collector().summary();
  await Promise.all(pages.map((page, tab) => logStored(page, { run, n: 200, tab })));
  await eventually(async () => (await delivered(run)).length === 400, 15_000, '400 events');
  const all = await Promise.all(pages.map((page) => eventually(async () => {
    const s = await stats(page);
    return s.queued === 0 && s.inFlight === 0 && s;
  }, 10_000, 'each tab to have nothing left')));
  const d = await deltas(since);
  report(t, 'no Web Locks', d, { tab_requests: all.map((s) => s.requests).join('/') });
  assert.ok(all.every((s) => s.sender && s.requests > 0), 'both tabs send');
  all.forEach((s, tab) => assert.equal(s.acknowledged, 200, `tab ${tab} sent its own 200 events, no other`));
  assert.equal(d.duplicates, 0, 'wire duplicates');
}, { unloadPath: true, senders: 2 }));

test('when the sending tab closes, another takes over, reloads storage and sends what the first stored', scenario(async ({ t, launch, run }) => {
  const context = await launch();
  const quiet = { flushIntervalMs: 60_000, maxBufferSize: 100_000 };
  const first = await openPage(context);
  await init(first, quiet);
  await eventually(() => first.evaluate(() => window.evbuf.stats().sender), 5_000, 'a leader');
  const second = await openPage(context);
  await init(second, { flushIntervalMs: 300 });
  assert.equal((await stats(second)).sender, false);
  const since = await collector().summary();
  // Stored by the sender, not sent: only the next sender can deliver them (with another
  // tab alive, a closing sender posts nothing at unload).
  await logStored(first, { run, n: 30, tab: 0 });
  assert.equal((await stats(first)).requests, 0, 'precondition: the first tab sent nothing');
  await first.close();
  await eventually(async () => (await stats(second)).sender, 5_000, 'the second tab to lead');
  await logStored(second, { run, n: 20, tab: 1 });
  await eventually(async () => (await delivered(run)).length === 50, 10_000, '50 events');
  const d = await deltas(since);
  report(t, 'sender closed', d);
  const events = await delivered(run);
  assert.equal(events.filter((e) => e.payload.tab === 0).length, 30, 'the first tab\'s stored events');
  assert.equal(events.filter((e) => e.payload.tab === 1).length, 20);
  assert.equal((await collector().summary()).unload_requests - since.unload_requests, 0, 'no unload post');
}));

test('shutdown() hands the sender role to another tab, which sends what was stored', scenario(async ({ t, launch, run }) => {
  const context = await launch();
  const pages = [await openPage(context), await openPage(context)];
  await init(pages[0], { flushIntervalMs: 300 });
  await eventually(() => pages[0].evaluate(() => window.evbuf.stats().sender), 5_000, 'a leader');
  await init(pages[1], { flushIntervalMs: 300 });
  const since = await collector().summary();
  await pages[0].evaluate(() => window.evbuf.shutdown());
  const taken = await eventually(async () => (await stats(pages[1])).sender, 5_000, 'the other tab to lead');
  assert.ok(taken);
  // The page that shut down is still open: the role moved because of shutdown(), not a close.
  assert.equal(await pages[0].evaluate(() => document.visibilityState), 'visible');
  await logStored(pages[1], { run, n: 20 });
  await eventually(async () => (await delivered(run)).length === 20, 10_000, '20 events');
  report(t, 'shutdown hands over', await deltas(since));
}));

test('offline: nothing is sent; back online, everything is delivered', scenario(async ({ t, launch, run }) => {
  const context = await launch();
  const page = await openPage(context);
  // The page's own requests: an offline context cannot reach the collector to be counted.
  let sends = 0;
  page.on('request', (request) => { if (request.url() === collector().endpoint) sends++; });
  await init(page, { flushIntervalMs: 200 });
  await context.setOffline(true);
  const since = await collector().summary();
  const sendsBefore = sends;
  await logStored(page, { run, n: 300 });
  await sleep(1_000);
  const offline = await stats(page);
  assert.equal(offline.online, false);
  assert.equal(sends - sendsBefore, 0, 'no request while offline');
  assert.equal(offline.requests + offline.failed, 0, 'the SDK tried no request');
  assert.equal(offline.queued, 300);
  await context.setOffline(false);
  await eventually(async () => (await delivered(run)).length === 300, 15_000, '300 events');
  report(t, 'offline', await deltas(since));
}));

test('headers from a function, called before each send: a new token each time; a function that throws or returns a forbidden header fails that send, retried', scenario(async ({ launch, run }) => {
  const page = await openPage(await launch());
  const { heard, keys } = await logWithHeadersFunction(page, { endpoint: collector().endpoint, run, delivered });
  assert.deepEqual(keys, ['token-1', 'token-4'], 'the failed calls made no request');
  assert.equal(heard.length, 2, heard.join('\n'));
  assert.match(heard[0], /^send-failed: .*the headers function failed: the token service is down/);
  assert.match(heard[1], /^send-failed: .*what the headers function returned: `Cookie` is a header a page may not set/);
}));

test('the headers option goes on every normal send and never on the unload path', scenario(async ({ t, launch, run }) => {
  const context = await launch();
  const page = await openPage(context);
  const sent = [];
  page.on('request', (request) => {
    if (request.url() === collector().endpoint) {
      const h = request.headers();
      sent.push({ type: h['content-type'], auth: h['x-api-key'] });
    }
  });
  await init(page, { flushIntervalMs: 60_000, maxBufferSize: 100_000, headers: { 'X-Api-Key': 'k-123' } });
  const since = await collector().summary();
  await logStored(page, { run, n: 10 });
  await page.evaluate(() => window.evbuf.flush());
  await logStored(page, { run, n: 5, tab: 1 });
  await page.evaluate(() => {
    Object.defineProperty(document, 'visibilityState', { value: 'hidden', configurable: true });
    document.dispatchEvent(new Event('visibilitychange'));
  });
  await eventually(async () => (await delivered(run)).length === 15, 5_000, '15 events');
  report(t, 'headers', await deltas(since));
  assert.deepEqual(sent, [
    { type: 'application/json', auth: 'k-123' },
    { type: 'text/plain;charset=UTF-8', auth: undefined },
  ]);
}, { unloadPath: true }));

test('without IndexedDB it keeps working in memory, says so, and recovers on the next page', scenario(async ({ launch, run }) => {
  const context = await launch();
  const page = await context.newPage();
  // IndexedDB that refuses to open, as in some private modes.
  await page.addInitScript(() => {
    IDBFactory.prototype.open = function () { throw new DOMException('blocked by test', 'SecurityError'); };
  });
  await page.goto(`${collector().url}/index.html`);
  await page.waitForFunction(() => window.evbufReady === true);
  const result = await page.evaluate(async ({ endpoint, run }) => {
    const errors = [];
    await window.evbuf.init({ endpoint, onError: (e) => errors.push(e.message) });
    for (let i = 0; i < 10; i++) window.evbuf.logEvent({ run, i });
    await window.evbuf.flush();
    return { errors, stats: window.evbuf.stats() };
  }, { endpoint: collector().endpoint, run });
  assert.equal(result.stats.mode, 'memory');
  assert.match(result.errors[0], /failed to open IndexedDB.*blocked by test.*memory/);
  assert.equal((await delivered(run)).length, 10);
  await page.close();

  const next = await openPage(context);
  const mode = await next.evaluate(async (endpoint) => {
    await window.evbuf.init({ endpoint });
    return window.evbuf.stats().mode;
  }, collector().endpoint);
  assert.equal(mode, 'indexeddb');
}));

test('a write that fails (quota exceeded) switches to memory and keeps delivering', scenario(async ({ launch, run }) => {
  const context = await launch();
  const page = await openPage(context);
  const result = await page.evaluate(async ({ endpoint, run }) => {
    const errors = [];
    await window.evbuf.init({ endpoint, flushIntervalMs: 60_000, onError: (e) => errors.push(e.message) });
    await window.evbuf.logEvent({ run, i: 0 });
    // From now on every write fails as a full disk does.
    IDBObjectStore.prototype.put = function () {
      throw new DOMException('the quota has been exceeded', 'QuotaExceededError');
    };
    const logged = [];
    for (let i = 1; i < 10; i++) logged.push(window.evbuf.logEvent({ run, i }));
    await Promise.all(logged);
    await window.evbuf.flush();
    return { errors, stats: window.evbuf.stats() };
  }, { endpoint: collector().endpoint, run });
  assert.equal(result.stats.mode, 'memory');
  assert.ok(result.errors.some((m) => /failed to store events: .*QuotaExceededError/.test(m)), result.errors.join('\n'));
  assert.equal((await delivered(run)).length, 10, 'the stored one and the nine held in memory');
}));

test('works in a dedicated Web Worker', scenario(async ({ launch, run }) => {
  const context = await launch();
  const page = await openPage(context);
  const reply = await page.evaluate(({ endpoint, run }) => new Promise((resolve) => {
    const worker = new Worker('/worker.js', { type: 'module' });
    worker.onmessage = ({ data }) => resolve(data);
    worker.onerror = (e) => resolve({ ok: false, error: e.message });
    worker.postMessage({ endpoint, run, n: 25, storageName: 'worker' });
  }), { endpoint: collector().endpoint, run });
  assert.ok(reply.ok, reply.error);
  assert.equal(reply.stats.mode, 'indexeddb');
  assert.equal((await delivered(run)).length, 25);
}));

test('hiding the page sends stored events with keepalive, text/plain, no preflight', scenario(async ({ launch, run }) => {
  const context = await launch();
  const page = await openPage(context);
  const sent = [];
  page.on('request', (request) => {
    if (request.url().endsWith('/bulk/event')) sent.push(request.headers()['content-type']);
  });
  // A cross-origin endpoint (localhost vs 127.0.0.1), where a preflight would be needed
  // for application/json: the unload path must not need one.
  const endpoint = collector().endpoint.replace('127.0.0.1', 'localhost');
  await page.evaluate(async ({ endpoint, run }) => {
    await window.evbuf.init({ endpoint, flushIntervalMs: 60_000, maxBufferSize: 100_000 });
    // Only the sending tab posts. Wait for this tab to take over before logging: a tab
    // that takes over sends at once what it finds stored, which would leave nothing to
    // the unload post.
    while (!window.evbuf.stats().sender) await new Promise((r) => setTimeout(r, 10));
    await Promise.all(Array.from({ length: 40 }, (_, i) => window.evbuf.logEvent({ run, i })));
    // What the browser does as a tab is hidden or closed.
    Object.defineProperty(document, 'visibilityState', { value: 'hidden', configurable: true });
    document.dispatchEvent(new Event('visibilitychange'));
  }, { endpoint, run });
  await eventually(async () => (await delivered(run)).length === 40, 5_000, 'the unload send');
  const stats = await eventually(async () => {
    const s = await page.evaluate(() => window.evbuf.stats());
    return s.queued === 0 && s;
  }, 5_000, 'the answer to delete the events');
  assert.equal(stats.unloadRequests, 1);
  assert.equal(stats.requests, 1, 'only the keepalive request');
  assert.deepEqual(sent, ['text/plain;charset=UTF-8'], 'a CORS-safelisted content type');
}, { unloadPath: true }));

test('an engine without AbortSignal.timeout still times out a request that never gets an answer, and delivers once the server answers', scenario(async ({ t, launch, run }) => {
  const context = await launch();
  // As in engines before AbortSignal.timeout (Safari before 16, Chrome before 103).
  await context.addInitScript(() => { delete AbortSignal.timeout; });
  const page = await openPage(context);
  assert.equal(await page.evaluate(() => typeof AbortSignal.timeout), 'undefined', 'precondition: no AbortSignal.timeout');
  await init(page, { flushIntervalMs: 60_000, sendTimeoutMs: 1_000, retry: { baseMs: 200, maxMs: 500 } });
  const since = await collector().summary();
  await collector().control({ hang_count: 1 });
  const flushed = await page.evaluate(async (run) => {
    await window.evbuf.logEvent({ run, i: 0 });
    const outcome = window.evbuf.flush().then(() => 'resolved', (e) => `rejected: ${e.message}`);
    return Promise.race([outcome, new Promise((r) => setTimeout(() => r('still pending after 5 s'), 5_000))]);
  }, run);
  assert.match(flushed, /rejected: .*no answer within 1000 ms/, 'the held request timed out');
  await eventually(async () => (await delivered(run)).length === 1, 10_000, 'the event, retried');
  const d = await deltas(since);
  report(t, 'no AbortSignal.timeout', d, { flush: flushed });
}));
