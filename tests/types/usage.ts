// What a TypeScript user writes, checked by `tsc --noEmit` under strict with the
// package's own types (bundler and nodenext resolution). A @ts-expect-error line whose
// error disappears fails the check too.
import { init, logEvent, flush, optOut, shutdown, stats, type Options, type Stats } from 'evbuf';

async function start(): Promise<void> {
  const options: Options = {
    endpoint: '/bulk/event',
    flushIntervalMs: 5000,
    headers: { authorization: 'Bearer t' },
    compression: 'gzip',
    onError: (error) => {
      if (error.code === 'send-failed') console.warn(error.status, error.retryAt?.toISOString());
      else if (error.code === 'dropped') console.warn(error.reason, error.events);
      // @ts-expect-error: not a code evbuf gives
      else if (error.code === 'timeout') console.warn(error.message);
    },
  };
  await init(options);
  await logEvent({ type: 'page_view', path: '/' });
  await flush();
}

// Every form of the headers option.
async function headerForms(token: () => Promise<string>): Promise<void> {
  const endpoint = '/bulk/event';
  await init({ endpoint, headers: new Headers({ 'X-Api-Key': 'k' }) });
  await init({ endpoint, headers: () => ({ 'X-Api-Key': 'k' }) });
  await init({ endpoint, headers: async () => ({ Authorization: `Bearer ${await token()}` }) });
  await init({ endpoint, headers: async () => new Headers({ Authorization: `Bearer ${await token()}` }) });
  // @ts-expect-error: header values are strings
  await init({ endpoint, headers: { 'X-Retries': 3 } });
  // @ts-expect-error: a function gives headers, not a string
  await init({ endpoint, headers: () => 'X-Api-Key: k' });
}

// Every form of the module the loader takes.
async function wasmForms(bytes: Uint8Array, module: WebAssembly.Module): Promise<void> {
  const endpoint = '/bulk/event';
  await init({ endpoint, wasm: '/assets/evbuf_bg.wasm' });
  await init({ endpoint, wasm: new URL('evbuf_bg.wasm', 'https://example.com/') });
  await init({ endpoint, wasm: fetch('/assets/evbuf_bg.wasm') });
  await init({ endpoint, wasm: await fetch('/assets/evbuf_bg.wasm') });
  await init({ endpoint, wasm: bytes });
  await init({ endpoint, wasm: module });
  // @ts-expect-error: only gzip
  await init({ endpoint, compression: 'br' });
  // @ts-expect-error: endpoint is required
  await init({ flushIntervalMs: 1000 });
}

function report(): number {
  const s = stats();
  // @ts-expect-error: `queued` exists only once `started` says a client runs
  s.queued;
  if (s.started) {
    // @ts-expect-error: `stored` exists only in full mode, which `mode` says
    s.stored;
    if (s.mode === 'fallback') return s.queued + s.failed + s.dropped.storageLimit + (s.retryAt ?? 0);
    const running: Stats = s;
    const oldest: number | null = running.oldestAgeMs;
    const retry: number = running.retryAt ?? 0;
    return running.queued + running.dropped.total + (oldest ?? 0) + retry;
  }
  return s.waitingCalls + s.droppedWaiting;
}

async function withdraw(): Promise<boolean> {
  await optOut();
  const s = stats();
  return !s.started && s.optedOut;
}

export { start, headerForms, wasmForms, report, withdraw, shutdown };
