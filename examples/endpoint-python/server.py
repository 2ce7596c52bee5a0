"""An evbuf endpoint: POST /bulk/event stores each event once, keyed by its id
(the contract: docs/server.md in the evbuf repository). Python standard library only:
receive() is the endpoint, the Handler class only wires it to http.server."""
import json, os, sqlite3, threading, time, zlib
from contextlib import closing
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

env = os.environ
ALLOWED_ORIGIN = env.get("ALLOWED_ORIGIN", "*")  # your site, e.g. https://www.example.com
# Name every header of evbuf's `headers` option here too, or its preflight fails.
ALLOW_HEADERS = env.get("ALLOW_HEADERS", "Content-Type, Content-Encoding")
MAX_BODY_BYTES = int(env.get("MAX_BODY_BYTES", 131072))  # evbuf posts at most 65,536
MAX_PAYLOAD_BYTES = int(env.get("MAX_PAYLOAD_BYTES", 65536))
RATE_LIMIT = int(env.get("RATE_LIMIT", 20))  # requests per device per second
DATABASE = env.get("DATABASE", "events.sqlite")

with closing(sqlite3.connect(DATABASE)) as db:
    db.execute("PRAGMA journal_mode = WAL")  # several processes can share the file
    db.execute("""CREATE TABLE IF NOT EXISTS events (id TEXT PRIMARY KEY NOT NULL, session TEXT NOT NULL,
        seq INTEGER NOT NULL, ts INTEGER NOT NULL, payload TEXT NOT NULL, device TEXT NOT NULL,
        sent_at INTEGER NOT NULL, received_at INTEGER NOT NULL)""")


def compact_json(value):
    return json.dumps(value, separators=(",", ":"))  # ASCII (escapes): SQLite stores any string


def is_int(n, least=0):
    return type(n) is int and least <= n <= 2**53 - 1  # type(): a JSON true is an int to Python


def is_text(s):
    return type(s) is str and s != ""


def invalid(batch):
    """What is wrong with a request body (schema.json), or None when nothing is."""
    if type(batch) is not dict or not is_int(batch.get("sent_at")) or not is_text(batch.get("device")):
        return "sent_at or device is missing or not valid"
    if type(batch.get("events")) is not list or not batch["events"]:
        return "events is not a non-empty array"
    for e in batch["events"]:
        if (type(e) is not dict or not is_text(e.get("session")) or not is_int(e.get("seq"), 1)
                or not is_int(e.get("ts")) or "payload" not in e or e.get("id") != f"{e['session']}-{e['seq']}"):
            return f"event {json.dumps(e)[:100]} lacks a valid id, session, seq, ts or payload"
        size = len(compact_json(e["payload"]))
        if size > MAX_PAYLOAD_BYTES:
            return f"event {e['id']}: its payload of {size} bytes is over {MAX_PAYLOAD_BYTES}"


requests_per_device, rate_second, rate_lock = {}, 0, threading.Lock()


def over_rate_limit(device):
    global requests_per_device, rate_second
    with rate_lock:
        if rate_second != int(time.time()):
            requests_per_device, rate_second = {}, int(time.time())
        requests_per_device[device] = requests_per_device.get(device, 0) + 1
        return requests_per_device[device] > RATE_LIMIT


def receive(body, content_encoding):
    """The answer to a POST of `body` (bytes): (status, JSON answer or None, extra headers)."""
    if content_encoding == "gzip":
        try:  # inflates one byte past the limit at most: a small gzip cannot fill the memory
            body = zlib.decompressobj(wbits=31).decompress(body, MAX_BODY_BYTES + 1)
        except zlib.error as error:
            return 400, {"error": f"the body is not gzip: {error}"}, []
    elif content_encoding not in (None, "identity"):
        return 415, {"error": f"Content-Encoding {content_encoding} is not gzip"}, []
    if len(body) > MAX_BODY_BYTES:
        return 413, {"error": f"the body is over {MAX_BODY_BYTES} bytes"}, []
    try:  # whatever the Content-Type: the post made as the page hides is text/plain
        batch = json.loads(body)
    except ValueError as error:
        return 400, {"error": f"the body is not JSON: {error}"}, []
    problem = invalid(batch)
    if problem:  # evbuf bisects the batch and drops only the event refused alone
        return 400, {"error": problem}, []
    if over_rate_limit(batch["device"]):
        return 429, None, [("Retry-After", "1")]
    received_at = int(time.time() * 1000)
    rows = [(e["id"], e["session"], e["seq"], e["ts"], compact_json(e["payload"]), batch["device"],
             batch["sent_at"], received_at) for e in batch["events"]]
    try:
        with closing(sqlite3.connect(DATABASE, timeout=5)) as db, db:  # one transaction
            accepted = db.executemany("INSERT OR IGNORE INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows).rowcount
    except sqlite3.Error as error:  # our own trouble: evbuf retries later
        print(f"could not store events: {error}", flush=True)
        return 503, {"error": "could not store the events"}, []
    return 200, {"accepted": accepted, "duplicates": len(rows) - accepted}, []


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        # Read the body even to refuse it: a connection closed on unread bytes can reach
        # the browser as a network error instead of the status.
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path.split("?")[0] != "/bulk/event":
            return self.answer(404, {"error": f"nothing at {self.path}"})
        self.answer(*receive(body, self.headers.get("Content-Encoding")))

    def do_OPTIONS(self):
        self.answer(204, None, [("Access-Control-Allow-Methods", "POST"), ("Access-Control-Max-Age", "86400"),
                                ("Access-Control-Allow-Headers", ALLOW_HEADERS)])

    def answer(self, status, answer, headers=()):
        data = b"" if answer is None else json.dumps(answer).encode()
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if data:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def end_headers(self):
        # On every answer, errors included: without it the page cannot read the status.
        self.send_header("Access-Control-Allow-Origin", ALLOWED_ORIGIN)
        self.send_header("Access-Control-Expose-Headers", "Retry-After")
        super().end_headers()


server = ThreadingHTTPServer((env.get("HOST", "127.0.0.1"), int(env.get("PORT", 8080))), Handler)
print(f"listening on http://{server.server_address[0]}:{server.server_address[1]}/bulk/event", flush=True)
server.serve_forever()
