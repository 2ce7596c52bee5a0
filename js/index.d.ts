export interface Options {
  /** URL of the bulk endpoint, e.g. 'https://api.example.com/bulk/event'. */
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
  /** Extra request headers (normal sends only; the unload path cannot carry them). */
  headers?: Record<string, string>;
  /** Called with an Error for drops, failed sends and storage trouble. */
  onError?: (error: Error) => void;
  /** IndexedDB database name. Default 'evbuf'. */
  storageName?: string;
  /** false keeps events in memory only (tests, or where storage is unwanted). */
  useIndexedDb?: boolean;
}

export interface Stats {
  mode: 'indexeddb' | 'memory';
  leader: boolean;
  online: boolean;
  logged: number;
  stored: number;
  persisted: number;
  loaded: number;
  sent: number;
  acknowledged: number;
  requests: number;
  unloadRequests: number;
  failed: number;
  retries: number;
  dropped: { oversize: number; invalid: number; poison: number; storageLimit: number; age: number; total: number };
  queued: number;
  queuedBytes: number;
  unpersisted: number;
  inFlight: number;
  oldestAgeMs: number | null;
  nextFlushAt: number | null;
  retryAt: number | null;
  backoffAttempt: number;
}

export function init(options: Options): Promise<void>;
export function logEvent(payload: unknown): Promise<void>;
export function flush(): Promise<void>;
export function shutdown(): Promise<void>;
export function stats(): Stats | { started: false; waitingCalls: number };
