// A full disk, end to end, with the browser's own quota (DevTools protocol
// `Storage.overrideQuotaForOrigin`), never a patched method: under a real quota the requests
// of a write succeed and the transaction aborts at commit. Every event logged must be
// delivered or counted as dropped with a reason, and onError must say why.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually, stats, scenarioFile } from './harness.mjs';

const { collector, openPage, init, delivered, deltas, report, scenario } = scenarioFile('quota');

/** Opens the test page with the origin's quota cut to `quotaSize` bytes before any page
 *  of the origin opens its database. */
async function openWithQuota(context, quotaSize) {
  const blank = await context.newPage();
  const cdp = await context.newCDPSession(blank);
  await cdp.send('Storage.overrideQuotaForOrigin', { origin: new URL(collector().url).origin, quotaSize });
  const page = await openPage(context);
  return { page, cdp };
}

test('a real 1 MB quota: 3,000 events of ~1.2 KB at 150/s while the server answers 503 for 20 s, the page stays open: every event delivered or counted, onError told', { timeout: 120_000 }, scenario(async ({ t, launch, run }) => {
  const N = 3_000;
  const context = await launch();
  const { page } = await openWithQuota(context, 1_000_000);
  await init(page, { retry: { baseMs: 500, maxMs: 2_000 } });
  const since = await collector().summary();
  await collector().control({ fail_status: 503, fail_for_ms: 20_000 });
  const outcome = await page.evaluate(async ({ run, N }) => {
    // Random text: Chromium compresses IndexedDB values, and padding of one letter would
    // take almost no room.
    const alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
    const noise = (n) => Array.from(crypto.getRandomValues(new Uint8Array(n)), (b) => alphabet[b % 62]).join('');
    const start = performance.now();
    const calls = [];
    for (let i = 0; i < N; i++) {
      const wait = start + (i * 1000) / 150 - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      calls.push(window.evbuf.logEvent({ run, i, noise: noise(1_150) }).then(() => 'resolved', (e) => `rejected: ${e.message}`));
    }
    const settled = await Promise.all(calls);
    return { resolved: settled.filter((s) => s === 'resolved').length, rejections: settled.filter((s) => s !== 'resolved').slice(0, 3) };
  }, { run, N });
  // Everything still held goes once the server is back.
  await eventually(async () => {
    const s = await stats(page);
    return s.queued === 0 && s.unpersisted === 0 && s;
  }, 60_000, 'the page to have nothing left to send');
  const s = await stats(page);
  const errors = await page.evaluate(() => window.evbufErrors);
  const d = await deltas(since);
  const ids = new Set((await delivered(run)).map((e) => e.payload.i));
  report(t, 'real quota 1 MB', d, {
    resolved: outcome.resolved, mode: s.mode, dropped: s.dropped.total, storage_errors: errors.filter((e) => /stor/.test(e)).length,
  });
  assert.equal(ids.size + s.dropped.total, N,
    `${ids.size} delivered + ${s.dropped.total} counted as dropped, of ${N} logged (stats: ${JSON.stringify(s)})`);
  assert.equal(outcome.resolved, N, `every logEvent resolved (rejections: ${JSON.stringify(outcome.rejections)})`);
  assert.ok(errors.some((e) => /failed to store events/.test(e)), `onError was told that storage is full: ${JSON.stringify(errors.slice(0, 3))}`);
  const codes = await page.evaluate(() => window.evbufErrorCodes);
  assert.ok(codes.some((e) => e.code === 'storage'), `with the code 'storage': ${JSON.stringify(codes.slice(0, 3))}`);
}));
