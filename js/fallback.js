// evbuf's fallback client, imported by the entry only where the page cannot run
// WebAssembly, so that pages in full mode never download it.
// Under the 64 KiB a page may have in keepalive requests at once.
const KEEPALIVE_BUDGET = 60_000;

/**
 * Without WebAssembly, what the legacy logEvent did: the events of one tick posted in the
 * wire format with keepalive, no storage, no retry. Failures go to onError; no call hangs.
 */
export function fallbackClient({ endpoint, headers, onError } = {}, why) {
  if (typeof endpoint !== 'string') throw new TypeError(`invalid option \`endpoint\`: expected a string URL, got ${endpoint}`);
  const url = new URL(endpoint, location.href).href;
  const device = `fallback-${crypto.randomUUID?.() ?? Math.random().toString(36).slice(2)}`;
  const counts = { logged: 0, sent: 0, requests: 0, failed: 0, invalid: 0 };
  const inFlight = new Set();
  let seq = 0;
  let batch = [];
  let bytes = 0;
  const report = (error) => { try { onError?.(error); } catch { /* the page's handler */ } };

  function post() {
    if (batch.length === 0) return;
    const events = batch;
    batch = [];
    bytes = 0;
    const body = `{"sent_at":${Date.now()},"device":"${device}","events":[${events.join(',')}]}`;
    // Custom headers need a preflight anyway; without them the type stays CORS-safelisted,
    // so that a post at unload needs none.
    const type = headers ? { 'content-type': 'application/json', ...headers } : { 'content-type': 'text/plain;charset=UTF-8' };
    counts.requests++;
    const request = fetch(url, { method: 'POST', body, keepalive: true, headers: type })
      .then((response) => {
        if (!response.ok) throw new Error(`the endpoint answered ${response.status}`);
        counts.sent += events.length;
      })
      .catch((cause) => {
        counts.failed += events.length;
        const error = new Error(`failed to send ${events.length} events in fallback mode: ${cause.message ?? cause}`, { cause });
        report(error);
        return error;
      })
      .finally(() => inFlight.delete(request));
    inFlight.add(request);
  }

  async function flush() {
    post();
    const failure = (await Promise.all(inFlight)).find(Boolean);
    if (failure) throw failure;
  }

  report(new Error(`evbuf runs in fallback mode: this page cannot run WebAssembly (${String(why).trim()}); events are posted ` +
    "as they are logged, without storage or retries. If the page's Content-Security-Policy blocks it, add " +
    "'wasm-unsafe-eval' to script-src"));
  function logJson(json) {
    const event = `{"id":"${crypto.randomUUID?.() ?? `${device}-${seq}`}","seq":${seq++},"ts":${Date.now()},"payload":${json}}`;
    const size = new Blob([event]).size; // UTF-8 bytes: what the keepalive budget counts
    if (bytes + size > KEEPALIVE_BUDGET) post();
    if (batch.length === 0) queueMicrotask(post);
    batch.push(event);
    bytes += size;
    counts.logged++;
  }

  // No logJson: the entry batches every payload here (nothing is too large to post).
  return {
    // The events of one tick, their JSON separated by newlines (JSON text has none).
    logBatch: (payloads) => { for (const json of payloads.split('\n')) logJson(json); },
    flush,
    // Its failures went to onError; a re-init or shutdown() goes on.
    shutdown: () => flush().catch(() => {}),
    countInvalid: () => { counts.invalid++; },
    stats: () => ({ started: true, mode: 'fallback', ...counts, inFlight: inFlight.size, queued: batch.length }),
  };
}
