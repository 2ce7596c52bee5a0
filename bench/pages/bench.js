// The in-page half of bench/run.mjs: workloads that must run inside one task of the page
// to be timed honestly. Node drives them through window.bench via page.evaluate().
'use strict';

/** A realistic analytics event: ~500 bytes of JSON, a fresh object per call as at a call site. */
function makePayload(i) {
  return {
    type: 'CLICK',
    screen: 'ProductDetail',
    element: 'add-to-cart',
    i,
    userId: 'u_8f3a2c91d4e6b7a0',
    sessionId: '5b2f7c1e-9a4d-4e8b-b3f6-2d1c0a9e8f7b',
    clientTs: 1732240000000 + i,
    url: 'https://shop.example.com/products/sku-1234567',
    locale: 'en-US',
    viewport: { w: 1440, h: 900 },
    app: { version: '4.12.3', build: 20241122, platform: 'web' },
    experiment: { id: 'checkout-cta-2024-11', variant: 'B' },
    props: { productId: 'sku-1234567', price: 49.99, currency: 'EUR', quantity: 1, position: 3, list: 'recommended' },
  };
}

/** Long tasks seen from now until `stop()`: count, longest, total blocking time (ms). */
function watchLongTasks() {
  const entries = [];
  let observer = null;
  try {
    observer = new PerformanceObserver((list) => entries.push(...list.getEntries()));
    observer.observe({ type: 'longtask' });
  } catch { /* not supported: report nulls */ }
  return async () => {
    if (!observer) return { count: null, longestMs: null, blockingMs: null };
    // The entry of the task that just ended is queued at its end: let it arrive.
    await new Promise((r) => setTimeout(r, 0));
    entries.push(...observer.takeRecords());
    observer.disconnect();
    return {
      count: entries.length,
      longestMs: entries.reduce((m, e) => Math.max(m, e.duration), 0),
      blockingMs: entries.reduce((s, e) => s + Math.max(0, e.duration - 50), 0),
    };
  };
}

/** A fresh database `name` with one object store, `events`, for the raw baselines. */
function openEventStore(name) {
  return new Promise((resolve, reject) => {
    const open = indexedDB.open(name, 1);
    open.onupgradeneeded = () => open.result.createObjectStore('events');
    open.onerror = () => reject(open.error);
    open.onsuccess = () => resolve(open.result);
  });
}

