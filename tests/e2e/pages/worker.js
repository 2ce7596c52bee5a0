// A dedicated module worker using evbuf: no window, no document.
import { init, logEvent, flush, stats } from '/pkg/index.js';

self.onmessage = async ({ data }) => {
  try {
    await init({ endpoint: data.endpoint, flushIntervalMs: 60_000, storageName: data.storageName });
    await Promise.all(Array.from({ length: data.n }, (_, i) => logEvent({ run: data.run, i })));
    await flush();
    self.postMessage({ ok: true, stats: stats() });
  } catch (error) {
    self.postMessage({ ok: false, error: `${error.message}` });
  }
};
