// Shared pieces of the end-to-end tests: a collector of our own on a free loopback port
// (serving the test pages and pkg/ too), Debian's Chromium driven by playwright-core, and
// the helpers of the delivery scenarios (scenarios.test.mjs, delivery.test.mjs).
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import Ajv2020 from 'ajv/dist/2020.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

export const CHROMIUM_ARGS = [
  '--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

/** The package's schema.json (docs/server.md), compiled: `validateBody(body)` is true
 *  for a body that follows it, else its `errors` say why. */
export const validateBody = new Ajv2020({ allErrors: true, strict: true })
  .compile(JSON.parse(readFileSync(join(root, 'schema.json'), 'utf8')));

const CONTENT_TYPES = ['application/json', 'text/plain;charset=UTF-8'];

/**
 * What is wrong with the bodies the collector recorded (`--record-bodies`) in `file`,
 * one line per bad body (empty when all follow schema.json, come with a content type
 * evbuf sends, and give every event the id `<session>-<seq>`), and how many it read.
 */
export function checkRecordedBodies(file) {
  const problems = [];
  const lines = existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
  lines.forEach((text, i) => {
    const record = JSON.parse(text);
    const where = `body ${i + 1} of ${lines.length} (${record.content_type}${record.content_encoding ? `, ${record.content_encoding}` : ''})`;
    const excerpt = () => (record.body ?? '').slice(0, 300);
    if (record.body === null) return problems.push(`${where}: ${record.error}`);
    if (!CONTENT_TYPES.includes(record.content_type)) problems.push(`${where}: Content-Type ${record.content_type} is none evbuf sends`);
    let body;
    try {
      body = JSON.parse(record.body);
    } catch (error) {
      return problems.push(`${where}: not JSON (${error.message}): ${excerpt()}`);
    }
    if (!validateBody(body)) {
      const why = validateBody.errors.map((e) => `${e.instancePath || '/'} ${e.message}`).join('; ');
      return problems.push(`${where}: does not follow schema.json (${why}): ${excerpt()}`);
    }
    for (const e of body.events) {
      if (e.id !== `${e.session}-${e.seq}`) problems.push(`${where}: event id ${e.id} is not <session>-<seq> (${e.session}, ${e.seq})`);
    }
  });
  return { problems, count: lines.length };
}

/** Starts the reference collector serving `pages` at / and pkg/ at /pkg; `stop()` ends
 *  it, and so does the end of this process (its stdin closes). Every bulk body it
 *  receives is recorded, and `stop()` fails naming each one that does not follow the
 *  contract (`checkRecordedBodies`); `checkBodies: false` for a run that also posts
 *  bodies of its own (the benchmark's legacy one-event posts). */
export async function startCollector({ db = ':memory:', pages = join(root, 'tests/e2e/pages'), checkBodies = true } = {}) {
  const recorded = mkdtempSync(join(tmpdir(), 'evbuf-bodies-'));
  const child = spawn(join(root, 'target/release/evbuf-collector'), [
    '--addr', '127.0.0.1:0', '--db', db,
    '--serve', `/=${pages}`,
    '--serve', `/pkg=${join(root, 'pkg')}`,
    ...(checkBodies ? ['--record-bodies', recorded] : []),
    '--exit-on-stdin-eof',
  ], { stdio: ['pipe', 'pipe', 'inherit'] });
  const url = await new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const match = out.match(/listening on (http:\/\/\S+)/);
      if (match) resolve(match[1]);
    });
    child.on('exit', (code) => reject(new Error(`the collector exited with ${code}`)));
  });
  const call = async (method, path, body) => {
    const response = await fetch(url + path, {
      method, body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return text ? JSON.parse(text) : null;
  };
  return {
    url,
    endpoint: `${url}/bulk/event`,
    events: () => call('GET', '/events'),
    summary: () => call('GET', '/events?summary=1'),
    control: (settings) => call('POST', '/control', settings),
    reset: () => call('POST', '/reset'),
    /** What it recorded so far: { problems, count } (see checkRecordedBodies). */
    bodies: () => checkRecordedBodies(join(recorded, 'bodies.jsonl')),
    stop: async () => {
      await new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', resolve);
        child.kill('SIGTERM');
      });
      const { problems, count } = checkRecordedBodies(join(recorded, 'bodies.jsonl'));
      rmSync(recorded, { recursive: true, force: true });
      if (problems.length > 0) {
        throw new Error(`${problems.length} of the ${count} bodies the collector received break the server contract (schema.json, docs/server.md):\n${problems.join('\n')}`);
      }
    },
  };
}

