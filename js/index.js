// evbuf: the npm entry. Loads the wasm module, serializes payloads with the browser's
// JSON, stages the events of a tick and hands them to the client in one call, and queues
// calls no client can take yet (before init() has finished, during a re-init, after a
// failed one) for the next client, in order: none is lost. Importing it touches no browser
// API, so that server-side rendering can import it anywhere. Where the page cannot run
// WebAssembly, a fallback client posts events as the legacy call did.
import loadWasm, * as wasm from './evbuf.js';
import { KEEPALIVE_BUDGET, coded, eventLine, fetchWithin, utf8Bytes, uuid } from './send.js';

const PASS_WASM = 'pass it as init({ endpoint, wasm }): a URL, a Response, the bytes or a WebAssembly.Module of evbuf_bg.wasm';

const SHUT_DOWN = 'evbuf was shut down; call init() again';
let started = false;
// After shutdown(), calls reject rather than wait for an init() that may never come.
let shut = false;
let loading = null;
// init() and shutdown() run one at a time; the latest one called decides what the calls
// made meanwhile wait for.
let turn = Promise.resolve();
let latest = 0;
const waiting = [];
// The calls waiting for a client are held in memory: past these limits (those of the
// fallback's memory, maxStoredEvents' and maxStoredBytes' defaults) a call is refused and
// counted, as a dropped event is.
const MAX_WAITING_CALLS = 10_000;
const MAX_WAITING_CHARS = 8 * 1024 * 1024;
let waitingChars = 0;
// logEvent calls refused for those limits in this page, and those of them no onError heard
// yet (before the first init() there is none).
let droppedWaiting = 0;
let unreportedDrops = 0;
// An init() runs: the calls made meanwhile wait for its client.
let initPending = false;
// optOut() withdrew consent (here or in another tab), and no init() came since: calls do
// nothing. `consent` tells the tabs of the latest init()'s storage.
let optedOut = false;
let consent = null;
// optOut() calls so far: an init() called before the latest starts nothing.
let withdrawals = 0;
const OPTED_OUT = 'optOut() withdrew consent; call init() again to log';
// The onError of the latest init(): it hears why a logEvent call failed, which a call site
// that does not await (the legacy call does not) never would.
let onError = null;
// The client the calls go to when WebAssembly cannot run; null in full mode.
let fallback = null;
const client = () => fallback ?? wasm;
// This page's session, and the seq of the latest event logged in it: every event is
// numbered here, as it is logged, whichever path later posts it (the client, the fallback,
// the unload post of calls waiting for a client), so that the server sees a gap wherever
// one never arrived.
let session = null;
let latestSeq = 0;
const pageSession = () => (session ??= uuid());
// The events of this tick not yet handed to the client (their JSON), the promise their
// calls share, and its batch: their time if they waited for a client (else the client
// stamps them), the seq of the first, how many calls hear of a failure only through it,
// what the client answered. A call costs a serialization and a push, and the first of a
// tick one reaction on a settled promise: its job hands the tick's events over, and its
// promise is the calls'. (A promise of its own, queueMicrotask, a call into the page's
// bindings, and a handler per call cost a call alone in its task, as a steady app makes
// them, nearly as much again as its serialization.) The client stamps, stores and makes
// one durability promise per tick.
let staged = [];
let tick = null;
let tickBatch = null;
const settled = Promise.resolve();
const ignore = () => {};
// The longest payload (UTF-16 code units) the client takes in a batch, whatever its
// characters; a longer one goes alone, so that only it is refused if it is too large.
let batchPayloadLimit = 0;

// What a page that cannot compile or instantiate WebAssembly throws: no WebAssembly at all,
// a CSP without 'wasm-unsafe-eval' (CompileError in Chromium, EvalError in WebKit), a
// module the engine cannot link. A failed fetch of the module is not one.
function wasmUnavailable(error) {
  if (typeof WebAssembly !== 'object') return true;
  return error instanceof WebAssembly.CompileError || error instanceof WebAssembly.LinkError
    || error instanceof EvalError;
}

