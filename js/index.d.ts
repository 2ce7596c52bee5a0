/** What every error evbuf gives onError or rejects with carries, for code to branch on:
 *  - `config`: an option init() cannot use (it names it);
 *  - `storage`: IndexedDB failed; events are kept in memory for the page;
 *  - `send-failed`: a send failed (`status` if the server answered, `retryAt`, and in
 *    fallback mode `events`); events are kept and retried;
 *  - `dropped`: events dropped and counted (`reason` as in stats().dropped, or 'shutdown'
 *    in fallback mode; `events`; `status` where the server refused them);
 *  - `offline`, `backing-off` (`retryAt`), `sender-silent`: why flush() could not deliver;
 *  - `not-started`, `shut-down`, `start-failed`: a call before init(), after shutdown(),
 *    or waiting for an init() that failed; `opted-out`: a flush after optOut();
 *  - `load-failed`: evbuf_bg.wasm could not be loaded; `unsupported`: not a browser or
 *    worker scope; `fallback`: the page cannot run WebAssembly and evbuf runs without it. */
export type EvbufErrorCode =
  | 'config' | 'storage' | 'send-failed' | 'dropped' | 'offline' | 'backing-off'
  | 'sender-silent' | 'not-started' | 'shut-down' | 'start-failed' | 'load-failed'
  | 'unsupported' | 'fallback' | 'opted-out';

export interface EvbufError extends Error {
  code: EvbufErrorCode;
  /** The HTTP status of the answer, where one came. */
  status?: number;
  /** When the events are sent again. */
  retryAt?: Date;
  /** How many events it concerns. */
  events?: number;
  /** Why events were dropped (`dropped`). */
  reason?: 'oversize' | 'invalid' | 'poison' | 'storageLimit' | 'age' | 'waitingLimit' | 'shutdown';
}

export interface Options {
  /** URL of the bulk endpoint, e.g. 'https://api.example.com/bulk/event': absolute http(s),
   *  or relative to the page (in a worker, to its script), e.g. '/bulk/event'. */
  endpoint: string;
  /** How often stored events are sent (ms). Default 3000. */
  flushIntervalMs?: number;
  /** Stored events at which a flush starts early. Default 50. */
  maxBufferSize?: number;
  /** Events per request at most. Default 100. */
  maxBatchEvents?: number;
  /** Request body bytes at most, 1024..65536. Default 61440 (fits the keepalive budget). */
  maxBatchBytes?: number;
  /** Storage limits; past them the oldest events are dropped and counted. */
  maxStoredEvents?: number;
  maxStoredBytes?: number;
  maxEventAgeMs?: number;
  /** Backoff: full jitter over min(maxMs, baseMs * 2^attempt). Defaults 1000 / 60000. */
  retry?: { baseMs?: number; maxMs?: number };
  /** A request with no answer after this long is aborted and retried with backoff (ms),
   *  100..2^31-1. Default 30000. */
  sendTimeoutMs?: number;
  /** Extra request headers (normal sends only; the unload path cannot carry them): an
   *  object, a `Headers`, or a function called before each send that returns either or a
   *  promise of either (a token that refreshes). A name or value the browser's `Headers`
   *  refuses, or a name a page may not set (Cookie, Host, Origin, ...), fails init(); from
   *  a function, it fails that send (code 'send-failed', retried with backoff), as does a
   *  function that throws, rejects or gives nothing within sendTimeoutMs. */
  headers?: HeadersOption | (() => HeadersOption | PromiseLike<HeadersOption>);
  /** 'gzip' compresses normal sends (`Content-Encoding: gzip`, the server must decode it)
   *  where the browser has `CompressionStream`, plain elsewhere; the unload path always
   *  goes plain. Default 'none'. */
  compression?: 'gzip' | 'none';
  /** Called with an EvbufError for drops, failed sends and storage trouble, and for
   *  every logEvent call that fails, awaited or not. */
  onError?: (error: EvbufError) => void;
  /** IndexedDB database name. Default 'evbuf'. */
  storageName?: string;
  /** false keeps events in memory only (tests, or where storage is unwanted). */
  useIndexedDb?: boolean;
  /** Where the module comes from, for bundlers that do not serve `evbuf_bg.wasm` next to
   *  the script: its URL (e.g. `import url from 'evbuf/evbuf_bg.wasm?url'` in Vite), a
   *  `Response`, its bytes or a compiled `WebAssembly.Module`. Default: the file next to
   *  the package's script. Read by the first init() that loads the module. */
  wasm?: string | URL | Request | Response | PromiseLike<Response> | BufferSource | WebAssembly.Module;
}

/** Header names to string values, or a `Headers`. */
export type HeadersOption = Record<string, string> | Headers;

/** What stats() returns while a client runs. The books of this tab always balance:
 *  `logged + loaded + adopted` equals `acknowledged + dropped.total + handedOver +
 *  settledElsewhere + queued + unpersisted`. */
