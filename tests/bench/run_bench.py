#!/usr/bin/python3
"""Benchmark: fristadd against redis-benchmark on the same machine, in one run.

Loads a national-scale registry (300 shelters in real municipalities, 9 units each) straight
into Redis through the store functions, starts fristadd on it, and measures with
tests/bench/loadgen (TLS, pipelined requests):
  whoami   the protocol and TLS path alone
  search   a referral search answered from the in-memory index
  free     a county listing from the index
  vacancy  a write: one Redis Function with appendfsync always
and, on the same Redis, redis-benchmark's PING and the very FCALL that vacancy makes. It prints
figures and ratios and asserts nothing about time. Also prints the daemon's resident memory
next to Redis's, and how long the full index load took.

    run_bench.py FRISTADD LOADGEN SOURCE_ROOT [--seconds N]
"""
import csv
import io
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import msgpack

SHELTERS = 300
UNITS = 9
NS = "bench"
RET = "31536000000"


def resp(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def read_reply(f):
    line = f.readline()
    kind, rest = line[:1], line[1:-2]
    if kind in (b"+", b":"):
        return rest
    if kind == b"-":
        raise RuntimeError(rest.decode())
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)
        return data[:-2]
    if kind == b"*":
        return [read_reply(f) for _ in range(int(rest))]
    raise RuntimeError("bad reply %r" % line)


def fcall(key, function, caller, op, args):
    """FCALL of a store function with its envelope (daemon/fristad.lua). The retentions go as
    text so that the envelope holds no NUL byte and can be a redis-benchmark argument."""
    env = msgpack.packb({"caller": caller, "op": op, "audit_retention": RET,
                         "reference_retention": RET, "args": args})
    return ("FCALL", "fristad_" + function, 1, key, env)


def str_arg(a):
    """A command word for redis-benchmark's argv (bytes go to exec as they are)."""
    if isinstance(a, bytes):
        assert b"\0" not in a
        return a
    return str(a)


def pipeline(sock_path, commands):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock_path)
    s.sendall(b"".join(resp(*c) for c in commands))
    f = s.makefile("rb")
    out = [read_reply(f) for _ in commands]
    s.close()
    return out