function serialize(payload) {
  let json;
  try {
    json = JSON.stringify(payload);
  } catch (cause) {
    // Cyclic objects and BigInt land here; the message names the problem.
    throw coded(new TypeError(`failed to log event: the payload cannot be serialized to JSON (${cause.message})`),
      'dropped', { reason: 'invalid', events: 1 });
  }
  if (json === undefined) {
    throw coded(new TypeError(`failed to log event: the payload (${typeof payload}) cannot be serialized to JSON`),
      'dropped', { reason: 'invalid', events: 1 });
  }
  return json;
}

/** Stages serialized event `seq` for this tick's batch, made at `at` if it waited for a
 *  client; returns the promise of its durability (this throws nothing). A call that
 *  `reports` has no handler of its own: onError hears through its promise if it fails. */
function stage(json, at, seq, reports) {
  if (json.length > batchPayloadLimit) {
    // Handed over after the events staged before it, to keep their order; refused at once
    // if it is too large.
    handOver();
    const alone = attempt(() => client().logBatch(json, at, seq));
    return reports ? handled(alone) : alone;
  }
  // A batch has one time and consecutive seqs: calls that waited since another moment, or
  // after one an unload post delivered, go in the next.
  if (tick !== null && (at !== tickBatch.at || seq !== tickBatch.firstSeq + staged.length)) handOver();
  let durable = tick;
  if (durable === null) {
    const batch = tickBatch = { at, firstSeq: seq, reports: 0 };
    // The job runs at the end of this task's script (where queueMicrotask's would), and the
    // promise of the calls follows what it returns.
    tick = durable = settled.then(() => settle(batch, durable));
  }
  if (reports) tickBatch.reports++;
  staged.push(json);
  return durable;
}

/** Gives the staged events to the client; their promise follows the client's answer. */
function handOver() {
  if (tick === null) return;
  const batch = tickBatch;
  const payloads = staged;
  staged = [];
  tick = tickBatch = null;
  // Rejected if the client refused them: handled by the batch's job, which runs in this
  // microtask checkpoint, before any rejection goes unhandled.
  batch.answer = attempt(() => client().logBatch(payloads.join('\n'), batch.at, batch.firstSeq));
}

/** The job of a tick's promise: hands its events over unless something did already, and
 *  settles as the client's answer does. If that fails, onError hears it once for each call
 *  that has no handler of its own, before any handler of the calls' runs, and the
 *  rejection does not go unhandled where no call site awaits it. */
function settle(batch, durable) {
  if (!batch.answer) handOver();
  return batch.answer.catch((error) => {
    durable.catch(ignore);
    for (let i = 0; i < batch.reports; i++) report(error);
    throw error;
  });
}

function attempt(run) {
  try {
    return Promise.resolve(run());
  } catch (error) {
    return Promise.reject(error);
  }
}

// `log` ({ json, at, seq }) marks a logEvent call, which the unload path may post before any
// client takes it; `posted` is then the promise of that post's answer.
function call(verb, run, log) {
  if (started) return attempt(run);
  if (shut) return Promise.reject(coded(new Error(`failed to ${verb}: ${SHUT_DOWN}`), 'shut-down'));
  if (optedOut) return Promise.reject(coded(new Error(`failed to ${verb}: ${OPTED_OUT}`), 'opted-out'));
  if (log) {
    if (waiting.length >= MAX_WAITING_CALLS || waitingChars + log.json.length > MAX_WAITING_CHARS) {
      droppedWaiting++;
      if (onError === null) unreportedDrops++;
      return Promise.reject(coded(new Error(`failed to log event: ${MAX_WAITING_CALLS} calls or ${MAX_WAITING_CHARS} characters of payload already wait for init() to finish; this one is dropped`),
        'dropped', { reason: 'waitingLimit', events: 1 }));
    }
    waitingChars += log.json.length;
  } else if (!initPending) {
    return Promise.reject(coded(new Error(`failed to ${verb}: evbuf has not been started; call init() first`), 'not-started'));
  }
  return new Promise((resolve, reject) => waiting.push({ verb, run, log, resolve, reject, posted: null }));
}

