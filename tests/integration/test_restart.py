"""Durability across restarts: Redis is the source of truth, the daemon's index is rebuilt from
it, and an acknowledged write survives a restart of either."""

import pytest

from conftest import wait_for

SHELTERS = ["frida-sthlm", "vasby-jour", "hamnen-gbg", "malmo-kris", "lulea-jour"]


@pytest.fixture
def populated(env):
    """Registrations, updates, vacancy changes, a confirmation, a removal and a retirement."""
    env.add_shelter("frida-sthlm", "Kvinnojouren Frida", municipality="0180", protection=2,
                    phone="08-555 010 10", groups=["women", "youth"], max_children=4,
                    boys_max_age=12, languages=["sv", "en", "ar"])
    env.add_unit("frida-sthlm", "r1", 2)
    env.add_unit("frida-sthlm", "r2", 4, accessible=True)
    env.add_unit("frida-sthlm", "r3", 1)
    env.add_shelter("vasby-jour", "Väsby kvinnojour", municipality="0114", phone="08-590 111 22")
    env.add_unit("vasby-jour", "a", 3)
    env.add_shelter("hamnen-gbg", "Skyddat boende Hamnen", kind="skyddat_boende",
                    operator="kommunal", ivo_registered=True,
                    municipality="1480", protection=3, phone="+46 31 700 00 00",
                    groups=["women", "hbtqi"], pets=True, substance=True)
    env.add_unit("hamnen-gbg", "lgh1", 5, accessible=True)
    env.add_unit("hamnen-gbg", "lgh2", 2)
    env.add_shelter("malmo-kris", "Kriscentrum Malmö", kind="kriscentrum", municipality="1280",
                    phone="040-34 50 00", groups=["men"])
    env.add_unit("malmo-kris", "k1", 1)
    env.add_shelter("lulea-jour", "Luleå kvinnojour", municipality="2580", protection=2,
                    phone="0920-100 00")
    env.add_unit("lulea-jour", "u1", 2)

    env.admin.ok("shelter", "update", "vasby-jour", "--name", "Väsby jour", "--protection", 2,
                 "--pets")
    env.admin.ok("unit", "update", "hamnen-gbg", "lgh2", "--beds", 3)
    env.admin.ok("unit", "remove", "frida-sthlm", "r3")
    env.cli("shelter", "frida-sthlm").ok("vacancy", "frida-sthlm", "r1", "free")
    env.cli("shelter", "frida-sthlm").ok("vacancy", "frida-sthlm", "r2", "occupied")
    env.cli("shelter", "hamnen-gbg").ok("vacancy", "hamnen-gbg", "lgh1", "free")
    env.cli("shelter", "hamnen-gbg").ok("vacancy", "hamnen-gbg", "lgh2", "free")
    env.cli("shelter", "hamnen-gbg").ok("vacancy", "hamnen-gbg", "lgh2", "closed")
    env.cli("shelter", "lulea-jour").ok("vacancy", "lulea-jour", "u1", "free")
    env.cli("shelter", "lulea-jour").ok("vacancy", "confirm", "lulea-jour")
    env.cli("shelter", "malmo-kris").ok("vacancy", "malmo-kris", "k1", "free")
    env.admin.ok("shelter", "retire", "malmo-kris")
    snap = env.snapshot(SHELTERS)
    # The snapshot is what we think it is, so comparing it later means something.
    assert [(f["shelter"], f["unit"]) for f in snap["free"]["units"]] == [
        ("frida-sthlm", "r1"), ("hamnen-gbg", "lgh1"), ("lulea-jour", "u1")]
    assert snap["shelters"]["malmo-kris"]["retired"] is True
    assert [s["id"] for s in snap["list"]["shelters"]] == \
        ["vasby-jour", "frida-sthlm", "hamnen-gbg", "lulea-jour"]
    return env, snap


def test_daemon_restart_keeps_everything(populated):
    env, before = populated
    env.daemon.restart()
    assert env.daemon.starts == 2
    after = env.snapshot(SHELTERS)
    assert after == before
    # And it takes writes again, which also persist.
    env.cli("shelter", "lulea-jour").ok("vacancy", "lulea-jour", "u1", "occupied")
    env.daemon.restart()
    states = [u["state"] for u in env.show("lulea-jour")["units"]]
    assert states == ["occupied"]


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
def test_redis_restart_keeps_everything(populated, how):
    """Stop the daemon, restart Redis (a clean stop, or a crash: AOF is fsynced on every
    write), start the daemon: the index it loads is what was acknowledged before."""
    env, before = populated
    env.daemon.stop()
    env.redis.restart(kill=(how == "sigkill"))
    env.daemon.start()
    assert env.snapshot(SHELTERS) == before


def test_redis_restart_under_a_running_daemon(populated):
    env, before = populated
    env.redis.restart()
    # The daemon reconnects by itself; wait (bounded) until a write goes through. Until then
    # the only acceptable answer is `unavailable`.
    shelter = env.cli("shelter", "vasby-jour")

    def written():
        r = shelter("vacancy", "vasby-jour", "a", "free")
        if r.exit == 0:
            return True
        r.refused("unavailable")
        return False

    wait_for(written, 20, "writes to work again after Redis came back", interval=0.2)
    after = env.snapshot(SHELTERS)
    for sid in SHELTERS:
        if sid != "vasby-jour":
            assert after["shelters"][sid] == before["shelters"][sid], sid
    v_before, v_after = before["shelters"]["vasby-jour"], after["shelters"]["vasby-jour"]
    assert v_after["units"] == [dict(v_before["units"][0], state="free")]
    assert v_after["updated_at"] > v_before["updated_at"]
    same = {k: v for k, v in v_before.items() if k not in ("units", "updated_at")}
    assert {k: v_after[k] for k in same} == same
    # Restart the daemon too: the write made after the Redis restart is there.
    env.daemon.restart()
    assert env.snapshot(SHELTERS) == after


def test_sigterm_with_open_connections_exits_cleanly(populated):
    env, _ = populated
    idle = env.connect("social", "0180")
    busy = env.connect("admin", "ops-anna")
    assert busy.call("whoami")["role"] == "admin"
    for _ in range(20):
        busy.send("shelter.list")
    env.daemon.stop()  # asserts exit status 0 within the bound
    # Both connections are closed by the daemon, not left hanging.
    idle.wait_closed(timeout=5)
    busy.wait_closed(timeout=5)
    env.daemon.start()
    assert env.show("frida-sthlm")["units"][0]["state"] == "free"
