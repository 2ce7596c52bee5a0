// The app every consumer builds (as src/index.js): a user's five lines, reporting back to
// the test through window.evbufResult. The page's query names the collector and the run.
import { init, logEvent, flush } from 'evbuf';

const query = new URLSearchParams(location.search);
const run = query.get('run');
window.evbufResult = (async () => {
  await init({ endpoint: query.get('endpoint'), flushIntervalMs: 60_000 });
  await Promise.all([0, 1, 2].map((i) => logEvent({ run, i })));
  await flush();
  return 'delivered';
})().catch((error) => `failed: ${error.message}`);