/** Takes every waiting call out of the queue. */
function takeWaiting() {
  waitingChars = 0;
  return waiting.splice(0);
}

// The endpoint and sendTimeoutMs of the latest init(), while no client runs.
let endpoint = null;
let sendTimeoutMs = 30_000;
let watching = false;
// The page was hidden (or is closing) and has not been visible since; `postSoon` is a post
// of the calls logged meanwhile, due at the end of the task.
let hidden = false;
let postSoon = false;
// The bytes of the unload posts in flight, which the keepalive budget counts.
let keepaliveBytes = 0;

/**
 * The page hides (or closes) before any client runs: the logEvent calls waiting for one
 * would die with it, so they go out now with keepalive, in the wire format, as the
 * client's unload path posts events not yet stored: plain text, no custom header.
 * The device is this page's (the client's id is in storage, not read yet). The calls stay
 * in their place meanwhile: a 2xx settles them; if the post fails or times out and the
 * page lives on, they wait for the client again, where they were.
 */
function postWaiting() {
  if (started || endpoint === null) return;
  const posted = [];
  const lines = [];
  const room = KEEPALIVE_BUDGET - keepaliveBytes;
  let bytes = 100;
  for (const c of waiting) {
    if (!c.log || c.posted) continue;
    const line = eventLine(pageSession(), c.log.seq, c.log.at, c.log.json);
    const size = utf8Bytes(line) + 1;
    // One too large for what is left of the budget; a smaller one after it may fit.
    if (bytes + size > room) continue;
    bytes += size;
    posted.push(c);
    lines.push(line);
  }
  if (posted.length === 0) return;
  keepaliveBytes += bytes;
  const body = `{"sent_at":${Date.now()},"device":"unstarted-${uuid()}","events":[${lines.join(',')}]}`;
  const answer = fetchWithin(sendTimeoutMs, endpoint, {
    method: 'POST', body, keepalive: true, headers: { 'content-type': 'text/plain;charset=UTF-8' },
  })
    .then((response) => response.ok, () => false)
    .then((ok) => {
      keepaliveBytes -= bytes;
      for (const c of posted) {
        c.posted = null;
        if (!ok) continue;
        const at = waiting.indexOf(c);
        if (at >= 0) {
          waiting.splice(at, 1);
          waitingChars -= c.log.json.length;
        }
        c.resolve();
      }
      return ok;
    });
  for (const c of posted) c.posted = answer;
}

function watchUnload() {
  if (watching) return;
  watching = true;
  addEventListener('pagehide', () => {
    hidden = true;
    postWaiting();
  });
  addEventListener('pageshow', () => { hidden = false; });
  if (typeof document === 'object') {
    document.addEventListener('visibilitychange', () => {
      hidden = document.visibilityState === 'hidden';
      if (hidden) postWaiting();
    });
  }
}

/**
 * A call made while the page is hidden, before any client runs: the app's own `pagehide`
 * or `visibilitychange` handler, which runs after the entry's, logs its last words, and no
 * later event comes to post them. They go out at the end of the task, in one post.
 */
function postIfHidden() {
  if (!hidden || postSoon) return;
  postSoon = true;
  queueMicrotask(() => {
    postSoon = false;
    postWaiting();
  });
}

function refuse(code, why, cause) {
  for (const c of takeWaiting()) {
    const error = coded(new Error(`failed to ${c.verb}: ${why}`, { cause }), code);
    // A call in an unload post is settled by its answer: it may have arrived.
    if (c.posted) c.posted.then((ok) => (ok ? c.resolve() : c.reject(error)));
    else c.reject(error);
  }
}

