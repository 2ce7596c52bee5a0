#!/usr/bin/env node
// The React example end to end: builds examples/react-app with Vite and serves it from
// the collector (one process, 127.0.0.1 only).
//
//   node scripts/demo.mjs              prints the app and collector URLs; Ctrl-C stops
//   node scripts/demo.mjs --headless   drives the app in Debian's Chromium, checks that
//                                      every event arrived, saves a screenshot; exit 0 if so
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const appDir = join(root, 'examples/react-app');
const distDir = join(appDir, 'dist');
const collectorBin = join(root, 'target/release/evbuf-collector');
const screenshotPath = join(appDir, 'screenshot.png');

const CHROMIUM_ARGS = [
  '--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];
const CLICKS = 5;
const LIST_ITEMS = 200; // matches src/ItemList.jsx
const DELIVERY_TIMEOUT_MS = 30_000;

const headless = process.argv.includes('--headless');
const unknown = process.argv.slice(2).filter((arg) => arg !== '--headless');
if (unknown.length) die(`unknown argument ${unknown[0]}\nusage: node scripts/demo.mjs [--headless]`);

function die(message) {
  console.error(`demo: ${message}`);
  process.exit(1);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs a command to completion, output shown; rejects on a non-zero exit. */
function run(command, args, options = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'inherit', 'inherit'], ...options });
    child.on('error', reject);
    child.on('exit', (code, signal) => code === 0
      ? resolve()
      : reject(new Error(`${[command, ...args].join(' ')} failed (${signal ?? `exit ${code}`})`)));
  });
}

/** The collector, serving `dist` at / next to its API. In a process group of its own, so
 *  that Ctrl-C reaches only this script, which then stops it; stdin is a pipe, so that if
 *  this script dies without cleaning up, the pipe closes and the collector stops too. */
function startCollector(db) {
  const child = spawn(collectorBin, [
    '--addr', '127.0.0.1:0', '--db', db, '--serve', `/=${distDir}`, '--exit-on-stdin-eof',
  ], { stdio: ['pipe', 'pipe', 'inherit'], detached: true });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const url = new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const match = out.match(/listening on (http:\/\/\S+)/);
      if (match) resolve(match[1]);
    });
    child.on('error', reject);
    exited.then((code) => reject(new Error(`the collector exited (${code}) before listening`)));
  });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  return { url, exited, stop };
}

// --- preconditions -------------------------------------------------------------------

if (!existsSync(join(root, 'pkg/index.js')) || !existsSync(join(root, 'pkg/evbuf_bg.wasm'))) {
  die('pkg/ is not built, and the app imports it (evbuf: file:../..). Run `npm run build` first.');
}
if (!existsSync(collectorBin)) {
  die('target/release/evbuf-collector is missing. Run `cargo build --release -p evbuf-collector` first.');
}
if (!existsSync(join(appDir, 'node_modules/vite'))) {
  console.log('demo: installing the app\'s dependencies (npm install --prefix examples/react-app)…');
  await run('npm', ['install', '--prefix', appDir, '--no-audit', '--no-fund'], {
    env: { ...process.env, PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: '1' },
  });
}

// --- collector + build ---------------------------------------------------------------

const tmp = mkdtempSync(join(tmpdir(), 'evbuf-demo-'));
const db = join(tmp, 'demo.sqlite');
mkdirSync(distDir, { recursive: true }); // the collector wants the directory at start
const collector = startCollector(db);

let cleaning = null;
function cleanup() {
  cleaning ??= (async () => {
    await collector.stop();
    rmSync(tmp, { recursive: true, force: true });
  })();
  return cleaning;
}
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => cleanup().then(() => process.exit(headless ? 130 : 0)));
}

let exitCode = 1;
try {
  const url = await collector.url;
  const endpoint = `${url}/bulk/event`;
  console.log(`demo: building examples/react-app with VITE_EVBUF_ENDPOINT=${endpoint}`);
  await run(process.execPath, [join(appDir, 'node_modules/vite/bin/vite.js'), 'build', '--logLevel', 'warn'], {
    cwd: appDir,
    env: { ...process.env, VITE_EVBUF_ENDPOINT: endpoint },
  });

  if (headless) {
    exitCode = await drive(url);
  } else {
    console.log(`
evbuf React demo
  app:        ${url}/
  collector:  ${url}/events?summary=1   (all events: ${url}/events)
  endpoint:   ${endpoint}
  events in:  ${db} (SQLite, removed on exit)
Click the banner, open the list, watch the stats panel. Stop with Ctrl-C.
`);
    const code = await collector.exited; // until Ctrl-C (or the collector dies)
    if (!cleaning) die(`the collector exited unexpectedly (${code})`);
    await new Promise(() => {}); // the signal handler exits
  }
} catch (error) {
  console.error(`demo: ${error.message}`);
} finally {
  await cleanup();
}
process.exit(exitCode);

