"""Two daemons on one Redis: each one's index follows the writes made through the other
(registrations, vacancies, holds, placements, expiries), and a daemon started later loads
everything that happened before it."""

import signal

import pytest

from conftest import shelter_args, strip_volatile, wait_for, LOW_RISK
from referrals import (free_units, hits, redis_command, second,  # noqa: F401 - fixture
                       second_unstarted, unit_states)

FOLLOW_WAIT = 10.0


def view(admin, shelters):
    """What one daemon's index answers: the shelters, the list and the free units."""
    return strip_volatile({
        "shelters": {s: admin.ok("shelter", "show", s)["shelter"] for s in shelters},
        "list": admin.ok("shelter", "list"),
        "free": admin.ok("free"),
    })


def wait_same(first_admin, second_admin, shelters, timeout=FOLLOW_WAIT):
    """Waits (bounded) until the second daemon answers as the first; returns the view."""
    last = {}

    def same():
        last["first"] = view(first_admin, shelters)
        last["second"] = view(second_admin, shelters)
        return last["second"] if last["second"] == last["first"] else None

    return wait_for(same, timeout, "the second daemon to answer as the first",
                    detail=lambda: f"first: {last['first']}\nsecond: {last['second']}")


def search(cli, *extra):
    return hits(cli.ok("search", "--from", "0180", "--risk", "low", *map(str, extra)))


@pytest.fixture
def pair(env, second):
    return env, second


def test_second_follows_registrations_and_vacancies(pair):
    env, two = pair
    a1, a2 = env.admin, two.admin
    assert a2.ok("shelter", "list")["shelters"] == []

    env.add_shelter("frida-sthlm", "Kvinnojouren Frida", municipality="0180", protection=2,
                    phone="08-555 010 10", groups=["women", "youth"], max_children=3,
                    boys_max_age=12, languages=["sv", "en"])
    env.add_unit("frida-sthlm", "r1", 2)
    env.add_unit("frida-sthlm", "r2", 4, accessible=True)
    wait_same(a1, a2, ["frida-sthlm"])
    s2 = a2.ok("shelter", "show", "frida-sthlm")["shelter"]
    assert s2["name"] == "Kvinnojouren Frida" and s2["boys_max_age"] == 12
    assert [u["id"] for u in s2["units"]] == ["r1", "r2"]

    frida = env.cli("shelter", "frida-sthlm")
    frida.ok("vacancy", "frida-sthlm", "r1", "free")
    social2 = two.cli("social", "0180")
    wait_for(lambda: search(social2) == [("frida-sthlm", "r1")], FOLLOW_WAIT,
             "the second daemon to offer r1")
    frida.ok("vacancy", "frida-sthlm", "r2", "free")
    wait_same(a1, a2, ["frida-sthlm"])
    assert search(social2, "--wheelchair") == [("frida-sthlm", "r2")]

    # Changes to the registry: a different protection level, a new shelter, a removed unit.
    def high_from_gbg():
        return hits(social2.ok("search", "--from", "1480", "--risk", "high"))

    assert high_from_gbg() == [("frida-sthlm", "r1"), ("frida-sthlm", "r2")]
    a1.ok("shelter", "update", "frida-sthlm", "--protection", 1, "--name", "Frida jour")
    wait_for(lambda: high_from_gbg() == [], FOLLOW_WAIT,
             "the second daemon to see the lower protection level")
    a1.ok("shelter", "add", *shelter_args("hamnen-gbg", "Hamnen", municipality="1480",
                                          protection=3, phone="031-700 00 00"))
    env.add_unit("hamnen-gbg", "lgh1", 3)
    env.cli("shelter", "hamnen-gbg").ok("vacancy", "hamnen-gbg", "lgh1", "free")
    a1.ok("unit", "remove", "frida-sthlm", "r1")
    view2 = wait_same(a1, a2, ["frida-sthlm", "hamnen-gbg"])
    assert view2["shelters"]["frida-sthlm"]["name"] == "Frida jour"
    assert [(f["shelter"], f["unit"]) for f in view2["free"]["units"]] == \
        [("frida-sthlm", "r2"), ("hamnen-gbg", "lgh1")]

    # Pause, resume and retire.
    env.cli("shelter", "hamnen-gbg").ok("intake", "pause", "hamnen-gbg")
    wait_for(lambda: free_units(a2) == [("frida-sthlm", "r2")], FOLLOW_WAIT,
             "the second daemon to leave out the paused shelter")
    env.cli("shelter", "hamnen-gbg").ok("intake", "resume", "hamnen-gbg")
    wait_same(a1, a2, ["frida-sthlm", "hamnen-gbg"])
    a1.ok("shelter", "retire", "hamnen-gbg")
    view2 = wait_same(a1, a2, ["frida-sthlm", "hamnen-gbg"])
    assert [s["id"] for s in view2["list"]["shelters"]] == ["frida-sthlm"]
    assert view2["shelters"]["hamnen-gbg"]["retired"] is True

    # And the other way round: writes through the second daemon reach the first.
    two.cli("shelter", "frida-sthlm").ok("vacancy", "frida-sthlm", "r2", "closed")
    two.admin.ok("unit", "add", "frida-sthlm", "r3", "--beds", 1)
    view1 = wait_same(a2, a1, ["frida-sthlm", "hamnen-gbg"])
    assert unit_states(view1["shelters"]["frida-sthlm"]) == \
        {"r2": ("closed", False), "r3": ("closed", False)}


