"""A million shelters (long run only): the registry of Sweden many times over, three million units.
The first daemon to start makes every stored snapshot and becomes ready; a second daemon then
loads all of them while the first serves writes, none of which is refused or answered BUSY;
once ready, the second answers as the first, what was written during its load included. Load
times, Redis's time per call and its slowest calls, and each daemon's memory against the budget
(1 KiB per unit + 16 MiB) are printed as figures, not asserted.

FRISTAD_MILLION sets the number of shelters (default 1,000,000)."""

import os
import time

import bulk
from conftest import wait_for
from loading import Writer, load_figures, redis_figures, searches, shows, watch_redis
from referrals import SecondDaemon

SHELTERS = int(os.environ.get("FRISTAD_MILLION", "1000000"))
LOAD_WAIT = 1800.0


def memory(daemon, label):
    pid = daemon.proc.pid
    status = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            status[key] = value.strip()
    budget = 3 * SHELTERS / 1024 + 16
    print(f"  {label}: RSS {int(status['VmRSS'].split()[0]) / 1024:.0f} MiB, peak "
          f"{int(status['VmHWM'].split()[0]) / 1024:.0f} MiB (budget {budget:.0f} MiB)")


def test_a_million_shelters_load_while_writes_are_served(env_unstarted, capsys):
    with capsys.disabled():
        run(env_unstarted)


def run(env):
    env.redis.start()
    ns = env.daemon.namespace
    seconds = bulk.populate(env.redis.sock, ns, SHELTERS, batch=5000)
    print(f"\n  {SHELTERS:,} shelters, {3 * SHELTERS:,} units written in {seconds:.0f} s")
    r = bulk.Redis(env.redis.sock, timeout=600)
    watch_redis(r)

    t = time.monotonic()
    env.daemon.spawn()
    env.daemon.wait_ready(LOAD_WAIT)
    print(f"  first daemon ready after {time.monotonic() - t:.1f} s")
    load_figures(env.daemon)
    redis_figures(r, "first load")
    memory(env.daemon, "first daemon at ready")
    assert f"index: loaded {SHELTERS} shelters" in env.daemon.log_text()

    writer = Writer(env, SHELTERS)
    writer.start()
    two = SecondDaemon(env, "second")
    try:
        writer.loading.set()
        t = time.monotonic()
        two.daemon.spawn()
        two.daemon.wait_ready(LOAD_WAIT)
        ready_s = time.monotonic() - t
        writer.loading.clear()
        writer.finish()
        print(f"  second daemon ready after {ready_s:.1f} s")
        load_figures(two.daemon)
        redis_figures(r, "second load, while the first serves writes")
        memory(two.daemon, "second daemon at ready")
        writer.report()
        assert f"index: loaded {SHELTERS} shelters" in two.daemon.log_text()
        assert not writer.failures, writer.failures[:5]
        assert writer.during, "no write was answered while the second daemon loaded"
        touched = sorted(writer.written)
        one_admin, two_admin = env.connect("admin", "ops-anna"), two.connect("admin", "ops-anna")
        wait_for(lambda: shows(two_admin, touched) == shows(one_admin, touched), 60,
                 "the second daemon to answer as the first")
        assert searches(two.cli("social", "0180")) == searches(env.cli("social", "0180"))
    finally:
        writer.finish()
        problems = two.close()
        r.close()
    assert not problems, problems