// The client needs a window or worker scope with IndexedDB. Node, Deno and server-side
// rendering have none; without this check they fail later, with an error about a fetch.
function browserScope() {
  const scope = typeof window !== 'undefined' ? window : typeof self !== 'undefined' ? self : undefined;
  if (scope?.indexedDB === undefined) {
    throw coded(new Error('evbuf runs in browsers and web workers, and this scope is neither (no window or ' +
      'self with IndexedDB: server-side rendering? call init() from code that runs in the browser); ' +
      `where the bundler does not serve evbuf_bg.wasm, ${PASS_WASM}`), 'unsupported');
  }
}

// The module's exports can be called.
let wasmLoaded = false;

function load(module) {
  // A failed load is forgotten, so that the next init() loads again.
  return (loading ??= loadWasm({ module_or_path: module }).then(() => { wasmLoaded = true; }, (cause) => {
    loading = null;
    throw coded(new Error(`could not load evbuf_bg.wasm (${cause?.message ?? cause}); evbuf runs in browsers and web workers; where the bundler does not serve the file, ${PASS_WASM}`, { cause }), 'load-failed');
  }));
}

function inTurn(step) {
  const run = turn.then(step);
  turn = run.catch(ignore);
  return run;
}

/**
 * The `headers` option (an object, a `Headers` or a function returning either, or a
 * promise of either) as what the clients call before each normal send: a function
 * returning a promise of a plain object, which rejects with the cause (within
 * `sendTimeoutMs`: a token that never comes must not hold the send for good). Checked by
 * the browser's rules for request headers: it throws for a name or value it refuses, and
 * drops without a word a name a page may not set (Cookie, Host, Origin, ...), which would
 * never reach the server. An object or a `Headers` is checked once, here; what a function
 * returns, at each send.
 */
function headersOption(headers) {
  if (headers === undefined || headers === null) return undefined;
  if (typeof headers !== 'function') {
    const fixed = checkedHeaders(headers, 'invalid option `headers`');
    return () => Promise.resolve(fixed);
  }
  const ms = sendTimeoutMs;
  return () => {
    let timer;
    const late = new Promise((_, reject) => {
      timer = setTimeout(reject, ms, new Error(`the headers function gave no headers within ${ms} ms (sendTimeoutMs)`));
    });
    const given = Promise.resolve().then(headers).then((value) => checkedHeaders(value, 'what the headers function returned'),
      (cause) => { throw new Error(`the headers function failed: ${cause?.message ?? cause}`, { cause }); });
    return Promise.race([given, late]).finally(() => clearTimeout(timer));
  };
}

function checkedHeaders(headers, what) {
  const invalid = (message, cause) => coded(new TypeError(`${what}: ${message}`, { cause }), 'config');
  if (headers === null || typeof headers !== 'object') {
    throw invalid('expected an object of header names to string values, a Headers, or a function returning either');
  }
  const entries = headers instanceof Headers ? [...headers] : Object.entries(headers);
  for (const [name, value] of entries) {
    if (typeof value !== 'string') throw invalid(`the value of \`${name}\` must be a string`);
    let kept;
    try {
      kept = new Request('data:,', { headers: { [name]: value } }).headers.has(name);
    } catch (cause) {
      throw invalid(`\`${name}\`: not a valid header name or value`, cause);
    }
    if (!kept) throw invalid(`\`${name}\` is a header a page may not set`);
  }
  return Object.fromEntries(entries);
}

/** Loads the module and starts the core; where WebAssembly cannot run, the fallback. */
async function startClient(given, epoch) {
  browserScope();
  listenForOptOut(typeof given?.storageName === 'string' ? given.storageName : 'evbuf');
  const options = { ...given, headers: headersOption(given?.headers) };
  try {
    await load(options?.wasm);
  } catch (error) {
    // `load` names the file and the `wasm` option; the engine's own error says why.
    const cause = error.cause ?? error;
    if (!wasmUnavailable(cause)) throw error;
    const { fallbackClient } = await import('./fallback.js');
    if (epoch !== withdrawals) return;
    fallback = fallbackClient(options, cause?.message ?? cause, pageSession());
    batchPayloadLimit = Infinity;
    return;
  }
  // Nothing to start for an init() that an optOut() overtook: it would load and send what
  // is about to be erased.
  if (epoch !== withdrawals) return;
  batchPayloadLimit = await wasm.start(options, pageSession());
}

