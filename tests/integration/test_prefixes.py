"""Holds and placements by any unique start of their id: the client looks the id up among
those the principal may see, on the same connection, and names the candidates when the start
is shared."""

import pytest
from conftest import LOW_RISK


@pytest.fixture
def held(env):
    env.add_shelter("frida-sthlm", "Kvinnojouren Frida", municipality="0180")
    for unit in ("r1", "r2", "r3"):
        env.add_unit("frida-sthlm", unit, 2)
        env.cli("shelter", "frida-sthlm").ok("vacancy", "frida-sthlm", unit, "free")
    social = env.cli("social", "0180")
    holds = [social.ok("hold", "frida-sthlm", u, *LOW_RISK, "--ref", f"KS-{u}")["hold"] for u in
             ("r1", "r2", "r3")]
    return env, holds


def unique_start(ids, target):
    """The shortest start of target that no other id shares."""
    for n in range(1, len(target) + 1):
        if sum(i.startswith(target[:n]) for i in ids) == 1:
            return target[:n]
    return target


def states(env):
    return {h["hold"]: h["state"] for h in env.cli("social", "0180").ok("holds")["holds"]}


def test_release_by_a_unique_start(held):
    env, holds = held
    social = env.cli("social", "0180")
    start = unique_start(holds, holds[0])
    assert social.ok("release", start)["hold"]["hold"] == holds[0]
    # Without its leading h too.
    start = unique_start(holds, holds[1])
    if len(start) > 1:
        assert social.ok("release", start[1:])["hold"]["hold"] == holds[1]
    else:
        assert social.ok("release", holds[1][1:6])["hold"]["hold"] == holds[1]
    assert states(env)[holds[0]] == "released" and states(env)[holds[1]] == "released"
    # Now only one hold is open: "h" is enough, the released ones do not count.
    assert social.ok("release", "h")["hold"]["hold"] == holds[2]


def test_a_shared_start_is_refused_with_the_candidates(held):
    env, holds = held
    msg = env.cli("social", "0180")("release", "h").usage("'h'")
    for h in holds:
        assert h in msg, msg
    assert set(states(env).values()) == {"held"}
    err = env.cli("social", "0180")("release", "h999").refused("not_found")
    assert "h999" in err["message"]
    # What cannot start a hold id is no search at all.
    assert "hold id" in env.cli("social", "0180")("release", "81121").usage("HOLD")
    # Another municipality sees none of them.
    env.cli("social", "1480")("release", holds[0][:8]).refused("not_found")


def test_shelter_confirms_and_discharges_by_starts(held):
    env, holds = held
    frida = env.cli("shelter", "frida-sthlm")
    placement = frida.ok("confirm", unique_start(holds, holds[0]))["placement"]["placement"]
    frida.ok("decline", unique_start(holds, holds[1]), "--reason", "no_room")
    res = frida.ok("discharge", placement[:6])
    assert res["placement"]["placement"] == placement
    # A whole id goes as it is.
    social = env.cli("social", "0180")
    assert social.ok("release", holds[2])["hold"]["hold"] == holds[2]
