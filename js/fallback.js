// evbuf's fallback client, imported by the entry only where the page cannot run
// WebAssembly, so that pages in full mode never download it.
import { KEEPALIVE_BUDGET, coded, eventLine, fetchWithin, utf8Bytes, uuid } from './send.js';

// What the envelope around the events adds: sent_at, a device of 45 characters, brackets.
const ENVELOPE_BYTES = 100;
// The floor of any wait, so that a jitter of zero never means a tight loop (as in the core).
const MIN_WAIT_MS = 50;
const MAX_TIMER_MS = 2 ** 31 - 1;

function whole(value, name, otherwise, min, max = Number.MAX_SAFE_INTEGER) {
  if (value === undefined) return otherwise;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw coded(new TypeError(`invalid option \`${name}\`: expected a whole number from ${min} to ${max}, got ${JSON.stringify(value)}`), 'config');
  }
  return value;
}

/** 413 (too large), 400 and 422 (bad content): bisect, drop what is refused alone. */
const refusesContent = (status) => status === 400 || status === 413 || status === 422;

/** Retry-After in ms from now (delay-seconds or an HTTP date); null for neither. */
function retryAfterMs(value) {
  if (value === null) return null;
  if (/^\s*\d+\s*$/.test(value)) return Number(value) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, at - Date.now());
}

/**
 * Without WebAssembly: events in memory only, posted in the wire format, one post at a time
 * while the page lives, each with keepalive within the page's budget; a failed post is
 * retried with backoff (`retry`), and none waits longer than `sendTimeoutMs`. When the page
 * hides, what fits in the budget goes out at once. Failures go to onError; no call hangs.
 */
