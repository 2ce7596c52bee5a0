// The npm package in a real page: the drop-in logEvent, calls before init, bad input,
// and a page closed right after logging.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCollector, profile, eventually, validateBody } from './harness.mjs';

let collector;
before(async () => { collector = await startCollector(); });
after(async () => { await collector.stop(); });

// Every body the collector receives is checked against schema.json when it stops (the
// harness): here, that the schema would catch a body that broke the contract.
test('schema.json takes every JSON payload and refuses a body that breaks the contract', () => {
  const event = (fields = {}) => ({ id: 's-1', session: 's', seq: 1, ts: 1732240000000, payload: { a: 1 }, ...fields });
  const body = (events, fields = {}) => ({ sent_at: 1732240000123, device: 'd', events, ...fields });
  const without = (name) => { const e = event(); delete e[name]; return e; };
  for (const payload of [{ a: 1 }, [1, 'two'], 'text', 42, 1.5, true, null]) {
    assert.ok(validateBody(body([event({ payload })])), `payload ${JSON.stringify(payload)}: ${JSON.stringify(validateBody.errors)}`);
  }
  assert.ok(validateBody(body([event()], { later_field: 1 })), 'a field added later is allowed');
  const broken = {
    'an event without seq': body([without('seq')]),
    'an event without session': body([without('session')]),
    'an event without payload': body([without('payload')]),
    'an event without id': body([without('id')]),
    'a string ts': body([event({ ts: '1732240000000' })]),
    'a fractional ts': body([event({ ts: 1.5 })]),
    'seq 0': body([event({ seq: 0, id: 's-0' })]),
    'a string seq': body([event({ seq: '1' })]),
    'an id that is not <session>-<seq>': body([event({ id: 'a-uuid' })]),
    'no sent_at': { device: 'd', events: [event()] },
    'a string sent_at': body([event()], { sent_at: '1732240000123' }),
    'no device': { sent_at: 1, events: [event()] },
    'no events': body([]),
    'events not an array': body(event()),
  };
  for (const [what, b] of Object.entries(broken)) assert.equal(validateBody(b), false, `${what} passes`);
});

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
      // With no init() running, a flush has nothing to wait for; during one, it waits.
      const early = await flush().then(() => 'resolved', (e) => `${e.code}: ${e.message}`);
      const starting = init({ endpoint, flushIntervalMs: 60_000 });
      const flushed = flush();
      await starting;
      await Promise.all(logged);
      await flushed;
      return { waiting, early, stats: stats() };
    }, { endpoint: collector.endpoint, run });
    assert.equal(result.waiting, 5);
    assert.equal(result.early, 'not-started: failed to flush: evbuf has not been started; call init() first');
    assert.equal(result.stats.mode, 'indexeddb');
    const events = await delivered(run);
    assert.deepEqual(events.map((e) => e.payload.i), [0, 1, 2, 3, 4], 'in the order of the calls');
  } finally {
    await context.close();
    p.dispose();
  }
});

