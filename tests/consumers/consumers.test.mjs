// The packed package in the apps users build: each bundler's tiny app (a directory here,
// its package.json pinning the bundler, its build script the documented setup) gets the
// `npm pack` tarball, is built or served, and is loaded in Chromium; the test passes when
// the collector holds the app's events; the Vitest app runs its own tests under jsdom.
// Installs are cached per app in node_modules/.cache/evbuf-consumers, keyed on the app's
// package.json.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { startCollector, profile, eventually } from '../e2e/harness.mjs';
import { pack, installInto, root } from '../e2e/packed.mjs';

const here = join(root, 'tests/consumers');
const cache = join(root, 'node_modules/.cache/evbuf-consumers');
// webpack and esbuild emit scripts, not pages: this one loads theirs.
const STATIC_PAGE = '<!doctype html><meta charset="utf-8"><script type="module" src="./main.js"></script>';

let tarball;
before(() => { ({ tarball } = pack()); });
after(() => rmSync(tarball));

/** The app's directory in the cache, with its bundler installed and this evbuf in it. */
function prepare(app) {
  const manifest = readFileSync(join(here, app, 'package.json'));
  const key = createHash('sha256').update(manifest).digest('hex').slice(0, 12);
  const dir = join(cache, `${app}-${key}`);
  if (!existsSync(dir)) {
    // Installs for an earlier package.json of this app are of no further use.
    for (const name of existsSync(cache) ? readdirSync(cache) : []) {
      if (name.startsWith(`${app}-`)) rmSync(join(cache, name), { recursive: true, force: true });
    }
    const fresh = `${dir}.installing`;
    rmSync(fresh, { recursive: true, force: true });
    mkdirSync(fresh, { recursive: true });
    writeFileSync(join(fresh, 'package.json'), manifest);
    execFileSync('nice', ['npm', 'install', '--prefer-offline', '--no-audit', '--no-fund'],
      { cwd: fresh, stdio: ['ignore', 'ignore', 'inherit'] });
    renameSync(fresh, dir);
  }
  // What a previous run built, pre-bundled or copied would hide this run's changes.
  const kept = new Set(['package.json', 'package-lock.json', 'node_modules']);
  const stale = readdirSync(dir).filter((name) => !kept.has(name));
  for (const name of [...stale, 'node_modules/evbuf', 'node_modules/.vite']) {
    rmSync(join(dir, name), { recursive: true, force: true });
  }
  installInto(dir, tarball);
  cpSync(join(here, app), dir, { recursive: true });
  cpSync(join(here, 'index.html'), join(dir, 'index.html'));
  mkdirSync(join(dir, 'src'));
  cpSync(join(here, 'main.js'), join(dir, 'src/index.js'));
  return dir;
}

function build(dir) {
  execFileSync('nice', ['npm', 'run', '-s', 'build'], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
}

async function freePort() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Runs `vite <args>` on a free loopback port until `stop()`; resolves once it answers. */
async function vite(dir, args) {
  const port = await freePort();
  const child = spawn(join(dir, 'node_modules/.bin/vite'),
    [...args, '--host', '127.0.0.1', '--port', String(port), '--strictPort'],
    { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
  const url = `http://127.0.0.1:${port}`;
  const stop = () => new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once('exit', resolve);
    child.kill('SIGTERM');
  });
  try {
    await eventually(() => fetch(url).then((r) => r.ok, () => false), 30_000, `vite ${args.join(' ')} to answer`);
  } catch (error) {
    await stop();
    throw error;
  }
  return { url, stop };
}

/** Opens the app at `url` in a fresh Chromium and asserts its events reach `collector`. */
async function delivers(url, collector) {
  const run = `consumer-${Date.now()}`;
  const p = profile();
  const context = await p.launch();
  try {
    const page = await context.newPage();
    await page.goto(`${url}/?endpoint=${encodeURIComponent(collector.endpoint)}&run=${run}`);
    await page.waitForFunction(() => window.evbufResult !== undefined, null, { timeout: 30_000 });
    assert.equal(await page.evaluate(() => window.evbufResult), 'delivered');
    const { events } = await collector.events();
    assert.deepEqual(events.filter((e) => e.payload?.run === run).map((e) => e.payload.i), [0, 1, 2]);
  } finally {
    await context.close();
    p.dispose();
  }
}

/** Builds the app, serves what it emits next to the collector and loads it. */
async function builtAndServed(app) {
  const dir = prepare(app);
  build(dir);
  writeFileSync(join(dir, 'dist/index.html'), STATIC_PAGE);
  const collector = await startCollector({ pages: join(dir, 'dist') });
  try {
    await delivers(collector.url, collector);
  } finally {
    await collector.stop();
  }
}

/** Runs the app under vite (`modes` of it in turn) and loads it; events go cross-origin. */
async function underVite(app, modes) {
  const dir = prepare(app);
  const collector = await startCollector();
  try {
    for (const mode of modes) {
      if (mode === 'preview') build(dir);
      const server = await vite(dir, mode === 'preview' ? ['preview'] : []);
      try {
        await delivers(server.url, collector);
      } finally {
        await server.stop();
      }
    }
  } finally {
    await collector.stop();
  }
}

test('Vite 8: build + preview, and the dev server, with no config', () => underVite('vite8', ['preview', 'dev']));
test('Vite 7: the dev server with optimizeDeps.exclude', () => underVite('vite7', ['dev']));
test('webpack 5: a production build with no config', () => builtAndServed('webpack5'));
test('esbuild: a bundle with the .wasm copied next to it', () => builtAndServed('esbuild'));

test("Vitest 4 with jsdom: an app's own tests, evbuf mocked as docs/testing.md shows, and unmocked", () => {
  const dir = prepare('vitest');
  // Vitest neither transforms nor mocks for files under node_modules, where the cache is:
  // the app's tests run from a directory of their own, with the cached install.
  const app = mkdtempSync(join(tmpdir(), 'evbuf-vitest-'));
  try {
    cpSync(join(here, 'vitest'), app, { recursive: true });
    symlinkSync(join(dir, 'node_modules'), join(app, 'node_modules'));
    execFileSync('nice', ['npm', 'test', '-s'], { cwd: app, stdio: ['ignore', 'inherit', 'inherit'] });
    const result = JSON.parse(readFileSync(join(app, 'vitest-result.json'), 'utf8'));
    assert.deepEqual([result.numPassedTests, result.numFailedTests], [4, 0], 'every test of both files ran and passed');
  } finally {
    rmSync(app, { recursive: true, force: true });
  }
});
