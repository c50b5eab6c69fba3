#!/usr/bin/python3
"""A producer written in Python with Debian's ZeroMQ and protobuf packages,
compiled from proto/evbus.proto: proves the wire format is usable from another
language, including over a REQ socket and with fields this evbusd does not
know (a newer producer), how a Python producer publishes over CURVE with a
key file from `evbus keygen`, and how it publishes to several routers with a
`failover` or `spread` policy (the Producer class below, what libevbus does
in C). Starts its own evbusd processes and always stops them.

usage: python_producer.py EVBUSD PROTO_DIR EVBUS
"""
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import zmq


def compile_proto(proto_dir, out_dir):
    subprocess.run(["protoc", f"-I{proto_dir}", f"--python_out={out_dir}", "evbus.proto"],
                   check=True)
    sys.path.insert(0, out_dir)
    import evbus_pb2  # noqa: E402  (generated just now)
    return evbus_pb2


def start_daemon(evbusd, workdir, ingest_extra="", region="py-1"):
    endpoint = f"ipc://{workdir}/ingest.sock"
    config = os.path.join(workdir, "evbus.yaml")
    with open(config, "w") as f:
        f.write(f"region: {region}\ningest:\n  listen: [\"{endpoint}\"]\n{ingest_extra}"
                "storage:\n  data_dir: data\n  map_size: 64MiB\n")
    log = open(os.path.join(workdir, "evbusd.log"), "w")
    proc = subprocess.Popen([evbusd, "--config", config], stderr=log)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with open(log.name) as f:
            if "[evbusd] ready:" in f.read():
                return proc, endpoint
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    proc.kill()
    raise SystemExit("evbusd did not become ready:\n" + open(log.name).read())


def read_key_file(path):
    """PATH.key from `evbus keygen PATH`: the public key line, then the secret
    key line (comment and blank lines aside)."""
    with open(path) as f:
        lines = [l.strip() for l in f if l.strip() and not l.startswith("#")]
    return lines[0].encode(), lines[1].encode()


def publish_over_curve(pb, evbus, workdir, evbusd, check):
    """A producer with its own key pair, listed in evbusd's authorized keys,
    publishes over CURVE; a key evbusd does not know gets no answer."""
    for name in ("server", "producer"):
        subprocess.run([evbus, "keygen", os.path.join(workdir, name)], check=True,
                       stdout=subprocess.DEVNULL)
    producer_pub, producer_sec = read_key_file(os.path.join(workdir, "producer.key"))
    with open(os.path.join(workdir, "producers.keys"), "w") as f:
        f.write(f"py-producer {producer_pub.decode()} py.app*\n")
    with open(os.path.join(workdir, "server.pub")) as f:
        server_pub = f.read().strip().encode()
    proc, endpoint = start_daemon(evbusd, workdir,
                                  "  curve:\n    secret_key: server.key\n"
                                  "    authorized_keys: producers.keys\n")
    try:
        ctx = zmq.Context()
        dealer = ctx.socket(zmq.DEALER)
        dealer.setsockopt(zmq.RCVTIMEO, 5000)
        dealer.setsockopt(zmq.LINGER, 0)
        dealer.curve_serverkey = server_pub
        dealer.curve_publickey = producer_pub
        dealer.curve_secretkey = producer_sec
        dealer.connect(endpoint)
        pub = pb.Publish(request_id=50, version=1)
        pub.events.add(id="py-curve-1", source="py.app", detail_type="Hello", detail="{}")
        pub.events.add(id="py-curve-2", source="other.app", detail_type="Hello", detail="{}")
        dealer.send(pub.SerializeToString())
        ack = pb.Ack.FromString(dealer.recv())
        check(ack.results[0].status == pb.ACCEPTED, "a listed key publishes over CURVE")
        check(ack.results[1].status == pb.REJECTED and "may not publish" in ack.results[1].reason,
              "a source outside the producer's limits is rejected with why")

        stranger = ctx.socket(zmq.DEALER)
        stranger.setsockopt(zmq.RCVTIMEO, 1000)
        stranger.setsockopt(zmq.LINGER, 0)
        stranger.curve_serverkey = server_pub
        stranger.curve_publickey, stranger.curve_secretkey = zmq.curve_keypair()
        stranger.connect(endpoint)
        stranger.send(pub.SerializeToString())
        try:
            stranger.recv()
            answered = True
        except zmq.Again:
            answered = False
        check(not answered, "an unknown key gets no answer")
        dealer.close()
        stranger.close()
        ctx.term()
        proc.send_signal(signal.SIGTERM)
        check(proc.wait(timeout=10) == 0, "evbusd with CURVE exits 0 on SIGTERM")
        proc = None
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()


