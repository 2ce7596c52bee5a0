// evbuf: the npm entry. Loads the wasm module, queues calls made before init() has
// finished (in order, none lost), and serializes payloads with the browser's JSON.
import loadWasm, * as wasm from './evbuf.js';

let started = false;
let loading = null;
const early = [];

function serialize(payload) {
  let json;
  try {
    json = JSON.stringify(payload);
  } catch (cause) {
    // Cyclic objects and BigInt land here; the message names the problem.
    throw new TypeError(`failed to log event: the payload cannot be serialized to JSON (${cause.message})`);
  }
  if (json === undefined) {
    throw new TypeError(`failed to log event: the payload (${typeof payload}) cannot be serialized to JSON`);
  }
  return json;
}

function later(run) {
  return new Promise((resolve, reject) => early.push({ run, resolve, reject }));
}

function attempt(run) {
  try {
    return Promise.resolve(run());
  } catch (error) {
    return Promise.reject(error);
  }
}

/** Starts evbuf. Calls made before it resolves run once it has, in order. */
export async function init(options) {
  loading ??= loadWasm();
  await loading;
  await wasm.start(options);
  started = true;
  for (const call of early.splice(0)) {
    attempt(call.run).then(call.resolve, call.reject);
  }
}

/** Stores the event durably; resolves once it is stored. No request per event. */
export function logEvent(payload) {
  let json;
  try {
    json = serialize(payload);
  } catch (error) {
    if (started) wasm.countInvalid();
    return Promise.reject(error);
  }
  return started ? attempt(() => wasm.logJson(json)) : later(() => wasm.logJson(json));
}

/** Sends now; resolves once everything logged before is acknowledged. */
export function flush() {
  return started ? attempt(() => wasm.flush()) : later(() => wasm.flush());
}

/** Flushes, stops the timer and releases this tab's role as sender. */
export async function shutdown() {
  if (!started) return;
  started = false;
  await wasm.shutdown();
}

/** Counters and gauges; before init() resolves, only how many calls wait for it. */
export function stats() {
  return started ? wasm.stats() : { started: false, waitingCalls: early.length };
}
