// The end-to-end essentials in Safari's engine, through Debian's WebKit drivers against
// the reference collector: WebKitGTK 2.50 (today's Safari) and WPE WebKit 2.38 (about
// Safari 16.0, the oldest engine evbuf runs in full mode). Log and flush, reload recovery,
// two tabs with one sender, the unload path, and a strict CSP page in fallback mode. Each test has a session of its own: a session
// keeps nothing on disk, so no test sees another's storage.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { eventually, scenarioFile } from '../e2e/harness.mjs';
import { ENGINES, startDriver, newSession } from './webdriver.mjs';

// An endpoint where nothing listens (the discard port): every send fails, nothing is lost.
const UNREACHABLE = 'http://127.0.0.1:9/bulk/event';

const { collector, delivered, deltas } = scenarioFile('webkit');

async function open(session, page = 'index.html') {
  await session.goto(`${collector().url}/${page}`);
  await eventually(() => session.run(() => window.evbufReady === true).catch(() => false),
    10_000, 'the test page to load evbuf');
}

/** Starts evbuf in the current page; errors given to onError land in window.evbufErrors. */
function init(session, options) {
  return session.run(async (options) => {
    window.evbufErrors = [];
    await window.evbuf.init({ ...options, onError: (e) => window.evbufErrors.push(e.message) });
  }, { endpoint: collector().endpoint, ...options });
}

/** Logs events i = 0..n-1 (tagged with `tab`) and resolves once all are stored. */
function logStored(session, { run, n, tab = 0 }) {
  return session.run(async ({ run, n, tab }) => {
    await Promise.all(Array.from({ length: n }, (_, i) => window.evbuf.logEvent({ run, tab, i })));
  }, { run, n, tab });
}

const stats = (session) => session.run(() => window.evbuf.stats());

function assertAllOnce(events, n, tabs = 1) {
  const keys = new Set(events.map((e) => `${e.payload.tab}/${e.payload.i}`));
  assert.equal(events.length, n * tabs, 'events delivered');
  assert.equal(keys.size, n * tabs, 'each logged event delivered once');
}

for (const engine of Object.values(ENGINES)) {
  describe(engine.name, () => {
    let driver;
    before(async () => { driver = await startDriver(engine); });
    after(async () => { await driver?.stop(); });

    /** A test body with a fresh session, a fresh collector state and a run tag of its own. */
    const inSession = (body) => async (t) => {
      await collector().reset();
      const session = await newSession(driver.url, engine);
      const run = `w${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
      try {
        await body({ t, session, run });
      } finally {
        await session.end();
      }
    };

    test('50 events logged and flushed arrive, none lost, none duplicated', inSession(async ({ t, session, run }) => {
      await open(session);
      await init(session, { flushIntervalMs: 60_000 });
      const since = await collector().summary();
      await logStored(session, { run, n: 50 });
      await session.run(() => window.evbuf.flush());
      assertAllOnce(await delivered(run), 50);
      const s = await stats(session);
      t.diagnostic(`mode=${s.mode} sender=${s.sender} requests=${s.requests}`);
      assert.equal(s.mode, 'indexeddb');
      assert.equal(s.sender, true, 'the only tab sends');
      assert.equal((await deltas(since)).duplicates, 0, 'wire duplicates');
      assert.deepEqual(await session.run(() => window.evbufErrors), []);
    }));

    test('events stored but not sent are delivered by the reloaded page', inSession(async ({ session, run }) => {
      await open(session);
      // Nothing this page posts can arrive, the unload post of the reload included.
      await init(session, { endpoint: UNREACHABLE, flushIntervalMs: 60_000 });
      await logStored(session, { run, n: 30 });
      assert.equal((await stats(session)).stored, 30, 'precondition: the events are stored');
      await session.refresh();
      await eventually(() => session.run(() => window.evbufReady === true).catch(() => false),
        10_000, 'the reloaded page to load evbuf');
      await init(session, { flushIntervalMs: 300 });
      await eventually(async () => (await delivered(run)).length >= 30, 20_000, '30 events');
      assertAllOnce(await delivered(run), 30);
    }));

    /** A second browsing context of the origin, entered and left through WebDriver. */
    async function secondTab(session) {
      const first = await session.window();
      if (engine.windows) {
        const handle = await session.newWindow();
        assert.notEqual(handle, first, 'a window of its own');
        await session.switchTo(handle);
        await open(session);
        return { enter: () => session.switchTo(handle), leave: () => session.switchTo(first) };
      }
      await session.run((src) => new Promise((resolve) => {
        const frame = Object.assign(document.createElement('iframe'), { src, onload: resolve });
        document.body.append(frame);
      }), `${collector().url}/index.html`);
      await session.frame(0);
      await eventually(() => session.run(() => window.evbufReady === true).catch(() => false),
        10_000, 'the frame to load evbuf');
      return { enter: () => session.frame(0), leave: () => session.frame(null) };
    }

    test('two tabs deliver what both log through one sender', inSession(async ({ t, session, run }) => {
      await open(session);
      await init(session, { flushIntervalMs: 300 });
      const other = await secondTab(session);
      await init(session, { flushIntervalMs: 300 });
      const since = await collector().summary();
      await logStored(session, { run, n: 100, tab: 1 });
      await other.leave();
      await logStored(session, { run, n: 100, tab: 0 });
      await eventually(async () => (await delivered(run)).length >= 200, 20_000, '200 events');
      assertAllOnce(await delivered(run), 100, 2);
      const all = [await stats(session)];
      await other.enter();
      all.push(await stats(session));
      t.diagnostic(`senders=${all.map((s) => s.sender)} requests=${all.map((s) => s.requests)}`);
      assert.equal(all.filter((s) => s.sender).length, 1, 'exactly one tab sends');
      assert.equal(all.find((s) => !s.sender).requests, 0, 'the other tab makes no request');
      assert.equal((await deltas(since)).duplicates, 0, 'wire duplicates');
    }));

    test('leaving the page posts the stored events on the unload path', inSession(async ({ session, run }) => {
      await open(session);
      await init(session, { flushIntervalMs: 60_000 });
      const since = await collector().summary();
      await logStored(session, { run, n: 40 });
      await eventually(async () => (await stats(session)).sender, 5_000, 'this tab to send');
      assert.equal((await stats(session)).requests, 0, 'precondition: nothing sent yet');
      // A real pagehide: the page is gone, only its keepalive post can deliver.
      await session.goto('about:blank');
      await eventually(async () => (await delivered(run)).length >= 40, 10_000, 'the unload post');
      assertAllOnce(await delivered(run), 40);
      const d = await collector().summary();
      assert.ok(d.unload_requests > since.unload_requests, 'sent as an unload post');
      assert.equal(d.requests - d.unload_requests, since.requests - since.unload_requests, 'no normal send');
    }));

    test('a page whose CSP forbids WebAssembly sends its events in fallback mode', inSession(async ({ session, run }) => {
      await open(session, 'csp.html');
      await init(session, {});
      await logStored(session, { run, n: 20 });
      await session.run(() => window.evbuf.flush());
      assertAllOnce(await delivered(run), 20);
      assert.equal((await stats(session)).mode, 'fallback');
      const errors = await session.run(() => window.evbufErrors);
      assert.equal(errors.length, 1, 'one explanation, no failed send');
      assert.match(errors[0], /cannot run WebAssembly \(Refused to create a WebAssembly object.*add 'wasm-unsafe-eval' to script-src/);
    }));
  });
}
