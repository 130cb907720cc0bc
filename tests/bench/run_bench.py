#!/usr/bin/python3
"""Benchmark: fristadd next to redis-benchmark on the same machine, in one run.

For each registry size (shelters in real municipalities, three units each, a quarter of them
free; written straight into Redis by tests/bench/populate.lua) it starts a redis-server with a
TLS port and a plain port and fristadd on it, and prints:

  start-up   time to ready, wall and CPU: the first start (which makes every stored snapshot)
             and a start from stored snapshots; RSS at ready and at its peak, against the
             budget of 1 KiB per unit + 16 MiB;
  requests   ops/s, p50, p99 and CPU per op of the serving process and of the client (the
             load generator), at 50 connections x 1 and 4 connections x 8 pipelined, for
               redis-benchmark GET, plain and --tls (the anchors),
               redis-benchmark FCALL fristad_vacancy_set (the write's own Redis Function),
               fristadd whoami (the protocol and TLS path alone), search (random referrals of
               every risk level and household, the default limit of 20 results), the same
               searches with limit 5 and limit 1 ("search:5", "search:1": what the results
               cost beside the search), vacancy.set (a write);
             measured in turn, anchor next to fristadd, `--rounds` times;
  ratios     search / TLS GET (ops/s and p99), whoami / TLS GET, vacancy.set / FCALL, and
             against plain GET, per round and their median.

It asserts nothing about time.

    run_bench.py FRISTADD LOADGEN SOURCE_ROOT [--seconds N] [--sizes 10000,100000]
                 [--rounds N] [--ops whoami,search,search:5,search:1,vacancy]
"""
import argparse
import csv
import io
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import msgpack

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import bulk  # noqa: E402

NS = "bench"
RET = "31536000000"
TICK = os.sysconf("SC_CLK_TCK")
MODES = ((50, 1), (4, 8))


