"""Shared pieces of the load tests (test_load.py, and test_million.py in the long run): what two
daemons answer, the figures of a load, and writes through one daemon while another loads."""

import hashlib
import random
import threading
import time

import fristad_proto
from conftest import SOURCE_ROOT, strip_volatile

WRITERS = ["b1", "b2", "b3", "b4", "b5", "b6"]  # shelters whose staff write during a load


def library_tag():
    """What the daemon's stored snapshots begin with (daemon/embed.py)."""
    return hashlib.sha1((SOURCE_ROOT / "daemon/fristad.lua").read_bytes()).hexdigest()[:16]


def shows(conn, shelters):
    """What a daemon shows of each shelter, through a protocol connection (fristad_proto)."""
    return {s: strip_volatile(conn.call("shelter.show", {"shelter": s})["shelter"])
            for s in shelters}


def searches(cli):
    out = []
    for home, risk in (("0180", "low"), ("1480", "high"), ("2580", "severe"), ("0380", "moderate")):
        r = cli.ok("search", "--from", home, "--risk", risk, "--limit", "30", "--child", "9f")
        out.append(strip_volatile(r))
    return out


def load_figures(daemon):
    for line in daemon.log_text().splitlines():
        if "index: loaded" in line:
            print("  " + line.split(": ", 1)[1])


def redis_figures(redis, label):
    """Prints how long Redis took per call of each command, and its slowest calls; resets."""
    entries = redis.call("SLOWLOG", "GET", "-1")
    stats = redis.call("INFO", "commandstats").decode()
    per_call = {}
    for line in stats.splitlines():
        name, _, fields = line.partition(":")
        if name.startswith("cmdstat_") and "usec_per_call=" in fields:
            per_call[name[8:]] = float(fields.split("usec_per_call=")[1].split(",")[0])
    avg = ", ".join(f"{c} {per_call[c] / 1000:.2f} ms" for c in ("sscan", "mget", "fcall")
                    if c in per_call)
    worst = max(entries, key=lambda e: e[2], default=None)
    print(f"  {label}: on average {avg}; {len(entries)} calls over 2 ms" +
          (f", the slowest {worst[2] / 1000:.1f} ms "
           f"({b' '.join(worst[3][:2]).decode(errors='replace')})" if worst else ""))
    redis.call("SLOWLOG", "RESET")
    redis.call("CONFIG", "RESETSTAT")


def watch_redis(redis):
    """Records every Redis call over 2 ms from now on, and the time of every call."""
    redis.call("CONFIG", "SET", "slowlog-log-slower-than", "2000")
    redis.call("CONFIG", "SET", "slowlog-max-len", "100000")
    redis.call("SLOWLOG", "RESET")
    redis.call("CONFIG", "RESETSTAT")


class Writer:
    """Vacancy changes by the staff of WRITERS and protection changes by an admin, through one
    daemon, in a thread, until stopped. Counts the writes answered while `loading` is set."""

    def __init__(self, env, shelters):
        self.conns = {s: env.connect("shelter", s) for s in WRITERS}
        self.admin = env.connect("admin", "ops-anna")
        self.shelters = shelters
        self.written, self.failures, self.during, self.latencies = set(), [], 0, []
        self.stop = threading.Event()
        self.loading = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        rnd = random.Random(7)
        while not self.stop.is_set():
            sid = rnd.choice(WRITERS)
            t = time.monotonic()
            try:
                if rnd.random() < 0.8:
                    self.conns[sid].call("vacancy.set", {
                        "shelter": sid, "unit": f"u{rnd.randint(1, 3)}",
                        "state": rnd.choice(["free", "occupied"])})
                    self.written.add(sid)
                else:
                    target = f"b{rnd.randint(200, self.shelters - 1)}"
                    self.admin.call("shelter.update", {"shelter": target,
                                                       "protection": rnd.randint(1, 3)})
                    self.written.add(target)
                if self.loading.is_set():
                    self.during += 1
                    self.latencies.append(time.monotonic() - t)
            except fristad_proto.ServerError as e:
                self.failures.append(f"{e.code}: {e.message}")

    def start(self):
        self.thread.start()

    def finish(self):
        self.stop.set()
        self.thread.join(60)

    def report(self):
        slowest = max(self.latencies, default=0) * 1000
        print(f"  {self.during} writes answered through the other daemon during the load "
              f"(the slowest in {slowest:.0f} ms), {len(self.failures)} refused")