class Producer:
    """Publishes to several evbus routers that share nothing, one DEALER
    socket each so that it knows which router answered.

    policy "failover": every request to the first router considered up, in
    the order given; "spread": the routers up in turn, a resend going to
    another one. A router is down when it leaves a request unanswered for
    resend_s (having answered nothing else meanwhile) or answers with the
    `stopping` flag (shutting down); a router that is down is probed with an
    empty Publish every probe_s and is up again once it answers. A resend
    keeps the event ids: an ack means durable on the router that answered,
    and each router deduplicates only its own store (see evbus.h)."""

    def __init__(self, ctx, pb, endpoints, policy="failover", resend_s=2.0, probe_s=1.0,
                 timeout_s=30.0):
        if policy not in ("failover", "spread"):
            raise ValueError(f"policy must be failover or spread, not {policy!r}")
        self.pb, self.endpoints, self.policy = pb, list(endpoints), policy
        self.resend_s, self.probe_s, self.timeout_s = resend_s, probe_s, timeout_s
        self.socks = []
        for ep in self.endpoints:
            s = ctx.socket(zmq.DEALER)
            s.setsockopt(zmq.LINGER, 0)
            # queue nothing for a router that is not connected: it would be
            # stored there again when that router comes back
            s.setsockopt(zmq.IMMEDIATE, 1)
            s.connect(ep)
            self.socks.append(s)
        n = len(self.endpoints)
        self.up = [True] * n
        self.last_answer = [0.0] * n
        self.next_probe = [0.0] * n
        self.turn = 0
        self.next_id = (int(time.time() * 1000) << 16) + random.randrange(1 << 16)

    def routers(self):
        """[(endpoint, up)]: what this producer thinks of each router."""
        return list(zip(self.endpoints, self.up))

    def close(self):
        for s in self.socks:
            s.close()

    def _pick(self, avoid=None):
        n = len(self.endpoints)
        up = [i for i in range(n) if i != avoid and self.up[i]]
        if not up and avoid is not None and self.up[avoid]:
            return avoid
        if up and self.policy == "failover":
            return up[0]
        pool = up or [i for i in range(n) if i != avoid] or [avoid]
        for k in range(n):
            i = (self.turn + k) % n
            if i in pool:
                self.turn = (i + 1) % n
                return i
        return pool[0]

    def _set(self, i, up, why=""):
        if self.up[i] != up:
            self.up[i] = up
            print(f"producer: router {self.endpoints[i]} "
                  + ("answers again" if up else f"is down ({why})"), file=sys.stderr)
        if not up:
            self.next_probe[i] = time.monotonic() + self.probe_s

    def _send(self, i, frame):
        """False when router i is not connected (the socket refuses)."""
        try:
            self.socks[i].send(frame, zmq.NOBLOCK)
            return True
        except zmq.Again:
            return False

    def _probe(self, now):
        for i in range(len(self.endpoints)):
            if not self.up[i] and now >= self.next_probe[i]:
                self.next_id += 1
                self._send(i, self.pb.Publish(request_id=self.next_id,
                                              version=1).SerializeToString())
                self.next_probe[i] = now + self.probe_s

    def publish(self, events):
        """Publishes a list of pb.Event; returns (Ack, endpoint that answered).
        Raises TimeoutError after timeout_s without an answer."""
        self.next_id += 1
        rid = self.next_id
        frame = self.pb.Publish(request_id=rid, version=1, events=events).SerializeToString()
        self._probe(time.monotonic())
        target = self._pick()
        sent_at = time.monotonic()  # or since when the target refused it
        deadline = sent_at + self.timeout_s
        sent = self._send(target, frame)
        poller = zmq.Poller()
        for s in self.socks:
            poller.register(s, zmq.POLLIN)
        while time.monotonic() < deadline:
            for sock, _ in poller.poll(timeout=50):
                i = self.socks.index(sock)
                ack = self.pb.Ack.FromString(sock.recv())
                self.last_answer[i] = time.monotonic()
                if ack.stopping:
                    self._set(i, False, "it is shutting down")
                else:
                    self._set(i, True)
                if ack.request_id != rid:
                    continue  # a probe's answer, or one to an earlier send
                if ack.stopping and any(self.up[j] for j in range(len(self.up)) if j != i):
                    if i == target:
                        target = self._pick(avoid=i)
                        sent_at = time.monotonic()
                        sent = self._send(target, frame)
                    continue
                return ack, self.endpoints[i]
            now = time.monotonic()
            self._probe(now)
            if not sent and not self.up[target] and any(self.up):
                target = self._pick(avoid=target)  # a router came back
                sent_at = now
            if not sent and now - sent_at < self.resend_s:
                if self._send(target, frame):  # connected by now?
                    sent, sent_at = True, now
            elif now - sent_at >= self.resend_s:
                if self.last_answer[target] < sent_at:
                    self._set(target, False,
                              f"no answer in {self.resend_s:g} s" if sent else "not connected")
                if self.policy == "spread" or not self.up[target]:
                    target = self._pick(avoid=target)
                sent_at = now
                sent = self._send(target, frame)
        raise TimeoutError(f"no router answered request {rid} in {self.timeout_s} s")


