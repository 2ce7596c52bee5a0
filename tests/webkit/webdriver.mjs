// A WebDriver client over fetch for Debian's WebKit drivers (WebKitWebDriver with
// MiniBrowser under Xvfb, WPEWebDriver with cog headless). Every call has its own timeout:
// without a display, or with a flag the browser does not know, creating a session hangs
// instead of failing.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';

export const ENGINES = {
  webkitgtk: {
    name: 'WebKitGTK (MiniBrowser)',
    driver: '/usr/bin/WebKitWebDriver',
    // MiniBrowser has no headless mode.
    display: true,
    windows: true,
    capabilities: {
      browserName: 'MiniBrowser',
      'webkitgtk:browserOptions': {
        binary: '/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser',
        args: ['--automation'],
      },
    },
  },
  wpe: {
    name: 'WPE WebKit (cog)',
    driver: '/usr/bin/WPEWebDriver',
    display: false,
    // cog runs a single view: a new window is the same page under the same handle.
    windows: false,
    capabilities: {
      browserName: 'cog',
      'wpe:browserOptions': { binary: '/usr/bin/cog', args: ['--automation', '--platform=headless'] },
    },
  },
};

const CALL_TIMEOUT_MS = 30_000;

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Resolves with the first line `child` writes to file descriptor `fd`. */
function firstLine(child, fd, what) {
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdio[fd].on('data', (chunk) => {
      out += chunk;
      if (out.includes('\n')) resolve(out.split('\n')[0].trim());
    });
    child.once('exit', (code) => reject(new Error(`failed to start ${what}: it exited with ${code}`)));
  });
}

function stopChild(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', resolve);
    child.kill('SIGTERM');
  });
}

/** Starts Xvfb on a display number it picks itself (-displayfd); `stop()` ends it. */
async function startXvfb() {
  const child = spawn('Xvfb', ['-displayfd', '3', '-screen', '0', '1280x1024x24', '-nolisten', 'tcp'],
    { stdio: ['ignore', 'ignore', 'ignore', 'pipe'] });
  const display = await firstLine(child, 3, 'Xvfb');
  return { display: `:${display}`, stop: () => stopChild(child) };
}

/** Starts the engine's driver (and Xvfb when it needs a display) on a free loopback port. */
export async function startDriver(engine) {
  if (!existsSync(engine.driver)) {
    throw new Error(`failed to start ${engine.name}: ${engine.driver} is missing (run scripts/setup.sh)`);
  }
  const xvfb = engine.display ? await startXvfb() : null;
  const env = { ...process.env, ...(xvfb && { DISPLAY: xvfb.display }) };
  const port = await freePort();
  const child = spawn(engine.driver, [`--port=${port}`, '--host=127.0.0.1'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout.on('data', (c) => { log += c; });
  child.stderr.on('data', (c) => { log += c; });
  const url = `http://127.0.0.1:${port}`;
  const end = Date.now() + 10_000;
  for (;;) {
    try {
      await (await fetch(`${url}/status`, { signal: AbortSignal.timeout(1_000) })).json();
      break;
    } catch (error) {
      if (child.exitCode !== null || Date.now() > end) {
        await stopChild(child);
        await xvfb?.stop();
        throw new Error(`failed to start ${engine.driver}: no answer on ${url} (${error.message}) ${log}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    url,
    log: () => log,
    stop: async () => {
      await stopChild(child);
      await xvfb?.stop();
    },
  };
}

async function command(url, method, path, body, ms = CALL_TIMEOUT_MS) {
  let response;
  try {
    response = await fetch(url + path, {
      method,
      headers: body === undefined ? undefined : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(ms),
    });
  } catch (cause) {
    throw new Error(`failed to ${method} ${path}: ${cause.message}`, { cause });
  }
  const { value } = await response.json();
  if (!response.ok) throw new Error(`failed to ${method} ${path}: ${value?.error} (${value?.message})`);
  return value;
}

/** A session of the driver at `url`; one at a time per driver. */
export async function newSession(url, engine) {
  const { sessionId } = await command(url, 'POST', '/session', {
    capabilities: { alwaysMatch: { ...engine.capabilities, timeouts: { script: 30_000, pageLoad: 30_000 } } },
  });
  const at = `/session/${sessionId}`;
  const call = (method, path, body, ms) => command(url, method, at + path, body, ms);
  return {
    goto: (to) => call('POST', '/url', { url: to }),
    refresh: () => call('POST', '/refresh', {}),
    /** Runs `fn(arg)` in the page; an async fn is awaited and its error rethrown here. A
     *  promise that never settles fails the call after `ms`, not at the driver's timeout. */
    run: async (fn, arg = null, ms = 10_000) => {
      const script = `const done = arguments[arguments.length - 1];
        const late = new Promise((_, reject) => setTimeout(() => reject(new Error('the call did not settle within ${ms} ms')), ${ms}));
        Promise.race([Promise.resolve().then(() => (${fn})(arguments[0])), late]).then(
          (value) => done({ value: value === undefined ? null : value }),
          (error) => done({ error: String(error) + (error && error.stack ? ' at ' + error.stack : '') }));`;
      const result = await call('POST', '/execute/async', { script, args: [arg] }, ms + 10_000);
      if (result.error) throw new Error(`failed in the page: ${result.error}`);
      return result.value;
    },
    newWindow: () => call('POST', '/window/new', { type: 'tab' }).then((v) => v.handle),
    window: () => call('GET', '/window'),
    switchTo: (handle) => call('POST', '/window', { handle }),
    /** Enters the page's frame number `id`; null returns to the top page. */
    frame: (id) => call('POST', '/frame', { id }),
    closeWindow: () => call('DELETE', '/window'),
    end: () => command(url, 'DELETE', at, undefined, 10_000).catch(() => {}),
  };
}
