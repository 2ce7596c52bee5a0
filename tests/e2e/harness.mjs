// Shared pieces of the end-to-end tests: a collector of our own on a free loopback port
// (serving the test pages and pkg/ too), and Debian's Chromium driven by playwright-core.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const root = fileURLToPath(new URL('../../', import.meta.url));

export const CHROMIUM_ARGS = [
  '--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

/** Starts the reference collector serving `pages` at / and pkg/ at /pkg; `stop()` ends
 *  it, and so does the end of this process (its stdin closes). */
export async function startCollector({ db = ':memory:', pages = join(root, 'tests/e2e/pages') } = {}) {
  const child = spawn(join(root, 'target/release/evbuf-collector'), [
    '--addr', '127.0.0.1:0', '--db', db,
    '--serve', `/=${pages}`,
    '--serve', `/pkg=${join(root, 'pkg')}`,
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
    stop: () => new Promise((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once('exit', resolve);
      child.kill('SIGTERM');
    }),
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