export function fallbackClient(options = {}, why, session) {
  const { endpoint, headers, onError } = options;
  if (typeof endpoint !== 'string') throw coded(new TypeError(`invalid option \`endpoint\`: expected a string URL, got ${endpoint}`), 'config');
  const url = new URL(endpoint, location.href).href;
  const retry = options.retry ?? {};
  if (typeof retry !== 'object') throw coded(new TypeError('invalid option `retry`: expected { baseMs, maxMs }'), 'config');
  const baseMs = whole(retry.baseMs, 'retry.baseMs', 1_000, 1);
  const maxMs = whole(retry.maxMs ?? 60_000, 'retry.maxMs', 60_000, baseMs);
  const sendTimeoutMs = whole(options.sendTimeoutMs, 'sendTimeoutMs', 30_000, 100, MAX_TIMER_MS);
  const maxEvents = whole(options.maxStoredEvents, 'maxStoredEvents', 10_000, 1);
  const maxBytes = whole(options.maxStoredBytes, 'maxStoredBytes', 8 * 1024 * 1024, 1);
  const device = `fallback-${uuid()}`;
  const counts = { logged: 0, sent: 0, requests: 0, failed: 0 };
  const dropped = { oversize: 0, invalid: 0, poison: 0, storageLimit: 0 };
  // The events no post carries, in seq order: { seq, line, bytes }.
  const queue = [];
  let queuedBytes = 0;
  const inFlight = new Set();
  let inFlightEvents = 0;
  let keepaliveBytes = 0;
  // The seq of the latest event logged.
  let latest = 0;
  let attempt = 0;
  let retryAt = null;
  let retryTimer = null;
  let lastFailure = '';
  // After a 400, 422 or 413, posts carry at most this many events, halving until the event the
  // server refuses is alone.
  let most = Infinity;
  let hidden = false;
  let stopped = false;
  // flush() calls: settled once every event up to `upTo` is acknowledged or dropped.
  const waiters = [];
  const report = (error) => { try { onError?.(error); } catch { /* the page's handler */ } };

  const oldestOutstanding = () => Math.min(queue[0]?.seq ?? latest + 1, ...[...inFlight].map((f) => f.events[0].seq));

  function settleWaiters() {
    const oldest = oldestOutstanding();
    for (const w of waiters.splice(0)) {
      if (w.upTo < oldest) w.resolve();
      else waiters.push(w);
    }
  }

  function refuseWaiters(error) {
    for (const w of waiters.splice(0)) w.reject(error);
  }

  /** Back at their place in the queue, which stays in seq order. */
  function requeue(events) {
    const at = queue.findIndex((e) => e.seq > events[0].seq);
    queue.splice(at < 0 ? queue.length : at, 0, ...events);
    for (const e of events) queuedBytes += e.bytes;
  }

  /** Posts the oldest events, up to `limit` bytes but at least one. */
  function post(limit) {
    let bytes = ENVELOPE_BYTES;
    let n = 0;
    while (n < queue.length && n < most && (n === 0 || bytes + queue[n].bytes <= limit)) bytes += queue[n++].bytes;
    const events = queue.splice(0, n);
    queuedBytes -= bytes - ENVELOPE_BYTES;
    // Beyond the budget the browser refuses a keepalive post; a live page can post without.
    const keepalive = bytes <= KEEPALIVE_BUDGET - keepaliveBytes;
    const flight = { events, keepalive: keepalive ? bytes : 0 };
    inFlight.add(flight);
    inFlightEvents += n;
    keepaliveBytes += flight.keepalive;
    counts.requests++;
    const body = `{"sent_at":${Date.now()},"device":"${device}","events":[${events.map((e) => e.line).join(',')}]}`;
    // Custom headers need a preflight anyway; without them the type stays CORS-safelisted,
    // so that a post at unload needs none.
    (headers ? headers() : Promise.resolve(null))
      .then((extra) => fetchWithin(sendTimeoutMs, url, {
        method: 'POST', body, keepalive,
        headers: extra ? { 'content-type': 'application/json', ...extra } : { 'content-type': 'text/plain;charset=UTF-8' },
      }).catch((cause) => { throw new Error(`network error: ${cause?.message ?? cause}`); }))
      .then((response) => answered(flight, response.status, response.headers.get('retry-after')),
        (cause) => answered(flight, 0, null, cause.message));
  }

  function answered(flight, status, retryAfter, networkError) {
    const { events } = flight;
    inFlight.delete(flight);
    inFlightEvents -= events.length;
    keepaliveBytes -= flight.keepalive;
    if (status >= 200 && status < 300) {
      counts.sent += events.length;
      attempt = 0;
      most = Infinity;
    } else if (refusesContent(status) && events.length === 1) {
      const reason = status === 413 ? 'oversize' : 'poison';
      dropped[reason]++;
      most = Infinity;
      report(coded(new Error(`dropped an event in fallback mode: ${status === 413
        ? 'the server answered 413 Payload Too Large for this event alone'
        : `the server rejected this event with ${status === 422 ? '422 Unprocessable Content' : '400 Bad Request'}`}`),
      'dropped', { reason, events: 1, status }));
    } else {
      counts.failed++;
      if (refusesContent(status)) most = Math.ceil(events.length / 2);
      requeue(events);
      backOff(status, retryAfter, networkError ?? `the server answered ${status}`, events.length);
    }
    settleWaiters();
    pump();
  }

  function backOff(status, retryAfter, detail, n) {
    const asked = status === 429 || status === 503 ? retryAfterMs(retryAfter) : null;
    // 401, 403, 404 and the like: a misconfigured endpoint, whose fix takes longer than a backoff.
    const misconfigured = status >= 400 && status < 500 && ![400, 408, 413, 422, 429].includes(status);
    const bound = Math.min(maxMs, baseMs * 2 ** attempt);
    let wait;
    if (asked !== null) wait = Math.min(Math.max(asked, MIN_WAIT_MS), maxMs);
    else if (misconfigured) wait = maxMs;
    else wait = Math.max(Math.floor(Math.random() * bound), Math.min(MIN_WAIT_MS, bound));
    attempt++;
    retryAt = Date.now() + wait;
    lastFailure = detail;
    clearTimeout(retryTimer);
    retryTimer = setTimeout(() => {
      retryTimer = retryAt = null;
      pump();
    }, wait);
    const error = coded(new Error(`failed to send ${n} events in fallback mode (${detail}); they are retried in ${wait} ms`),
      'send-failed', { status: status || undefined, retryAt: new Date(retryAt), events: n });
    report(error);
    refuseWaiters(error);
  }

  function pump() {
    while (!stopped && queue.length > 0) {
      if (hidden) {
        // The page may be gone any moment: what fits in the keepalive budget goes now.
        const room = KEEPALIVE_BUDGET - keepaliveBytes;
        if (ENVELOPE_BYTES + queue[0].bytes > room) return;
        post(room);
      } else {
        if (inFlight.size > 0 || retryTimer !== null) return;
        post(KEEPALIVE_BUDGET);
      }
    }
  }

  function admit(json, ts, seq) {
    const line = eventLine(session, seq, ts, json);
    latest = seq;
    const event = { seq, line, bytes: utf8Bytes(line) + 1 }; // and its comma
    queue.push(event);
    queuedBytes += event.bytes;
    counts.logged++;
  }

  /** Memory is all there is: past the limits, the oldest events waiting go. */
  function enforceLimits() {
    let n = 0;
    while (queue.length > 0 && (queue.length + inFlightEvents > maxEvents || queuedBytes > maxBytes)) {
      queuedBytes -= queue.shift().bytes;
      n++;
    }
    if (n === 0) return;
    dropped.storageLimit += n;
    report(coded(new Error(`dropped the ${n} oldest events in fallback mode: more than maxStoredEvents (${maxEvents}) or maxStoredBytes (${maxBytes}) waited in memory`),
      'dropped', { reason: 'storageLimit', events: n }));
    settleWaiters();
  }

  const onPageHide = () => {
    hidden = true;
    pump();
  };
  const onVisibility = () => {
    hidden = document.visibilityState === 'hidden';
    pump();
  };
  addEventListener('pagehide', onPageHide);
  if (typeof document === 'object') document.addEventListener('visibilitychange', onVisibility);

  function flush() {
    return new Promise((resolve, reject) => {
      waiters.push({ upTo: latest, resolve, reject });
      settleWaiters();
      if (waiters.length === 0) return;
      if (retryTimer !== null && !hidden) {
        refuseWaiters(coded(new Error(`failed to flush in fallback mode: backing off until ${new Date(retryAt).toISOString()} (${lastFailure})`),
          'backing-off', { retryAt: new Date(retryAt) }));
        return;
      }
      pump();
    });
  }

  async function shutdown() {
    removeEventListener('pagehide', onPageHide);
    if (typeof document === 'object') document.removeEventListener('visibilitychange', onVisibility);
    // Its failures went to onError; a re-init or shutdown() goes on.
    await flush().catch(() => {});
    stopped = true;
    clearTimeout(retryTimer);
    const left = queue.length + inFlightEvents;
    if (left > 0) {
      report(coded(new Error(`dropped ${left} events at shutdown in fallback mode: the endpoint had not acknowledged them (${lastFailure}), and nothing is stored`),
        'dropped', { reason: 'shutdown', events: left }));
    }
  }

  report(coded(new Error(`evbuf runs in fallback mode: this page cannot run WebAssembly (${String(why).trim()}); events are kept ` +
    "in memory only, posted and retried while the page lives. If the page's Content-Security-Policy blocks it, add " +
    "'wasm-unsafe-eval' to script-src"), 'fallback'));

  // No logJson: the entry batches every payload here (nothing is too large to post).
  return {
    // The events of one tick, their JSON separated by newlines (JSON text has none),
    // numbered from `firstSeq`, logged at `at` (ms since the epoch) if they waited for the
    // client, else now.
    logBatch: (payloads, at = Date.now(), firstSeq) => {
      let seq = firstSeq;
      for (const json of payloads.split('\n')) admit(json, at, seq++);
      enforceLimits();
      pump();
    },
    flush,
    shutdown,
    // Consent withdrawn: the events in memory go, nothing more is posted.
    withdraw: () => {
      stopped = true;
      clearTimeout(retryTimer);
      removeEventListener('pagehide', onPageHide);
      if (typeof document === 'object') document.removeEventListener('visibilitychange', onVisibility);
      queue.length = 0;
      queuedBytes = 0;
      refuseWaiters(coded(new Error('failed to flush in fallback mode: optOut() withdrew consent; call init() again to log'), 'opted-out'));
    },
    countInvalid: () => {
      counts.logged++;
      dropped.invalid++;
    },
    stats: () => ({
      started: true, mode: 'fallback', ...counts,
      dropped: { ...dropped, total: dropped.oversize + dropped.invalid + dropped.poison + dropped.storageLimit },
      queued: queue.length, inFlight: inFlightEvents, retryAt,
    }),
  };
}
