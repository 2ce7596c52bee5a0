// The reference collector for the benchmark: same as tests/e2e/harness.mjs's
// startCollector(), but serving bench/pages/ at / (and pkg/ at /pkg). It exits with this
// process (--exit-on-stdin-eof), so an interrupted run leaves no collector behind.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../', import.meta.url));

export async function startCollector({ db = ':memory:', pages = join(root, 'bench/pages') } = {}) {
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
    child.on('error', reject);
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
