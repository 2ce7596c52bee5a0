// An evbuf endpoint: POST /bulk/event stores each event once, keyed by its id
// (the contract: docs/server.md in the evbuf repository).
import express from 'express';
import Database from 'better-sqlite3';

const env = process.env;
const ALLOWED_ORIGIN = env.ALLOWED_ORIGIN ?? '*'; // your site, e.g. https://www.example.com
// Name every header of evbuf's `headers` option here too, or its preflight fails.
const ALLOW_HEADERS = env.ALLOW_HEADERS ?? 'Content-Type, Content-Encoding';
const MAX_BODY_BYTES = Number(env.MAX_BODY_BYTES ?? 131072); // evbuf posts at most 65,536
const MAX_PAYLOAD_BYTES = Number(env.MAX_PAYLOAD_BYTES ?? 65536);
const RATE_LIMIT = Number(env.RATE_LIMIT ?? 20); // requests per device per second

const db = new Database(env.DATABASE ?? 'events.sqlite');
db.pragma('journal_mode = WAL'); // several processes can share the file
db.exec(`CREATE TABLE IF NOT EXISTS events (id TEXT PRIMARY KEY NOT NULL, session TEXT NOT NULL,
  seq INTEGER NOT NULL, ts INTEGER NOT NULL, payload TEXT NOT NULL, device TEXT NOT NULL,
  sent_at INTEGER NOT NULL, received_at INTEGER NOT NULL)`);
const insert = db.prepare('INSERT OR IGNORE INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
const store = db.transaction((batch, receivedAt) => batch.events.map((e) => insert.run(
  e.id, e.session, e.seq, e.ts, JSON.stringify(e.payload), batch.device, batch.sent_at, receivedAt)));

// What is wrong with a request body (schema.json), or undefined when nothing is.
const epochMs = (n) => Number.isSafeInteger(n) && n >= 0;
const text = (s) => typeof s === 'string' && s.length > 0;
function invalid(batch) {
  if (!epochMs(batch?.sent_at) || !text(batch.device)) return 'sent_at or device is missing or not valid';
  if (!Array.isArray(batch.events) || batch.events.length === 0) return 'events is not a non-empty array';
  for (const e of batch.events) {
    if (!text(e?.session) || !(Number.isSafeInteger(e.seq) && e.seq >= 1) || !epochMs(e.ts) || !('payload' in e)
      || e.id !== `${e.session}-${e.seq}`) return `event ${JSON.stringify(e?.id)} lacks a valid id, session, seq, ts or payload`;
    const bytes = Buffer.byteLength(JSON.stringify(e.payload));
    if (bytes > MAX_PAYLOAD_BYTES) return `event ${e.id}: its payload of ${bytes} bytes is over ${MAX_PAYLOAD_BYTES}`;
  }
}

// RATE_LIMIT's counts in the current second.
let requestsPerDevice = new Map();
setInterval(() => { requestsPerDevice = new Map(); }, 1000).unref();

const app = express();
app.use('/bulk/event', (req, res, next) => {
  // On every answer, errors included: without it the page cannot read the status.
  res.set({ 'Access-Control-Allow-Origin': ALLOWED_ORIGIN, 'Access-Control-Expose-Headers': 'Retry-After' });
  if (req.method !== 'OPTIONS') return next();
  res.set({ 'Access-Control-Allow-Methods': 'POST', 'Access-Control-Allow-Headers': ALLOW_HEADERS,
    'Access-Control-Max-Age': '86400' }).status(204).end();
});
// Whatever the Content-Type: the post made as the page hides is text/plain. Inflates gzip.
app.post('/bulk/event', express.json({ type: () => true, limit: MAX_BODY_BYTES }), (req, res) => {
  const problem = invalid(req.body);
  if (problem) return res.status(400).json({ error: problem }); // evbuf bisects, drops only the refused event
  const seen = (requestsPerDevice.get(req.body.device) ?? 0) + 1;
  requestsPerDevice.set(req.body.device, seen);
  if (seen > RATE_LIMIT) return res.status(429).set('Retry-After', '1').end();
  const results = store(req.body, Date.now());
  const accepted = results.filter((r) => r.changes === 1).length;
  res.json({ accepted, duplicates: results.length - accepted });
});
// The body parser's errors: 400 not JSON, 413 too large, 415 an encoding it cannot decode.
// Anything else is our own trouble (the database): 503, and evbuf retries.
app.use((error, req, res, next) => {
  const status = error.status >= 400 && error.status < 500 ? error.status : 503;
  if (status === 503) console.error('could not store events:', error);
  res.status(status).json({ error: error.message });
});

const server = app.listen(Number(env.PORT ?? 8080), env.HOST ?? '127.0.0.1', () => {
  const { address, port } = server.address();
  console.log(`listening on http://${address}:${port}/bulk/event`);
});
