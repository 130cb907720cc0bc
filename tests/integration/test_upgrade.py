"""Records written by an earlier fristadd keep working: the first layout named the fields of its
hashes in short forms (mun, prot, maxch, ...); the current one names them as the protocol does.
The daemon renames them (fristad_migrate, a batch at a time) before it answers anything, and
every shelter, unit, hold and placement reads and changes as before."""

import time

from referrals import redis_command
from conftest import LOW_RISK


def write_first_layout(env):
    ns = "{%s}:" % env.daemon.namespace
    now = int(time.time() * 1000)
    sock = env.redis.sock

    def r(*args):
        reply = redis_command(sock, *args)
        assert not reply.startswith("-"), (args, reply)

    r("SADD", ns + "shelters", "frida-sthlm")
    r("HSET", ns + "s:frida-sthlm", "name", "Kvinnojouren Frida", "kind", "kvinnojour",
      "mun", "0180", "prot", 2, "phone", "08-555 010 10", "groups", "women,hbtqi",
      "maxch", -1, "boys", 15, "pets", 1, "subst", 0, "langs", "sv,en", "paused", 0,
      "retired", 0, "upd", now, "created", now, "v", 3)
    r("SADD", ns + "u:frida-sthlm", "r1", "r2")
    r("HSET", ns + "unit:frida-sthlm:r1", "beds", 3, "acc", 1, "state", "free", "chg", now)
    r("HSET", ns + "unit:frida-sthlm:r2", "beds", 2, "acc", 0, "state", "occupied", "chg", now,
      "placement", "p00000000000000aa")
    r("HSET", ns + "hold:h00000000000000aa", "shelter", "frida-sthlm", "unit", "r2",
      "ref", "KS-2026-1", "by", "social:0180", "mun", "0180", "state", "confirmed",
      "created", now - 5000, "expires", now + 3600000, "closed", now - 1000,
      "placement", "p00000000000000aa")
    r("HSET", ns + "pl:p00000000000000aa", "hold", "h00000000000000aa", "shelter", "frida-sthlm",
      "unit", "r2", "ref", "KS-2026-1", "by", "social:0180", "mun", "0180", "state", "active",
      "placed", now - 1000)
    for key in ("holds", "holds:s:frida-sthlm", "holds:m:0180"):
        r("ZADD", ns + key, now - 5000, "h00000000000000aa")
    for key in ("pls", "pls:s:frida-sthlm", "pls:m:0180"):
        r("ZADD", ns + key, now - 1000, "p00000000000000aa")
    r("SET", ns + "ver", 3)
    return ns


def test_first_layout_is_renamed_and_keeps_working(env_unstarted):
    env = env_unstarted
    env.redis.start()
    ns = write_first_layout(env)
    env.daemon.start()

    shown = env.show("frida-sthlm")
    assert shown["municipality"] == "0180" and shown["protection"] == 2
    assert shown["groups"] == ["women", "hbtqi"] and shown["languages"] == ["sv", "en"]
    assert shown["boys_max_age"] == 15 and shown["max_children"] is None and shown["pets"]
    assert [(u["id"], u["accessible"], u["state"]) for u in shown["units"]] == \
        [("r1", True, "free"), ("r2", False, "occupied")]

    social = env.cli("social", "0180")
    holds = social.ok("holds")["holds"]
    assert [(h["hold"], h["state"], h["municipality"]) for h in holds] == \
        [("h00000000000000aa", "confirmed", "0180")]
    placements = social.ok("placements")["placements"]
    assert placements[0]["placement"] == "p00000000000000aa"
    assert placements[0]["placed_at"] > 0 and placements[0]["municipality"] == "0180"

    # The old records change as new ones do.
    shelter = env.cli("shelter", "frida-sthlm")
    shelter.ok("discharge", "p00000000000000aa")
    held = social.ok("hold", "frida-sthlm", "r2", *LOW_RISK, "--ref", "KS-2026-2")
    assert held["unit"] == "r2"
    shelter.ok("confirm", held["hold"])

    # Nothing in the old words is left, and the layout is recorded.
    assert redis_command(env.redis.sock, "GET", ns + "schema") == "$1"
    assert redis_command(env.redis.sock, "HEXISTS", ns + "s:frida-sthlm", "mun") == ":0"
    assert redis_command(env.redis.sock, "HEXISTS", ns + "unit:frida-sthlm:r1", "acc") == ":0"
    assert redis_command(env.redis.sock, "HEXISTS", ns + "hold:h00000000000000aa",
                         "created") == ":0"
    assert redis_command(env.redis.sock, "HEXISTS", ns + "pl:p00000000000000aa",
                         "placed") == ":0"

    # A restart finds the layout current and changes nothing.
    env.daemon.restart()
    assert env.show("frida-sthlm")["units"][1]["state"] == "occupied"