def wait_for(cond, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.05)
    raise SystemExit("timed out waiting for " + what)


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    fristadd, loadgen, root = (os.path.abspath(a) for a in sys.argv[1:4])
    seconds = int(sys.argv[sys.argv.index("--seconds") + 1]) if "--seconds" in sys.argv else 5
    work = tempfile.mkdtemp(prefix="fristad-bench-")
    procs = []
    try:
        pki = os.path.join(work, "pki")
        tool = os.path.join(root, "scripts", "pki")
        subprocess.run([tool, "init", pki], check=True, stdout=subprocess.DEVNULL)
        for role, ident in (("social", "0180"), ("shelter", "b0000")):
            subprocess.run([tool, "client", pki, role, ident], check=True,
                           stdout=subprocess.DEVNULL)

        sock = os.path.join(work, "redis.sock")
        redis = subprocess.Popen(
            ["redis-server", "--port", "0", "--unixsocket", sock, "--unixsocketperm", "700",
             "--dir", work, "--save", "", "--appendonly", "yes", "--appendfsync", "always",
             "--logfile", os.path.join(work, "redis.log")])
        procs.append(redis)
        wait_for(lambda: os.path.exists(sock), 10, "redis-server")
        time.sleep(0.2)
        with open(os.path.join(root, "daemon", "fristad.lua"), "rb") as f:
            pipeline(sock, [("FUNCTION", "LOAD", "REPLACE", f.read())])

        with open(os.path.join(root, "conf", "municipalities.csv")) as f:
            codes = [r["kommunkod"] for r in csv.DictReader(f)]
        key = "{%s}:ver" % NS
        cmds = []
        for i in range(SHELTERS):
            sid = "b%04d" % i
            shelter = {"shelter": sid, "name": "Shelter %d" % i, "kind": "kvinnojour",
                       "municipality": codes[(i * 7) % len(codes)], "protection": 1 + i % 3,
                       "phone": "08-555 00 %02d" % (i % 100), "languages": ["sv", "en"]}
            if i % 3 < 2:
                shelter["boys_max_age"] = (12, 15)[i % 3]
                shelter["max_children"] = (2, 4)[i % 3]
            cmds.append(fcall(key, "shelter_add", "admin:bench", "shelter.add", shelter))
            for u in range(1, UNITS + 1):
                cmds.append(fcall(key, "unit_add", "admin:bench", "unit.add",
                                  {"shelter": sid, "unit": "u%d" % u, "beds": 1 + u % 5,
                                   "accessible": u == 1}))
                state = "free" if (i + u) % 3 else "occupied"
                cmds.append(fcall(key, "vacancy_set", "shelter:" + sid, "vacancy.set",
                                  {"shelter": sid, "unit": "u%d" % u, "state": state}))
        t = time.monotonic()
        for k in range(0, len(cmds), 1000):
            pipeline(sock, cmds[k:k + 1000])
        load_s = time.monotonic() - t

        conf = os.path.join(work, "fristadd.conf")
        with open(conf, "w") as f:
            f.write(f"""[server]
listen = 127.0.0.1:0
data_dir = {work}/data
rate = 10000000
burst = 10000000
max_connections_per_person = 1000
; every client connects from 127.0.0.1 at once
max_handshakes_per_address = 1000
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
[data]
municipalities = {root}/conf/municipalities.csv
adjacency = {root}/conf/adjacency.csv
policy = {root}/conf/policy.conf
""")
        log = open(os.path.join(work, "fristadd.log"), "w+")
        t = time.monotonic()
        daemon = subprocess.Popen([fristadd, "-c", conf], stderr=log)
        procs.append(daemon)
        port = []

        def ready():
            log.seek(0)
            m = re.search(r"ready: listening on [0-9.]+:(\d+)", log.read())
            if m:
                port.append(m.group(1))
            return bool(m)
        wait_for(ready, 30, "fristadd")
        index_s = time.monotonic() - t

        def run(op, cert, conns, pipe, extra=()):
            out = subprocess.run(
                [loadgen, "--server", "127.0.0.1:" + port[0], "--cert", cert + ".crt",
                 "--key", cert + ".key", "--ca", pki + "/ca.crt", "--op", op,
                 "--connections", str(conns), "--pipeline", str(pipe),
                 "--seconds", str(seconds), *extra],
                check=True, capture_output=True, text=True)
            sys.stderr.write(out.stderr)
            out = out.stdout.strip().split(",")
            return {"ops": float(out[5]), "p50": float(out[6]), "p99": float(out[7]),
                    "errors": int(out[4])}

        social = pki + "/social-0180"
        shelter = pki + "/shelter-b0000"
        results = {}
        for op, cert, extra in (("whoami", social, ()), ("search", social, ()),
                                ("free", social, ()),
                                ("vacancy", shelter, ("--shelter", "b0000", "--units", "9"))):
            results[op] = run(op, cert, 4, 8, extra)
        rss_daemon = rss_kib(daemon.pid)
        rss_redis = rss_kib(redis.pid)
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(30)

        def rb(*args):
            out = subprocess.run(["redis-benchmark", "-s", sock, "-c", "4", "-P", "8",
                                  "-n", "100000", "--csv", *args],
                                 check=True, capture_output=True).stdout.decode(errors="replace")
            row = list(csv.reader(io.StringIO(out)))[-1]
            return {"ops": float(row[1]), "p50": float(row[4]), "p99": float(row[6])}
        ping = rb("ping")
        direct = rb(*map(str_arg, fcall(key, "vacancy_set", "shelter:b0000", "vacancy.set",
                                        {"shelter": "b0000", "unit": "u2", "state": "free"})))

        print(f"registry: {SHELTERS} shelters, {SHELTERS * UNITS} units "
              f"(loaded through the store functions in {load_s:.2f} s)")
        print(f"fristadd: full index load and ready in {index_s:.2f} s after start")
        print(f"memory: fristadd RSS {rss_daemon / 1024:.1f} MiB, "
              f"redis-server RSS {rss_redis / 1024:.1f} MiB")
        print("%-34s %12s %9s %9s" % ("4 connections x 8 pipelined", "ops/s", "p50 ms",
                                      "p99 ms"))
        for name, r in (("fristadd whoami (TLS + protocol)", results["whoami"]),
                        ("fristadd search (index)", results["search"]),
                        ("fristadd free --county 01 (index)", results["free"]),
                        ("fristadd vacancy.set (FCALL, fsync)", results["vacancy"]),
                        ("redis-benchmark PING", ping),
                        ("redis-benchmark FCALL vacancy_set", direct)):
            print("%-34s %12.0f %9.3f %9.3f" % (name, r["ops"], r["p50"], r["p99"]))
        print("ratios (same run, same machine):")
        print(f"  search / redis PING            {results['search']['ops'] / ping['ops']:.2f}")
        print(f"  vacancy.set / redis FCALL      {results['vacancy']['ops'] / direct['ops']:.2f}")
        print(f"  whoami / redis PING            {results['whoami']['ops'] / ping['ops']:.2f}")
        errors = sum(r["errors"] for r in results.values())
        print(f"error replies during the runs: {errors}")
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
