// The browser-robustness guarantees (README "In the browser", ARCHITECTURE.md), each in
// headless Chromium against the reference collector: several tabs, offline, no IndexedDB,
// a worker, unload.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCollector, profile, eventually } from './harness.mjs';

let collector;
before(async () => { collector = await startCollector(); });
after(async () => { await collector.stop(); });

async function openPage(context, path = '/index.html') {
  const page = await context.newPage();
  await page.goto(`${collector.url}${path}`);
  await page.waitForFunction(() => window.evbufReady === true);
  return page;
}

async function delivered(run) {
  const { events } = await collector.events();
  return events.filter((e) => e.payload?.run === run);
}

function withProfile(body) {
  return async () => {
    const p = profile();
    try {
      await body(p);
    } finally {
      p.dispose();
    }
  };
}

test('two tabs logging 1,000 each deliver 2,000 distinct events through one sender', withProfile(async (p) => {
  const context = await p.launch();
  const run = `tabs-${Date.now()}`;
  const pages = [await openPage(context), await openPage(context)];
  await Promise.all(pages.map((page) => page.evaluate(async (endpoint) => {
    await window.evbuf.init({ endpoint, flushIntervalMs: 500 });
  }, collector.endpoint)));
  const before = await collector.summary();
  await Promise.all(pages.map((page, tab) => page.evaluate(async ({ run, tab }) => {
    const logged = [];
    for (let i = 0; i < 1000; i++) logged.push(window.evbuf.logEvent({ run, tab, i }));
    await Promise.all(logged);
  }, { run, tab })));
  await eventually(async () => (await delivered(run)).length === 2000, 30_000, '2,000 events');
  const stats = await Promise.all(pages.map((page) => page.evaluate(() => window.evbuf.stats())));
  assert.equal(stats.filter((s) => s.leader).length, 1, 'exactly one tab sends');
  const follower = stats.find((s) => !s.leader);
  assert.equal(follower.requests, 0, 'the other tab makes no request');
  const after = await collector.summary();
  const wireDuplicates = after.duplicates - before.duplicates;
  assert.ok(wireDuplicates <= 5, `${wireDuplicates} wire duplicates`);
  await eventually(async () => {
    const s = await pages[stats.indexOf(follower)].evaluate(() => window.evbuf.stats());
    return s.queued === 0;
  }, 10_000, 'the other tab to forget what the sender deleted');
  await context.close();
}));

test('when the sending tab closes, another takes over and sends', withProfile(async (p) => {
  const context = await p.launch();
  const run = `handover-${Date.now()}`;
  const first = await openPage(context);
  await first.evaluate((endpoint) => window.evbuf.init({ endpoint, flushIntervalMs: 300 }), collector.endpoint);
  await eventually(() => first.evaluate(() => window.evbuf.stats().leader), 5_000, 'a leader');
  const second = await openPage(context);
  await second.evaluate((endpoint) => window.evbuf.init({ endpoint, flushIntervalMs: 300 }), collector.endpoint);
  assert.equal(await second.evaluate(() => window.evbuf.stats().leader), false);
  await first.close();
  await eventually(() => second.evaluate(() => window.evbuf.stats().leader), 5_000, 'the second tab to lead');
  await second.evaluate(async (run) => {
    for (let i = 0; i < 20; i++) window.evbuf.logEvent({ run, i });
    await window.evbuf.flush();
  }, run);
  assert.equal((await delivered(run)).length, 20);
  await context.close();
}));

test('offline: nothing is sent; back online, everything is delivered', withProfile(async (p) => {
  const context = await p.launch();
  const run = `offline-${Date.now()}`;
  const page = await openPage(context);
  await page.evaluate((endpoint) => window.evbuf.init({ endpoint, flushIntervalMs: 200 }), collector.endpoint);
  await context.setOffline(true);
  const before = await collector.summary();
  await page.evaluate(async (run) => {
    for (let i = 0; i < 300; i++) await window.evbuf.logEvent({ run, i });
  }, run);
  await page.waitForTimeout(1_000);
  const offline = await page.evaluate(() => window.evbuf.stats());
  assert.equal(offline.online, false);
  assert.equal((await collector.summary()).requests, before.requests, 'no request while offline');
  assert.equal(offline.queued, 300);
  await context.setOffline(false);
  await eventually(async () => (await delivered(run)).length === 300, 15_000, '300 events');
  await context.close();
}));

