"""Loading a large registry. A starting daemon reads every shelter's stored snapshot a page at a
time; one that is missing, stored by another version of the library, or unreadable is made
anew; meanwhile another daemon's writes are served (never "unavailable", never BUSY), and once
ready both daemons answer alike, including for what was written during the load. The load time
and Redis's slowest commands are printed as figures, not asserted."""

import hashlib
import random
import threading
import time

import bulk
import fristad_proto
from conftest import READY_WAIT, SOURCE_ROOT, strip_volatile, wait_for
from referrals import SecondDaemon

SHELTERS = 20000
WRITERS = ["b1", "b2", "b3", "b4", "b5", "b6"]  # shelters whose staff write during the load


def library_tag():
    """What the daemon's stored snapshots begin with (daemon/embed.py)."""
    return hashlib.sha1((SOURCE_ROOT / "daemon/fristad.lua").read_bytes()).hexdigest()[:16]


def shows(daemon_cli, shelters):
    return {s: strip_volatile(daemon_cli.ok("shelter", "show", s)["shelter"]) for s in shelters}


def searches(cli):
    out = []
    for home, risk in (("0180", "low"), ("1480", "high"), ("2580", "severe"), ("0380", "moderate")):
        r = cli.ok("search", "--from", home, "--risk", risk, "--limit", "30", "--child", "9f")
        out.append(strip_volatile(r))
    return out


def load_figures(daemon):
    for line in daemon.log_text().splitlines():
        if "index: loaded" in line:
            print("\n  " + line.split(": ", 1)[1])


def slowest(redis, label):
    """Prints how long Redis took per call of each command, and its slowest calls."""
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


def test_load_while_another_daemon_serves_writes(env_unstarted):
    env = env_unstarted
    env.redis.start()
    ns = env.daemon.namespace
    seconds = bulk.populate(env.redis.sock, ns, SHELTERS)
    print(f"\n  {SHELTERS} shelters, {3 * SHELTERS} units written in {seconds:.1f} s")
    r = bulk.Redis(env.redis.sock)
    r.call("CONFIG", "SET", "slowlog-log-slower-than", "2000")
    r.call("CONFIG", "SET", "slowlog-max-len", "100000")
    r.call("SLOWLOG", "RESET")
    r.call("CONFIG", "RESETSTAT")

    # The first daemon finds no stored snapshots: it makes every one of them.
    env.daemon.start()
    load_figures(env.daemon)
    slowest(r, "first load")
    admin = env.admin
    assert f"index: loaded {SHELTERS} shelters" in env.daemon.log_text()

    # A snapshot stored by another library, one that cannot be read, and one that is missing:
    # a daemon that loads now makes those three anew and reads the rest as stored.
    snap = "{%s}:snap:" % ns
    r.call("SET", snap + "b100", b"0123456789abcdef" + r.call("GET", snap + "b100")[16:])
    r.call("SET", snap + "b101", library_tag().encode() + b"\xc1 not a snapshot")
    r.call("DEL", snap + "b102")
    two = SecondDaemon(env, "second")
    try:
        two.start()
        load_figures(two.daemon)
        odd = ["b100", "b101", "b102", "b103"]
        assert shows(two.admin, odd) == shows(admin, odd)
        assert "3 snapshots made anew" in two.daemon.log_text()
        assert searches(two.cli("social", "0180")) == searches(env.cli("social", "0180"))
    finally:
        problems = two.close()
    assert not problems, problems

    # Every snapshot gone again: a third daemon's load takes a while, and the first daemon
    # serves writes all along.
    bulk.drop_snapshots(env.redis.sock, ns)
    r.call("SLOWLOG", "RESET")
    r.call("CONFIG", "RESETSTAT")
    conns = {s: env.connect("shelter", s) for s in WRITERS}
    admin_conn = env.connect(*("admin", "ops-anna"))
    written, failures, during = set(), [], []
    stop = threading.Event()
    loading = threading.Event()

    def write():
        rnd = random.Random(7)
        while not stop.is_set():
            sid = rnd.choice(WRITERS)
            try:
                if rnd.random() < 0.8:
                    conns[sid].call("vacancy.set", {"shelter": sid, "unit": f"u{rnd.randint(1, 3)}",
                                                    "state": rnd.choice(["free", "occupied"])})
                    written.add(sid)
                else:
                    target = f"b{rnd.randint(200, SHELTERS - 1)}"
                    admin_conn.call("shelter.update", {"shelter": target,
                                                       "protection": rnd.randint(1, 3)})
                    written.add(target)
                if loading.is_set():
                    during.append(time.monotonic())
            except fristad_proto.ServerError as e:
                failures.append(f"{e.code}: {e.message}")

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    three = SecondDaemon(env, "third")
    try:
        loading.set()
        three.daemon.spawn()
        three.daemon.wait_ready(READY_WAIT * 3)
        loading.clear()
        stop.set()
        writer.join(30)
        load_figures(three.daemon)
        slowest(r, "load while writes are served")
        print(f"  {len(during)} writes answered through the other daemon during the load, "
              f"{len(failures)} refused")
        assert not failures, failures[:5]
        assert during, "no write was answered while the third daemon loaded"
        touched = sorted(written)

        def alike():
            return shows(three.admin, touched) == shows(admin, touched)

        wait_for(alike, 10, "the loaded daemon to answer as the one that served the writes")
        assert searches(three.cli("social", "0180")) == searches(env.cli("social", "0180"))
    finally:
        stop.set()
        problems = three.close()
        r.close()
    assert not problems, problems
