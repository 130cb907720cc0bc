"""Restarting the daemon or Redis loses no confirmed placement: holds and placements live in
Redis (AOF, fsync on every write), and the daemon's index is rebuilt from it."""

import threading

import pytest

from conftest import wait_for, LOW_RISK, LOW_RISK_ARGS
from referrals import free_units, now_ms, referral_state, run_threads, unit_states

SHELTERS = ["frida-sthlm", "hamnen-gbg"]


def wait_writable(env, timeout=20):
    """Retries a harmless write until it succeeds; every refusal meanwhile is `unavailable`."""
    who = env.cli("shelter", "hamnen-gbg")

    def written():
        r = who("vacancy", "confirm", "hamnen-gbg")
        if r.exit == 0:
            return True
        r.refused("unavailable")
        return False

    wait_for(written, timeout, "writes to work again after Redis came back", interval=0.2)


@pytest.fixture
def referrals_made(env):
    """Placements (active and discharged) and holds in every state."""
    env.add_shelter("frida-sthlm", "Kvinnojouren Frida", municipality="0180",
                    phone="08-555 010 10")
    env.add_shelter("hamnen-gbg", "Hamnen", municipality="1480", protection=3,
                    phone="031-700 00 00")
    for sid in SHELTERS:
        for i in range(1, 5):
            env.add_unit(sid, f"u{i}", 2)
            env.cli("shelter", sid).ok("vacancy", sid, f"u{i}", "free")
    soc, gbg = env.cli("social", "0180"), env.cli("social", "1480")
    frida, hamnen = env.cli("shelter", "frida-sthlm"), env.cli("shelter", "hamnen-gbg")
    made = {}

    def hold(who, sid, uid, ref, *extra):
        return who.ok("hold", sid, uid, *LOW_RISK, "--ref", ref, *extra)["hold"]

    made["placed1"] = hold(soc, "frida-sthlm", "u1", "P-1")
    made["p1"] = frida.ok("confirm", made["placed1"])["placement"]["placement"]
    made["placed2"] = hold(gbg, "hamnen-gbg", "u1", "P-2")
    made["p2"] = hamnen.ok("confirm", made["placed2"])["placement"]["placement"]
    made["placed3"] = hold(soc, "hamnen-gbg", "u2", "P-3")
    made["p3"] = hamnen.ok("confirm", made["placed3"])["placement"]["placement"]
    hamnen.ok("discharge", made["p3"])
    made["held1"] = hold(soc, "frida-sthlm", "u2", "H-1")
    made["held2"] = hold(gbg, "hamnen-gbg", "u3", "H-2", "--idempotency-key", "gbg-key-0042")
    made["released"] = hold(soc, "frida-sthlm", "u3", "R-1")
    soc.ok("release", made["released"])
    made["declined"] = hold(gbg, "frida-sthlm", "u4", "D-1")
    frida.ok("decline", made["declined"], "--reason", "other", "--note", "ingen plats")

    state = referral_state(env, SHELTERS)
    assert {p["placement"]: p["state"] for p in state["placements"]["placements"]} == \
        {made["p1"]: "active", made["p2"]: "active", made["p3"]: "discharged"}
    assert {h["hold"]: h["state"] for h in state["holds"]["holds"]} == {
        made["placed1"]: "confirmed", made["placed2"]: "confirmed",
        made["placed3"]: "confirmed", made["held1"]: "held", made["held2"]: "held",
        made["released"]: "released", made["declined"]: "declined"}
    assert free_units(env.admin) == [("frida-sthlm", "u3"), ("frida-sthlm", "u4"),
                                     ("hamnen-gbg", "u2"), ("hamnen-gbg", "u4")]
    return env, made, state