window.bench = {
  payloadBytes: () => new TextEncoder().encode(JSON.stringify(makePayload(0))).length,

  /** The floor: what the call site costs when logEvent only keeps the object. */
  async push(n) {
    const longTasks = watchLongTasks();
    const sink = [];
    const t0 = performance.now();
    for (let i = 0; i < n; i++) sink.push(makePayload(i));
    const loopMs = performance.now() - t0;
    window.benchSink = sink;
    return { loopMs, longTasks: await longTasks() };
  },

  /**
   * The floor for an SDK that must serialize at the call: JSON.stringify of the payload and
   * an array.push of the string.
   */
  async stringifyPush(n) {
    const longTasks = watchLongTasks();
    const sink = [];
    const t0 = performance.now();
    for (let i = 0; i < n; i++) sink.push(JSON.stringify(makePayload(i)));
    const loopMs = performance.now() - t0;
    window.benchSink = sink;
    return { loopMs, longTasks: await longTasks() };
  },

  /** The legacy logEvent: one POST per event, not awaited (as call sites did). */
  async legacy(n, endpoint) {
    const logEvent = (payload) => { fetch(endpoint, { method: 'POST', body: JSON.stringify(payload) }); };
    const longTasks = watchLongTasks();
    const t0 = performance.now();
    for (let i = 0; i < n; i++) logEvent(makePayload(i));
    const loopMs = performance.now() - t0;
    return { loopMs, longTasks: await longTasks() };
  },

  /**
   * evbuf's logEvent: times the synchronous loop, then until every returned promise
   * resolved (all events durable). Promises are shared per tick, so only distinct ones
   * are kept (an identity check per call, not an array push).
   */
  async evbuf(n) {
    const longTasks = watchLongTasks();
    const promises = [];
    let last = null;
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      const p = window.evbuf.logEvent(makePayload(i));
      if (p !== last) { promises.push(p); last = p; }
    }
    const loopMs = performance.now() - t0;
    await Promise.all(promises);
    const durableMs = performance.now() - t0;
    const s = window.evbuf.stats();
    return { loopMs, durableMs, promises: promises.length, stats: s, longTasks: await longTasks() };
  },

  /**
   * A steady app: one call per macrotask, `everyMs` apart, `n` calls; performance.now()
   * around each call (for evbuf un-awaited, as call sites do), durations in µs. `what` is
   * 'evbuf' or 'stringifyPush', the floor measured the same way.
   */
  async perTick(what, n, everyMs) {
    const sink = [];
    const call = what === 'evbuf'
      ? (i) => { window.evbuf.logEvent(makePayload(i)); }
      : (i) => { sink.push(JSON.stringify(makePayload(i))); };
    const us = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      await new Promise((r) => setTimeout(r, everyMs));
      const t0 = performance.now();
      call(i);
      us[i] = (performance.now() - t0) * 1000;
    }
    window.benchSink = sink;
    return Array.from(us);
  },

  /** Logs n events without waiting (the request-economy burst). */
  burst(n) {
    for (let i = 0; i < n; i++) window.evbuf.logEvent(makePayload(i));
  },

  /**
   * The raw IndexedDB limit in plain JS: one put per event in one transaction of n, from
   * the first put until oncomplete (the payload objects are built in the loop, as above).
   */
  async rawIdb(n, name) {
    const db = await openEventStore(name);
    return new Promise((resolve, reject) => {
      const t0 = performance.now();
      const tx = db.transaction('events', 'readwrite');
      const store = tx.objectStore('events');
      for (let i = 0; i < n; i++) store.put(makePayload(i), i);
      const loopMs = performance.now() - t0;
      tx.oncomplete = () => {
        const durableMs = performance.now() - t0;
        db.close();
        resolve({ loopMs, durableMs });
      };
      tx.onerror = () => reject(tx.error);
    });
  },

  /**
   * logEvent → durable latency: `ticks` macrotasks (setTimeout 0) of `perTick` events each,
   * performance.now() at the call and when its promise resolved.
   */
  async latency(ticks, perTick) {
    const latencies = new Float64Array(ticks * perTick);
    const done = [];
    const t0 = performance.now();
    for (let tick = 0; tick < ticks; tick++) {
      for (let j = 0; j < perTick; j++) {
        const i = tick * perTick + j;
        const at = performance.now();
        done.push(window.evbuf.logEvent(makePayload(i)).then(() => { latencies[i] = performance.now() - at; }));
      }
      await new Promise((r) => setTimeout(r, 0));
    }
    const loggedMs = performance.now() - t0;
    await Promise.all(done);
    const totalMs = performance.now() - t0;
    return { latencies: Array.from(latencies), loggedMs, totalMs };
  },

  /**
   * The baseline of `latency`: the same ticks with plain IndexedDB, one transaction of
   * `perTick` puts per tick, each event's latency from its put to the transaction's
   * oncomplete.
   */
  async rawLatency(ticks, perTick, name) {
    const db = await openEventStore(name);
    const latencies = new Float64Array(ticks * perTick);
    const done = [];
    for (let tick = 0; tick < ticks; tick++) {
      const tx = db.transaction('events', 'readwrite');
      const store = tx.objectStore('events');
      const at = new Float64Array(perTick);
      for (let j = 0; j < perTick; j++) {
        at[j] = performance.now();
        store.put(makePayload(tick * perTick + j), tick * perTick + j);
      }
      done.push(new Promise((ok, fail) => {
        tx.oncomplete = () => {
          const end = performance.now();
          for (let j = 0; j < perTick; j++) latencies[tick * perTick + j] = end - at[j];
          ok();
        };
        tx.onerror = () => fail(tx.error);
      }));
      await new Promise((r) => setTimeout(r, 0));
    }
    try {
      await Promise.all(done);
    } finally {
      db.close();
    }
    return { latencies: Array.from(latencies) };
  },

  /**
   * The floor of evbuf's own strategy in plain JS: the same ticks, each event serialized
   * as it is logged, one transaction at a time that writes what was logged meanwhile as
   * records of up to 100 events (one put each); each event's latency from its call to the
   * oncomplete of the transaction that carried it.
   */
  async rawGroupLatency(ticks, perTick, name) {
    const db = await openEventStore(name);
    const latencies = new Float64Array(ticks * perTick);
    let pending = [];
    let running = null;
    let failed = null;
    const write = () => {
      const batch = pending;
      pending = [];
      running = new Promise((ok) => {
        const tx = db.transaction('events', 'readwrite');
        const store = tx.objectStore('events');
        for (let k = 0; k < batch.length; k += 100) {
          const record = batch.slice(k, k + 100);
          store.put(record.map((e) => e.line).join('\n'), record[0].i);
        }
        tx.oncomplete = () => {
          const end = performance.now();
          for (const e of batch) latencies[e.i] = end - e.at;
          running = null;
          if (pending.length) write();
          ok();
        };
        tx.onabort = () => { failed = tx.error; running = null; ok(); };
      });
    };
    for (let tick = 0; tick < ticks; tick++) {
      for (let j = 0; j < perTick; j++) {
        const i = tick * perTick + j;
        const at = performance.now();
        pending.push({ i, at, line: JSON.stringify(makePayload(i)) });
      }
      if (!running) write();
      await new Promise((r) => setTimeout(r, 0));
    }
    while (running) await running;
    db.close();
    if (failed) throw failed;
    return { latencies: Array.from(latencies) };
  },

  /** `rate` events per second for `ms`, paced against the clock (no drift), then resolves. */
  async steady(rate, ms) {
    const t0 = performance.now();
    let logged = 0;
    const total = Math.round((rate * ms) / 1000);
    while (logged < total) {
      const due = Math.min(total, Math.floor(((performance.now() - t0) * rate) / 1000) + 1);
      while (logged < due) window.evbuf.logEvent(makePayload(logged++));
      await new Promise((r) => setTimeout(r, 1000 / rate));
    }
    return { logged, ms: performance.now() - t0 };
  },

  /**
   * Memory while the collector refuses everything: logs `total` events in chunks (each
   * awaited until durable), and at each checkpoint collects garbage and reads evbuf's wasm
   * linear memory, the JS heap, the stats and storage usage.
   */
  async memory(total, chunk, checkpoints) {
    const memory = await window.wasmMemory();
    const gc = () => { if (typeof window.gc === 'function') { window.gc(); window.gc(); } };
    const sample = async (events) => {
      await new Promise((r) => setTimeout(r, 50));
      gc();
      const s = window.evbuf.stats();
      const estimate = navigator.storage?.estimate ? await navigator.storage.estimate() : {};
      return {
        events,
        wasmBytes: memory ? memory.buffer.byteLength : null,
        jsHeapUsed: performance.memory?.usedJSHeapSize ?? null,
        jsHeapTotal: performance.memory?.totalJSHeapSize ?? null,
        queued: s.queued, queuedBytes: s.queuedBytes, unpersisted: s.unpersisted,
        droppedStorageLimit: s.dropped.storageLimit, requests: s.requests, failed: s.failed,
        storageUsage: estimate.usage ?? null,
      };
    };
    const samples = [await sample(0)];
    const t0 = performance.now();
    for (let logged = 0; logged < total;) {
      const promises = [];
      let last = null;
      for (let j = 0; j < chunk; j++, logged++) {
        const p = window.evbuf.logEvent(makePayload(logged));
        if (p !== last) { promises.push(p); last = p; }
      }
      await Promise.all(promises);
      if (checkpoints.includes(logged)) samples.push(await sample(logged));
    }
    return { samples, ms: performance.now() - t0, gcAvailable: typeof window.gc === 'function', wasmMemoryFound: !!memory };
  },
};