test('without IndexedDB it keeps working in memory, says so, and recovers on the next page', withProfile(async (p) => {
  const context = await p.launch();
  const run = `noidb-${Date.now()}`;
  const page = await context.newPage();
  // IndexedDB that refuses to open, as in some private modes.
  await page.addInitScript(() => {
    IDBFactory.prototype.open = function () { throw new DOMException('blocked by test', 'SecurityError'); };
  });
  await page.goto(`${collector.url}/index.html`);
  await page.waitForFunction(() => window.evbufReady === true);
  const result = await page.evaluate(async ({ endpoint, run }) => {
    const errors = [];
    await window.evbuf.init({ endpoint, onError: (e) => errors.push(e.message) });
    for (let i = 0; i < 10; i++) window.evbuf.logEvent({ run, i });
    await window.evbuf.flush();
    return { errors, stats: window.evbuf.stats() };
  }, { endpoint: collector.endpoint, run });
  assert.equal(result.stats.mode, 'memory');
  assert.match(result.errors[0], /failed to open IndexedDB.*blocked by test.*memory/);
  assert.equal((await delivered(run)).length, 10);
  await page.close();

  const next = await openPage(context);
  const mode = await next.evaluate(async (endpoint) => {
    await window.evbuf.init({ endpoint });
    return window.evbuf.stats().mode;
  }, collector.endpoint);
  assert.equal(mode, 'indexeddb');
  await context.close();
}));

test('a write that fails (quota exceeded) switches to memory and keeps delivering', withProfile(async (p) => {
  const context = await p.launch();
  const run = `quota-${Date.now()}`;
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
  }, { endpoint: collector.endpoint, run });
  assert.equal(result.stats.mode, 'memory');
  assert.ok(result.errors.some((m) => /failed to store events: .*QuotaExceededError/.test(m)), result.errors.join('\n'));
  assert.equal((await delivered(run)).length, 10, 'the stored one and the nine held in memory');
  await context.close();
}));

test('works in a dedicated Web Worker', withProfile(async (p) => {
  const context = await p.launch();
  const run = `worker-${Date.now()}`;
  const page = await openPage(context);
  const reply = await page.evaluate(({ endpoint, run }) => new Promise((resolve) => {
    const worker = new Worker('/worker.js', { type: 'module' });
    worker.onmessage = ({ data }) => resolve(data);
    worker.onerror = (e) => resolve({ ok: false, error: e.message });
    worker.postMessage({ endpoint, run, n: 25, storageName: 'worker' });
  }), { endpoint: collector.endpoint, run });
  assert.ok(reply.ok, reply.error);
  assert.equal(reply.stats.mode, 'indexeddb');
  assert.equal((await delivered(run)).length, 25);
  await context.close();
}));

test('hiding the page sends stored events with keepalive, text/plain, no preflight', withProfile(async (p) => {
  const context = await p.launch();
  const run = `hide-${Date.now()}`;
  const page = await openPage(context);
  const sent = [];
  page.on('request', (request) => {
    if (request.url().endsWith('/bulk/event')) sent.push(request.headers()['content-type']);
  });
  // A cross-origin endpoint (localhost vs 127.0.0.1), where a preflight would be needed
  // for application/json: the unload path must not need one.
  const endpoint = collector.endpoint.replace('127.0.0.1', 'localhost');
  await page.evaluate(async ({ endpoint, run }) => {
    await window.evbuf.init({ endpoint, flushIntervalMs: 60_000, maxBufferSize: 100_000 });
    await Promise.all(Array.from({ length: 40 }, (_, i) => window.evbuf.logEvent({ run, i })));
    // Only the sending tab posts: wait for this tab to hold the sender's lock.
    while (!window.evbuf.stats().leader) await new Promise((r) => setTimeout(r, 10));
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
  await context.close();
}));
