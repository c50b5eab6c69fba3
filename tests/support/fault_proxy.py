"""A fault-injecting HTTP proxy between evbusd and an AWS service
implementation (moto), for the sink fault tests. Standard library only.

  fault_proxy.py UPSTREAM PORT_FILE

Listens on 127.0.0.1, on a port the kernel picks (written to PORT_FILE once
it listens, so there is no port to race for), relays every request to
UPSTREAM (http://127.0.0.1:PORT) with its headers untouched (the SigV4
signature covers Host, so moto verifies what evbusd signed), and injects the
fault the test asked for:

  POST /__fault {"mode": M, "count": N, "delay_ms": D}   set the fault
  GET  /__fault                                          read the counters

The counters: requests, relayed, injected, ambiguous_entries, ambiguous_ids
(below), and busy: calls relayed (or held, mode hang) whose answer is
neither sent nor known lost yet (read the ambiguous ones once it is 0);
token_runs: the session tokens the calls carried (X-Amz-Security-Token, its
last 16 characters; "" for none), once per run of calls in a row with the
same one, in the order the calls arrived.

N > 0 injects M into the next N calls, then passes again; N = -1 until the
next POST. Modes:

  pass           relay
  delay          relay, answer D ms later (within the sink's timeout)
  throttle       answer the service's throttling error, relay nothing
  server_error   answer 500 (JSON) and 503 (HTML, as a load balancer would)
                 in turn, relay nothing
  partial        relay only the first half of the batch's entries (re-signed
                 with AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY from the
                 environment) and answer the others as retryable failures
  slow           relay, then answer D ms later (beyond the sink's timeout)
  cut_request    read half the body, then reset the connection: the service
                 never sees the call
  cut_response   relay, then reset the connection without an answer
  bad_signature  relay with one character of the signature changed: the
                 service itself answers 403
  hang           read the call, relay nothing and never answer, until the
                 sink gives up (its timeout): a service that accepts
                 connections and then stalls

`slow` and `cut_response` make a call ambiguous: the service processed it but
the sink cannot know. So does any call whose answer the sink stopped waiting
for (a loaded machine can make the service slower than the sink's timeout).
The counters list the event ids of those calls (`ambiguous_ids`), the only
ones a standard queue may hold twice.

Adding a service: a row in THROTTLE and SERVER_ERROR (its error shapes),
a function in PARTIAL (how its batch answer reports retryable entries) and
one in ENTRIES (where its batch keeps entries and their event ids).
"""
import datetime
import hashlib
import hmac
import http.client
import json
import os
import socket
import socketserver
import struct
import sys
import threading
import time
import urllib.parse

# Per service (X-Amz-Target prefix): status, __type, message, extra headers.
THROTTLE = {
    "AmazonSQS": (400, "com.amazonaws.sqs#RequestThrottled", "Rate exceeded",
                  [("x-amzn-query-error", "RequestThrottled;Sender")]),
    "AWSEvents": (400, "ThrottlingException", "Rate exceeded", []),
    "DynamoDB_20120810": (400, "com.amazonaws.dynamodb.v20120810#"
                          "ProvisionedThroughputExceededException",
                          "The level of configured provisioned throughput for the table "
                          "was exceeded.", []),
}
SERVER_ERROR = {
    "AmazonSQS": (500, "com.amazonaws.sqs#InternalError", "We encountered an internal error.",
                  [("x-amzn-query-error", "InternalError;Receiver")]),
    "AWSEvents": (500, "InternalException", "Internal error.", []),
    "DynamoDB_20120810": (500, "com.amazonaws.dynamodb.v20120810#InternalServerError",
                          "Internal server error", []),
}


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.mode, self.count, self.delay_ms = "pass", 0, 0
        self.counters = {"requests": 0, "relayed": 0, "injected": 0,
                         "ambiguous_entries": 0, "ambiguous_ids": [],
                         "busy": 0, "token_runs": []}
        self.flip = 0  # alternates the server_error answers

    def set(self, cfg):
        with self.lock:
            self.mode = cfg.get("mode", "pass")
            self.count = int(cfg.get("count", -1))
            self.delay_ms = int(cfg.get("delay_ms", 0))

    def take(self):
        """The fault for the call that just arrived, counted."""
        with self.lock:
            self.counters["requests"] += 1
            mode = self.mode
            if self.count == 0:
                mode = "pass"
            elif self.count > 0:
                self.count -= 1
            if mode not in ("pass", "delay"):
                self.counters["injected"] += 1
            self.flip += 1
            return mode, self.delay_ms, self.flip

    def token(self, token):
        tail = token[-16:]
        with self.lock:
            runs = self.counters["token_runs"]
            if not runs or runs[-1] != tail:
                runs.append(tail)

    def add(self, key, n=1):
        with self.lock:
            self.counters[key] += n

    def ambiguous(self, ids, entries):
        with self.lock:
            self.counters["ambiguous_entries"] += entries
            self.counters["ambiguous_ids"].extend(ids)

    def snapshot(self):
        with self.lock:
            return dict(self.counters, mode=self.mode, remaining=self.count,
                        token_runs=list(self.counters["token_runs"]))