/** Starts evbuf, or restarts it with new options; calls made meanwhile wait for it. */
export function init(options) {
  // The events of this tick go to the client they were logged with.
  handOver();
  const mine = ++latest;
  const epoch = withdrawals;
  started = shut = optedOut = false;
  onError = typeof options?.onError === 'function' ? options.onError : null;
  if (unreportedDrops > 0 && onError) {
    report(coded(new Error(`dropped ${unreportedDrops} logEvent calls made before init(): more than ${MAX_WAITING_CALLS} calls or ${MAX_WAITING_CHARS} characters of payload waited`),
      'dropped', { reason: 'waitingLimit', events: unreportedDrops }));
    unreportedDrops = 0;
  }
  initPending = true;
  endpoint = null; // unless the options name one: the client says what is wrong with them
  // The client refuses a value out of range; until then the default.
  const timeout = options?.sendTimeoutMs;
  sendTimeoutMs = Number.isSafeInteger(timeout) && timeout >= 100 && timeout < 2 ** 31 ? timeout : 30_000;
  try {
    if (typeof options?.endpoint === 'string') {
      endpoint = new URL(options.endpoint, location.href).href;
      watchUnload();
    }
  } catch { /* not a URL */ }
  return inTurn(async () => {
    // What a fallback client posted goes out before the next client starts.
    await fallback?.shutdown();
    fallback = null;
    try {
      await startClient(options, epoch);
    } catch (cause) {
      const reason = cause?.message ?? cause;
      // The calls waiting for a later init() are its to run.
      if (mine === latest) {
        initPending = false;
        refuse('start-failed', `evbuf did not start (${reason})`, cause);
      }
      throw coded(new Error(`failed to start evbuf: ${reason}`, { cause }), cause?.code ?? 'start-failed');
    }
    // Calls in an unload post wait for its answer (within sendTimeoutMs): handed to the
    // client only if it failed, in their place.
    let posts;
    while (mine === latest && (posts = waiting.filter((c) => c.posted)).length > 0) {
      await Promise.all(posts.map((c) => c.posted));
    }
    if (mine !== latest) return;
    started = true;
    initPending = false;
    endpoint = null;
    for (const c of takeWaiting()) attempt(c.run).then(c.resolve, c.reject);
  });
}

/**
 * The promise of a logEvent call, handled here: its failure goes to onError, so that a call
 * site that does not await it sees no unhandled rejection, and one that awaits still does.
 */
function handled(promise) {
  promise.catch(report);
  return promise;
}

function report(error) {
  try {
    onError?.(error);
  } catch { /* the page's handler */ }
}

/** Stores the event durably; resolves once it is stored. No request per event. */
export function logEvent(payload) {
  let json;
  try {
    json = serialize(payload);
  } catch (error) {
    if (started) client().countInvalid();
    return handled(Promise.reject(error));
  }
  // Withdrawn consent: the event goes nowhere, and takes no seq (no gap at the server).
  if (optedOut) return Promise.resolve();
  const seq = ++latestSeq;
  if (!started) {
    const at = Date.now();
    const logged = call('log event', () => stage(json, at, seq, false), { json, at, seq });
    postIfHidden();
    return handled(logged);
  }
  return stage(json, undefined, seq, true);
}

/** Sends now; resolves once everything logged before is acknowledged. */
export function flush() {
  return call('flush', () => {
    handOver();
    return client().flush();
  });
}

/** Flushes, stops the timer and releases this tab's role as sender. */
export function shutdown() {
  handOver();
  ++latest;
  started = initPending = false;
  shut = true;
  refuse('shut-down', SHUT_DOWN);
  return inTurn(async () => {
    if (fallback) await fallback.shutdown();
    else if (wasmLoaded) await wasm.shutdown();
    fallback = null;
  });
}

