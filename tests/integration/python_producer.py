#!/usr/bin/python3
"""A producer written in Python with Debian's ZeroMQ and protobuf packages,
compiled from proto/evbus.proto: proves the wire format is usable from another
language, including over a REQ socket and with fields this evbusd does not
know (a newer producer), and how a Python producer publishes over CURVE with a
key file from `evbus keygen`. Starts its own evbusd and always stops it.

usage: python_producer.py EVBUSD PROTO_DIR EVBUS
"""
import os
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


def start_daemon(evbusd, workdir, ingest_extra=""):
    endpoint = f"ipc://{workdir}/ingest.sock"
    config = os.path.join(workdir, "evbus.yaml")
    with open(config, "w") as f:
        f.write(f"region: py-1\ningest:\n  listen: [\"{endpoint}\"]\n{ingest_extra}"
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
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"{checks[0] - len(failures)} passed, {len(failures)} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
