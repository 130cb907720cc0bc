"""Loading a large registry. A starting daemon reads every shelter's stored snapshot a page at a
time; one that is missing, stored by another version of the library, or unreadable is made
anew; meanwhile another daemon's writes are served (never "unavailable", never BUSY), and once
ready both daemons answer alike, including for what was written during the load. The load time
and Redis's slowest commands are printed as figures, not asserted."""

import subprocess

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
    listings_come_in_pages(env, admin)

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


def listings_come_in_pages(env, admin):
    """A national registry does not fit in one reply: shelter.list, free and directory come a
    page at a time, each page naming the shelter the next one follows ("next"), and the client
    asks for every page and shows one list."""
    def order(rows, key):
        return [(r["municipality"], r[key]) for r in rows]

    pages, after = [], None
    while True:
        page = admin.call("shelter.list", {"after": after} if after else {})
        pages.append(page)
        if "next" not in page:
            break
        assert page["next"] == page["shelters"][-1]["id"]
        after = page["next"]
    listed = [s for p in pages for s in p["shelters"]]
    assert len(pages) == SHELTERS // 1000 and all(len(p["shelters"]) == 1000 for p in pages)
    assert len({s["id"] for s in listed}) == SHELTERS
    assert order(listed, "id") == sorted(order(listed, "id"))
    whole = env.admin.ok("shelter", "list")["shelters"]
    assert [s["id"] for s in whole] == [s["id"] for s in listed]
    argv = [a for a in env.admin.argv("shelter", "list") if a != "--json"]
    human = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                           env=env.cli_environ())
    assert human.returncode == 0 and len(human.stdout.splitlines()) > SHELTERS, human.stderr

    free = env.admin.ok("free")["units"]
    paged, after = [], None
    while True:
        page = admin.call("free", {"after": after} if after else {})
        paged += page["units"]
        if "next" not in page:
            break
        assert 1000 <= len(page["units"]) < 1000 + 3  # whole shelters: at most three units more
        after = page["next"]
    assert [(u["shelter"], u["unit"]) for u in free] == [(u["shelter"], u["unit"]) for u in paged]
    assert sum(s["free_units"] for s in listed) == len(free) > 1000

    first = admin.call("directory")
    assert len(first["shelters"]) == 1000 and first["next"] == first["shelters"][-1]["shelter"]
    services = env.admin.ok("export", "hsds")
    assert len(services["contents"]) == SHELTERS, list(services)[:5]

    # A cursor names a shelter the asker sees, or the listing says to start again.
    ok, err = admin.request("shelter.list", {"after": "no-such-shelter"})
    assert not ok and err["code"] == "not_found" and "start the listing again" in err["message"]
    shelter = env.connect("shelter", "b7")
    assert shelter.call("shelter.list")["shelters"][0]["id"] == "b7"
    ok, err = shelter.request("shelter.list", {"after": "b8"})
    assert not ok and err["code"] == "not_found", err