/**
 * Withdraws consent in every tab of the latest init()'s storage: the events stored, waiting
 * for a client or not yet written are deleted, with the device id, and nothing is sent or
 * stored until init() again. Resolves once storage is erased.
 */
export function optOut() {
  consent?.postMessage('opt-out');
  return withdraw();
}

function withdraw() {
  // What was logged is let go: its calls resolve, as if stored and deleted at once.
  staged = [];
  if (tickBatch) tickBatch.answer = settled;
  tick = tickBatch = null;
  ++latest;
  ++withdrawals;
  started = initPending = shut = false;
  optedOut = true;
  endpoint = null;
  // The next init() starts a page session of its own: the events of this one are gone.
  session = null;
  latestSeq = 0;
  for (const c of takeWaiting()) {
    if (c.log) c.resolve();
    else c.reject(coded(new Error(`failed to ${c.verb}: ${OPTED_OUT}`), 'opted-out'));
  }
  const name = consent?.name.slice(CONSENT_PREFIX.length) ?? 'evbuf';
  // The running client stops at once, not after an init() in progress: its turn would
  // shut it down with a flush. A client that turn is starting stops in this one's turn.
  fallback?.withdraw();
  fallback = null;
  const stopping = wasmLoaded ? wasm.optOut() : null;
  return inTurn(async () => {
    await stopping;
    if (wasmLoaded) await wasm.optOut();
    fallback?.withdraw();
    fallback = null;
    await eraseStorage(name);
  });
}

const CONSENT_PREFIX = 'evbuf-consent:';

function listenForOptOut(storageName) {
  if (typeof BroadcastChannel === 'undefined' || consent?.name === CONSENT_PREFIX + storageName) return;
  consent?.close();
  consent = new BroadcastChannel(CONSENT_PREFIX + storageName);
  consent.onmessage = () => withdraw().catch(report);
}

/**
 * Deletes every stored event, the device id and the remembered backoff from the client's
 * IndexedDB database (its schema: src/web/storage/idb.rs), in one transaction awaited to
 * its end; `next_seq` stays, so that no key is given twice. Where no database of that name
 * exists, none is made.
 */
function eraseStorage(name) {
  if (typeof indexedDB === 'undefined') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const failed = (cause) => reject(coded(new Error(`failed to erase stored events: ${cause?.name}: ${cause?.message}`, { cause }), 'storage'));
    const open = indexedDB.open(name);
    let none = false;
    open.onupgradeneeded = () => {
      none = true;
      open.transaction.abort();
    };
    open.onerror = (e) => {
      e.preventDefault();
      if (none) resolve();
      else failed(open.error);
    };
    open.onsuccess = () => {
      const db = open.result;
      let tx;
      try {
        tx = db.transaction(['events', 'meta'], 'readwrite');
      } catch (cause) {
        db.close();
        // NotFoundError: a database of that name that is not evbuf's, nothing of it to erase.
        return cause?.name === 'NotFoundError' ? resolve() : failed(cause);
      }
      tx.objectStore('events').clear();
      tx.objectStore('meta').delete('device');
      tx.objectStore('meta').delete('backoff');
      tx.oncomplete = () => {
        db.close();
        resolve();
      };
      tx.onabort = () => {
        db.close();
        failed(tx.error);
      };
    };
  });
}

/** Counters and gauges; without a running client, the calls that wait for one. The calls
 *  refused while waiting count as logged and dropped, as the client's own drops do. */
export function stats() {
  handOver();
  if (!started) return { started: false, waitingCalls: waiting.length, droppedWaiting, optedOut };
  const s = client().stats();
  s.logged += droppedWaiting;
  const { total, ...byReason } = s.dropped;
  s.dropped = { ...byReason, waitingLimit: droppedWaiting, total: total + droppedWaiting };
  return s;
}