STATE = State()
UPSTREAM = None  # (host, port)


# ---- where each batch keeps its entries and event ids ----

def sqs_entries(doc):
    return doc.get("Entries", [])


def sqs_id(entry):
    try:
        return json.loads(entry["MessageBody"]).get("id")
    except (KeyError, ValueError, AttributeError):
        return None


def events_entries(doc):
    return doc.get("Entries", [])


def events_id(entry):
    # EventBridge gives events ids of its own: the tests put theirs in the
    # Detail as "id".
    try:
        return json.loads(entry["Detail"]).get("id")
    except (KeyError, ValueError, AttributeError):
        return None


def ddb_entries(doc):
    return [r for reqs in doc.get("RequestItems", {}).values() for r in reqs]


def ddb_id(entry):
    item = entry.get("PutRequest", {}).get("Item") or entry.get("Item") or {}
    return item.get("id", {}).get("S")


ENTRIES = {
    "AmazonSQS.SendMessageBatch": (sqs_entries, sqs_id),
    "AWSEvents.PutEvents": (events_entries, events_id),
    "DynamoDB_20120810.BatchWriteItem": (ddb_entries, ddb_id),
    "DynamoDB_20120810.PutItem": (lambda doc: [doc], ddb_id),
}


def entries_of(target, body):
    """(entry count, event ids) of a call; (1, []) for what is not a batch."""
    how = ENTRIES.get(target)
    try:
        doc = json.loads(body)
    except ValueError:
        return 1, []
    if not how or not isinstance(doc, dict):
        return 1, []
    entries = how[0](doc)
    return len(entries), [i for i in map(how[1], entries) if i]


# ---- partial batch failures: keep the first half, refuse the rest ----