export interface Stats {
  started: true;
  /** Where this tab keeps events: IndexedDB, or its memory after IndexedDB failed. */
  mode: 'indexeddb' | 'memory';
  /** This tab is the one that sends for the origin (it holds the Web Lock). */
  sender: boolean;
  /** What `navigator.onLine` last said; nothing is sent while false. */
  online: boolean;
  /** logEvent calls in this page, refused ones included. */
  logged: number;
  /** Events this tab holds: `queued + unpersisted`. */
  stored: number;
  /** Events this page wrote to storage. */
  persisted: number;
  /** Events found in storage, left by an earlier page or written by another tab. */
  loaded: number;
  /** Events another tab could keep in memory only and handed to this one, the sender. */
  adopted: number;
  /** Events this tab kept in memory only and handed to the sending tab. */
  handedOver: number;
  /** Events this tab held that the sending tab acknowledged or dropped. */
  settledElsewhere: number;
  /** Events put on the wire (an event sent twice counts twice). */
  sent: number;
  /** Events a 2xx acknowledged. */
  acknowledged: number;
  /** Requests made, keepalive posts included. */
  requests: number;
  /** Keepalive posts made as the page was hidden or closed. */
  unloadRequests: number;
  /** Requests that failed: no answer, or an answer that keeps the events. */
  failed: number;
  /** Retries scheduled after a failure. */
  retries: number;
  /** Events dropped, by reason (the `reason` of an EvbufError with code 'dropped'). */
  dropped: { oversize: number; invalid: number; poison: number; storageLimit: number; age: number; waitingLimit: number; total: number };
  /** Events stored and waiting for an acknowledgement, and their bytes on the wire. */
  queued: number;
  queuedBytes: number;
  /** Events logged whose write has not completed. */
  unpersisted: number;
  /** Events an unanswered request carries. */
  inFlight: number;
  /** Age of the oldest event held (ms); null while nothing is stored. */
  oldestAgeMs: number | null;
  /** When the timer sends next (ms since the epoch); null while it waits for nothing. */
  nextFlushAt: number | null;
  /** When a failed send is retried (ms since the epoch); null while none waits. */
  retryAt: number | null;
  /** Failures in a row the backoff has counted; 0 after a success. */
  backoffAttempt: number;
}

/** What stats() returns without a running client (before init(), after shutdown()). */
export interface NotStarted {
  started: false;
  /** Calls waiting for an init(). */
  waitingCalls: number;
  /** logEvent calls refused in this page because 10,000 calls, or 8 MiB of payload, already
   *  waited for init() (reason 'waitingLimit'). */
  droppedWaiting: number;
  /** optOut() withdrew consent, here or in another tab, and no init() came since. */
  optedOut: boolean;
}

/** Fallback mode, where the page cannot compile or instantiate WebAssembly (a CSP without
 *  'wasm-unsafe-eval', WebAssembly disabled): events wait in memory only, posted one post at
 *  a time with keepalive within the budget and retried with backoff. `sent`, `queued`,
 *  `inFlight` and `dropped` count events (logged = sent + queued + inFlight + dropped.total);
 *  `requests` and `failed` count posts. */
export interface FallbackStats {
  started: true;
  mode: 'fallback';
  logged: number;
  sent: number;
  requests: number;
  failed: number;
  dropped: { oversize: number; invalid: number; poison: number; storageLimit: number; waitingLimit: number; total: number };
  queued: number;
  inFlight: number;
  /** When a failed post is retried (ms since the epoch); null while none waits. */
  retryAt: number | null;
}

/** Starts evbuf; called again (e.g. new headers after login), replaces the running client.
 *  Calls made before it resolves wait for it and run in order. If it fails, it rejects
 *  with "failed to start evbuf: <reason>", the calls waiting for it reject with
 *  "failed to log event: evbuf did not start (<reason>)" (or "failed to flush: …"), and
 *  nothing runs: later calls wait for the next init(), which loads the wasm again if that
 *  was what failed. Outside a browser or worker (Node, server-side rendering) it rejects
 *  at once, saying so. Where WebAssembly cannot run, it resolves in fallback mode
 *  (stats().mode 'fallback') and tells onError why and how to fix the CSP. */
export function init(options: Options): Promise<void>;
/** Resolves once the event is stored; the calls of one tick share one promise. Rejects at
 *  once for a payload JSON cannot serialize, for one larger than maxBatchBytes, and after
 *  shutdown() (until init() again) with "failed to log event: evbuf was shut down; call
 *  init() again". Before init() has finished, calls wait for it in memory, at most 10,000
 *  calls or 8 MiB of payload; past that a call is refused (code 'dropped', reason
 *  'waitingLimit', counted in stats()). The rejection is handled, so a call site that does not await sees no
 *  unhandled rejection; onError hears it. */
export function logEvent(payload: unknown): Promise<void>;
/** Sends now; resolves once everything logged before is acknowledged and deleted from
 *  storage (a page that opens next does not send it again), rejects with the reason
 *  otherwise. While an init() runs, waits for it; with none running (before the
 *  first, after a failed one) it rejects at once (code 'not-started'). After shutdown():
 *  "failed to flush: evbuf was shut down; …". */
export function flush(): Promise<void>;
/** Withdraws consent in every tab that called init() with this storage: deletes the events
 *  stored, waiting for init() or not yet written, and the device id, and stops sending and
 *  storing until init() is called again (in each tab). Until then logEvent resolves and
 *  does nothing, and flush rejects (code 'opted-out'). A send already on the wire may still
 *  arrive. Resolves once storage is erased. Remembering the choice for later visits is the
 *  app's: do not call init() without consent. */
export function optOut(): Promise<void>;
/** Flushes, stops the timer and hands the sender role on. Calls still waiting for an
 *  init() reject, as do calls made after it until init() is called again. */
export function shutdown(): Promise<void>;
/** Without a running client, only how many calls wait for one: check `started` first,
 *  then `mode` for the fallback. */
export function stats(): Stats | FallbackStats | NotStarted;