def test_second_follows_holds_and_placements(pair):
    env, two = pair
    env.add_shelter("frida-sthlm", "Kvinnojouren Frida", municipality="0180",
                    phone="08-555 010 10")
    for uid in ("r1", "r2"):
        env.add_unit("frida-sthlm", uid, 2)
        env.cli("shelter", "frida-sthlm").ok("vacancy", "frida-sthlm", uid, "free")
    a1, a2 = env.admin, two.admin
    wait_same(a1, a2, ["frida-sthlm"])
    social1, social2 = env.cli("social", "0180"), two.cli("social", "0180")
    frida1, frida2 = env.cli("shelter", "frida-sthlm"), two.cli("shelter", "frida-sthlm")

    h = social1.ok("hold", "frida-sthlm", "r1", *LOW_RISK, "--ref", "ARENDE-1")
    # The second daemon refuses a second hold at once: Redis decides, not its index.
    social2("hold", "frida-sthlm", "r1", *LOW_RISK, "--ref", "ARENDE-2").refused("conflict")
    wait_for(lambda: search(social2) == [("frida-sthlm", "r2")], FOLLOW_WAIT,
             "the second daemon to stop offering the held unit")
    assert unit_states(a2.ok("shelter", "show", "frida-sthlm")["shelter"])["r1"] == \
        ("free", True)
    # Lists come from the store, so they agree at once.
    assert [x["hold"] for x in social2.ok("holds")["holds"]] == [h["hold"]]

    # Confirmed through the second daemon: the first sees the unit occupied.
    pid = frida2.ok("confirm", h["hold"])["placement"]["placement"]
    wait_for(lambda: unit_states(a1.ok("shelter", "show", "frida-sthlm")["shelter"])["r1"] ==
             ("occupied", False), FOLLOW_WAIT, "the first daemon to see the placement")
    assert [p["placement"] for p in social1.ok("placements")["placements"]] == [pid]

    h2 = social2.ok("hold", "frida-sthlm", "r2", *LOW_RISK, "--ref", "ARENDE-3")
    wait_for(lambda: search(social1) == [], FOLLOW_WAIT,
             "the first daemon to see the second hold")
    social1.ok("release", h2["hold"])
    wait_for(lambda: search(social2) == [("frida-sthlm", "r2")], FOLLOW_WAIT,
             "the second daemon to see the release")

    frida1.ok("discharge", pid)
    wait_for(lambda: search(social2) == [("frida-sthlm", "r1"), ("frida-sthlm", "r2")],
             FOLLOW_WAIT, "the second daemon to see the discharge")
    wait_same(a1, a2, ["frida-sthlm"])