def still_works(env, made):
    """The records are live, not only listed: the open hold can be confirmed, the active
    placement discharged, and the other municipality's hold released."""
    pid = env.cli("shelter", "frida-sthlm").ok("confirm", made["held1"])["placement"]
    assert pid["ref"] == "H-1" and pid["state"] == "active"
    env.cli("shelter", "hamnen-gbg").ok("discharge", made["p2"])
    # A retry with the idempotency key still finds the hold made before the restart.
    retry = env.cli("social", "1480").ok("hold", "hamnen-gbg", "u3", *LOW_RISK, "--ref", "H-2",
                                         "--idempotency-key", "gbg-key-0042")
    assert retry["hold"] == made["held2"]
    env.cli("social", "1480").ok("release", made["held2"])
    env.cli("shelter", "frida-sthlm")("confirm", made["released"]).refused("conflict")
    assert unit_states(env.show("frida-sthlm"))["u2"] == ("occupied", False)
    assert ("hamnen-gbg", "u1") in free_units(env.admin)


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
def test_daemon_restart_keeps_holds_and_placements(referrals_made, how):
    env, made, before = referrals_made
    if how == "sigterm":
        env.daemon.stop()
    else:
        env.daemon.kill()
    env.daemon.start()
    assert referral_state(env, SHELTERS) == before
    assert unit_states(env.show("frida-sthlm")) == {
        "u1": ("occupied", False), "u2": ("free", True), "u3": ("free", False),
        "u4": ("free", False)}
    still_works(env, made)


def test_redis_restart_keeps_holds_and_placements(referrals_made):
    """Redis stops cleanly and starts again under the running daemon."""
    env, made, before = referrals_made
    env.redis.restart()
    wait_writable(env)
    after = referral_state(env, SHELTERS)
    assert after["holds"] == before["holds"]
    assert after["placements"] == before["placements"]
    assert after["free"] == before["free"]
    for sid in SHELTERS:
        assert unit_states(after["shelters"][sid]) == unit_states(before["shelters"][sid])
    still_works(env, made)


def test_redis_killed_while_placing_loses_no_confirmed_placement(env):
    """Placements are confirmed one after another while Redis is killed with SIGKILL: every
    placement whose confirmation was acknowledged before the kill is there afterwards, its
    unit occupied, and the daemon serves again."""
    units = []
    for sid, mun in (("frida-sthlm", "0180"), ("hamnen-gbg", "1480")):
        env.add_shelter(sid, f"Jour {sid}", municipality=mun, phone="08-555 010 10")
        for i in range(20):
            env.add_unit(sid, f"u{i:02d}", 2)
            env.cli("shelter", sid).ok("vacancy", sid, f"u{i:02d}", "free")
            units.append((sid, f"u{i:02d}"))
    social = env.connect("oncall", "socialjouren-sthlm", timeout=20)
    shelter_conns = {sid: env.connect("shelter", sid, timeout=20) for sid in SHELTERS}
    before_kill_hold = env.cli("social", "0180").ok("hold", "frida-sthlm", "u19", *LOW_RISK,
                                                    "--ref", "FORE-KILL")["hold"]
    units.remove(("frida-sthlm", "u19"))

    acknowledged = {}     # placement id -> (unit, hold id)
    unknown_holds = set()  # holds whose confirmation got no definite answer
    errors = []
    killed = threading.Event()

    def placer():
        for sid, uid in units:
            if killed.is_set() and errors:
                return
            ok, res = social.request("hold", {**LOW_RISK_ARGS, "shelter": sid, "unit": uid,
                                              "ref": f"K-{sid[:2]}-{uid}"}, timeout=20)
            if not ok:
                errors.append(("hold", res["code"]))
                continue
            hid = res["hold"]
            ok, res = shelter_conns[sid].request("hold.confirm", {"hold": hid}, timeout=20)
            if ok:
                acknowledged[res["placement"]["placement"]] = ((sid, uid), hid)
            else:
                errors.append(("confirm", res["code"]))
                unknown_holds.add(hid)

    def killer():
        wait_for(lambda: len(acknowledged) >= 8, 20, "8 placements to be acknowledged",
                 interval=0.001)
        env.redis.stop(kill=True)
        killed.set()

    run_threads([placer, killer], timeout=60)
    assert killed.is_set()
    assert len(acknowledged) >= 8
    assert errors, "nothing was refused while Redis was down: the kill came too late"
    assert {code for _, code in errors} <= {"unavailable", "outcome_unknown"}, errors
    print(f"{len(acknowledged)} placements acknowledged before the kill; then {errors[:3]}")

    env.redis.start()
    wait_writable(env)

    def check():
        placements = {p["placement"]: p
                      for p in env.cli("oncall", "x").ok("placements")["placements"]}
        for pid, (unit, hid) in acknowledged.items():
            assert pid in placements, f"acknowledged placement {pid} on {unit} was lost"
            p = placements[pid]
            assert (p["shelter"], p["unit"]) == unit and p["hold"] == hid
            assert p["state"] == "active"
        # Nothing is there that nobody asked for.
        for pid, p in placements.items():
            assert pid in acknowledged or p["hold"] in unknown_holds, p
        for sid in SHELTERS:
            states = unit_states(env.show(sid))
            for pid, ((psid, uid), _) in acknowledged.items():
                if psid == sid:
                    assert states[uid] == ("occupied", False), (sid, uid, states[uid])
        holds = {h["hold"]: h for h in env.cli("oncall", "x").ok("holds")["holds"]}
        assert holds[before_kill_hold]["state"] == "held"
        assert unit_states(env.show("frida-sthlm"))["u19"] == ("free", True)

    # The running daemon's index and the store agree, and so does a freshly started daemon.
    last = []

    def agrees():
        try:
            check()
            return True
        except AssertionError as e:
            last[:] = [e]
            return False

    wait_for(agrees, 10, "the running daemon to agree with the store", interval=0.1,
             detail=lambda: f"last mismatch: {last[0]}")
    env.daemon.restart()
    check()
    # Serving: a new hold and placement work.
    free = free_units(env.admin)
    assert free, "no unit left to place in"
    sid, uid = free[0]
    hid = env.cli("social", "0180").ok("hold", sid, uid, *LOW_RISK, "--ref", "EFTER-1")["hold"]
    env.cli("shelter", sid).ok("confirm", hid)
    assert unit_states(env.show(sid))[uid] == ("occupied", False)


