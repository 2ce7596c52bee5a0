// What the entry (posting the calls that wait for init at unload) and the fallback client
// both post with. esbuild bundles it into each, so it holds no state.

// Under the 64 KiB a page may have in keepalive requests at once.
export const KEEPALIVE_BUDGET = 60_000;

// crypto.randomUUID only exists in secure contexts.
export const uuid = () => crypto.randomUUID?.()
  ?? '10000000-1000-4000-8000-100000000000'.replace(/[018]/g, (c) => (c ^ (crypto.getRandomValues(new Uint8Array(1))[0] & (15 >> (c / 4)))).toString(16));

/**
 * One event in the wire format: `seq` numbers the events of the page's `session` from 1,
 * and the id is made of both, as the client makes it (wire::event_id), so that an event
 * posted here and sent again by the client later has one id.
 */
export const eventLine = (session, seq, ts, json) =>
  `{"id":"${session}-${seq}","session":"${session}","seq":${seq},"ts":${ts},"payload":${json}}`;

/**
 * `error` with the stable `code` and the fields that apply (`status`, `retryAt` as a Date,
 * `events`, `reason`), as the client's errors carry them (src/web/errors.rs).
 */
export const coded = (error, code, fields) => Object.assign(error, { code }, fields);

/** UTF-8 bytes: what the keepalive budget counts (a JS length counts UTF-16 code units). */
export const utf8Bytes = (text) => new Blob([text]).size;

/**
 * fetch, aborted after `ms` without an answer, so that a server that never answers
 * cannot hold a post forever. A timer rather than AbortSignal.timeout, which older
 * engines (those the fallback runs on) lack; it is cleared as soon as the answer comes.
 * Resolves once the answer's body has arrived too: until then the browser still counts
 * a keepalive request against the budget, and refuses the next one.
 */
export function fetchWithin(ms, url, init) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), ms);
  return fetch(url, { ...init, signal: controller.signal })
    .then(async (response) => {
      await response.arrayBuffer();
      return response;
    })
    .catch((cause) => {
      throw controller.signal.aborted ? new Error(`no answer within ${ms} ms (sendTimeoutMs)`, { cause }) : cause;
    })
    .finally(() => clearTimeout(timer));
}
