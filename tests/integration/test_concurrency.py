"""Many clients racing for the same units through two daemons that share one Redis: a unit is
never handed to two households, and never held twice at the same moment."""

import itertools
import random
import threading
import time

import pytest

from conftest import wait_for, LOW_RISK, LOW_RISK_ARGS
from referrals import free_units, run_threads, second  # noqa: F401 - fixture

RATES = {"server": {"rate": 100000, "burst": 100000, "max_connections": 1000,
                    "max_connections_per_person": 1000}}

# Clients act as several principals: social services of five municipalities, five on-call
# services.
PRINCIPALS = [("social", m) for m in ("0180", "1480", "1280", "2580", "0380")] + \
             [("oncall", f"jour-{i}") for i in range(1, 6)]


def open_units(env, layout):
    """Registers shelters with free units; returns the list of (shelter, unit)."""
    units = []
    for sid, mun, n in layout:
        env.add_shelter(sid, f"Jour {sid}", municipality=mun)
        for i in range(n):
            uid = f"u{i:02d}"
            env.add_unit(sid, uid, 2)
            env.cli("shelter", sid).ok("vacancy", sid, uid, "free")
            units.append((sid, uid))
    return units


def connections(env, second, n):
    """n protocol connections, alternately to the first and the second daemon, each as one of
    PRINCIPALS in turn."""
    conns = []
    for i in range(n):
        role, ident = PRINCIPALS[i % len(PRINCIPALS)]
        if i % 2 == 0:
            conns.append(env.connect(role, ident, timeout=30))
        else:
            conns.append(second.connect(role, ident, timeout=30))
    for c in conns:
        assert c.call("whoami")["role"] in ("social", "oncall")
    return conns


@pytest.mark.daemon_config(RATES)
def test_race_for_ten_units(env, second):
    units = open_units(env, [("race-a", "0180", 5), ("race-b", "1480", 5)])
    assert sorted(free_units(env.admin)) == sorted(units)
    wait_for(lambda: sorted(free_units(second.admin)) == sorted(units), 10,
             "the second daemon to see the ten free units")

    clients, attempts, batch = 50, 40, 8
    conns = connections(env, second, clients)
    refs = itertools.count()
    ref_lock = threading.Lock()
    replies = [[] for _ in range(clients)]

    def client(i):
        rnd = random.Random(1000 + i)
        conn = conns[i]

        def run():
            done = 0
            while done < attempts:
                n = min(batch, attempts - done)
                reqs = []
                for _ in range(n):
                    sid, uid = rnd.choice(units)
                    with ref_lock:
                        ref = f"RACE-{next(refs):05d}"
                    reqs.append(("hold", {**LOW_RISK_ARGS, "shelter": sid, "unit": uid, "ref": ref}))
                for (op, args), rep in zip(reqs, conn.pipeline(reqs, timeout=60)):
                    replies[i].append((args, rep))
                done += n
        return run

    t0 = time.monotonic()
    run_threads([client(i) for i in range(clients)], timeout=240)
    elapsed = time.monotonic() - t0

    flat = [x for r in replies for x in r]
    assert len(flat) == clients * attempts == 2000
    wins = [(args, rep["result"]) for args, rep in flat if rep["ok"]]
    losses = [rep["error"]["code"] for args, rep in flat if not rep["ok"]]
    assert set(losses) <= {"conflict"}, sorted(set(losses))
    held_units = [(res["shelter"], res["unit"]) for _, res in wins]
    # Exactly the ten units that were free, each once.
    assert len(wins) == 10, held_units
    assert sorted(held_units) == sorted(units)
    assert len(losses) == 2000 - 10
    for args, res in wins:
        assert (res["shelter"], res["unit"]) == (args["shelter"], args["unit"])
    win_ids = {res["hold"]: (res["shelter"], res["unit"]) for _, res in wins}
    assert len(win_ids) == 10

    # The store agrees: ten holds, all held, each the one its client was told about.
    listed = env.cli("oncall", "socialjouren-sthlm").ok("holds")["holds"]
    assert len(listed) == 10
    assert {h["hold"]: (h["shelter"], h["unit"]) for h in listed} == win_ids
    assert {h["state"] for h in listed} == {"held"}
    ref_of = {res["hold"]: args["ref"] for args, res in wins}
    assert {h["hold"]: h["ref"] for h in listed} == ref_of
    # Both daemons show nothing free.
    assert free_units(env.admin) == []
    wait_for(lambda: free_units(second.admin) == [], 10, "the second daemon to see no free unit")
    print(f"2000 hold attempts by {clients} clients on two daemons in {elapsed:.2f} s")