def children_cpu_s():
    """CPU seconds of the finished child processes (the load generators) so far."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def cpu_s(pid):
    """User and system CPU seconds of a process so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def mem_kib(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def wait_for(cond, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.01)
    raise SystemExit("timed out waiting for " + what)


def fcall_argv(key, function, caller, op, args):
    """FCALL of a store function with its envelope (daemon/fristad.lua), as redis-benchmark
    arguments: the retentions go as text so that the envelope holds no NUL byte."""
    env = msgpack.packb({"caller": caller, "op": op, "audit_retention": RET,
                         "reference_retention": RET, "event_retention": RET, "args": args})
    assert b"\0" not in env
    return ["FCALL", "fristad_" + function, "1", key, env]


class Bench:
    def __init__(self, opts):
        self.o = opts
        self.work = tempfile.mkdtemp(prefix="fristad-bench-", dir=opts.tmp)
        self.procs = []
        self.pki = os.path.join(self.work, "pki")
        tool = os.path.join(opts.root, "scripts", "pki")
        subprocess.run([tool, "init", self.pki], check=True, stdout=subprocess.DEVNULL)
        for role, ident in (("social", "0180"), ("shelter", "b1")):
            subprocess.run([tool, "client", self.pki, role, ident], check=True,
                           stdout=subprocess.DEVNULL)
        self.sock = os.path.join(self.work, "redis.sock")
        self.redis = None
        self.daemon = None
        self.port = None

    # -- processes ------------------------------------------------------------------------

    def free_port(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        return port

    def start_redis(self):
        self.plain_port, self.tls_port = self.free_port(), self.free_port()
        p = self.pki
        self.redis = subprocess.Popen(
            ["redis-server", "--port", str(self.plain_port), "--bind", "127.0.0.1",
             "--tls-port", str(self.tls_port), "--tls-cert-file", f"{p}/server.crt",
             "--tls-key-file", f"{p}/server.key", "--tls-ca-cert-file", f"{p}/ca.crt",
             "--unixsocket", self.sock, "--unixsocketperm", "700", "--dir", self.work,
             "--save", "", "--appendonly", "yes", "--appendfsync", "always",
             "--logfile", os.path.join(self.work, "redis.log")])
        self.procs.append(self.redis)
        wait_for(lambda: os.path.exists(self.sock), 10, "redis-server")
        wait_for(lambda: self.redis_ok(), 10, "redis-server to answer")

    def redis_ok(self):
        try:
            r = bulk.Redis(self.sock, timeout=1)
            r.call("PING")
            r.close()
            return True
        except (OSError, bulk.RespError):
            return False

    def config(self):
        path = os.path.join(self.work, "fristadd.conf")
        with open(path, "w") as f:
            f.write(f"""[server]
listen = 127.0.0.1:0
data_dir = {self.work}/data
rate = 10000000
burst = 10000000
max_connections_per_person = 1000
; every client connects from 127.0.0.1 at once
max_handshakes_per_address = 1000
[tls]
cert = {self.pki}/server.crt
key = {self.pki}/server.key
ca = {self.pki}/ca.crt
[redis]
mode = connect
address = unix:{self.sock}
namespace = {NS}
[log]
level = info
[metrics]
listen =
[data]
municipalities = {self.o.root}/conf/municipalities.csv
adjacency = {self.o.root}/conf/adjacency.csv
policy = {self.o.root}/conf/policy.conf
""")
        return path

    def start_daemon(self):
        """Starts fristadd; returns (wall s, CPU s, RSS KiB, peak RSS KiB) at its ready line,
        and its own account of the load."""
        log = open(os.path.join(self.work, "fristadd.log"), "w+")
        t = time.monotonic()
        self.daemon = subprocess.Popen([self.o.fristadd, "-c", self.config()], stderr=log)
        self.procs.append(self.daemon)

        def ready():
            if self.daemon.poll() is not None:
                raise SystemExit("fristadd exited:\n" + open(log.name).read()[-3000:])
            log.seek(0)
            return re.search(r"ready: listening on [0-9.]+:(\d+)", log.read())
        m = wait_for(ready, 600, "fristadd to be ready")
        wall = time.monotonic() - t
        self.port = m.group(1)
        pid = self.daemon.pid
        log.seek(0)
        loaded = re.search(r"index: (loaded .*)", log.read())
        return {"wall": wall, "cpu": cpu_s(pid), "rss": mem_kib(pid, "VmRSS"),
                "peak": mem_kib(pid, "VmHWM"), "log": loaded.group(1) if loaded else "?"}

    def stop_daemon(self):
        if self.daemon and self.daemon.poll() is None:
            self.daemon.send_signal(signal.SIGTERM)
            self.daemon.wait(30)
        self.daemon = None

    def close(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
        shutil.rmtree(self.work, ignore_errors=True)

    # -- measurements ---------------------------------------------------------------------

    def loadgen(self, op, conns, pipe):
        """One loadgen run of `op` ("search:N": a search with limit N)."""
        op, _, limit = op.partition(":")
        cert = f"{self.pki}/shelter-b1" if op == "vacancy" else f"{self.pki}/social-0180"
        extra = ["--shelter", "b1", "--units", "3"] if op == "vacancy" else []
        extra += ["--limit", limit] if limit else []
        pid = self.daemon.pid
        c0, k0 = cpu_s(pid), children_cpu_s()
        out = subprocess.run(
            [self.o.loadgen, "--server", "127.0.0.1:" + self.port, "--cert", cert + ".crt",
             "--key", cert + ".key", "--ca", self.pki + "/ca.crt", "--op", op,
             "--connections", str(conns), "--pipeline", str(pipe),
             "--seconds", str(self.o.seconds), *extra],
            check=True, capture_output=True, text=True)
        c1, k1 = cpu_s(pid), children_cpu_s()
        sys.stderr.write(out.stderr)
        f = out.stdout.strip().split(",")
        n = int(f[3])
        return {"ops": float(f[5]), "p50": float(f[6]), "p99": float(f[7]),
                "cpu_us": (c1 - c0) / max(n, 1) * 1e6, "client_us": (k1 - k0) / max(n, 1) * 1e6,
                "errors": int(f[4])}

    def redis_benchmark(self, conns, pipe, args, target):
        """One redis-benchmark run, sized to take about --seconds; CPU per op of Redis."""
        base = ["redis-benchmark", "-c", str(conns), "-P", str(pipe), "--csv"]
        if target == "tls":
            base += ["-p", str(self.tls_port), "--tls", "--cert", f"{self.pki}/social-0180.crt",
                     "--key", f"{self.pki}/social-0180.key", "--cacert", f"{self.pki}/ca.crt"]
        elif target == "plain":
            base += ["-p", str(self.plain_port)]
        else:
            base += ["-s", self.sock]

        def run(n):
            c0, k0 = cpu_s(self.redis.pid), children_cpu_s()
            out = subprocess.run(base + ["-n", str(n), *args], check=True,
                                 capture_output=True).stdout.decode(errors="replace")
            c1, k1 = cpu_s(self.redis.pid), children_cpu_s()
            row = list(csv.reader(io.StringIO(out)))[-1]
            return {"ops": float(row[1]), "p50": float(row[4]), "p99": float(row[6]),
                    "cpu_us": (c1 - c0) / n * 1e6, "client_us": (k1 - k0) / n * 1e6,
                    "errors": 0}
        probe = run(20000 if args[:2] == ["-t", "get"] else max(2000, conns * pipe * 50))
        return run(max(10000, int(probe["ops"] * self.o.seconds)))

    def measure(self):
        """Every row at both concurrencies, anchors next to fristadd; one dict per round."""
        key = "{%s}:ver" % NS
        direct = fcall_argv(key, "vacancy_set", "shelter:b1", "vacancy.set",
                            {"shelter": "b1", "unit": "u2", "state": "free"})
        rounds = []
        for _ in range(self.o.rounds):
            res = {}
            for conns, pipe in MODES:
                m = (conns, pipe)
                res[("tls GET", m)] = self.redis_benchmark(conns, pipe, ["-t", "get"], "tls")
                for op in self.o.ops:
                    if op == "vacancy":
                        res[("FCALL", m)] = self.redis_benchmark(conns, pipe, direct, "unix")
                    res[(op, m)] = self.loadgen(op, conns, pipe)
                    if op == "search":
                        res[("tls GET 2", m)] = self.redis_benchmark(conns, pipe,
                                                                     ["-t", "get"], "tls")
                res[("plain GET", m)] = self.redis_benchmark(conns, pipe, ["-t", "get"],
                                                             "plain")
            rounds.append(res)
        return rounds


def fmt_row(name, cells):
    out = "  %-34s" % name
    for c in cells:
        if c is None:
            out += " %9s %7s %7s %8s %8s" % ("-", "-", "-", "-", "-")
        else:
            out += " %9.0f %7.3f %7.3f %8.1f %8.1f" % (c["ops"], c["p50"], c["p99"], c["cpu_us"],
                                                       c["client_us"])
    return out


def report(rounds, ops):
    names = [("plain GET", "redis-benchmark GET"), ("tls GET", "redis-benchmark --tls GET")]
    if "vacancy" in ops:
        names.append(("FCALL", "redis-benchmark FCALL vacancy_set"))
    labels = {"whoami": "fristadd whoami", "search": "fristadd search",
              "vacancy": "fristadd vacancy.set"}
    names += [(op, labels.get(op) or "fristadd search, limit " + op.partition(":")[2])
              for op in ops]
    print("  %-34s" % "" + "".join(" %-43s" % f"{c} connections x {p}".center(43)
                                   for c, p in MODES))
    print("  %-34s" % "" + " %9s %7s %7s %8s %8s" % ("ops/s", "p50 ms", "p99 ms", "CPU/op",
                                                       "client") * 2)
    for i, res in enumerate(rounds):
        if len(rounds) > 1:
            print(f"  round {i + 1}")
        for key, name in names:
            print(fmt_row(name, [res.get((key, m)) for m in MODES]))
    print("  ratios (paired in each round; median of the rounds):")

    def ratio(a, b, field, m):
        vals = []
        for res in rounds:
            x, y = res.get((a, m)), res.get((b, m))
            if x and y and y[field]:
                vals.append(x[field] / y[field])
        return vals

    def anchor(res, m):
        """TLS GET measured on both sides of search: their mean."""
        a, b = res.get(("tls GET", m)), res.get(("tls GET 2", m))
        if a and b:
            return {k: (a[k] + b[k]) / 2 for k in ("ops", "p50", "p99", "cpu_us", "client_us")}
        return a

    for res in rounds:
        for m in MODES:
            res[("tls GET mean", m)] = anchor(res, m)
    lines = []
    if "search" in ops:
        lines += [("search / TLS GET, ops/s", "search", "tls GET mean", "ops"),
                  ("search / TLS GET, p99 (lower is better)", "search", "tls GET mean", "p99"),
                  ("search / plain GET, ops/s", "search", "plain GET", "ops")]
    lines += [(f"search limit {op[7:]} / TLS GET, ops/s", op, "tls GET mean", "ops")
              for op in ops if op.startswith("search:")]
    if "whoami" in ops:
        lines += [("whoami / TLS GET, ops/s", "whoami", "tls GET mean", "ops"),
                  ("whoami / plain GET, ops/s", "whoami", "plain GET", "ops")]
    if "vacancy" in ops:
        lines += [("vacancy.set / FCALL vacancy_set, ops/s", "vacancy", "FCALL", "ops")]
    for label, a, b, field in lines:
        cells = []
        for m in MODES:
            v = ratio(a, b, field, m)
            if v:
                cells.append(f"{statistics.median(v):5.2f}" +
                             (f" ({', '.join(f'{x:.2f}' for x in v)})" if len(v) > 1 else ""))
            else:
                cells.append("-")
        print("    %-42s %-24s %s" % (label, *cells))
    errors = sum(r.get("errors", 0) for res in rounds for r in res.values() if r)
    print(f"  error replies during the runs: {errors}")


def machine():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    redis = subprocess.run(["redis-server", "--version"], capture_output=True,
                           text=True).stdout.split()[2]
    ossl = subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout.strip()
    return (f"{os.cpu_count()} CPUs ({cpu}), Linux {platform.release()}, Redis {redis}, "
            f"{ossl}; load average {os.getloadavg()[0]:.1f} at the start")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("fristadd")
    ap.add_argument("loadgen")
    ap.add_argument("root")
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--sizes", default="10000,100000", help="shelters per registry")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--ops", default="whoami,search,search:5,search:1,vacancy")
    ap.add_argument("--tmp", default=os.environ.get("FRISTAD_TEST_TMPDIR"))
    o = ap.parse_args()
    o.fristadd, o.loadgen, o.root = map(os.path.abspath, (o.fristadd, o.loadgen, o.root))
    o.ops = o.ops.split(",")
    print("machine: " + machine())
    b = Bench(o)
    try:
        b.start_redis()
        for shelters in map(int, o.sizes.split(",")):
            r = bulk.Redis(b.sock)
            r.call("FLUSHALL")
            r.close()
            secs = bulk.populate(b.sock, NS, shelters)
            units = 3 * shelters
            print(f"\nregistry: {shelters:,} shelters, {units:,} units in real municipalities "
                  f"(written in {secs:.1f} s)")
            first = b.start_daemon()
            b.stop_daemon()
            again = b.start_daemon()
            budget = units + 16 * 1024
            print(f"  first start, making every stored snapshot: ready in {first['wall']:.2f} s "
                  f"({first['cpu']:.2f} s CPU); {first['log']}")
            print(f"  start from stored snapshots: ready in {again['wall']:.2f} s "
                  f"({again['cpu']:.2f} s CPU); {again['log']}")
            print(f"  fristadd RSS at ready {again['rss'] / 1024:.1f} MiB, peak "
                  f"{again['peak'] / 1024:.1f} MiB (budget {budget / 1024:.1f} MiB: 1 KiB per "
                  f"unit + 16 MiB)")
            rounds = b.measure()
            pid = b.daemon.pid
            print(f"  after the runs: fristadd RSS {mem_kib(pid, 'VmRSS') / 1024:.1f} MiB, peak "
                  f"{mem_kib(pid, 'VmHWM') / 1024:.1f} MiB; redis-server RSS "
                  f"{mem_kib(b.redis.pid, 'VmRSS') / 1024:.1f} MiB")
            report(rounds, o.ops)
            b.stop_daemon()
        print(f"\nload average {os.getloadavg()[0]:.1f} at the end")
    finally:
        b.close()


if __name__ == "__main__":
    main()