def publish_over_three_routers(pb, evbusd, workdir, check):
    """Three routers: a failover producer moves off a router killed with
    kill -9 and back once it is restarted; what that router acked before the
    kill is still there (a resend of those ids to it is DUPLICATE); a spread
    producer uses all three."""
    dirs = [os.path.join(workdir, f"router-{i}") for i in range(3)]
    procs, endpoints = [None] * 3, [None] * 3
    ctx = zmq.Context()
    try:
        for i, d in enumerate(dirs):
            os.mkdir(d)
            procs[i], endpoints[i] = start_daemon(evbusd, d, region=f"py-{i + 1}")

        def event(eid):
            return pb.Event(id=eid, source="py.app", detail_type="Hello", detail="{}")

        fo = Producer(ctx, pb, endpoints, "failover", resend_s=0.5, probe_s=0.2)
        before = []
        for k in range(5):
            ack, ep = fo.publish([event(f"fo-{k}")])
            check(ack.results[0].status == pb.ACCEPTED and ep == endpoints[0]
                  and ack.results[0].region == "py-1",
                  f"failover: fo-{k} accepted by the first router, region py-1")
            before.append(f"fo-{k}")
        procs[0].kill()
        procs[0].wait()
        procs[0] = None
        ack, ep = fo.publish([event("fo-after-kill")])
        check(ack.results[0].status == pb.ACCEPTED and ep == endpoints[1]
              and ack.results[0].region == "py-2",
              "failover: after a kill -9 of the first router, the second accepts")
        check(fo.routers()[0] == (endpoints[0], False), "failover: the first router is down")
        procs[0], _ = start_daemon(evbusd, dirs[0], region="py-1")
        deadline = time.monotonic() + 15
        back = False
        k = 0
        while not back and time.monotonic() < deadline:
            ack, ep = fo.publish([event(f"fo-back-{k}")])
            k += 1
            back = ep == endpoints[0]
            time.sleep(0.05)
        check(back, "failover: back to the first router once it answers again")
        ack, ep = fo.publish([event(i) for i in before])
        check(ep == endpoints[0] and all(r.status == pb.DUPLICATE for r in ack.results),
              "what the first router acked before kill -9 is still in its store")
        fo.close()

        sp = Producer(ctx, pb, endpoints, "spread", resend_s=0.5, probe_s=0.2)
        used = set()
        for k in range(6):
            ack, ep = sp.publish([event(f"sp-{k}")])
            if ack.results[0].status == pb.ACCEPTED:
                used.add(ep)
        check(used == set(endpoints), "spread: every router accepts a share")
        sp.close()
        try:
            Producer(ctx, pb, endpoints, "roundrobin")
            check(False, "an unknown policy is refused")
        except ValueError:
            check(True, "an unknown policy is refused")
    finally:
        for p in procs:
            if p is not None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        ctx.term()


