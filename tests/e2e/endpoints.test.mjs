// The example endpoints users copy (examples/endpoint-express, examples/endpoint-python),
// each started on a free loopback port with a database of its own, posted to by the real
// package in Chromium from a page of another origin (the collector only serves the page
// and pkg/ here). Each test reads the endpoint's SQLite database: every logged event is
// stored once, or counted in stats().dropped with its reason.
import { test, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { drained, eventually, stats, scenarioFile } from './harness.mjs';
import { root } from './packed.mjs';

const { collector, openPage, init, scenario } = scenarioFile('endpoints');

const expressDir = join(root, 'examples/endpoint-express');
const ENDPOINTS = {
  express: { dir: expressDir, command: [process.execPath, 'server.js'] },
  python: { dir: join(root, 'examples/endpoint-python'), command: ['python3', 'server.py'] },
};

// The Express example's own dependencies, as its README installs them; better-sqlite3 also
// reads the databases of both examples here.
let Database;
before(() => {
  const installed = join(expressDir, 'node_modules/.package-lock.json');
  if (!existsSync(installed) || statSync(installed).mtimeMs < statSync(join(expressDir, 'package.json')).mtimeMs) {
    execFileSync('nice', ['npm', 'install', '--prefer-offline', '--no-audit', '--no-fund'],
      { cwd: expressDir, stdio: ['ignore', 'ignore', 'inherit'] });
  }
  Database = createRequire(join(expressDir, 'package.json'))('better-sqlite3');
});

/**
 * Starts the `kind` example on a free loopback port, allowing the test page's origin, with
 * `settings` as its environment (its README's settings). `rows()` reads what it stored;
 * `stop()` ends it and removes its database.
 */
async function startEndpoint(kind, settings = {}) {
  const { dir, command } = ENDPOINTS[kind];
  const data = mkdtempSync(join(tmpdir(), `evbuf-endpoint-${kind}-`));
  const database = join(data, 'events.sqlite');
  const child = spawn(command[0], command.slice(1), {
    cwd: dir,
    env: { ...process.env, HOST: '127.0.0.1', PORT: '0', DATABASE: database, ALLOWED_ORIGIN: collector().url, ...settings },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const keep = (chunk) => { output = (output + chunk).slice(-4_000); };
  child.stderr.on('data', keep);
  const endpoint = await new Promise((resolve, reject) => {
    child.stdout.on('data', (chunk) => {
      keep(chunk);
      const match = output.match(/listening on (http:\/\/\S+)/);
      if (match) resolve(match[1]);
    });
    child.on('exit', (code) => reject(new Error(`the ${kind} endpoint exited with ${code} before listening:\n${output}`)));
  });
  return {
    endpoint,
    /** Every stored row, its payload parsed. */
    rows() {
      const db = new Database(database, { readonly: true, fileMustExist: true });
      try {
        return db.prepare('SELECT * FROM events').all().map((row) => ({ ...row, payload: JSON.parse(row.payload) }));
      } finally {
        db.close();
      }
    },
    stop: () => new Promise((resolve) => {
      const removed = () => { rmSync(data, { recursive: true, force: true }); resolve(); };
      if (child.exitCode !== null || child.signalCode !== null) return removed();
      child.once('exit', removed);
      child.kill('SIGTERM');
    }),
  };
}

/** A scenario (harness.mjs) with the `kind` endpoint started for it and stopped after. */
function withEndpoint(kind, settings, body) {
  return scenario(async (context) => {
    const started = await startEndpoint(kind, settings);
    try {
      await body({ ...context, ...started });
    } finally {
      await started.stop();
    }
  });
}

/** Logs events { run, i } for i = 0..n-1 (`pad(i)` characters of padding where given)
 *  and waits until they are stored. */
const logStored = (page, { run, n, pad }) => page.evaluate(async ({ run, n, pads }) => {
  await Promise.all(Array.from({ length: n }, (_, i) => window.evbuf.logEvent({ run, i, pad: 'x'.repeat(pads[i]) })));
}, { run, n, pads: Array.from({ length: n }, (_, i) => pad?.(i) ?? 0) });

/** Every bulk request the page makes to `endpoint` and the status it got (or why it
 *  failed), as they happen. */
function watchRequests(page, endpoint) {
  const sent = [];
  page.on('response', (response) => {
    const request = response.request();
    if (request.url() !== endpoint || request.method() !== 'POST') return;
    sent.push({ headers: request.headers(), body: request.postDataBuffer(), status: response.status() });
  });
  page.on('requestfailed', (request) => {
    if (request.url() === endpoint) sent.push({ failure: request.failure()?.errorText });
  });
  return sent;
}

/** Waits until `rows()` holds the events i = 0..n-1 of `run` but `except`, each once, all
 *  of one page session numbered as logged. */
async function assertStored(rows, run, n, except = []) {
  const expected = Array.from({ length: n }, (_, i) => i).filter((i) => !except.includes(i));
  const mine = await eventually(() => {
    const stored = rows().filter((row) => row.payload.run === run);
    return stored.length >= expected.length && stored;
  }, 20_000, `${expected.length} events of ${run} in the database`);
  assert.deepEqual(mine.map((row) => row.payload.i).sort((a, b) => a - b), expected, 'each event stored once, no other');
  for (const row of mine) {
    assert.equal(row.id, `${row.session}-${row.seq}`);
    assert.equal(row.seq, row.payload.i + 1, 'seq 1, 2, 3… in logging order');
  }
  assert.equal(new Set(mine.map((row) => row.session)).size, 1, 'one page session');
  return mine;
}

for (const kind of Object.keys(ENDPOINTS)) {
  describe(`the ${kind} example endpoint`, () => {
    test('normal sends: 150 events in two batches, each stored once; the same body posted again is answered 2xx and stores nothing', withEndpoint(kind, {}, async ({ launch, run, endpoint, rows }) => {
      const page = await openPage(await launch());
      const sent = watchRequests(page, endpoint);
      await init(page, { endpoint, flushIntervalMs: 60_000, maxBufferSize: 100_000 });
      await logStored(page, { run, n: 150 });
      await page.evaluate(() => window.evbuf.flush());
      await assertStored(rows, run, 150);
      assert.deepEqual(sent.map((r) => [r.headers?.['content-type'], r.status]),
        [['application/json', 200], ['application/json', 200]], 'two application/json sends, both 2xx');
      // What a page that did not live to read the answer does: it sends the batch again.
      const again = await fetch(endpoint, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: sent[0].body });
      assert.equal(again.status, 200, `a resend of stored events is answered 2xx: ${await again.text()}`);
      assert.equal(rows().length, 150, 'and stored no second copy');
    }));

    test('the unload post: 40 events logged, the page hidden: all stored from the one text/plain keepalive post', withEndpoint(kind, {}, async ({ launch, run, endpoint, rows }) => {
      const page = await openPage(await launch());
      const sent = watchRequests(page, endpoint);
      await init(page, { endpoint, flushIntervalMs: 60_000, maxBufferSize: 100_000 });
      // Only the sending tab posts, and a tab that takes over sends what it finds stored at
      // once: log after it took over, so that the events are left to the unload post.
      await eventually(async () => (await stats(page)).sender, 10_000, 'the page to be the sender');
      await logStored(page, { run, n: 40 });
      // What the browser does as a tab is hidden or closed.
      await page.evaluate(() => {
        Object.defineProperty(document, 'visibilityState', { value: 'hidden', configurable: true });
        document.dispatchEvent(new Event('visibilitychange'));
      });
      await assertStored(rows, run, 40);
      const s = await drained(page);
      assert.equal(s.unloadRequests, 1, 'one unload post');
      assert.equal(s.requests, 1, 'and no other request');
      assert.deepEqual(sent.map((r) => [r.headers?.['content-type'], r.status]), [['text/plain;charset=UTF-8', 200]],
        'posted as text/plain, answered 2xx with CORS the page can read');
    }));

    test('the unload post: 40 events logged, the page closed: all stored, though no page is left to send them again', withEndpoint(kind, {}, async ({ launch, run, endpoint, rows }) => {
      const page = await openPage(await launch());
      await init(page, { endpoint, flushIntervalMs: 60_000, maxBufferSize: 100_000 });
      await eventually(async () => (await stats(page)).sender, 10_000, 'the page to be the sender');
      await logStored(page, { run, n: 40 });
      await page.close({ runBeforeUnload: true });
      await assertStored(rows, run, 40);
    }));

    test("compression: 'gzip': the gzip sends are decoded and stored", withEndpoint(kind, {}, async ({ launch, run, endpoint, rows }) => {
      const page = await openPage(await launch());
      const sent = watchRequests(page, endpoint);
      await init(page, { endpoint, compression: 'gzip', flushIntervalMs: 60_000, maxBufferSize: 100_000 });
      await logStored(page, { run, n: 60, pad: () => 200 });
      await page.evaluate(() => window.evbuf.flush());
      await assertStored(rows, run, 60);
      assert.deepEqual(sent.map((r) => [r.headers?.['content-encoding'], r.status]), [['gzip', 200]]);
    }));

    test('a custom header (the headers option) named in ALLOW_HEADERS passes the preflight and CORS', withEndpoint(kind, {
      ALLOW_HEADERS: 'Content-Type, Content-Encoding, X-Api-Key',
    }, async ({ launch, run, endpoint, rows }) => {
      const page = await openPage(await launch());
      const sent = watchRequests(page, endpoint);
      await init(page, { endpoint, headers: { 'X-Api-Key': 'k-123' }, flushIntervalMs: 60_000, maxBufferSize: 100_000 });
      await logStored(page, { run, n: 10 });
      await page.evaluate(() => window.evbuf.flush());
      await assertStored(rows, run, 10);
      assert.deepEqual(sent.map((r) => [r.headers?.['x-api-key'], r.status]), [['k-123', 200]]);
    }));

    test('400: one event over MAX_PAYLOAD_BYTES is refused; evbuf bisects, drops it as poison, and the 29 others are stored', withEndpoint(kind, {
      MAX_PAYLOAD_BYTES: '1000',
    }, async ({ launch, run, endpoint, rows }) => {
      const refused = 7;
      const page = await openPage(await launch());
      const sent = watchRequests(page, endpoint);
      await init(page, { endpoint, flushIntervalMs: 60_000, maxBufferSize: 100_000 });
      await logStored(page, { run, n: 30, pad: (i) => (i === refused ? 2_000 : 10) });
      await page.evaluate(() => window.evbuf.flush().catch(() => {}));
      await assertStored(rows, run, 30, [refused]);
      const s = await drained(page);
      assert.deepEqual(s.dropped, { ...s.dropped, poison: 1, total: 1 }, 'the refused event counted as poison, no other drop');
      assert.ok(sent.some((r) => r.status === 400), 'the endpoint answered 400');
      const codes = await page.evaluate(() => window.evbufErrorCodes);
      assert.ok(codes.some((e) => e.code === 'dropped' && e.reason === 'poison' && e.events === 1),
        `onError got { code: 'dropped', reason: 'poison', events: 1 }: ${JSON.stringify(codes)}`);
    }));

    test('413: bodies over MAX_BODY_BYTES are split until they fit, every event stored, none dropped', withEndpoint(kind, {
      MAX_BODY_BYTES: '4096',
    }, async ({ launch, run, endpoint, rows }) => {
      const page = await openPage(await launch());
      const sent = watchRequests(page, endpoint);
      await init(page, { endpoint, flushIntervalMs: 60_000, maxBufferSize: 100_000 });
      await logStored(page, { run, n: 40, pad: () => 400 });
      await page.evaluate(() => window.evbuf.flush());
      await assertStored(rows, run, 40);
      assert.equal((await drained(page)).dropped.total, 0);
      assert.ok(sent.some((r) => r.status === 413), `the endpoint answered 413: ${JSON.stringify(sent.map((r) => r.status))}`);
    }));

    test('429: over RATE_LIMIT requests a second, evbuf waits the exposed Retry-After and every event is stored', withEndpoint(kind, {
      RATE_LIMIT: '1',
    }, async ({ launch, run, endpoint, rows }) => {
      const page = await openPage(await launch());
      const sent = watchRequests(page, endpoint);
      // Backoff alone would retry within 100 to 800 ms: only a Retry-After the page can
      // read makes it wait the endpoint's second.
      await init(page, { endpoint, flushIntervalMs: 100, maxBatchEvents: 10, retry: { baseMs: 50, maxMs: 5_000 } });
      await logStored(page, { run, n: 40 });
      await assertStored(rows, run, 40);
      assert.equal((await drained(page)).dropped.total, 0);
      const limited = (await page.evaluate(() => window.evbufErrorCodes)).filter((e) => e.code === 'send-failed');
      assert.ok(limited.length > 0 && sent.some((r) => r.status === 429), `the endpoint answered 429: ${JSON.stringify(sent.map((r) => r.status ?? r.failure))}`);
      for (const e of limited) {
        assert.equal(e.status, 429);
        assert.ok(e.retryAt - e.at >= 900, `after a 429 evbuf waits Retry-After (1 s), not ${e.retryAt - e.at} ms`);
      }
    }));
  });
}