/** A Chromium with a profile of its own that survives relaunches until `dispose()`. */
export function profile() {
  const dir = mkdtempSync(join(tmpdir(), 'evbuf-profile-'));
  return {
    dir,
    launch: (options = {}) => chromium.launchPersistentContext(dir, {
      executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
      args: CHROMIUM_ARGS,
      ...options,
    }),
    dispose: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/**
 * The books of every page of `context` whose evbuf runs (full mode): each event that came
 * in (logged, loaded, adopted) is acknowledged, dropped with a counted reason, handed to
 * or settled by the sending tab, or still held. A vanished event shows as a difference.
 */
export async function assertBooksBalance(context) {
  for (const page of context.pages()) {
    // A killed browser's page may never answer.
    const s = await Promise.race([page.evaluate(() => window.evbuf?.stats()).catch(() => null), sleep(5_000)]);
    if (!s?.started || s.mode === 'fallback') continue;
    const cameIn = s.logged + s.loaded + s.adopted;
    const accounted = s.acknowledged + s.dropped.total + s.handedOver + s.settledElsewhere + s.queued + s.unpersisted;
    assert.equal(cameIn, accounted, `the books of ${page.url()} do not balance: ${JSON.stringify(s)}`);
  }
}

/**
 * Starts evbuf in `page` with a `headers` function, as an app whose token refreshes: it
 * takes 20 ms a call, returns a `Headers` with a new token each time, but throws at its
 * second call and returns a header a page may not set at its third. Logs two events and
 * flushes after each, and waits until both are delivered (`delivered()` gives their count).
 * Returns what onError heard and the X-Api-Key of every POST the page made.
 */
export async function logWithHeadersFunction(page, { endpoint, run, delivered }) {
  const keys = [];
  page.on('request', (request) => {
    if (request.method() === 'POST' && request.url() === endpoint) keys.push(request.headers()['x-api-key']);
  });
  const heard = await page.evaluate(async ({ endpoint, run }) => {
    const { init, logEvent, flush } = window.evbuf;
    const heard = [];
    let calls = 0;
    const headers = async () => {
      calls++;
      await new Promise((r) => setTimeout(r, 20));
      if (calls === 2) throw new Error('the token service is down');
      if (calls === 3) return { Cookie: 'a=1' };
      return new Headers({ 'X-Api-Key': `token-${calls}` });
    };
    await init({ endpoint, flushIntervalMs: 60_000, retry: { baseMs: 50, maxMs: 100 }, headers,
      onError: (e) => heard.push(`${e.code}: ${e.message}`) });
    for (let i = 0; i < 2; i++) {
      await logEvent({ run, i });
      await flush().catch(() => {});
    }
    window.evbufHeard = heard;
  }, { endpoint, run });
  await eventually(async () => (await delivered(run)).length === 2, 10_000, 'both events');
  return { heard: await page.evaluate(() => window.evbufHeard), keys };
}

/** Polls `check` until it returns a truthy value or `ms` pass. */
export async function eventually(check, ms = 15_000, what = 'condition') {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    last = await check();
    if (last) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(last)})`);
}

/**
 * Events (from the collector) that one page logged, each with its `i` in logging order:
 * all in one session, numbered 1, 2, 3… in the order logged, each with the id made of
 * both, whichever path posted them.
 */
export function assertNumberedAsLogged(events) {
  const sessions = new Set(events.map((e) => e.session));
  assert.equal(sessions.size, 1, `one page session: ${[...sessions]}`);
  const byI = [...events].sort((a, b) => a.payload.i - b.payload.i);
  assert.deepEqual(byI.map((e) => e.seq), byI.map((_, n) => n + 1), 'seqs 1, 2, 3… in logging order');
  for (const e of events) assert.equal(e.id, `${e.session}-${e.seq}`);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export const stats = (page) => page.evaluate(() => window.evbuf.stats());

/** Logs N events in the page, one every `everyMs`, paced against the clock (no drift);
 *  resolves once all are stored. */
export function logPaced(page, { run, N, everyMs, kind }) {
  return page.evaluate(async ({ run, N, everyMs, kind }) => {
    const start = performance.now();
    const logged = [];
    for (let i = 0; i < N; i++) {
      const wait = start + i * everyMs - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      logged.push(window.evbuf.logEvent({ run, i, kind }));
    }
    await Promise.all(logged);
  }, { run, N, everyMs, kind });
}

/** Waits until the sending page has nothing queued or in flight. */
export function drained(page, ms = 15_000) {
  return eventually(async () => {
    const s = await stats(page);
    return s.queued === 0 && s.inFlight === 0 && s;
  }, ms, 'the sender to have nothing left');
}

/** The browser processes (not helpers) of a profile. */
export function browserPids(dir) {
  return execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' })
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.includes(`--user-data-dir=${dir}`) && !line.includes('--type='))
    .map((line) => Number(line.split(/\s+/)[0]));
}

/** SIGKILLs the browser of profile `p` (no unload handler runs, nothing is flushed) and
 *  waits until it is gone. `pids` are looked up before, while it surely runs. */
export async function killBrowser(context, p, pids) {
  const closed = new Promise((resolve) => context.once('close', resolve));
  for (const pid of pids) process.kill(pid, 'SIGKILL');
  await Promise.race([closed, sleep(10_000)]);
  await eventually(() => browserPids(p.dir).length === 0, 10_000, 'the browser to be gone');
}

/**
 * A test file of delivery scenarios: its own collector, started before its tests and
 * stopped after them (`collector()` returns it), and the figures its scenarios report,
 * printed (and written, see `publishFigures`) as `name` at the end.
 */
export function scenarioFile(name) {
  let started;
  const figures = [];
  before(async () => { started = await startCollector(); });
  after(async () => {
    try {
      await started.stop();
    } finally {
      publishFigures(name, figures);
    }
  });
  return { collector: () => started, ...scenarioHelpers(() => started, figures) };
}

/** The helpers of the delivery scenarios, for the collector `collector()` returns;
 *  `figures` collects each report's row. */
function scenarioHelpers(collector, figures) {
  /**
   * Opens the test page and waits for the package. One reload if it does not load: pkg/
   * may be rebuilt while the tests run, and a half-written file is no finding about evbuf.
   */
  async function openPage(context) {
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (error) => errors.push(error.message));
    for (let attempt = 1; ; attempt++) {
      await page.goto(`${collector().url}/index.html`);
      try {
        await page.waitForFunction(() => window.evbufReady === true, null, { timeout: 10_000 });
        return page;
      } catch (error) {
        if (attempt === 2) throw new Error(`the test page did not load evbuf: ${error.message} ${JSON.stringify(errors)}`);
        console.warn(`the test page did not load evbuf, reloading once: ${JSON.stringify(errors)}`);
      }
    }
  }

  /** Initializes evbuf in `page`; errors given to onError are kept in window.evbufErrors
   *  (their messages) and window.evbufErrorCodes (their code and fields, `retryAt` in ms,
   *  and `at`: the page's clock when onError was called).
   *  One without a code fails the scenario, as an unhandled rejection does. */
  function init(page, options = {}) {
    return page.evaluate(async (options) => {
      window.evbufErrors = [];
      window.evbufErrorCodes = [];
      const onError = (e) => {
        window.evbufErrors.push(e.message);
        const { code, status, events, reason } = e;
        window.evbufErrorCodes.push({ code, status, events, reason, retryAt: e.retryAt instanceof Date ? e.retryAt.getTime() : e.retryAt, at: Date.now() });
        if (typeof code !== 'string') window.evbufTestUnhandled?.(`onError got an error without a code: ${e.message}`);
      };
      await window.evbuf.init({ ...options, onError });
    }, { endpoint: collector().endpoint, ...options });
  }

  /** The distinct events the collector stored for `run` (it keys events by id). */
  async function delivered(run) {
    const { events } = await collector().events();
    const mine = events.filter((e) => e.payload?.run === run);
    assert.equal(new Set(mine.map((e) => e.id)).size, mine.length, 'the collector lists distinct ids');
    return mine;
  }

  /** Asserts the collector holds, for each tab, exactly the events i = 0..perTab[tab]-1
   *  (payloads without a tab count as tab 0). */
  async function assertExactly(run, perTab) {
    const events = await delivered(run);
    perTab.forEach((expected, tab) => {
      const seen = new Set(events.filter((e) => (e.payload.tab ?? 0) === tab).map((e) => e.payload.i));
      const missing = Array.from({ length: expected }, (_, i) => i).filter((i) => !seen.has(i));
      const unexpected = [...seen].filter((i) => !(i >= 0 && i < expected));
      assert.ok(missing.length === 0 && unexpected.length === 0,
        `tab ${tab}: ${seen.size} of ${expected} delivered; missing ${missing.length} ` +
        `(first ${missing.slice(0, 10).join(',')}), unexpected ${unexpected.slice(0, 10).join(',')}`);
    });
    const total = perTab.reduce((a, b) => a + b, 0);
    assert.equal(events.length, total, 'distinct events delivered');
  }

  /** Waits until the collector holds `n` more distinct events than in `since` (cheap polls). */
  function deliveredCount(since, n, ms, what) {
    return eventually(async () => {
      const s = await collector().summary();
      return s.count - since.count >= n && s;
    }, ms, what);
  }

  /** Collector counter deltas since `since`. */
  async function deltas(since) {
    const now = await collector().summary();
    const rejected = {};
    for (const [status, n] of Object.entries(now.rejected_requests)) {
      const d = n - (since.rejected_requests[status] ?? 0);
      if (d) rejected[status] = d;
    }
    return {
      count: now.count - since.count,
      requests: now.requests - since.requests,
      duplicates: now.duplicates - since.duplicates,
      rejected,
    };
  }

  function report(t, scenario, d, extra = {}) {
    const notes = Object.entries(extra).map(([k, v]) => `${k}=${v}`).join(' ');
    figures.push({ test: t.name, scenario, delivered: d.count, requests: d.requests, duplicates: d.duplicates,
      rejected: JSON.stringify(d.rejected), notes });
    t.diagnostic(`${scenario}: delivered=${d.count} requests=${d.requests} duplicates=${d.duplicates} ` +
      `rejected=${JSON.stringify(d.rejected)} ${notes}`);
  }

  /**
   * The collector's view of order at the end of a scenario: one answered send in flight at
   * a time per sender (`senders` is 1 but without Web Locks, where every tab sends its own;
   * a send whose page closed may be cancelled only after the next sender's arrived), the
   * unload path's text/plain posts overlapping a send only where `unloadPath` says the
   * scenario hides or closes pages, and no seq missing in any page session (from 1 to the
   * highest the collector saw) except the `missing` ones a scenario drops on purpose.
   */
  async function assertOrderly({ unloadPath = false, missing = 0, senders = 1 } = {}) {
    const s = await collector().summary();
    assert.ok(s.max_sends_in_flight <= senders, `${s.max_sends_in_flight} sends in flight at once (${senders} senders)`);
    if (!unloadPath) assert.ok(s.max_in_flight <= 1, `${s.max_in_flight} requests in flight at once`);
    const gaps = s.gaps.reduce((n, g) => n + g.missing_count, 0);
    assert.equal(gaps, missing, `seqs missing at the collector: ${JSON.stringify(s.gaps)}`);
  }

  /**
   * A scenario with a fresh collector state, a profile of its own and cleanup whatever
   * happens: misbehaviour cleared, contexts closed, the profile removed. When the body
   * passes, the collector must have seen the sends in order (`assertOrderly(expect)`).
   */
  function scenario(body, expect = {}) {
    return async (t) => {
      await collector().reset();
      const p = profile();
      const contexts = [];
      // Every page's unhandled rejections: a call site that does not await must see none.
      const unhandled = [];
      const launch = async (options) => {
        const context = await p.launch(options);
        contexts.push(context);
        await context.exposeBinding('evbufTestUnhandled', (_, message) => { unhandled.push(message); });
        await context.addInitScript(() => addEventListener('unhandledrejection',
          (e) => window.evbufTestUnhandled(String(e.reason?.message ?? e.reason))));
        return context;
      };
      // Short, as the quiet sessions count bytes.
      const run = `r${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
      try {
        await body({ t, p, launch, run });
        assert.deepEqual(unhandled, [], 'unhandled rejections in the pages');
        await assertOrderly(expect);
        for (const context of contexts) await assertBooksBalance(context);
      } finally {
        await collector().control({});
        for (const context of contexts) {
          // A killed browser's context may never answer: do not hang on it.
          await Promise.race([context.close().catch(() => {}), sleep(5_000)]);
        }
        p.dispose();
      }
    };
  }

  /** The next page in the same profile: starts evbuf, waits until the collector holds N
   *  more events than at `since`, then until the page has nothing left to send. */
  async function nextPageDelivers(launch, since, N) {
    const page = await openPage(await launch());
    await init(page, { flushIntervalMs: 500 });
    await deliveredCount(since, N, 20_000, `${N} events`);
    return { s: await drained(page), d: await deltas(since) };
  }

  return { openPage, init, delivered, assertExactly, deliveredCount, deltas, report, scenario, nextPageDelivers };
}

/**
 * Prints the figures a test file's scenarios reported and, when `EVBUF_FIGURES` names a
 * directory, writes them there as `<name>.json` (`npm run figures` does, for the README).
 */
function publishFigures(name, figures) {
  if (figures.length === 0) return;
  console.log(`${name} figures (requests = bulk POSTs seen by the collector):`);
  console.table(figures.map(({ test, ...row }) => row));
  const dir = process.env.EVBUF_FIGURES;
  if (!dir) return;
  mkdirSync(dir, { recursive: true });
  const machine = `${os.type()} ${os.release()}, ${os.cpus()[0]?.model.trim()}, ${os.cpus().length} cores`;
  const run = { date: new Date().toISOString(), machine, figures };
  writeFileSync(join(dir, `${name}.json`), `${JSON.stringify(run, null, 2)}\n`);
}