@pytest.mark.daemon_config({"holds": {"ttl": "2s", "sweep_interval": "100ms"}})
def test_both_see_an_expiry(pair):
    env, two = pair
    env.add_shelter("frida-sthlm", "Kvinnojouren Frida", municipality="0180",
                    phone="08-555 010 10")
    env.add_unit("frida-sthlm", "r1", 2)
    env.cli("shelter", "frida-sthlm").ok("vacancy", "frida-sthlm", "r1", "free")
    wait_same(env.admin, two.admin, ["frida-sthlm"])
    h = two.cli("oncall", "jour-natt").ok("hold", "frida-sthlm", "r1", *LOW_RISK, "--ref", "NATT-1")
    assert free_units(two.admin) == []
    wait_for(lambda: free_units(env.admin) == [], FOLLOW_WAIT, "the first daemon to see the hold")
    for admin in (env.admin, two.admin):
        wait_for(lambda: free_units(admin) == [("frida-sthlm", "r1")], 10,
                 "both daemons to see the unit free after the hold expired")
    states = {x["hold"]: x["state"] for x in env.cli("oncall", "x").ok("holds")["holds"]}
    assert states == {h["hold"]: "expired"}


def test_daemon_started_later_loads_everything(env, second_unstarted):
    env.add_shelter("frida-sthlm", "Kvinnojouren Frida", municipality="0180", protection=2,
                    phone="08-555 010 10", languages=["sv", "fi"], pets=True)
    for uid, beds in (("r1", 2), ("r2", 3), ("r3", 4), ("r4", 5)):
        env.add_unit("frida-sthlm", uid, beds, accessible=(beds == 4))
        env.cli("shelter", "frida-sthlm").ok("vacancy", "frida-sthlm", uid, "free")
    env.add_shelter("hamnen-gbg", "Hamnen", municipality="1480", protection=3,
                    phone="031-700 00 00")
    env.add_unit("hamnen-gbg", "lgh1", 3)
    env.cli("shelter", "hamnen-gbg").ok("vacancy", "hamnen-gbg", "lgh1", "free")
    env.cli("shelter", "hamnen-gbg").ok("intake", "pause", "hamnen-gbg")
    env.add_shelter("gammal", "Gammal jour", municipality="2580", phone="0920-100 00")
    env.admin.ok("shelter", "retire", "gammal")
    social = env.cli("social", "0180")
    frida = env.cli("shelter", "frida-sthlm")
    held = social.ok("hold", "frida-sthlm", "r1", *LOW_RISK, "--ref", "A-1")["hold"]
    placed = social.ok("hold", "frida-sthlm", "r2", *LOW_RISK, "--ref", "A-2")["hold"]
    pid = frida.ok("confirm", placed)["placement"]["placement"]
    frida.ok("vacancy", "frida-sthlm", "r4", "closed")

    shelters = ["frida-sthlm", "hamnen-gbg", "gammal"]
    before = view(env.admin, shelters)
    assert [(f["shelter"], f["unit"]) for f in before["free"]["units"]] == \
        [("frida-sthlm", "r3")]

    two = second_unstarted.start()
    # Ready means loaded: the first answers already agree, without waiting.
    assert view(two.admin, shelters) == before
    social2 = two.cli("social", "0180")
    assert search(social2) == [("frida-sthlm", "r3")]
    assert search(social2, "--language", "fi", "--pets", "--wheelchair") == \
        [("frida-sthlm", "r3")]
    assert [x["hold"] for x in social2.ok("holds")["holds"]] == [placed, held]
    assert [p["placement"] for p in social2.ok("placements")["placements"]] == [pid]
    two.cli("social", "1480")("hold", "frida-sthlm", "r1", *LOW_RISK, "--ref", "B-1").refused("conflict")
    two.cli("social", "1480")("hold", "hamnen-gbg", "lgh1", *LOW_RISK, "--ref", "B-2").refused("conflict")


