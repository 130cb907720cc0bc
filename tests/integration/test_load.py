"""Loading a large registry. A starting daemon reads every shelter's stored snapshot a page at a
time; one that is missing, stored by another version of the library, or unreadable is made
anew; meanwhile another daemon's writes are served (never "unavailable", never BUSY), and once
ready both daemons answer alike, including for what was written during the load. The load time
and Redis's slowest commands are printed as figures, not asserted."""

import bulk
from conftest import READY_WAIT, wait_for
from loading import (Writer, library_tag, load_figures, redis_figures, searches, shows,
                     watch_redis)
from referrals import SecondDaemon

SHELTERS = 20000


def test_load_while_another_daemon_serves_writes(env_unstarted):
    env = env_unstarted
    env.redis.start()
    ns = env.daemon.namespace
    seconds = bulk.populate(env.redis.sock, ns, SHELTERS)
    print(f"\n  {SHELTERS} shelters, {3 * SHELTERS} units written in {seconds:.1f} s")
    r = bulk.Redis(env.redis.sock)
    watch_redis(r)

    # The first daemon finds no stored snapshots: it makes every one of them.
    env.daemon.start()
    load_figures(env.daemon)
    redis_figures(r, "first load")
    admin = env.connect("admin", "ops-anna")
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
        assert shows(two.connect("admin", "ops-anna"), odd) == shows(admin, odd)
        assert "3 snapshots made anew" in two.daemon.log_text()
        assert searches(two.cli("social", "0180")) == searches(env.cli("social", "0180"))
    finally:
        problems = two.close()
    assert not problems, problems

    # Every snapshot gone again: a third daemon's load takes a while, and the first daemon
    # serves writes all along.
    bulk.drop_snapshots(env.redis.sock, ns)
    watch_redis(r)
    writer = Writer(env, SHELTERS)
    writer.start()
    three = SecondDaemon(env, "third")
    try:
        writer.loading.set()
        three.daemon.spawn()
        three.daemon.wait_ready(READY_WAIT * 3)
        writer.loading.clear()
        writer.finish()
        load_figures(three.daemon)
        redis_figures(r, "load while writes are served")
        writer.report()
        assert not writer.failures, writer.failures[:5]
        assert writer.during, "no write was answered while the third daemon loaded"
        touched = sorted(writer.written)
        three_admin = three.connect("admin", "ops-anna")
        wait_for(lambda: shows(three_admin, touched) == shows(admin, touched), 10,
                 "the loaded daemon to answer as the one that served the writes")
        assert searches(three.cli("social", "0180")) == searches(env.cli("social", "0180"))
    finally:
        writer.finish()
        problems = three.close()
        r.close()
    assert not problems, problems
