"""Redis goes away while the daemon runs: writes are refused promptly with `unavailable` (and
nothing is done), reads keep answering from memory, and when Redis is back writes work again
and nothing acknowledged before the outage is lost."""

import time

import pytest

from conftest import shelter_args, wait_for

SHELTERS = ["frida-sthlm", "hamnen-gbg", "lulea-jour"]
PROMPT = 2.0  # seconds within which a write must be refused while Redis is down


@pytest.fixture
def before_outage(env):
    env.add_shelter("frida-sthlm", "Kvinnojouren Frida", municipality="0180", protection=2,
                    phone="08-555 010 10")
    env.add_unit("frida-sthlm", "r1", 2)
    env.add_unit("frida-sthlm", "r2", 4)
    env.add_shelter("hamnen-gbg", "Skyddat boende Hamnen", kind="skyddat_boende",
                    operator="kommunal", ivo_registered=True,
                    municipality="1480", protection=3, phone="031-700 00 00")
    env.add_unit("hamnen-gbg", "lgh1", 5)
    env.add_shelter("lulea-jour", "Luleå kvinnojour", municipality="2580", phone="0920-100 00")
    env.add_unit("lulea-jour", "u1", 2)
    env.cli("shelter", "frida-sthlm").ok("vacancy", "frida-sthlm", "r1", "free")
    env.cli("shelter", "hamnen-gbg").ok("vacancy", "hamnen-gbg", "lgh1", "free")
    env.cli("shelter", "lulea-jour").ok("vacancy", "lulea-jour", "u1", "occupied")
    snap = env.snapshot(SHELTERS)
    assert len(snap["free"]["units"]) == 2
    return env, snap


def without_phone(snap):
    out = dict(snap)
    out["shelters"] = {k: {f: v for f, v in s.items() if f != "phone"}
                       for k, s in snap["shelters"].items()}
    return out


def wait_writable(env, shelter, unit, state, timeout=20):
    """Retries one vacancy change until it succeeds; every refusal meanwhile must be
    `unavailable` and prompt. Returns how long it took."""
    who = env.cli("shelter", shelter)

    def written():
        r = who("vacancy", shelter, unit, state)
        if r.exit == 0:
            return True
        r.refused("unavailable")
        assert r.elapsed < PROMPT + 1, r.describe()
        return False

    t0 = time.monotonic()
    wait_for(written, timeout, "writes to work again after Redis came back", interval=0.2)
    return time.monotonic() - t0


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
def test_outage_and_recovery(before_outage, how):
    env, before = before_outage
    # A connection made before the outage must survive it.
    conn = env.connect("shelter", "frida-sthlm")
    assert conn.call("whoami")["id"] == "frida-sthlm"

    env.redis.stop(kill=(how == "sigkill"))

    # Writes: refused with `unavailable`, promptly, through the client ...
    frida = env.cli("shelter", "frida-sthlm")
    r = frida("vacancy", "frida-sthlm", "r2", "free")
    r.refused("unavailable")
    assert r.elapsed < PROMPT + 1, r.describe()
    r = env.admin("shelter", "add", *shelter_args("ny-jour", "Ny jour", municipality="0180"))
    r.refused("unavailable")
    r = env.cli("shelter", "lulea-jour")("vacancy", "confirm", "lulea-jour")
    r.refused("unavailable")
    # ... and on the open connection, timed without process start-up.
    for _ in range(3):
        t0 = time.monotonic()
        ok, err = conn.request("vacancy.set", {"shelter": "frida-sthlm", "unit": "r1",
                                               "state": "occupied"}, timeout=PROMPT + 3)
        assert not ok and err["code"] == "unavailable", err
        assert time.monotonic() - t0 < PROMPT

    # Reads answer from memory, unchanged, except that the intake phone is withheld: its
    # disclosure could not be audited while the store is down.
    during = env.snapshot(SHELTERS)
    assert all("phone" not in s for s in during["shelters"].values())
    assert during == without_phone(before)
    for role, ident in (("social", "0180"), ("oncall", "socialjouren-sthlm")):
        who = env.cli(role, ident)
        free = who.ok("free")["units"]
        assert [(f["shelter"], f["unit"]) for f in free] == \
            [("frida-sthlm", "r1"), ("hamnen-gbg", "lgh1")]
        assert len(who.ok("shelter", "list")["shelters"]) == 3
        assert who.ok("shelter", "show", "lulea-jour")["shelter"]["units"][0]["state"] == \
            "occupied"

    env.redis.start()
    took = wait_writable(env, "frida-sthlm", "r2", "free")
    assert took < 20

    # Nothing acknowledged before the outage was lost; nothing refused during it happened.
    after = env.snapshot(SHELTERS)
    frida_after = after["shelters"]["frida-sthlm"]
    assert [(u["id"], u["state"]) for u in frida_after["units"]] == \
        [("r1", "free"), ("r2", "free")]
    for sid in ("hamnen-gbg", "lulea-jour"):
        assert after["shelters"][sid] == before["shelters"][sid], sid
    env.admin("shelter", "show", "ny-jour").refused("not_found")

    # The connection from before the outage works again too.
    ok, res = conn.request("vacancy.set", {"shelter": "frida-sthlm", "unit": "r2",
                                           "state": "occupied"})
    assert ok, res
    # And a daemon restart shows the same state: the writes after recovery are in Redis.
    expected = env.snapshot(SHELTERS)
    env.daemon.restart()
    assert env.snapshot(SHELTERS) == expected


def test_daemon_not_ready_without_redis(env_unstarted):
    """The daemon is ready only once it has loaded its index from Redis: without Redis it
    must not claim readiness. It may wait for Redis or exit with an error."""
    env = env_unstarted
    d = env.daemon
    d.spawn()
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and d.running:
        assert not d.ready_match(), "fristadd said it was ready with no Redis to load from"
        time.sleep(0.1)
    env.redis.start()
    if d.running:
        d.wait_ready()
    else:
        assert d.proc.returncode != 0, "fristadd exited with status 0 without Redis"
        d.start()
    env.add_shelter("frida-sthlm", "Kvinnojouren Frida", phone="08-555 010 10")
    assert env.show("frida-sthlm")["units"] == []


def test_repeated_outages(before_outage):
    env, before = before_outage
    for i in range(3):
        snap = env.snapshot(SHELTERS)
        env.redis.stop(kill=bool(i % 2))
        env.cli("shelter", "hamnen-gbg")("vacancy", "hamnen-gbg", "lgh1", "occupied") \
            .refused("unavailable")
        assert env.snapshot(SHELTERS) == without_phone(snap)
        env.redis.start()
        wait_writable(env, "lulea-jour", "u1", "occupied")
    # The refused writes never happened.
    assert env.snapshot(SHELTERS)["shelters"]["hamnen-gbg"] == before["shelters"]["hamnen-gbg"]