@pytest.mark.daemon_config({"holds": {"ttl": "2s", "sweep_interval": "100ms"}})
def test_hold_expires_while_the_daemon_is_down(env):
    env.add_shelter("frida-sthlm", "Kvinnojouren Frida", municipality="0180",
                    phone="08-555 010 10")
    env.add_unit("frida-sthlm", "r1", 2)
    env.cli("shelter", "frida-sthlm").ok("vacancy", "frida-sthlm", "r1", "free")
    h = env.cli("social", "0180").ok("hold", "frida-sthlm", "r1", *LOW_RISK, "--ref", "NERE-1")
    env.daemon.stop()
    wait_for(lambda: now_ms() > h["expires_at"] + 200, 10, "the hold time to pass",
             interval=0.05)
    env.daemon.start()
    wait_for(lambda: free_units(env.admin) == [("frida-sthlm", "r1")], 10,
             "the daemon to free the unit of the hold that expired while it was down")
    [record] = env.cli("social", "0180").ok("holds")["holds"]
    assert record["hold"] == h["hold"] and record["state"] == "expired"
    env.cli("shelter", "frida-sthlm")("confirm", h["hold"]).refused("conflict")
    assert env.cli("oncall", "x").ok("placements")["placements"] == []


def test_index_follows_redis_back_in_time(env):
    """Redis is the source of truth even when it goes back in time (a restored backup, or a
    failover to a replica that lagged): after the reload the daemon answers what Redis has,
    not the newer state it had seen before, and later changes are not ignored."""
    import shutil
    env.add_shelter("frida-sthlm", "Kvinnojouren Frida", municipality="0180")
    env.add_unit("frida-sthlm", "r1", 2)
    frida = env.cli("shelter", "frida-sthlm")
    frida.ok("vacancy", "frida-sthlm", "r1", "free")
    env.redis.stop()
    backup = env.workdir / "backup"
    shutil.copytree(env.redis.dir, backup, ignore=shutil.ignore_patterns("redis.sock"))
    env.redis.start()
    wait_for(lambda: frida("vacancy", "confirm", "frida-sthlm").exit == 0, 20,
             "writes after the restart")
    # Three changes Redis will lose.
    for state in ("occupied", "closed", "occupied"):
        frida.ok("vacancy", "frida-sthlm", "r1", state)
    env.redis.stop()
    shutil.rmtree(env.redis.dir)
    shutil.copytree(backup, env.redis.dir)
    env.redis.start()
    wait_for(lambda: env.show("frida-sthlm")["units"][0]["state"] == "free", 20,
             "the index to show what Redis has after it went back in time")
    # The next real change is applied although its version is one the index saw before.
    frida.ok("vacancy", "frida-sthlm", "r1", "closed")
    assert env.show("frida-sthlm")["units"][0]["state"] == "closed"
    assert ("frida-sthlm", "r1") not in free_units(env.admin)