@pytest.mark.daemon_config(RATES)
def test_a_unit_is_held_at_most_once_at_any_moment(env, second):
    units = open_units(env, [("turn-a", "0180", 2), ("turn-b", "0182", 2)])
    wait_for(lambda: sorted(free_units(second.admin)) == sorted(units), 10,
             "the second daemon to see the free units")

    clients, attempts, max_wins = 20, 40, 300
    conns = connections(env, second, clients)
    lock = threading.Lock()
    registered = {}      # unit -> hold id, between the hold's reply and its release request
    violations = []
    wins = []            # (hold id, unit, client)
    refs = itertools.count()
    stop = threading.Event()

    def client(i):
        rnd = random.Random(2000 + i)
        conn = conns[i]

        def run():
            for _ in range(attempts):
                if stop.is_set():
                    return
                sid, uid = rnd.choice(units)
                with lock:
                    ref = f"TURN-{next(refs):05d}"
                ok, res = conn.request("hold", {**LOW_RISK_ARGS, "shelter": sid, "unit": uid, "ref": ref},
                                       timeout=30)
                if not ok:
                    assert res["code"] == "conflict", res
                    continue
                hid = res["hold"]
                with lock:
                    if (sid, uid) in registered:
                        violations.append(((sid, uid), registered[(sid, uid)], hid))
                    registered[(sid, uid)] = hid
                    wins.append((hid, (sid, uid), i))
                    if len(wins) >= max_wins:
                        stop.set()
                time.sleep(rnd.uniform(0, 0.01))
                # Unregistered before the release is sent: from here on another holder is
                # possible.
                with lock:
                    assert registered.get((sid, uid)) == hid
                    del registered[(sid, uid)]
                ok, res = conn.request("hold.release", {"hold": hid}, timeout=30)
                assert ok, res
                assert res["hold"]["state"] == "released", res
        return run

    run_threads([client(i) for i in range(clients)], timeout=240)

    assert not violations, f"a unit had two live holds: {violations[:5]}"
    assert len(wins) >= 20, "too little contention to show anything"
    assert registered == {}
    print(f"{len(wins)} holds made and released by {clients} clients on {len(units)} units")

    # The store's own record: every hold the clients made, and per unit no two holds whose
    # lives (created_at .. closed_at) overlap.
    listed = env.cli("oncall", "socialjouren-sthlm").ok("holds")["holds"]
    assert sorted(h["hold"] for h in listed) == sorted(hid for hid, _, _ in wins)
    assert {h["state"] for h in listed} == {"released"}
    by_unit = {}
    for h in listed:
        by_unit.setdefault((h["shelter"], h["unit"]), []).append(h)
    overlaps = []
    for unit, hs in by_unit.items():
        hs.sort(key=lambda h: (h["created_at"], h["closed_at"]))
        for prev, nxt in zip(hs, hs[1:]):
            if nxt["created_at"] < prev["closed_at"]:
                overlaps.append((unit, prev["hold"], nxt["hold"]))
    assert not overlaps, overlaps[:5]
    # Every unit is free again on both daemons.
    assert sorted(free_units(env.admin)) == sorted(units)
    wait_for(lambda: sorted(free_units(second.admin)) == sorted(units), 10,
             "the second daemon to see every unit free again")


