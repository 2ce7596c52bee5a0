// A page whose Content-Security-Policy forbids compiling WebAssembly still sends its events:
// init() resolves in fallback mode, onError says how to fix the CSP, and the events logged
// around init() arrive in the wire format. With 'wasm-unsafe-eval' the same page runs full.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertNumberedAsLogged, eventually, logWithHeadersFunction, scenarioFile, sleep } from './harness.mjs';

const { collector, openPage, delivered, scenario } = scenarioFile('fallback');

/** Serves the test page with `policy` as its Content-Security-Policy header. */
async function withPolicy(context, policy) {
  await context.route('**/index.html', async (route) => {
    const response = await route.fetch();
    await route.fulfill({ response, headers: { ...response.headers(), 'content-security-policy': policy } });
  });
}

/** Logs 20 events, 10 before init() and 10 after, flushes; every call's outcome. */
const logAroundInit = (page, run) => page.evaluate(async ({ endpoint, run }) => {
  // A call that never settles is a finding, not a hang of the test.
  const settle = (p) => Promise.race([p.then(() => 'resolved', (e) => `rejected: ${e.message}`),
    new Promise((r) => setTimeout(r, 10_000, 'pending after 10 s'))]);
  const { init, logEvent, flush, stats } = window.evbuf;
  const errors = [];
  const calls = Array.from({ length: 10 }, (_, i) => settle(logEvent({ run, i })));
  const started = await settle(init({ endpoint, onError: (e) => errors.push(`${e.code}: ${e.message}`) }));
  for (let i = 10; i < 20; i++) calls.push(settle(logEvent({ run, i })));
  calls.push(settle(flush()));
  return { started, calls: await Promise.all(calls), stats: stats(), errors };
}, { endpoint: collector().endpoint, run });

test("without 'wasm-unsafe-eval', init() resolves in fallback mode and all 20 events arrive", scenario(async ({ t, launch, run }) => {
  const context = await launch();
  await withPolicy(context, "script-src 'self' 'unsafe-inline'");
  const page = await openPage(context);
  const result = await logAroundInit(page, run);
  t.diagnostic(result.errors[0]);
  assert.equal(result.started, 'resolved');
  assert.deepEqual(result.calls, Array(21).fill('resolved'), 'every call settles');
  assert.equal(result.stats.mode, 'fallback');
  assert.equal(result.errors.length, 1, 'one explanation, no failed send');
  assert.match(result.errors[0], /^fallback: evbuf runs in fallback mode: this page cannot run WebAssembly \(.*Content Security Policy.*\).*add 'wasm-unsafe-eval' to script-src/);
  const events = await delivered(run);
  assert.deepEqual(events.map((e) => e.payload.i).sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => i));
  assertNumberedAsLogged(events);
}, { unloadPath: true }));

test("with 'wasm-unsafe-eval', the same page runs in full mode", scenario(async ({ launch, run }) => {
  const context = await launch();
  await withPolicy(context, "script-src 'self' 'unsafe-inline' 'wasm-unsafe-eval'");
  const page = await openPage(context);
  const result = await logAroundInit(page, run);
  assert.equal(result.started, 'resolved');
  assert.deepEqual(result.calls, Array(21).fill('resolved'), 'every call settles');
  assert.equal(result.stats.mode, 'indexeddb');
  assert.deepEqual(result.errors, []);
  assert.equal((await delivered(run)).length, 20);
}));

/** A page in fallback mode (the CSP forbids WebAssembly), evbuf started with `options`;
 *  what onError receives goes to window.evbufErrors. */
async function fallbackPage(launch, options) {
  const context = await launch();
  await withPolicy(context, "script-src 'self' 'unsafe-inline'");
  const page = await openPage(context);
  const mode = await page.evaluate(async (options) => {
    window.evbufErrors = [];
    await window.evbuf.init({ ...options, onError: (e) => {
      window.evbufErrors.push(e.message);
      if (typeof e.code !== 'string') window.evbufTestUnhandled?.(`onError got an error without a code: ${e.message}`);
    } });
    return window.evbuf.stats().mode;
  }, { endpoint: collector().endpoint, ...options });
  assert.equal(mode, 'fallback', 'precondition: the page runs in fallback mode');
  return page;
}

/** Every event the fallback took is sent, waiting, in flight or dropped with a reason. */
function assertAddsUp(s) {
  assert.equal(s.logged, s.sent + s.queued + s.inFlight + s.dropped.total,
    `logged = sent + queued + inFlight + dropped: ${JSON.stringify(s)}`);
}