def main():
    evbusd, proto_dir, evbus = sys.argv[1], sys.argv[2], sys.argv[3]
    workdir = tempfile.mkdtemp(prefix="evbus-py-")
    proc = None
    failures = []
    checks = [0]

    def check(cond, what):
        checks[0] += 1
        print(("ok   " if cond else "FAIL ") + what)
        if not cond:
            failures.append(what)

    try:
        pb = compile_proto(proto_dir, workdir)
        proc, endpoint = start_daemon(evbusd, workdir)
        ctx = zmq.Context()
        dealer = ctx.socket(zmq.DEALER)
        dealer.setsockopt(zmq.RCVTIMEO, 5000)
        dealer.setsockopt(zmq.LINGER, 0)
        dealer.connect(endpoint)

        pub = pb.Publish(request_id=42, version=1)
        pub.events.add(id="py-1", source="py.app", detail_type="Hello",
                       detail='{"lang": "python", "n": 1}',
                       resources=["arn:aws:example:::thing/1"], partition_key="k1",
                       attributes=[pb.Attribute(key="tenant", value="acme")])
        pub.events.add(id="py-1", source="py.app", detail_type="Hello", detail="{}")
        pub.events.add(source="py.app", detail_type="Hello", detail='{"no id": true}')
        pub.events.add(id="py-bad", source="py.app", detail_type="Hello", detail="[1,2]")
        dealer.send(pub.SerializeToString())
        ack = pb.Ack.FromString(dealer.recv())
        check(ack.request_id == 42, "ack carries the request id")
        check(len(ack.results) == 4, "one result per event")
        r = ack.results
        check(r[0].status == pb.ACCEPTED and r[0].sequence > 0 and r[0].region == "py-1",
              "first event accepted with a sequence and the region")
        check(r[1].status == pb.DUPLICATE and r[1].sequence == r[0].sequence,
              "same id again is a duplicate of the first")
        check(r[2].status == pb.ACCEPTED and len(r[2].event_id) == 36,
              "an event without id gets a UUID from evbusd")
        check(r[3].status == pb.REJECTED and "not a JSON object" in r[3].reason,
              "a detail that is not an object is rejected with a reason")

        # A newer producer: field 99 of Publish and field 50 of Event are
        # unknown to this evbusd and must be ignored.
        newer = pb.Publish(request_id=43)
        newer.events.add(id="py-2", source="py.app", detail_type="Hello", detail="{}")
        frame = bytearray(newer.SerializeToString())
        frame += bytes([0x98, 0x06, 0x01])  # field 99, varint 1
        dealer.send(bytes(frame))
        ack = pb.Ack.FromString(dealer.recv())
        check(ack.error == "" and ack.results[0].status == pb.ACCEPTED,
              "unknown fields are ignored")

        # REQ sockets put an empty delimiter frame first; evbusd answers alike.
        req = ctx.socket(zmq.REQ)
        req.setsockopt(zmq.RCVTIMEO, 5000)
        req.setsockopt(zmq.LINGER, 0)
        req.connect(endpoint)
        p3 = pb.Publish(request_id=44)
        p3.events.add(id="py-3", source="py.app", detail_type="Hello", detail="{}")
        req.send(p3.SerializeToString())
        ack = pb.Ack.FromString(req.recv())
        check(ack.request_id == 44 and ack.results[0].status == pb.ACCEPTED,
              "a REQ socket works too")

        # Strings arrive with their length; a raw NUL byte inside one must not
        # cut it short. "nul\0a" stored as "nul" would make "nul\0b" a
        # DUPLICATE of it: acked as durable, never stored.
        p4 = pb.Publish(request_id=45)
        p4.events.add(id="nul\0a", source="py.app", detail_type="Hello", detail="{}")
        p4.events.add(id="nul\0b", source="py.app", detail_type="Hello", detail="{}")
        p4.events.add(id="py-4", source="py.app\0x", detail_type="Hello", detail="{}")
        p4.events.add(id="py-5", source="py.app", detail_type="Hello", detail='{"a":1}\0{}')
        p4.events.add(id="py-6", source="py.app", detail_type="Hello", detail="{}",
                      attributes=[pb.Attribute(key="k", value="v\0w")])
        p4.events.add(id="py-7", source="py.app", detail_type="Hello",
                      detail='{"a":"x\\u0000y"}')
        p4.events.add(id="nul", source="py.app", detail_type="Hello", detail="{}")
        dealer.send(p4.SerializeToString())
        ack = pb.Ack.FromString(dealer.recv())
        r = ack.results
        check(len(r) == 7, "one result per event (NUL bytes)")
        for i, field in [(0, "id"), (1, "id"), (2, "source"), (3, "detail"),
                         (4, "attributes.value")]:
            check(r[i].status == pb.REJECTED and f"{field} contains a NUL byte" in r[i].reason,
                  f"a raw NUL in {field} is rejected with why: {r[i].reason!r}")
        check(r[0].event_id == "" and r[0].index == 0 and r[1].index == 1,
              "an id with a NUL is not echoed cut short: the ack gives the event's index")
        check(r[5].status == pb.ACCEPTED, "an escaped \\u0000 in a detail is accepted")
        check(r[6].status == pb.ACCEPTED and r[6].event_id == "nul",
              "id 'nul' is new: nothing was stored under a cut-short id")

        # An id that is not UTF-8 cannot travel back in EventAck.event_id (a
        # proto3 string: this decoder refuses the whole Ack). protobuf for
        # Python will not build such an id, so patch the bytes of a
        # placeholder of the same length.
        p5 = pb.Publish(request_id=46)
        p5.events.add(id="py-8", source="py.app", detail_type="Hello", detail="{}")
        p5.events.add(id="PLACEHOLDER", source="py.app", detail_type="Hello", detail="{}")
        p5.events.add(id="py-9", source="py.app", detail_type="Hello", detail="{}")
        frame = p5.SerializeToString().replace(b"PLACEHOLDER", b"bad\xff\xfeutf-8!")
        dealer.send(frame)
        try:
            ack = pb.Ack.FromString(dealer.recv())
            r = ack.results
            check(len(r) == 3 and r[0].status == pb.ACCEPTED and r[0].event_id == "py-8"
                  and r[2].status == pb.ACCEPTED and r[2].event_id == "py-9",
                  "the other events of a request with a non-UTF-8 id get readable acks")
            check(r[1].status == pb.REJECTED and r[1].event_id == "" and r[1].index == 1
                  and "not valid UTF-8" in r[1].reason and "index" in r[1].reason,
                  f"a non-UTF-8 id is answered by its index, saying why: {r[1].reason!r}")
        except Exception as e:  # DecodeError: the whole Ack is lost
            check(False, f"an Ack answering a non-UTF-8 id is readable ({e})")

        dealer.send(b"this is not protobuf \xff\xff")
        ack = pb.Ack.FromString(dealer.recv())
        check("not a serialized evbus.v1.Publish" in ack.error,
              "a malformed frame gets an error ack")
        dealer.close()
        req.close()
        ctx.term()

        proc.send_signal(signal.SIGTERM)
        check(proc.wait(timeout=10) == 0, "evbusd exits 0 on SIGTERM")
        proc = None

        curve_dir = os.path.join(workdir, "curve")
        os.mkdir(curve_dir)
        publish_over_curve(pb, evbus, curve_dir, evbusd, check)

        routers_dir = os.path.join(workdir, "routers")
        os.mkdir(routers_dir)
        publish_over_three_routers(pb, evbusd, routers_dir, check)
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"{checks[0] - len(failures)} passed, {len(failures)} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
