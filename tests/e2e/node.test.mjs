// The packed package in Node, as server-side rendering meets it: importing is safe, init()
// rejects at once saying evbuf is for browsers, and every call made before it rejects too.
// And what the tarball holds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pack, installInto, root } from './packed.mjs';

// Runs in an app of its own that imports 'evbuf' by name; prints what happened as JSON.
const app = `
import * as evbuf from 'evbuf';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const settle = (promise, ms = 3000) => Promise.race([
  promise.then(() => 'resolved', (e) => e.message),
  new Promise((r) => setTimeout(r, ms, 'pending')),
]);
const out = { exports: Object.keys(evbuf).sort(), before: evbuf.stats() };
const logged = evbuf.logEvent({ page: '/' });
out.early = await settle(evbuf.flush());
const t0 = performance.now();
const starting = evbuf.init({ endpoint: 'http://127.0.0.1:9/bulk/event' });
const flushed = evbuf.flush();
out.init = await settle(starting);
out.ms = performance.now() - t0;
out.logged = await settle(logged);
out.flushed = await settle(flushed);
// Handing over the module changes nothing: Node is still no browser.
const wasm = readFileSync(fileURLToPath(import.meta.resolve('evbuf/evbuf_bg.wasm')));
out.withWasm = await settle(evbuf.init({ endpoint: '/bulk/event', wasm }));
out.version = JSON.parse(readFileSync(fileURLToPath(import.meta.resolve('evbuf/package.json')))).version;
out.schema = JSON.parse(readFileSync(fileURLToPath(import.meta.resolve('evbuf/schema.json'))));
console.log(JSON.stringify(out));
`;

test('the tarball; in Node: import is safe, init() rejects naming browsers within a second, queued calls reject', () => {
  const dir = mkdtempSync(join(tmpdir(), 'evbuf-node-'));
  try {
    const { tarball, files } = pack();
    assert.deepEqual(files, ['LICENSE', 'README.md', 'package.json',
      'pkg/evbuf.js', 'pkg/evbuf_bg.wasm', 'pkg/fallback.js', 'pkg/index.d.ts', 'pkg/index.js', 'schema.json'],
    'the tarball holds what the entry needs and the schema of the request body, nothing else');
    installInto(dir, tarball);
    writeFileSync(join(dir, 'app.mjs'), app);
    const out = JSON.parse(execFileSync(process.execPath, ['app.mjs'], { cwd: dir, encoding: 'utf8', timeout: 20_000 }));
    rmSync(tarball);

    assert.deepEqual(out.exports, ['flush', 'init', 'logEvent', 'optOut', 'shutdown', 'stats']);
    assert.deepEqual(out.before, { started: false, waitingCalls: 0, droppedWaiting: 0, optedOut: false });
    assert.equal(out.early, 'failed to flush: evbuf has not been started; call init() first');
    assert.match(out.init, /^failed to start evbuf: evbuf runs in browsers and web workers/);
    assert.match(out.init, /init\(\{ endpoint, wasm \}\)/, 'says how to pass the module');
    assert.ok(out.ms < 1000, `rejected after ${out.ms} ms`);
    assert.match(out.logged, /^failed to log event: evbuf did not start \(evbuf runs in browsers/);
    assert.match(out.flushed, /^failed to flush: evbuf did not start \(evbuf runs in browsers/);
    assert.match(out.withWasm, /^failed to start evbuf: evbuf runs in browsers/);
    assert.deepEqual(out.schema, JSON.parse(readFileSync(join(root, 'schema.json'), 'utf8')), 'evbuf/schema.json is the schema');
    assert.equal(out.version, JSON.parse(execFileSync('npm', ['pkg', 'get', 'version'], { cwd: root, encoding: 'utf8' })));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