test('fallback: headers from a function, called before each post: a new token each time; a function that throws or returns a forbidden header fails that post, retried', scenario(async ({ launch, run }) => {
  const page = await fallbackPage(launch, {});
  const { heard, keys } = await logWithHeadersFunction(page, { endpoint: collector().endpoint, run, delivered });
  assert.deepEqual(keys, ['token-1', 'token-4'], 'the failed calls made no request');
  const failures = heard.filter((m) => m.startsWith('send-failed'));
  assert.equal(failures.length, 2, heard.join('\n'));
  assert.match(failures[0], /the headers function failed: the token service is down/);
  assert.match(failures[1], /what the headers function returned: `Cookie` is a header a page may not set/);
}, { unloadPath: true }));

test('fallback: optOut() lets the events waiting in memory go, and nothing more is posted', { timeout: 60_000 }, scenario(async ({ launch, run }) => {
  const page = await fallbackPage(launch, { retry: { baseMs: 100, maxMs: 200 } });
  await collector().control({ fail_status: 503, fail_for_ms: 60_000 });
  const outcome = await page.evaluate(async (run) => {
    const { logEvent, flush, optOut, stats } = window.evbuf;
    await Promise.all(Array.from({ length: 10 }, (_, i) => logEvent({ run, i })));
    const pending = flush().then(() => 'resolved', (e) => e.code);
    await new Promise((r) => setTimeout(r, 300));
    await optOut();
    await logEvent({ run, after: true });
    return { flushed: await pending, stats: stats() };
  }, run);
  await collector().control({});
  await sleep(1_000);
  assert.equal(outcome.stats.optedOut, true);
  assert.ok(['opted-out', 'send-failed'].includes(outcome.flushed), outcome.flushed);
  assert.deepEqual(await delivered(run), [], 'nothing posted after the opt-out, nothing delivered before it');
}, { unloadPath: true }));

test('fallback: a burst of 200 events of 1 KB in one tick, answers taking 500 ms: all delivered, none refused by the keepalive budget', { timeout: 60_000 }, scenario(async ({ launch, run }) => {
  const N = 200;
  const page = await fallbackPage(launch, {});
  await collector().control({ delay_ms: 500 });
  const result = await page.evaluate(async ({ run, N }) => {
    const { logEvent, flush, stats } = window.evbuf;
    for (let i = 0; i < N; i++) logEvent({ run, i, pad: 'x'.repeat(1_000) });
    const flushed = await Promise.race([flush().then(() => 'resolved', (e) => `rejected: ${e.message}`),
      new Promise((r) => setTimeout(r, 20_000, 'pending after 20 s'))]);
    return { flushed, stats: stats(), errors: window.evbufErrors.slice(1) };
  }, { run, N });
  assert.deepEqual(result.errors, [], 'no failed send');
  assert.equal(result.flushed, 'resolved');
  const events = await delivered(run);
  assert.deepEqual(events.map((e) => e.payload.i).sort((a, b) => a - b), Array.from({ length: N }, (_, i) => i));
  assert.equal(result.stats.sent, N);
  assertAddsUp(result.stats);
}, { unloadPath: true }));

test('fallback: the server holds every request for 3 s, sendTimeoutMs 500: flush() settles, shutdown() too, and the events arrive once it answers', { timeout: 60_000 }, scenario(async ({ launch, run }) => {
  const N = 10;
  const page = await fallbackPage(launch, { sendTimeoutMs: 500, retry: { baseMs: 200, maxMs: 1_000 } });
  await collector().control({ hang_for_ms: 3_000 });
  const flushed = await page.evaluate(async ({ run, N }) => {
    const { logEvent, flush } = window.evbuf;
    for (let i = 0; i < N; i++) logEvent({ run, i });
    return Promise.race([flush().then(() => 'resolved', (e) => `rejected: ${e.message}`),
      new Promise((r) => setTimeout(r, 10_000, 'pending after 10 s'))]);
  }, { run, N });
  assert.match(flushed, /^rejected: .*500 ms/, 'flush() settles with the timeout as its reason');
  await eventually(async () => (await delivered(run)).length === N, 15_000, `${N} events after the hang`);
  const s = await eventually(async () => {
    const now = await page.evaluate(() => window.evbuf.stats());
    return now.queued === 0 && now.inFlight === 0 && now;
  }, 5_000, 'nothing left to send');
  assert.equal(s.sent, N);
  assert.ok(s.failed >= 1, `the held posts count as failed (${s.failed})`);
  assertAddsUp(s);
  await collector().control({ hang_for_ms: 60_000 });
  const shut = await page.evaluate(async (run) => {
    window.evbuf.logEvent({ run, i: -1 });
    return Promise.race([window.evbuf.shutdown().then(() => 'resolved', (e) => `rejected: ${e.message}`),
      new Promise((r) => setTimeout(r, 10_000, 'pending after 10 s'))]);
  }, run);
  assert.equal(shut, 'resolved', 'shutdown() does not wait for a server that never answers');
}, { unloadPath: true }));
