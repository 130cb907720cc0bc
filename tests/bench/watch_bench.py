#!/usr/bin/python3
"""Benchmark: 1,000 watchers on one fristadd, in one run. Prints figures, asserts nothing.

Starts a redis-server (appendfsync always) and fristadd, registers 100 shelters, and connects
1,000 watching connections over TLS, spread over two receiver processes:

  10 watchers of shelter b0000 (whose units the writes change),
  10 of an admin (everything),
  980 of 98 other shelters, 10 each (they are connected and scoped, and see none of it).

Then, in one run:
  1. event latency: one writer sets b0000's units one at a time (waiting for each reply) at a
     steady rate; for every event and every watcher that receives it, the time from the
     write's acknowledgement at the writer to the event's arrival at the watcher (both on
     CLOCK_MONOTONIC, one machine; negative when the event overtook the reply), and from the
     moment the write was sent. p50, p99 and max over all deliveries;
  2. the same with every one of the 1,000 watchers an admin (each event to all 1,000);
  3. write throughput (tests/bench/loadgen, vacancy.set, 4 connections x 8 pipelined) and
     fristadd's CPU time per write: with no watcher, with 1,000 watchers none of which the
     writes concern (scoped to other shelters), and with the 1,000 of (1).
The receivers are Python processes on the same two cores: what they spend is taken from the
daemon and Redis, so the daemon's CPU per write is the figure to compare.

    watch_bench.py FRISTADD LOADGEN SOURCE_ROOT [--seconds N] [--rate WRITES_PER_S]
"""
import multiprocessing
import os
import re
import selectors
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time

import msgpack

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                "integration"))
import fristad_proto  # noqa: E402

NS = "wbench"
WATCHERS = 1000
SHELTERS = 101
UNITS = 9
HEADER = struct.Struct(">I")


def wait_for(cond, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.05)
    raise SystemExit("timed out waiting for " + what)


def percentile(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


# -- receivers ----------------------------------------------------------------------------

def receiver(port, certs, ca, ready, out):
    """Opens one watching connection per (cert, key) in `certs`, then records, per
    connection, the arrival time of every vacancy event by its `seq`, until told to stop
    through `out`. Sends {seq: [arrival, ...]} and the count of closed
    connections back through `out`."""
    sel = selectors.DefaultSelector()
    conns = []
    ctxs = {}
    for crt, key in certs:
        ctx = ctxs.get(crt)
        if ctx is None:
            ctx = fristad_proto.tls_context(crt, key, ca)
            ctxs[crt] = ctx
        raw = socket.create_connection(("127.0.0.1", port), timeout=30)
        s = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        s.sendall(fristad_proto.frame(fristad_proto.request_body(
            "watch", {"types": ["vacancy"]}, 1)))
        conns.append(s)
    # Every stream's first frame is the ok reply: wait for each, then read without blocking.
    for s in conns:
        buf = b""
        while len(buf) < 4 or len(buf) < 4 + HEADER.unpack(buf[:4])[0]:
            buf += s.recv(65536)
        n = HEADER.unpack(buf[:4])[0]
        first = msgpack.unpackb(buf[4:4 + n], raw=False)
        assert first.get("ok") and first["result"].get("watching"), first
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, [buf[4 + n:], s])
    ready.set()
    arrivals = {}
    closed = 0
    while True:
        for key, _ in sel.select(timeout=0.2):
            state = key.data
            s = state[1]
            try:
                while True:
                    chunk = s.recv(262144)
                    if not chunk:
                        raise ConnectionError
                    state[0] += chunk
            except (ssl.SSLWantReadError, BlockingIOError):
                pass
            except (ConnectionError, ssl.SSLError, OSError):
                sel.unregister(s)
                closed += 1
                continue
            now = time.monotonic()
            buf = state[0]
            i = 0
            while len(buf) - i >= 4:
                n = HEADER.unpack_from(buf, i)[0]
                if len(buf) - i - 4 < n:
                    break
                reply = msgpack.unpackb(buf[i + 4:i + 4 + n], raw=False)
                i += 4 + n
                ev = reply.get("result", {}).get("event")
                if ev:
                    arrivals.setdefault(ev["seq"], []).append(now)
            state[0] = buf[i:]
        if out.poll():
            out.recv()
            break
    out.send((arrivals, closed))
    for s in conns:
        s.close()


class Receivers:
    """Two processes holding the watchers between them."""

    def __init__(self, port, certs, ca):
        self.pipes, self.procs = [], []
        ready = []
        for part in (certs[0::2], certs[1::2]):
            a, b = multiprocessing.Pipe()
            r = multiprocessing.Event()
            p = multiprocessing.Process(target=receiver,
                                        args=(port, part, ca, r, b))
            p.start()
            self.pipes.append(a)
            self.procs.append(p)
            ready.append(r)
        for r in ready:
            if not r.wait(120):
                raise SystemExit("the watchers did not connect in time")

    def stop(self):
        """Ends the receivers; returns {seq: [arrival, ...]} and the closed count."""
        arrivals, closed = {}, 0
        for a in self.pipes:
            a.send("stop")
        for a in self.pipes:
            got, c = a.recv()
            closed += c
            for seq, ts in got.items():
                arrivals.setdefault(seq, []).extend(ts)
        for p in self.procs:
            p.join(30)
        return arrivals, closed


