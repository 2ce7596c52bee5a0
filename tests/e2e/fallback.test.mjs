// A page whose Content-Security-Policy forbids compiling WebAssembly still sends its events:
// init() resolves in fallback mode, onError says how to fix the CSP, and the events logged
// around init() arrive in the wire format. With 'wasm-unsafe-eval' the same page runs full.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scenarioFile } from './harness.mjs';

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
  const started = await settle(init({ endpoint, onError: (e) => errors.push(e.message) }));
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
  assert.match(result.errors[0], /fallback mode: this page cannot run WebAssembly \(.*Content Security Policy.*\).*add 'wasm-unsafe-eval' to script-src/);
  const events = await delivered(run);
  assert.deepEqual(events.map((e) => e.payload.i).sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => i));
  assert.equal(new Set(events.map((e) => e.seq)).size, 20, 'a seq each');
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