// --- headless run --------------------------------------------------------------------

/** Clicks through the app in Chromium, waits for delivery, prints a summary. */
async function drive(url) {
  let chromium;
  try {
    ({ chromium } = await import('playwright-core'));
  } catch {
    throw new Error('playwright-core is missing from the root node_modules: run `npm install` first.');
  }
  const profile = join(tmp, 'profile');
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: CHROMIUM_ARGS,
    viewport: { width: 960, height: 600 },
  });
  try {
    const page = context.pages()[0] ?? await context.newPage();
    page.on('pageerror', (error) => console.error(`page error: ${error.message}`));
    page.on('console', (msg) => {
      if (msg.type() === 'error' || msg.type() === 'warning') console.error(`page ${msg.type()}: ${msg.text()}`);
    });

    await page.goto(`${url}/`);
    await page.locator('[data-stat="mode"]').waitFor(); // init() has resolved
    for (let i = 0; i < CLICKS; i++) await page.locator('.banner').click();
    await page.getByRole('link', { name: /List/ }).click();
    await page.locator('.items li').nth(LIST_ITEMS - 1).waitFor();
    const loggedAt = Date.now();
    const expected = 1 + CLICKS + LIST_ITEMS;

    // The stats panel is what a user sees; read it rather than reach into the app.
    const panel = () => page.$$eval('[data-stat]', (cells) =>
      Object.fromEntries(cells.map((cell) => [cell.dataset.stat, cell.textContent])));
    const summary = async () => (await fetch(`${url}/events?summary=1`)).json();

    let stats;
    let stable = 0;
    let lastCount = -1;
    const deadline = Date.now() + DELIVERY_TIMEOUT_MS;
    while (Date.now() < deadline) {
      stats = await panel();
      const { count } = await summary();
      const drained = Number(stats.logged) >= expected && stats.queued === '0' && stats.inFlight === '0';
      stable = drained && count === lastCount ? stable + 1 : 0;
      lastCount = count;
      if (stable >= 2) break; // drained, and the collector's count held for two polls
      await sleep(250);
    }
    const deliveredMs = Date.now() - loggedAt;
    await page.screenshot({ path: screenshotPath });

    const held = await (await fetch(`${url}/events`)).json();
    const key = ({ type, screen, item }) => `${type} ${screen}${item ? ` ${item}` : ''}`;
    const received = new Set(held.events.map((event) => key(event.payload ?? {})));
    const wanted = [
      key({ type: 'VIEW', screen: 'AdBanner' }),
      ...Array.from({ length: CLICKS }, () => key({ type: 'CLICK', screen: 'AdBanner' })),
      ...Array.from({ length: LIST_ITEMS }, (_, i) => key({ type: 'VIEW', screen: 'ItemList', item: i + 1 })),
    ];
    const missing = [...new Set(wanted.filter((k) => !received.has(k)))];
    const clicks = held.events.filter((event) => event.payload?.type === 'CLICK').length;
    const gaps = held.gaps.reduce((sum, gap) => sum + gap.missing_count, 0);
    const ok = held.count === expected && clicks === CLICKS && missing.length === 0 && gaps === 0;

    console.log(`
evbuf React demo (headless Chromium)
  events logged:        ${stats.logged} (1 banner VIEW, ${CLICKS} CLICKs, ${LIST_ITEMS} list VIEWs; expected ${expected})
  delivered, distinct:  ${held.count}
  requests made:        ${held.requests} to the collector (SDK: ${stats.requests}, retries ${stats.retries})
  duplicates:           ${held.duplicates}
  sequence gaps:        ${gaps}
  max in flight:        ${held.max_in_flight}
  storage:              ${stats.mode}, sender ${stats.sender}
  ${(ok ? 'drained in:' : 'gave up after:').padEnd(22)}${(deliveredMs / 1000).toFixed(1)} s after the last event was logged
  screenshot:           ${relative(process.cwd(), screenshotPath)}
  result:               ${ok ? 'OK, every event delivered' : 'INCOMPLETE'}`);
    if (!ok && missing.length) console.log(`  missing:              ${missing.slice(0, 10).join(', ')}${missing.length > 10 ? ', …' : ''}`);
    return ok ? 0 : 1;
  } finally {
    await context.close();
  }
}
