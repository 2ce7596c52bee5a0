// The npm package in a real page: the drop-in logEvent, calls before init, bad input,
// and a page closed right after logging.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCollector, profile, eventually } from './harness.mjs';

let collector;
before(async () => { collector = await startCollector(); });
after(async () => { await collector.stop(); });

async function openPage(context) {
  const page = await context.newPage();
  await page.goto(`${collector.url}/index.html`);
  await page.waitForFunction(() => window.evbufReady === true);
  return page;
}

async function delivered(run) {
  const { events } = await collector.events();
  return events.filter((e) => e.payload?.run === run);
}

test('calls made before init are queued in order and delivered', async () => {
  const p = profile();
  const context = await p.launch();
  try {
    const page = await openPage(context);
    const run = `early-${Date.now()}`;
    const result = await page.evaluate(async ({ endpoint, run }) => {
      const { init, logEvent, flush, stats } = window.evbuf;
      const logged = [];
      for (let i = 0; i < 5; i++) logged.push(logEvent({ run, i }));
      const waiting = stats().waitingCalls;
      const flushed = flush();
      await init({ endpoint, flushIntervalMs: 60_000 });
      await Promise.all(logged);
      await flushed;
      return { waiting, stats: stats() };
    }, { endpoint: collector.endpoint, run });
    assert.equal(result.waiting, 5);
    assert.equal(result.stats.mode, 'indexeddb');
    const events = await delivered(run);
    assert.deepEqual(events.map((e) => e.payload.i), [0, 1, 2, 3, 4], 'in the order of the calls');
  } finally {
    await context.close();
    p.dispose();
  }
});

test('payloads that cannot be serialized are rejected by name; others are unaffected', async () => {
  const p = profile();
  const context = await p.launch();
  try {
    const page = await openPage(context);
    const run = `bad-${Date.now()}`;
    const result = await page.evaluate(async ({ endpoint, run }) => {
      const { init, logEvent, flush, stats } = window.evbuf;
      await init({ endpoint, flushIntervalMs: 60_000 });
      const cyclic = { run }; cyclic.self = cyclic;
      const errors = [];
      for (const bad of [cyclic, { run, n: 10n }, () => 1, Symbol('s'), undefined]) {
        await logEvent(bad).then(() => errors.push(null), (e) => errors.push(`${e.name}: ${e.message}`));
      }
      await logEvent({ run, ok: true });
      await flush();
      return { errors, stats: stats() };
    }, { endpoint: collector.endpoint, run });
    assert.equal(result.errors.length, 5);
    assert.match(result.errors[0], /TypeError: failed to log event: .*cannot be serialized.*circular/i);
    assert.match(result.errors[1], /BigInt/);
    assert.match(result.errors[2], /payload \(function\) cannot be serialized/);
    assert.match(result.errors[3], /payload \(symbol\) cannot be serialized/);
    assert.match(result.errors[4], /payload \(undefined\) cannot be serialized/);
    assert.equal(result.stats.dropped.invalid, 5);
    assert.equal((await delivered(run)).length, 1);
  } finally {
    await context.close();
    p.dispose();
  }
});

test('init with a bad option fails with a message naming it', async () => {
  const p = profile();
  const context = await p.launch();
  try {
    const page = await openPage(context);
    const message = await page.evaluate(() =>
      window.evbuf.init({ endpoint: '/bulk/event', maxBatchBytes: 1e9 }).then(() => 'ok', (e) => e.message));
    assert.match(message, /invalid option `maxBatchBytes`/);
  } finally {
    await context.close();
    p.dispose();
  }
});

test('a page closed 50 ms after its last logEvent loses nothing', async () => {
  const p = profile();
  const run = `close-${Date.now()}`;
  try {
    let context = await p.launch();
    let page = await openPage(context);
    await page.evaluate(async ({ endpoint, run }) => {
      const { init, logEvent } = window.evbuf;
      await init({ endpoint, flushIntervalMs: 60_000, maxBufferSize: 100_000 });
      for (let i = 0; i < 500; i++) logEvent({ run, i });
      await new Promise((r) => setTimeout(r, 50));
    }, { endpoint: collector.endpoint, run });
    await page.close({ runBeforeUnload: true });
    await context.close();

    // Reopen in the same profile: whatever the unload send did not deliver goes now.
    context = await p.launch();
    page = await openPage(context);
    await page.evaluate(async (endpoint) => {
      await window.evbuf.init({ endpoint });
      await window.evbuf.flush();
    }, collector.endpoint);
    const ids = new Set((await delivered(run)).map((e) => e.payload.i));
    assert.equal(ids.size, 500);
    await context.close();
  } finally {
    p.dispose();
  }
});
