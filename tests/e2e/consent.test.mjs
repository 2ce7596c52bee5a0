// optOut(): consent withdrawn in one tab deletes the events of the origin's storage in every
// tab (stored, waiting for init, or not yet written) with the device id, and nothing is
// sent until init() again, which starts afresh.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually, sleep, stats, scenarioFile } from './harness.mjs';

const { collector, openPage, init, delivered, scenario } = scenarioFile('consent');

/** What the client's IndexedDB database holds: its events (a record is a string of lines,
 *  one per event), its records and its device id. */
const storedInPage = (page, name = 'evbuf') => page.evaluate((name) => new Promise((resolve, reject) => {
  const open = indexedDB.open(name);
  open.onerror = () => reject(open.error);
  open.onsuccess = () => {
    const db = open.result;
    const tx = db.transaction(['events', 'meta'], 'readonly');
    const records = tx.objectStore('events').getAll();
    const device = tx.objectStore('meta').get('device');
    tx.oncomplete = () => {
      db.close();
      resolve({ events: records.result.reduce((n, r) => n + String(r).split('\n').length, 0), records: records.result.length, device: device.result ?? null });
    };
  };
}), name);

test('optOut() in a follower erases what both tabs stored, with the device id, stops both, and init() again starts afresh', { timeout: 60_000 }, scenario(async ({ launch, run }) => {
  const context = await launch();
  const sender = await openPage(context);
  await init(sender, { flushIntervalMs: 300, retry: { baseMs: 200, maxMs: 400 } });
  const follower = await openPage(context);
  await init(follower, { flushIntervalMs: 300 });
  await eventually(async () => (await stats(sender)).sender, 5_000, 'the first tab sends');
  await collector().control({ fail_status: 503, fail_for_ms: 60_000 });
  for (const [tab, page] of [sender, follower].entries()) {
    await page.evaluate(async ({ run, tab }) => {
      await Promise.all(Array.from({ length: 20 }, (_, i) => window.evbuf.logEvent({ run, tab, i })));
    }, { run, tab });
  }
  const before = await storedInPage(sender);
  assert.ok(before.records > 0 && before.device !== null, `precondition: events and a device id stored: ${JSON.stringify(before)}`);

  await follower.evaluate(() => window.evbuf.optOut());
  await eventually(async () => (await stats(sender)).optedOut === true, 5_000, 'the sender tab hears the opt-out');
  assert.deepEqual(await storedInPage(sender), { events: 0, records: 0, device: null }, 'storage erased');
  await collector().control({});
  const after = await Promise.all([sender, follower].map((page) => page.evaluate(async (run) => {
    const logged = await window.evbuf.logEvent({ run, after: true }).then(() => 'resolved', (e) => e.message);
    const flushed = await window.evbuf.flush().then(() => 'resolved', (e) => e.code);
    return { logged, flushed, stats: window.evbuf.stats() };
  }, run)));
  for (const { logged, flushed, stats: s } of after) {
    assert.deepEqual({ logged, flushed, stats: s },
      { logged: 'resolved', flushed: 'opted-out', stats: { started: false, waitingCalls: 0, droppedWaiting: 0, optedOut: true } });
  }
  await sleep(1_500);
  assert.deepEqual(await delivered(run), [], 'nothing logged before or after the opt-out was sent');

  // Consent given again: a new start, with a new device id and nothing of the old events.
  await init(sender, { flushIntervalMs: 60_000 });
  await sender.evaluate(async (run) => {
    await window.evbuf.logEvent({ run, again: true });
    await window.evbuf.flush();
  }, run);
  const events = await delivered(run);
  assert.deepEqual(events.map((e) => e.payload), [{ run, again: true }]);
  assert.equal(events[0].seq, 1, 'a page session of its own');
  const now = await storedInPage(sender);
  assert.ok(now.device !== null && now.device !== before.device, 'a new device id');
}));

test('optOut() while writes are under way and calls wait for init(): nothing is sent, and the next page finds nothing stored', { timeout: 60_000 }, scenario(async ({ launch, run }) => {
  const context = await launch();
  const page = await openPage(context);
  const outcome = await page.evaluate(async ({ endpoint, run }) => {
    const { init, logEvent, optOut } = window.evbuf;
    await init({ endpoint, flushIntervalMs: 200 });
    const calls = [];
    // Written as the task ends: the write is under way when optOut() comes.
    for (let i = 0; i < 30; i++) calls.push(logEvent({ run, i }));
    await new Promise((r) => setTimeout(r, 0));
    // A re-init, and calls waiting for it.
    const restarting = init({ endpoint, flushIntervalMs: 200 });
    for (let i = 30; i < 40; i++) calls.push(logEvent({ run, i }));
    await optOut();
    await restarting;
    const settled = await Promise.all(calls.map((c) => c.then(() => 'resolved', (e) => e.message)));
    return { settled: [...new Set(settled)], stats: window.evbuf.stats() };
  }, { endpoint: collector().endpoint, run });
  assert.deepEqual(outcome.settled, ['resolved']);
  assert.equal(outcome.stats.optedOut, true);
  assert.deepEqual(await storedInPage(page), { events: 0, records: 0, device: null });
  await page.close();

  const next = await openPage(context);
  await init(next, { flushIntervalMs: 200 });
  await sleep(1_500);
  const s = await stats(next);
  assert.equal(s.loaded, 0, 'the next page loads nothing');
  assert.deepEqual(await delivered(run), [], 'nothing was sent');
}));

test("optOut() with a storageName that names the app's own database erases nothing of it and resolves", scenario(async ({ launch, run }) => {
  const page = await openPage(await launch());
  const outcome = await page.evaluate(async ({ endpoint, run }) => {
    const request = (r) => new Promise((resolve, reject) => { r.onsuccess = () => resolve(r.result); r.onerror = () => reject(r.error); });
    const open = indexedDB.open(run, 1);
    open.onupgradeneeded = () => open.result.createObjectStore('things');
    const db = await request(open);
    await request(db.transaction('things', 'readwrite').objectStore('things').put('kept', 'k'));
    db.close();
    await window.evbuf.init({ endpoint, storageName: run });
    const optedOut = await window.evbuf.optOut().then(() => 'resolved', (e) => `${e.code}: ${e.message}`);
    const again = await request(indexedDB.open(run));
    const value = await request(again.transaction('things').objectStore('things').get('k'));
    again.close();
    return { optedOut, value };
  }, { endpoint: collector().endpoint, run });
  assert.deepEqual(outcome, { optedOut: 'resolved', value: 'kept' });
}));