def partial_sqs(doc, relay):
    entries = doc["Entries"]
    kept, held = entries[:len(entries) // 2], entries[len(entries) // 2:]
    answer = {"Successful": [], "Failed": []}
    if kept:
        status, headers, body = relay(dict(doc, Entries=kept))
        if status != 200:
            return status, headers, body
        answer = json.loads(body)
        answer.setdefault("Failed", [])
    answer["Failed"] += [{"Id": e["Id"], "SenderFault": False, "Code": "InternalError",
                          "Message": "injected by the fault proxy"} for e in held]
    return 200, [("Content-Type", "application/x-amz-json-1.0")], json.dumps(answer).encode()


def partial_events(doc, relay):
    entries = doc["Entries"]
    kept, held = entries[:len(entries) // 2], entries[len(entries) // 2:]
    answer = {"FailedEntryCount": 0, "Entries": []}
    if kept:
        status, headers, body = relay(dict(doc, Entries=kept))
        if status != 200:
            return status, headers, body
        answer = json.loads(body)
    answer["Entries"] += [{"ErrorCode": "InternalFailure",
                           "ErrorMessage": "injected by the fault proxy"} for _ in held]
    answer["FailedEntryCount"] = answer.get("FailedEntryCount", 0) + len(held)
    return 200, [("Content-Type", "application/x-amz-json-1.1")], json.dumps(answer).encode()


def partial_ddb(doc, relay):
    kept, held = {}, {}
    for table, reqs in doc["RequestItems"].items():
        kept[table], held[table] = reqs[:len(reqs) // 2], reqs[len(reqs) // 2:]
    kept = {t: r for t, r in kept.items() if r}
    answer = {"UnprocessedItems": {}}
    if kept:
        status, headers, body = relay(dict(doc, RequestItems=kept))
        if status != 200:
            return status, headers, body
        answer = json.loads(body)
    unprocessed = answer.setdefault("UnprocessedItems", {})
    for table, reqs in held.items():
        if reqs:
            unprocessed.setdefault(table, []).extend(reqs)
    return 200, [("Content-Type", "application/x-amz-json-1.0")], json.dumps(answer).encode()


PARTIAL = {
    "AmazonSQS.SendMessageBatch": partial_sqs,
    "AWSEvents.PutEvents": partial_events,
    "DynamoDB_20120810.BatchWriteItem": partial_ddb,
}


# ---- SigV4 for a body the proxy changed (the original covers the old one) ----

def sign(headers, body):
    """New X-Amz-Date and Authorization for `body`, same scope and keys."""
    h = {k.lower(): v for k, v in headers}
    scope = h["authorization"].split("Credential=")[1].split(",")[0].split("/")
    region, service = scope[2], scope[3]
    key_id, secret = os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"]
    now = datetime.datetime.now(datetime.timezone.utc)
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    signed = {"host": h["host"], "content-type": h.get("content-type", ""),
              "x-amz-date": amz_date}
    for name in ("x-amz-target", "x-amz-security-token"):
        if name in h:
            signed[name] = h[name]
    names = sorted(signed)
    canonical = "\n".join(["POST", "/", ""] + ["%s:%s" % (n, signed[n].strip()) for n in names] +
                          ["", ";".join(names), hashlib.sha256(body).hexdigest()])
    cred_scope = "/".join([day, region, service, "aws4_request"])
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, cred_scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    k = ("AWS4" + secret).encode()
    for part in (day, region, service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    sig = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
    auth = "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s" % (
        key_id, cred_scope, ";".join(names), sig)
    out = [(k, v) for k, v in headers if k.lower() not in ("authorization", "x-amz-date")]
    return out + [("X-Amz-Date", amz_date), ("Authorization", auth)]


# ---- HTTP plumbing ----

HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "content-length"}


def relay(method, path, headers, body):
    conn = http.client.HTTPConnection(*UPSTREAM, timeout=30)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for k, v in headers:
            if k.lower() not in HOP:
                conn.putheader(k, v)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        r = conn.getresponse()
        data = r.read()
        STATE.add("relayed")
        return r.status, [(k, v) for k, v in r.getheaders() if k.lower() not in HOP], data
    finally:
        conn.close()


def error_answer(table, target, flip):
    service = target.split(".")[0]
    status, code, msg, extra = table.get(service, (500, "InternalFailure", "injected", []))
    if table is SERVER_ERROR and flip % 2:
        return 503, [("Content-Type", "text/html")], \
            b"<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>"
    body = json.dumps({"__type": code, "message": msg}).encode()
    return status, [("Content-Type", "application/x-amz-json-1.0")] + extra, body


class Handler(socketserver.StreamRequestHandler):
    def read_request(self):
        line = self.rfile.readline(65537)
        if not line:
            return None
        method, path, _ = line.decode("latin-1").split(" ", 2)
        headers = []
        while True:
            h = self.rfile.readline(65537).decode("latin-1")
            if h in ("\r\n", "\n", ""):
                break
            k, v = h.split(":", 1)
            headers.append((k.strip(), v.strip()))
        return method, path, headers

    def send(self, status, headers, body, close=False):
        reason = http.client.responses.get(status, "Status")
        out = ["HTTP/1.1 %d %s" % (status, reason)]
        out += ["%s: %s" % (k, v) for k, v in headers]
        out += ["Content-Length: %d" % len(body)]
        if close:
            out.append("Connection: close")
        self.wfile.write(("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + body)

    def reset(self):
        """Close with RST, as a crashed peer or a cut cable would."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()

    def handle(self):
        try:
            while self.one():
                pass
        except (OSError, ValueError):
            pass  # the client went away (a timeout): nothing to answer

    def one(self):
        req = self.read_request()
        if req is None:
            return False
        method, path, headers = req
        h = {k.lower(): v for k, v in headers}
        length = int(h.get("content-length", "0"))
        close = h.get("connection", "").lower() == "close"
        if path.startswith("/__fault"):
            body = self.rfile.read(length)
            if method == "POST":
                STATE.set(json.loads(body or b"{}"))
            self.send(200, [("Content-Type", "application/json")],
                      json.dumps(STATE.snapshot()).encode(), close)
            return not close
        mode, delay_ms, flip = STATE.take()
        STATE.token(h.get("x-amz-security-token", ""))
        if mode == "cut_request":
            self.rfile.read(length // 2)
            self.reset()
            return False
        body = self.rfile.read(length)
        target = h.get("x-amz-target", "")
        if mode == "throttle":
            self.send(*error_answer(THROTTLE, target, flip))
            return not close
        if mode == "server_error":
            self.send(*error_answer(SERVER_ERROR, target, flip))
            return not close
        if mode == "hang":
            STATE.add("busy")
            try:
                while not self.client_gone():
                    time.sleep(0.02)
            finally:
                STATE.add("busy", -1)
            return False
        relayed = []  # the bodies the service processed (or may have)

        def relay_doc(doc):
            data = json.dumps(doc).encode()
            relayed.append(data)
            return relay(method, path, sign(headers, data), data)

        def ambiguous():
            for data in relayed:
                n, ids = entries_of(target, data)
                STATE.ambiguous(ids, n)
        STATE.add("busy")
        try:
            try:
                if mode == "partial" and target in PARTIAL:
                    answer = PARTIAL[target](json.loads(body), relay_doc)
                else:
                    if mode == "bad_signature":
                        headers = [(k, v[:-1] + ("0" if v[-1] != "0" else "1"))
                                   if k.lower() == "authorization" else (k, v)
                                   for k, v in headers]
                    relayed.append(body)
                    answer = relay(method, path, headers, body)
            except OSError as e:
                # The service may or may not have processed it; the sink
                # sees a cut connection.
                print("relay failed:", e, file=sys.stderr, flush=True)
                ambiguous()
                self.reset()
                return False
            if mode in ("slow", "delay"):
                end = time.monotonic() + delay_ms / 1000.0
                while time.monotonic() < end and not self.client_gone():
                    time.sleep(0.02)
            # A call the service processed whose answer the sink never reads
            # (cut here, or the sink gave up waiting: a fault of ours or a
            # slow service) is one the sink may rightly send again.
            if mode == "cut_response" or self.client_gone():
                ambiguous()
                if mode == "cut_response":
                    self.reset()
                return False
            self.send(*answer, close=close)
            return not close
        finally:
            STATE.add("busy", -1)

    def client_gone(self):
        """True when the client closed the connection (it timed out)."""
        sock = self.connection
        try:
            sock.setblocking(False)
            try:
                return sock.recv(1, socket.MSG_PEEK) == b""
            except BlockingIOError:
                return False
            finally:
                sock.setblocking(True)
        except OSError:
            return True


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    global UPSTREAM
    up = urllib.parse.urlsplit(sys.argv[1])
    UPSTREAM = (up.hostname, up.port or 80)
    server = Server(("127.0.0.1", 0), Handler)
    tmp = sys.argv[2] + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % server.server_address[1])
    os.rename(tmp, sys.argv[2])
    server.serve_forever()


main()