@pytest.mark.daemon_config(RATES)
def test_concurrent_retries_make_one_hold(env, second):
    """The same request with the same idempotency key, sent at once through both daemons by
    twenty connections of one principal: one hold, and everyone hears its id."""
    units = open_units(env, [("retry-jour", "0180", 2)])
    wait_for(lambda: sorted(free_units(second.admin)) == sorted(units), 10,
             "the second daemon to see the free units")
    conns = [(env if i % 2 == 0 else second).connect("social", "0180", timeout=30)
             for i in range(20)]
    same = {**LOW_RISK_ARGS, "shelter": "retry-jour", "unit": "u00", "ref": "ARENDE-RETRY",
            "idempotency_key": "retry-0180-0001"}
    other = dict(same, ref="ARENDE-ANNAT")
    replies = [[] for _ in conns]

    def client(i):
        def run():
            reqs = [("hold", same)] * 4 + [("hold", other)]
            replies[i].extend(conns[i].pipeline(reqs, timeout=60))
        return run

    run_threads([client(i) for i in range(len(conns))], timeout=120)
    same_replies = [r for rs in replies for r in rs[:4]]
    other_replies = [rs[4] for rs in replies]
    assert len(same_replies) == 80 and len(other_replies) == 20
    assert all(r["ok"] for r in same_replies), [r for r in same_replies if not r["ok"]][:3]
    ids = {r["result"]["hold"] for r in same_replies}
    assert len(ids) == 1
    assert all(not r["ok"] and r["error"]["code"] == "conflict" for r in other_replies), \
        other_replies[:3]
    listed = env.cli("social", "0180").ok("holds")["holds"]
    assert [h["hold"] for h in listed] == list(ids)
    assert listed[0]["ref"] == "ARENDE-RETRY" and listed[0]["unit"] == "u00"
    assert free_units(env.admin) == [("retry-jour", "u01")]


@pytest.mark.daemon_config(RATES)
def test_confirm_decline_and_release_race(env, second):
    """Each of ten holds is confirmed (shelter, first daemon), declined (shelter, second daemon)
    and released (on-call, second daemon) at the same moment: exactly one of the three wins,
    and the unit ends up as the winner says."""
    units = open_units(env, [("race-c", "0180", 10)])
    onc = env.cli("oncall", "socialjouren-sthlm")
    holds = {onc.ok("hold", sid, uid, *LOW_RISK, "--ref", f"R-{uid}")["hold"]: (sid, uid)
             for sid, uid in units}
    wait_for(lambda: free_units(second.admin) == [], 10, "the second daemon to see the holds")
    sides = {
        "confirmed": (env.connect("shelter", "race-c", timeout=30), "hold.confirm", {}),
        "declined": (second.connect("shelter", "race-c", timeout=30), "hold.decline",
                     {"reason": "other", "note": "krock"}),
        "released": (second.connect("oncall", "jour-2", timeout=30), "hold.release", {}),
    }
    outcome = {}

    def side(name):
        conn, op, extra = sides[name]
        order = list(holds)
        random.Random(name).shuffle(order)

        def run():
            got = {}
            for h in order:
                rid = conn.send(op, dict(extra, hold=h))
                got[h] = conn.recv_reply(rid, timeout=30)
            outcome[name] = got
        return run

    run_threads([side(n) for n in sides], timeout=120)
    winner = {}
    for hid in holds:
        oks = [n for n in sides if outcome[n][hid]["ok"]]
        assert len(oks) == 1, (hid, {n: outcome[n][hid] for n in sides})
        winner[hid] = oks[0]
        for n in sides:
            if n != oks[0]:
                assert outcome[n][hid]["error"]["code"] == "conflict", outcome[n][hid]
    listed = {h["hold"]: h for h in onc.ok("holds")["holds"]}
    assert {hid: listed[hid]["state"] for hid in holds} == winner
    placements = onc.ok("placements")["placements"]
    confirmed = {hid for hid, w in winner.items() if w == "confirmed"}
    assert {p["hold"] for p in placements} == confirmed
    assert len(placements) == len(confirmed)
    expect_free = sorted(holds[h] for h in holds if h not in confirmed)
    assert free_units(env.admin) == expect_free
    wait_for(lambda: free_units(second.admin) == expect_free, 10,
             "the second daemon to agree on the free units")
    print("winners:", {w: sum(1 for x in winner.values() if x == w) for w in sides})