# -- the run ------------------------------------------------------------------------------

def write_steadily(conn, seconds, rate):
    """vacancy.set on b0000's units, one at a time, at `rate` per second; returns the
    (sent, acknowledged) times, in order."""
    acks = []
    interval = 1.0 / rate
    end = time.monotonic() + seconds
    i = 0
    nxt = time.monotonic()
    while time.monotonic() < end:
        unit = "u%d" % (1 + i % UNITS)
        state = "free" if (i // UNITS) % 2 == 0 else "occupied"
        sent = time.monotonic()
        conn.call("vacancy.set", {"shelter": "b0000", "unit": unit, "state": state})
        acks.append((sent, time.monotonic()))
        i += 1
        nxt += interval
        delay = nxt - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    return acks


def latencies(arrivals, acks):
    """Pairs the k-th vacancy event (by seq order) with the k-th write: the milliseconds
    from each acknowledgement and from each sending to every arrival."""
    def key(seq):
        ms, n = seq.split("-")
        return int(ms), int(n)
    seqs = sorted(arrivals, key=key)
    from_ack, from_sent = [], []
    for seq, (sent, ack) in zip(seqs, acks):
        for t in arrivals[seq]:
            from_ack.append((t - ack) * 1000)
            from_sent.append((t - sent) * 1000)
    return from_ack, from_sent


def cpu_s(pid):
    """User plus system CPU seconds of a process so far."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    fristadd, loadgen, root = (os.path.abspath(a) for a in sys.argv[1:4])
    seconds = int(sys.argv[sys.argv.index("--seconds") + 1]) if "--seconds" in sys.argv else 10
    rate = float(sys.argv[sys.argv.index("--rate") + 1]) if "--rate" in sys.argv else 20
    work = tempfile.mkdtemp(prefix="fristad-wbench-")
    procs = []
    try:
        pki = os.path.join(work, "pki")
        tool = os.path.join(root, "scripts", "pki")
        subprocess.run([tool, "init", pki], check=True, stdout=subprocess.DEVNULL)
        people = [("admin", "ops-bench"), ("social", "0180")] + \
            [("shelter", "b%04d" % i) for i in range(SHELTERS)]
        for role, ident in people:
            subprocess.run([tool, "client", pki, role, ident], check=True,
                           stdout=subprocess.DEVNULL)

        def cert(role, ident):
            return (f"{pki}/{role}-{ident}.crt", f"{pki}/{role}-{ident}.key")

        sock = os.path.join(work, "redis.sock")
        redis = subprocess.Popen(
            ["redis-server", "--port", "0", "--unixsocket", sock, "--unixsocketperm", "700",
             "--dir", work, "--save", "", "--appendonly", "yes", "--appendfsync", "always",
             "--logfile", os.path.join(work, "redis.log")])
        procs.append(redis)
        wait_for(lambda: os.path.exists(sock), 10, "redis-server")

        conf = os.path.join(work, "fristadd.conf")
        with open(conf, "w") as f:
            f.write(f"""[server]
listen = 127.0.0.1:0
data_dir = {work}/data
rate = 10000000
burst = 10000000
max_connections = 4000
max_connections_per_person = 2000
idle_connections_per_person = 2000
; every client connects from 127.0.0.1 at once
max_handshakes_per_address = 4000
[tls]
cert = {pki}/server.crt
key = {pki}/server.key
ca = {pki}/ca.crt
[redis]
mode = connect
address = unix:{sock}
namespace = {NS}
[log]
level = notice
[metrics]
listen =
[events]
max_watchers = 2000
[data]
municipalities = {root}/conf/municipalities.csv
adjacency = {root}/conf/adjacency.csv
policy = {root}/conf/policy.conf
""")
        log = open(os.path.join(work, "fristadd.log"), "w+")
        daemon = subprocess.Popen([fristadd, "-c", conf], stderr=log)
        procs.append(daemon)
        port = []

        def ready():
            log.seek(0)
            m = re.search(r"ready: listening on [0-9.]+:(\d+)", log.read())
            if m:
                port.append(int(m.group(1)))
            return bool(m)
        wait_for(ready, 30, "fristadd")
        port = port[0]
        ca = f"{pki}/ca.crt"

        def connect(role, ident):
            crt, key = cert(role, ident)
            return fristad_proto.Connection("127.0.0.1", port, crt, key, ca, timeout=30)

        with connect("admin", "ops-bench") as adm:
            for i in range(SHELTERS):
                adm.call("shelter.add", {"shelter": "b%04d" % i, "name": "Shelter %d" % i,
                                         "kind": "kvinnojour", "municipality": "0180",
                                         "protection": 2, "phone": "08-555 00 00"})
            for u in range(1, UNITS + 1):
                adm.call("unit.add", {"shelter": "b0000", "unit": "u%d" % u, "beds": 2})
        writer = connect("shelter", "b0000")
        for u in range(1, UNITS + 1):
            writer.call("vacancy.set", {"shelter": "b0000", "unit": "u%d" % u,
                                        "state": "occupied"})

        def loadgen_writes():
            """vacancy.set as fast as loadgen goes; with fristadd's CPU per write."""
            crt = cert("shelter", "b0000")[0][:-4]
            cpu = cpu_s(daemon.pid)
            out = subprocess.run(
                [loadgen, "--server", "127.0.0.1:%d" % port, "--cert", crt + ".crt",
                 "--key", crt + ".key", "--ca", ca, "--op", "vacancy", "--shelter", "b0000",
                 "--units", str(UNITS), "--connections", "4", "--pipeline", "8",
                 "--seconds", str(seconds)], check=True, capture_output=True, text=True)
            cpu = cpu_s(daemon.pid) - cpu
            row = out.stdout.strip().split(",")
            return {"ops": float(row[5]), "p50": float(row[6]), "p99": float(row[7]),
                    "errors": int(row[4]), "cpu_us": cpu * 1e6 / max(int(row[3]), 1)}

        def latency_phase(certs):
            recv = Receivers(port, certs, ca)
            acks = write_steadily(writer, seconds, rate)
            time.sleep(1)
            return recv, acks

        print(f"fristadd with 1,000 watchers: {seconds} s per phase, latency writes at "
              f"{rate:.0f}/s, vacancy.set throughput with 4 connections x 8 pipelined")
        base = loadgen_writes()

        others = []
        for i in range(1, SHELTERS):
            others += [cert("shelter", "b%04d" % i)] * 10
        rss_before = rss_kib(daemon.pid)
        t = time.monotonic()
        recv = Receivers(port, others, ca)
        connect_s = time.monotonic() - t
        rss_watching = rss_kib(daemon.pid)
        idle = loadgen_writes()
        recv.stop()

        mix = [cert("shelter", "b0000")] * 10 + [cert("admin", "ops-bench")] * 10 + others[:980]
        recv, acks = latency_phase(mix)
        loaded = loadgen_writes()
        arrivals, closed = recv.stop()
        # The steady writes are the first len(acks) events; loadgen's follow.
        lat, lat_sent = latencies(arrivals, acks)

        recv, acks_all = latency_phase([cert("admin", "ops-bench")] * WATCHERS)
        arrivals_all, closed_all = recv.stop()
        lat_all, lat_all_sent = latencies(arrivals_all, acks_all)
        writer.close()

        print(f"connecting 1,000 watchers (TLS handshake + watch): {connect_s:.2f} s; "
              f"fristadd RSS {rss_before / 1024:.1f} MiB before, "
              f"{rss_watching / 1024:.1f} MiB with them "
              f"({(rss_watching - rss_before) / WATCHERS:.1f} KiB per watcher)")
        print("%-52s %9s %9s %9s %11s" % ("event latency (ms)", "p50", "p99", "max",
                                          "deliveries"))
        for name, xs, n in (
                ("20 of 1,000 see the writes: from the write's reply", lat, 20 * len(acks)),
                ("  from the write's sending", lat_sent, 20 * len(acks)),
                ("all 1,000 see every write: from the write's reply", lat_all,
                 WATCHERS * len(acks_all)),
                ("  from the write's sending", lat_all_sent, WATCHERS * len(acks_all))):
            print("%-52s %9.2f %9.2f %9.2f %5d/%5d" % (
                name, percentile(xs, 50), percentile(xs, 99), max(xs or [float("nan")]),
                len(xs), n))
        print(f"  (a negative figure: the event reached the watcher before the writer had read "
              f"its reply; watchers closed by the daemon: {closed + closed_all})")
        print("%-52s %9s %9s %9s %11s" % ("vacancy.set throughput", "ops/s", "p50 ms", "p99 ms",
                                          "CPU us/op"))
        for name, r in (("no watcher connected", base),
                        ("1,000 watchers, none concerned", idle),
                        ("1,000 watchers, 20 receiving every event", loaded)):
            print("%-52s %9.0f %9.3f %9.3f %11.1f" % (name, r["ops"], r["p50"], r["p99"],
                                                      r["cpu_us"]))
        print(f"ratios to no watcher: none concerned {idle['ops'] / base['ops']:.2f}, "
              f"20 receiving {loaded['ops'] / base['ops']:.2f}; error replies: "
              f"{base['errors'] + idle['errors'] + loaded['errors']}")
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
        shutil.rmtree(work, ignore_errors=True)


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


if __name__ == "__main__":
    main()