def test_second_follows_after_redis_restart(pair):
    """Redis goes away and comes back: both daemons resubscribe, and the second one catches up
    with writes made through the first after the restart."""
    env, two = pair
    env.add_shelter("frida-sthlm", "Kvinnojouren Frida", municipality="0180",
                    phone="08-555 010 10")
    env.add_unit("frida-sthlm", "r1", 2)
    env.add_unit("frida-sthlm", "r2", 2)
    wait_same(env.admin, two.admin, ["frida-sthlm"])

    env.redis.restart(kill=True)
    frida = env.cli("shelter", "frida-sthlm")

    def written():
        r = frida("vacancy", "frida-sthlm", "r1", "free")
        if r.exit == 0:
            return True
        r.refused("unavailable")
        return False

    wait_for(written, 20, "writes to work again after Redis came back", interval=0.2)
    frida.ok("vacancy", "frida-sthlm", "r2", "free")
    env.cli("social", "0180").ok("hold", "frida-sthlm", "r2", *LOW_RISK, "--ref", "EFTER-1")
    view2 = wait_same(env.admin, two.admin, ["frida-sthlm"], timeout=20)
    assert unit_states(view2["shelters"]["frida-sthlm"]) == \
        {"r1": ("free", False), "r2": ("free", True)}


def test_second_catches_up_after_a_stall(pair):
    """A daemon that stops reading for a while (SIGSTOP) catches up on everything it missed."""
    env, two = pair
    env.add_shelter("frida-sthlm", "Kvinnojouren Frida", municipality="0180",
                    phone="08-555 010 10")
    env.add_unit("frida-sthlm", "r1", 2)
    wait_same(env.admin, two.admin, ["frida-sthlm"])
    two.daemon.proc.send_signal(signal.SIGSTOP)
    try:
        frida = env.cli("shelter", "frida-sthlm")
        for i in range(2, 12):
            env.add_unit("frida-sthlm", f"r{i}", 2)
            frida.ok("vacancy", "frida-sthlm", f"r{i}", "free")
        env.cli("social", "0180").ok("hold", "frida-sthlm", "r5", *LOW_RISK, "--ref", "STALL-1")
    finally:
        two.daemon.proc.send_signal(signal.SIGCONT)
    got = wait_same(env.admin, two.admin, ["frida-sthlm"])
    assert len(got["free"]["units"]) == 9


def test_second_reloads_after_losing_its_subscription(pair):
    """The change events are fire-and-forget: a daemon whose subscription is cut misses those
    sent meanwhile, and must notice and reload rather than serve an old picture."""
    env, two = pair
    env.add_shelter("frida-sthlm", "Kvinnojouren Frida", municipality="0180",
                    phone="08-555 010 10")
    env.add_unit("frida-sthlm", "r1", 2)
    env.add_unit("frida-sthlm", "r2", 2)
    wait_same(env.admin, two.admin, ["frida-sthlm"])
    frida = env.cli("shelter", "frida-sthlm")
    for round_ in range(3):
        reply = redis_command(env.redis.sock, "CLIENT", "KILL", "TYPE", "pubsub")
        assert reply.startswith(":") and int(reply[1:]) >= 1, reply
        state = "free" if round_ % 2 == 0 else "occupied"
        frida.ok("vacancy", "frida-sthlm", "r1", state)
        env.admin.ok("unit", "update", "frida-sthlm", "r2", "--beds", 3 + round_)
        got = wait_same(env.admin, two.admin, ["frida-sthlm"])
        assert unit_states(got["shelters"]["frida-sthlm"])["r1"] == (state, False)
        assert got["shelters"]["frida-sthlm"]["units"][1]["beds"] == 3 + round_