test('calls waiting for init are held up to 10,000 (or 8 MiB of payload): later ones are refused, counted and reported', async () => {
  const p = profile();
  const context = await p.launch();
  try {
    const page = await openPage(context);
    const run = `capped-${Date.now()}`;
    const result = await page.evaluate(async ({ endpoint, run }) => {
      const { init, logEvent, flush, stats } = window.evbuf;
      const unhandled = [];
      addEventListener('unhandledrejection', (e) => unhandled.push(String(e.reason?.message ?? e.reason)));
      const outcomes = [];
      for (let i = 0; i < 10_003; i++) {
        logEvent({ run, i }).then(() => outcomes.push('resolved'), (e) => outcomes.push(`${e.code}/${e.reason}`));
      }
      await new Promise((r) => setTimeout(r, 0));
      const refusedAtOnce = outcomes.slice();
      const before = stats();
      const heard = [];
      await init({ endpoint, flushIntervalMs: 60_000, storageName: run,
        onError: (e) => heard.push({ code: e.code, reason: e.reason, events: e.events, message: e.message }) });
      await flush();
      // Past the payload limit, while a re-init runs: payloads of 4,096 characters of
      // JSON, of which 2,048 make 8 MiB.
      const restarting = init({ endpoint, flushIntervalMs: 60_000, storageName: run, maxStoredBytes: 16 * 1024 * 1024 });
      const pad = 'x'.repeat(4096 - JSON.stringify({ run, pad: '' }).length);
      const padded = await Promise.all(Array.from({ length: 2_050 }, () => logEvent({ run, pad })
        .then(() => 'resolved', (e) => `${e.code}/${e.reason}`)));
      await restarting;
      await flush();
      const after = stats();
      return { unhandled, refusedAtOnce, before, heard, padded: padded.slice(2_047), after };
    }, { endpoint: collector.endpoint, run });
    assert.deepEqual(result.unhandled, []);
    assert.deepEqual(result.refusedAtOnce, Array(3).fill('dropped/waitingLimit'), 'the calls past 10,000, at once');
    assert.deepEqual(result.before, { started: false, waitingCalls: 10_000, droppedWaiting: 3, optedOut: false });
    assert.deepEqual(result.heard.map(({ message, ...fields }) => fields), [{ code: 'dropped', reason: 'waitingLimit', events: 3 }]);
    assert.match(result.heard[0].message, /dropped 3 logEvent calls made before init\(\)/);
    assert.deepEqual(result.padded, ['resolved', 'dropped/waitingLimit', 'dropped/waitingLimit']);
    const s = result.after;
    assert.equal(s.dropped.waitingLimit, 5);
    assert.equal(s.logged, s.acknowledged + s.dropped.total + s.queued + s.unpersisted, `the books balance: ${JSON.stringify(s)}`);
    const events = await delivered(run);
    assert.equal(events.filter((e) => e.payload.i !== undefined).length, 10_000);
    assert.equal(events.filter((e) => e.payload.pad !== undefined).length, 2_048);
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

test('the calls of a tick share one promise; an oversize or unserializable payload is refused alone; flush() carries the tick', async () => {
  const p = profile();
  const context = await p.launch();
  try {
    const page = await openPage(context);
    const run = `tick-${Date.now()}`;
    const result = await page.evaluate(async ({ endpoint, run }) => {
      const { init, logEvent, flush, stats } = window.evbuf;
      await init({ endpoint, flushIntervalMs: 60_000, maxBufferSize: 100_000, maxBatchBytes: 8192 });
      const settle = (p) => p.then(() => 'stored', (e) => e.message);
      // Settled already when returned: its reaction runs before that of a resolved promise.
      const atOnce = (p) => Promise.race([p, Promise.resolve('pending')]).then((v) => v ?? 'resolved', () => 'rejected');
      const cyclic = {}; cyclic.self = cyclic;
      const a = logEvent({ run, i: 0 });
      const b = logEvent({ run, i: 1 });
      const invalid = logEvent(cyclic);
      const c = logEvent({ run, i: 2 });
      // Before the tick's events reach the client: it must hand them over first.
      const afterFlush = flush().then(() => stats());
      // Too large for a batch: refused alone, its neighbours stored.
      const oversize = logEvent({ run, i: 'oversize', pad: 'x'.repeat(9_000) });
      // Longer in UTF-16 than any payload the tick's batch takes unchecked, and fits.
      const near = logEvent({ run, i: 3, pad: 'é'.repeat(3_000) });
      const d = logEvent({ run, i: 4 });
      const e = logEvent({ run, i: 5 });
      const invalidAtOnce = await atOnce(invalid);
      const oversizeAtOnce = await atOnce(oversize);
      const settled = await Promise.all([a, b, invalid, c, oversize, near, d, e].map(settle));
      const next = logEvent({ run, i: 6 });
      await next;
      await flush();
      return {
        sharedFirst: a === b && b === c, sharedSecond: d === e, apart: c !== d && e !== next,
        invalidAtOnce, oversizeAtOnce, settled, afterFlush: await afterFlush, stats: stats(),
      };
    }, { endpoint: collector.endpoint, run });
    assert.ok(result.sharedFirst && result.sharedSecond, 'the calls of one batch share their promise');
    assert.ok(result.apart, 'a batch ends where an event goes alone, and with the tick');
    assert.equal(result.invalidAtOnce, 'rejected');
    assert.equal(result.oversizeAtOnce, 'rejected');
    const [a, b, invalid, c, oversize, near, d, e] = result.settled;
    assert.deepEqual([a, b, c, near, d, e], Array(6).fill('stored'));
    assert.match(invalid, /^failed to log event: the payload cannot be serialized to JSON \(.*circular/i);
    assert.match(oversize, /^failed to log event: it takes \d+ bytes on the wire, more than maxBatchBytes \(8192\)$/);
    assert.ok(result.afterFlush.acknowledged >= 3, 'flush() in the tick of the calls carries them');
    assert.equal(result.stats.dropped.oversize, 1);
    assert.equal(result.stats.dropped.invalid, 1);
    const events = await delivered(run);
    assert.deepEqual(events.map((x) => x.payload.i), [0, 1, 2, 3, 4, 5, 6], 'stored in the order of the calls');
  } finally {
    await context.close();
    p.dispose();
  }
});

// Legacy call sites do not await logEvent: a call that fails must not become an unhandled
// rejection (error-tracker noise, a crash under Node's default policy in an app's tests).
test('a call site that does not await logEvent sees no unhandled rejection in any state; onError hears each failure and an awaiting caller still learns it', async () => {
  const p = profile();
  const context = await p.launch();
  try {
    const page = await openPage(context);
    const result = await page.evaluate(async ({ endpoint }) => {
      const { init, logEvent, shutdown } = window.evbuf;
      const unhandled = [];
      addEventListener('unhandledrejection', (e) => unhandled.push(String(e.reason?.message ?? e.reason)));
      const heard = [];
      const onError = (e) => heard.push({ message: e.message, code: e.code, reason: e.reason, events: e.events });
      const cyclic = {};
      cyclic.self = cyclic;
      logEvent(cyclic); // rejected at once; the init called in this task has onError set by then
      logEvent({ state: 'queued before a failed init' });
      await init({ endpoint, flushIntervalMs: -1, onError }).catch(() => {});
      await init({ endpoint, flushIntervalMs: 60_000, onError });
      logEvent('x'.repeat(100_000));
      logEvent(10n);
      await shutdown();
      logEvent({ state: 'after shutdown' });
      const awaited = await logEvent({ state: 'awaited' }).then(() => 'resolved', (e) => `${e.code}: ${e.message}`);
      await new Promise((r) => setTimeout(r, 300));
      return { unhandled, heard, awaited };
    }, { endpoint: collector.endpoint });
    assert.deepEqual(result.unhandled, [], 'no unhandled rejection');
    assert.match(result.awaited, /^shut-down: .*evbuf was shut down/);
    const invalid = { code: 'dropped', reason: 'invalid', events: 1 };
    const expected = [
      [/cannot be serialized/, invalid],
      [/did not start.*flushIntervalMs/, { code: 'start-failed' }],
      [/maxBatchBytes/, { code: 'dropped', reason: 'oversize', events: 1 }],
      [/cannot be serialized/, invalid],
      [/evbuf was shut down/, { code: 'shut-down' }],
      [/evbuf was shut down/, { code: 'shut-down' }],
    ];
    assert.equal(result.heard.length, expected.length, JSON.stringify(result.heard));
    expected.forEach(([pattern, fields], i) => {
      const { message, ...got } = result.heard[i];
      assert.match(message, pattern);
      assert.deepEqual(Object.fromEntries(Object.entries(got).filter(([, v]) => v !== undefined)), fields, message);
    });
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
    const { message, code } = await page.evaluate(() =>
      window.evbuf.init({ endpoint: '/bulk/event', maxBatchBytes: 1e9 }).then(() => ({ message: 'ok' }), (e) => ({ message: e.message, code: e.code })));
    assert.match(message, /invalid option `maxBatchBytes`/);
    assert.equal(code, 'config');
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

// Settles within `ms` or says it is still pending: a call that never settles is a bug here.
const settleInPage = `window.settle = (promise, ms = 3000) => Promise.race([
  promise.then(() => 'resolved', (e) => e.message),
  new Promise((r) => setTimeout(r, ms, 'pending')),
]);`;

test('re-init while logging hands the calls made during the switch to the new client, in order', async () => {
  const p = profile();
  const context = await p.launch();
  try {
    const page = await openPage(context);
    const run = `reinit-${Date.now()}`;
    // A slow answer keeps the old client's shutdown flush (and so the switch) open a while.
    await collector.control({ delay_ms: 300, delay_count: 1 });
    const result = await page.evaluate(async ({ endpoint, run }) => {
      const { init, logEvent, flush } = window.evbuf;
      await init({ endpoint, flushIntervalMs: 60_000 });
      let i = 0;
      const calls = [];
      const log = () => calls.push(logEvent({ run, i: i++ }).then(() => null, (e) => e.message));
      for (let k = 0; k < 20; k++) log();
      let switched = false;
      const switching = init({ endpoint, flushIntervalMs: 60_000, headers: { 'x-user': 'after-login' } })
        .finally(() => { switched = true; });
      for (let k = 0; k < 20; k++) log();
      while (!switched) {
        log();
        await new Promise((r) => setTimeout(r, 5));
      }
      await switching;
      for (let k = 0; k < 20; k++) log();
      const errors = (await Promise.all(calls)).filter(Boolean);
      await flush();
      return { errors, logged: i };
    }, { endpoint: collector.endpoint, run });
    await collector.control({});
    assert.deepEqual(result.errors, [], 'no call rejected during the switch');
    assert.ok(result.logged > 60, `some calls were made during the switch (${result.logged})`);
    const events = await delivered(run);
    assert.deepEqual(
      events.map((e) => e.payload.i),
      Array.from({ length: result.logged }, (_, i) => i),
      'every event once, in the order of the calls',
    );
  } finally {
    await context.close();
    p.dispose();
  }
});

test('a failed wasm load rejects the calls queued before it and is not cached', async () => {
  const p = profile();
  const context = await p.launch();
  try {
    const page = await openPage(context);
    await page.evaluate(settleInPage);
    const run = `failed-load-${Date.now()}`;
    await page.route('**/evbuf_bg.wasm', (route) => route.abort());
    const first = await page.evaluate(async ({ endpoint, run }) => {
      const { init, logEvent, flush, stats } = window.evbuf;
      const logged = logEvent({ run, i: 0 });
      const starting = init({ endpoint });
      const flushed = flush();
      const started = await settle(starting);
      const results = { started, logged: await settle(logged), flushed: await settle(flushed) };
      // Calls after a failed init wait for the next one, as before the first.
      window.later = logEvent({ run, i: 1 });
      return { ...results, waiting: stats().waitingCalls };
    }, { endpoint: collector.endpoint, run });
    assert.match(first.started, /^failed to start evbuf: ./);
    assert.match(first.logged, /^failed to log event: evbuf did not start \(./);
    assert.match(first.flushed, /^failed to flush: evbuf did not start \(./);
    assert.equal(first.waiting, 1);

    await page.unroute('**/evbuf_bg.wasm');
    const second = await page.evaluate(async (endpoint) => {
      const { init, flush } = window.evbuf;
      const started = await settle(init({ endpoint, flushIntervalMs: 60_000 }));
      const later = await settle(window.later);
      await flush();
      return { started, later };
    }, collector.endpoint);
    assert.deepEqual(second, { started: 'resolved', later: 'resolved' });
    assert.deepEqual((await delivered(run)).map((e) => e.payload.i), [1]);
  } finally {
    await context.close();
    p.dispose();
  }
});

test('a failed init with bad options rejects the calls queued before it; shutdown() settles later ones', async () => {
  const p = profile();
  const context = await p.launch();
  try {
    const page = await openPage(context);
    await page.evaluate(settleInPage);
    const result = await page.evaluate(async () => {
      const { init, logEvent, shutdown, stats } = window.evbuf;
      const before = logEvent({ i: 0 });
      const started = await settle(init({ endpoint: 123 }));
      const logged = await settle(before);
      const after = logEvent({ i: 1 });
      const waiting = stats().waitingCalls;
      await shutdown();
      return { started, logged, waiting, after: await settle(after) };
    });
    assert.equal(result.started, 'failed to start evbuf: invalid option `endpoint`: expected a string URL (http or https, absolute or relative to the page), got 123');
    assert.equal(result.logged, 'failed to log event: evbuf did not start (invalid option `endpoint`: expected a string URL (http or https, absolute or relative to the page), got 123)');
    assert.equal(result.waiting, 1);
    assert.equal(result.after, 'failed to log event: evbuf was shut down; call init() again');
  } finally {
    await context.close();
    p.dispose();
  }
});

test('after shutdown(), logEvent and flush reject until init() is called again', async () => {
  const p = profile();
  const context = await p.launch();
  try {
    const page = await openPage(context);
    await page.evaluate(settleInPage);
    const run = `shutdown-${Date.now()}`;
    const result = await page.evaluate(async ({ endpoint, run }) => {
      const { init, logEvent, flush, shutdown } = window.evbuf;
      await init({ endpoint, flushIntervalMs: 60_000 });
      await logEvent({ run, i: 0 });
      await shutdown();
      const logged = await settle(logEvent({ run, i: 1 }));
      const flushed = await settle(flush());
      await init({ endpoint, flushIntervalMs: 60_000 });
      const again = await settle(logEvent({ run, i: 2 }));
      await flush();
      return { logged, flushed, again };
    }, { endpoint: collector.endpoint, run });
    assert.deepEqual(result, {
      logged: 'failed to log event: evbuf was shut down; call init() again',
      flushed: 'failed to flush: evbuf was shut down; call init() again',
      again: 'resolved',
    });
    assert.deepEqual((await delivered(run)).map((e) => e.payload.i), [0, 2]);
  } finally {
    await context.close();
    p.dispose();
  }
});

test('init checks endpoint and headers (a header a page may not set too), and resolves a relative endpoint against the page', async () => {
  const p = profile();
  const context = await p.launch();
  try {
    const page = await openPage(context);
    const run = `options-${Date.now()}`;
    const result = await page.evaluate(async (run) => {
      const { init, logEvent, flush } = window.evbuf;
      const fails = (options) => init(options).then(() => 'started', (e) => e.message);
      const messages = [
        await fails({ endpoint: 'ftp://example.com/bulk' }),
        await fails({ endpoint: 'http://[::1/bulk' }),
        await fails({ endpoint: '/bulk/event', headers: { 'bad header': 'x' } }),
        await fails({ endpoint: '/bulk/event', headers: { 'x-ok': 'line\nbreak' } }),
        await fails({ endpoint: '/bulk/event', sendTimeoutMs: 10 }),
        await fails({ endpoint: '/bulk/event', headers: { 'X-Api-Key': 'k', Cookie: 'a=1' } }),
        await fails({ endpoint: '/bulk/event', headers: { 'x-ok': 5 } }),
        await fails({ endpoint: '/bulk/event', headers: new Headers({ 'X-Api-Key': 'k', Cookie: 'a=1' }) }),
        await fails({ endpoint: '/bulk/event', headers: 'X-Api-Key: k' }),
      ];
      await init({ endpoint: '/bulk/event', flushIntervalMs: 60_000, sendTimeoutMs: 5_000 });
      await logEvent({ run });
      await flush();
      return messages;
    }, run);
    assert.match(result[0], /invalid option `endpoint`: expected a string URL .*, got "ftp:\/\/example.com\/bulk"/);
    assert.match(result[1], /invalid option `endpoint`: /);
    assert.match(result[2], /invalid option `headers`: .*`bad header`/);
    assert.match(result[3], /invalid option `headers`: .*`x-ok`/);
    assert.match(result[4], /invalid option `sendTimeoutMs`/);
    assert.equal(result[5], 'failed to start evbuf: invalid option `headers`: `Cookie` is a header a page may not set');
    assert.equal(result[6], 'failed to start evbuf: invalid option `headers`: the value of `x-ok` must be a string');
    assert.equal(result[7], 'failed to start evbuf: invalid option `headers`: `cookie` is a header a page may not set');
    assert.match(result[8], /invalid option `headers`: expected an object of header names to string values, a Headers, or a function/);
    assert.equal((await delivered(run)).length, 1, 'the relative endpoint reached the collector');
  } finally {
    await context.close();
    p.dispose();
  }
});

test('in a worker, a relative endpoint is resolved against the worker script', async () => {
  const p = profile();
  const context = await p.launch();
  try {
    const page = await openPage(context);
    const run = `worker-relative-${Date.now()}`;
    const reply = await page.evaluate((run) => new Promise((resolve) => {
      const worker = new Worker('/worker.js', { type: 'module' });
      worker.onmessage = ({ data }) => resolve(data);
      worker.onerror = (e) => resolve({ ok: false, error: e.message });
      worker.postMessage({ endpoint: 'bulk/event', run, n: 3, storageName: run });
    }), run);
    assert.ok(reply.ok, reply.error);
    assert.equal((await delivered(run)).length, 3);
  } finally {
    await context.close();
    p.dispose();
  }
});

test('init() and shutdown() called without awaiting take effect in call order', async () => {
  const p = profile();
  const context = await p.launch();
  try {
    const page = await openPage(context);
    await page.evaluate(settleInPage);
    const run = `order-${Date.now()}`;
    const result = await page.evaluate(async ({ endpoint, run }) => {
      const { init, logEvent, flush, shutdown } = window.evbuf;
      const options = { endpoint, flushIntervalMs: 60_000 };
      const first = init({ ...options, maxBufferSize: 'many' });
      const second = init(options);
      const a = logEvent({ run, i: 0 }); // waits for the second: the first is not the latest
      const started = [await settle(first), await settle(second), await settle(a)];
      const stopped = shutdown();
      const again = init(options);
      const b = logEvent({ run, i: 1 }); // after the init() that follows shutdown()
      await stopped;
      await again;
      const logged = await settle(b);
      await flush();
      return { started, logged };
    }, { endpoint: collector.endpoint, run });
    assert.match(result.started[0], /^failed to start evbuf: invalid option `maxBufferSize`/);
    assert.deepEqual(result.started.slice(1), ['resolved', 'resolved']);
    assert.equal(result.logged, 'resolved');
    assert.deepEqual((await delivered(run)).map((e) => e.payload.i), [0, 1]);
  } finally {
    await context.close();
    p.dispose();
  }
});

test('init({ wasm }) takes the module as a URL, a Response, bytes or a WebAssembly.Module', async () => {
  const p = profile();
  const context = await p.launch();
  try {
    const page = await context.newPage();
    // The default location fails, so only the handed-over module can start evbuf.
    await page.route('**/pkg/evbuf_bg.wasm', (route) => route.abort());
    await page.route('**/elsewhere/module.wasm', (route) => route.fulfill({
      path: new URL('../../pkg/evbuf_bg.wasm', import.meta.url).pathname,
      contentType: 'application/wasm',
    }));
    const run = `wasm-option-${Date.now()}`;
    const forms = ['url', 'response', 'bytes', 'module'];
    for (const form of forms) {
      await page.goto(`${collector.url}/index.html`);
      await page.waitForFunction(() => window.evbufReady === true);
      await page.evaluate(async ({ endpoint, run, form }) => {
        const url = '/elsewhere/module.wasm';
        const wasm = {
          url: () => url,
          response: () => fetch(url),
          bytes: async () => new Uint8Array(await (await fetch(url)).arrayBuffer()),
          module: async () => WebAssembly.compileStreaming(fetch(url)),
        }[form];
        await window.evbuf.init({ endpoint, flushIntervalMs: 60_000, storageName: form, wasm: await wasm() });
        await window.evbuf.logEvent({ run, form });
        await window.evbuf.flush();
      }, { endpoint: collector.endpoint, run, form });
    }
    assert.deepEqual((await delivered(run)).map((e) => e.payload.form), forms);

    // Without it, the failure says how to hand the module over.
    await page.goto(`${collector.url}/index.html`);
    await page.waitForFunction(() => window.evbufReady === true);
    const message = await page.evaluate((endpoint) =>
      window.evbuf.init({ endpoint }).then(() => 'started', (e) => e.message), collector.endpoint);
    assert.match(message, /^failed to start evbuf: could not load evbuf_bg.wasm \(.*\); .*init\(\{ endpoint, wasm \}\)/);
  } finally {
    await context.close();
    p.dispose();
  }
});

test('stats() says started, and a figure without a value is null', async () => {
  const p = profile();
  const context = await p.launch();
  try {
    const page = await openPage(context);
    const result = await page.evaluate(async (endpoint) => {
      const { init, logEvent, stats } = window.evbuf;
      const before = stats();
      await init({ endpoint, flushIntervalMs: 60_000, storageName: `stats-${Date.now()}` });
      const idle = stats();
      await logEvent({ n: 1 });
      return { before, idle, busy: stats() };
    }, collector.endpoint);
    assert.deepEqual(result.before, { started: false, waitingCalls: 0, droppedWaiting: 0, optedOut: false });
    assert.equal(result.idle.started, true);
    assert.equal(result.idle.queued, 0);
    // Every figure of the Stats type (js/index.d.ts), named as there, in its order.
    assert.deepEqual(Object.keys(result.idle), ['started', 'mode', 'sender', 'online', 'logged', 'stored',
      'persisted', 'loaded', 'adopted', 'handedOver', 'settledElsewhere', 'sent', 'acknowledged', 'requests', 'unloadRequests', 'failed', 'retries', 'dropped',
      'queued', 'queuedBytes', 'unpersisted', 'inFlight', 'oldestAgeMs', 'nextFlushAt', 'retryAt', 'backoffAttempt']);
    assert.deepEqual(result.busy.dropped, { oversize: 0, invalid: 0, poison: 0, storageLimit: 0, age: 0, waitingLimit: 0, total: 0 });
    assert.equal(result.busy.logged, 1);
    assert.equal(result.busy.mode, 'indexeddb');
    for (const figure of ['oldestAgeMs', 'nextFlushAt', 'retryAt']) {
      assert.ok(figure in result.idle, `${figure} is present`);
      assert.equal(result.idle[figure], null, `${figure} is null with nothing queued`);
    }
    assert.equal(typeof result.busy.oldestAgeMs, 'number');
    assert.equal(typeof result.busy.nextFlushAt, 'number');
  } finally {
    await context.close();
    p.dispose();
  }
});

test('compression: gzip compresses normal sends, never the unload path', async () => {
  const p = profile();
  const context = await p.launch();
  try {
    const page = await openPage(context);
    const run = `gzip-${Date.now()}`;
    const before = await collector.summary();
    const result = await page.evaluate(async ({ endpoint, run }) => {
      const { init, logEvent, flush, stats } = window.evbuf;
      await init({ endpoint, flushIntervalMs: 60_000, compression: 'gzip', storageName: run });
      await logEvent({ run, i: 0 });
      await flush();
      const normal = stats().requests;
      await logEvent({ run, i: 1 });
      // What a closing page does: a keepalive post of what is stored.
      window.dispatchEvent(new PageTransitionEvent('pagehide', { persisted: false }));
      return { normal, unload: stats().unloadRequests };
    }, { endpoint: collector.endpoint, run });
    assert.equal(result.normal, 1);
    assert.equal(result.unload, 1);
    await eventually(async () => (await delivered(run)).length === 2, 10_000, 'both events');
    const after = await collector.summary();
    assert.equal(after.gzip_requests - before.gzip_requests, 1, 'the normal send, not the keepalive post');
  } finally {
    await context.close();
    p.dispose();
  }
});
