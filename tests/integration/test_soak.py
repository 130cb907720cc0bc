"""The long run: two daemons on one Redis, several client threads for a bounded time doing what
the service does all day (search, hold, confirm, discharge, release, vacancy changes) on random
shelters and units through the Python protocol client.

At the end: no unit was ever held or placed twice at once (every hold reply, checked as it
came, and the store's whole record afterwards), the final state is what the clients were told,
every acknowledged placement is in the store, both daemons answer alike, neither daemon's RSS
grew by more than a bound between the first and the last quarter of the run, and neither
logged a line at error level. The figures (operations by kind, errors by code, RSS) are printed.

A known fault of the daemon fails the run at the end, after every other check: about one hold
or placement id in 10,000 spells a personal identity number in its hex digits, and the daemon
then refuses that id as personal data (test_privacy.py shows it without chance). The clients
leave such a hold or placement as it is, the checks above take it into account, and the last
assertion names the ids.

Registered only with -Dlong_tests=true (suite integration-long). Environment:
  FRISTAD_SOAK_SECONDS          how long the clients run (default 120); meson's timeout for the
                                test is 600 s, so raise it (--timeout-multiplier) for long runs
  FRISTAD_SOAK_THREADS          client threads (default 8)
  FRISTAD_SOAK_RSS_GROWTH_KIB   the bound on RSS growth per daemon (default 4096)
"""

import itertools
import os
import random
import re
import statistics
import threading
import time
from collections import Counter

import pytest

from conftest import ADMIN, strip_volatile, wait_for, LOW_RISK_ARGS
from referrals import run_threads, second  # noqa: F401 - fixture
from security import ns_prefix, redis, rss_kib

SECONDS = float(os.environ.get("FRISTAD_SOAK_SECONDS", "120"))
THREADS = int(os.environ.get("FRISTAD_SOAK_THREADS", "8"))
RSS_GROWTH_KIB = int(os.environ.get("FRISTAD_SOAK_RSS_GROWTH_KIB", "4096"))
RSS_EVERY = 0.5  # seconds between RSS samples

# Nothing the run does may be limited, expire or be purged while it runs: the limits and the
# sweep have tests of their own, and the checks below rely on every record still being there.
SOAK_CONFIG = {
    "server": {"rate": 1000000, "burst": 1000000, "max_connections": 10000,
               "max_connections_per_person": 10000, "idle_timeout": "1d"},
    "holds": {"ttl": "7d", "reference_retention": "7d"},
}

# (shelter, municipality, protection, units)
SHELTERS = [("soak-sthlm", "0180", 3, 4), ("soak-gbg", "1480", 2, 4), ("soak-malmo", "1280", 1, 4),
            ("soak-upps", "0380", 2, 4), ("soak-lulea", "2580", 1, 4),
            ("soak-linkp", "0580", 3, 4), ("soak-orebro", "1880", 1, 4),
            ("soak-umea", "2480", 2, 4)]
UNITS = [(sid, f"u{i}") for sid, _, _, n in SHELTERS for i in range(n)]
UNIT_SET = frozenset(UNITS)
# The clients: social services of five municipalities and three on-call services.
PRINCIPALS = [("social", m) for m in ("0180", "1480", "1280", "0380", "2580")] + \
             [("oncall", f"soak-jour-{i}") for i in range(1, 4)]
HOMES = ["0180", "1480", "1280", "0380", "2580", "0580", "1880", "2480", "0114", "1281"]
RISKS = ["low", "moderate", "high", "severe"]
VACANCY_STATES = ["free"] * 3 + ["occupied", "closed"]
# Weights of the operations a client picks from (those it cannot do now are left out).
WEIGHTS = {"search": 25, "hold": 30, "release": 10, "confirm": 15, "discharge": 10,
           "vacancy": 10}
MAX_OPEN_HOLDS = 3  # per client, so that units keep coming back
# The answers each operation may get besides success; anything else is an error of the run.
EXPECTED_REFUSALS = {"hold": {"conflict"}, "vacancy": {"conflict"}}
ERROR_LINE = re.compile(r"fristadd\[\d+\] error: ")


class Ledger:
    """What the clients were told, shared by all of them under one lock.

    A unit is registered from the moment a hold on it is acknowledged until just before the
    request that ends it (release, or discharge of the placement it became) is sent: while a
    unit is registered, the store must not hand it to anyone else."""

    def __init__(self):
        self.lock = threading.Lock()
        self.live = {}          # unit -> {"hold", "placement" or None, "client"}
        self.holds = {}         # hold id -> {"unit", "client", "state"} for every hold acknowledged
        self.placements = {}    # placement id -> {"unit", "hold", "state"}
        self.violations = []
        self.refused_ids = []   # (operation, id) for ids the daemon issued and then refused
        self.ops = Counter()    # operation -> requests answered
        self.errors = Counter()  # (operation, code) -> refusals
        self.refs = itertools.count()

    def violation(self, text):
        with self.lock:
            self.violations.append(text)


def setup_shelters(env):
    """The shelters and their units, all free, made through the protocol."""
    with env.connect(*ADMIN) as adm:
        for sid, mun, prot, n in SHELTERS:
            adm.call("shelter.add", {"shelter": sid, "name": f"Jour {sid}", "kind": "kvinnojour",
                                     "municipality": mun, "protection": prot,
                                     "phone": "08-123 456 78", "groups": ["women", "youth"],
                                     "max_children": 6, "boys_max_age": 17,
                                     "languages": ["sv", "en"]})
            for i in range(n):
                adm.call("unit.add", {"shelter": sid, "unit": f"u{i}", "beds": 2 + i})
    for sid, _, _, n in SHELTERS:
        with env.connect("shelter", sid) as c:
            for i in range(n):
                c.call("vacancy.set", {"shelter": sid, "unit": f"u{i}", "state": "free"})


def client(i, first, other, ledger, end):
    """One client thread: its own principal and connections, on one of the two daemons."""
    daemon = first if i % 2 == 0 else other
    role, ident = PRINCIPALS[i % len(PRINCIPALS)]
    rnd = random.Random(4200 + i)

    def run():
        me = daemon.connect(role, ident, timeout=30)
        shelter_conns = {}
        my_holds = []        # (hold, unit)
        my_placements = []   # (placement, hold, unit)

        def as_shelter(sid):
            if sid not in shelter_conns:
                shelter_conns[sid] = daemon.connect("shelter", sid, timeout=30)
            return shelter_conns[sid]

        def answered(op, ok, res):
            with ledger.lock:
                ledger.ops[op] += 1
                if not ok:
                    ledger.errors[(op, res["code"])] += 1

        def own_id_refused(op, ok, res, rid):
            """An id the daemon issued, refused back as personal data (see the end of the
            test): the hold or placement stays as it was, and this client leaves it alone."""
            if ok or res["code"] != "personal_data":
                return False
            with ledger.lock:
                ledger.refused_ids.append((op, rid))
            return True

        def search():
            home = rnd.choice(HOMES)
            ok, res = me.request("search", {"home": home, "risk": rnd.choice(RISKS),
                                            "limit": 50})
            answered("search", ok, res)
            if ok:
                for r in res["results"]:
                    if (r["shelter"], r["unit"]) not in UNIT_SET:
                        ledger.violation(f"search from {home} found an unknown unit {r}")

        def hold():
            sid, uid = unit = rnd.choice(UNITS)
            ref = f"SOAK-{i}-{next(ledger.refs):06d}"
            ok, res = me.request("hold", {**LOW_RISK_ARGS, "shelter": sid, "unit": uid, "ref": ref})
            answered("hold", ok, res)
            if not ok:
                return
            hid = res["hold"]
            if (res["shelter"], res["unit"]) != unit:
                ledger.violation(f"hold on {unit} answered for {res['shelter']}/{res['unit']}")
            with ledger.lock:
                other = ledger.live.get(unit)
                if other is not None:
                    ledger.violations.append(
                        f"hold {hid} on {unit} acknowledged while {other} had it")
                if hid in ledger.holds:
                    ledger.violations.append(f"hold id {hid} acknowledged twice")
                ledger.live[unit] = {"hold": hid, "placement": None, "client": i}
                ledger.holds[hid] = {"unit": unit, "client": i, "state": "held"}
            my_holds.append((hid, unit))

        def release():
            hid, unit = my_holds.pop(rnd.randrange(len(my_holds)))
            with ledger.lock:
                assert ledger.live.get(unit, {}).get("hold") == hid
                del ledger.live[unit]
            ok, res = me.request("hold.release", {"hold": hid})
            answered("release", ok, res)
            if own_id_refused("release", ok, res, hid):
                with ledger.lock:
                    ledger.live[unit] = {"hold": hid, "placement": None, "client": i}
            if ok:
                if res["hold"]["state"] != "released":
                    ledger.violation(f"release of {hid} answered {res}")
                with ledger.lock:
                    ledger.holds[hid]["state"] = "released"

        def confirm():
            hid, unit = my_holds.pop(rnd.randrange(len(my_holds)))
            ok, res = as_shelter(unit[0]).request("hold.confirm", {"hold": hid})
            answered("confirm", ok, res)
            if own_id_refused("confirm", ok, res, hid):
                return
            if not ok:
                my_holds.append((hid, unit))  # still held: released or confirmed later
                return
            pl = res["placement"]
            pid = pl["placement"]
            if res["hold"]["state"] != "confirmed" or pl["state"] != "active" or \
                    (pl["shelter"], pl["unit"]) != unit or pl["hold"] != hid:
                ledger.violation(f"confirmation of {hid} on {unit} answered {res}")
            with ledger.lock:
                if ledger.live.get(unit, {}).get("hold") != hid:
                    ledger.violations.append(f"{unit} placed by {hid}, registered to "
                                             f"{ledger.live.get(unit)}")
                if pid in ledger.placements:
                    ledger.violations.append(f"placement id {pid} acknowledged twice")
                ledger.live[unit] = {"hold": hid, "placement": pid, "client": i}
                ledger.holds[hid]["state"] = "confirmed"
                ledger.placements[pid] = {"unit": unit, "hold": hid, "state": "active"}
            my_placements.append((pid, hid, unit))

        def discharge():
            pid, hid, unit = my_placements.pop(rnd.randrange(len(my_placements)))
            with ledger.lock:
                assert ledger.live.get(unit, {}).get("placement") == pid
                del ledger.live[unit]
            ok, res = as_shelter(unit[0]).request("placement.discharge", {"placement": pid})
            answered("discharge", ok, res)
            if own_id_refused("discharge", ok, res, pid):
                with ledger.lock:
                    ledger.live[unit] = {"hold": hid, "placement": pid, "client": i}
            if ok:
                if res["placement"]["state"] != "discharged":
                    ledger.violation(f"discharge of {pid} answered {res}")
                with ledger.lock:
                    ledger.placements[pid]["state"] = "discharged"

        def vacancy():
            sid, uid = unit = rnd.choice(UNITS)
            state = rnd.choice(VACANCY_STATES)
            with ledger.lock:
                before = ledger.live.get(unit, {}).get("hold")
            ok, res = as_shelter(sid).request("vacancy.set", {"shelter": sid, "unit": uid,
                                                              "state": state})
            answered("vacancy", ok, res)
            with ledger.lock:
                after = ledger.live.get(unit, {}).get("hold")
            # Registered to the same hold before and after: held or placed all along.
            if ok and before is not None and before == after:
                ledger.violation(f"vacancy.set {state} accepted on {unit} while {before} had it")

        while time.monotonic() < end:
            can = {"search": True, "hold": len(my_holds) < MAX_OPEN_HOLDS,
                   "release": bool(my_holds), "confirm": bool(my_holds),
                   "discharge": bool(my_placements), "vacancy": True}
            ops = [op for op in WEIGHTS if can[op]]
            op = rnd.choices(ops, weights=[WEIGHTS[o] for o in ops])[0]
            {"search": search, "hold": hold, "release": release, "confirm": confirm,
             "discharge": discharge, "vacancy": vacancy}[op]()
    return run


def rss_sampler(pids, samples, end):
    """Samples the daemons' RSS until the end of the run: [(seconds into the run, {pid: KiB})]."""
    def run():
        t0 = time.monotonic()
        while True:
            now = time.monotonic()
            samples.append((now - t0, {pid: rss_kib(pid) for pid in pids}))
            if now >= end:
                return
            time.sleep(min(RSS_EVERY, max(end - now, 0.01)))
    return run


def store_records(env):
    """Every hold and placement in the store: ({hold: fields}, {placement: fields})."""
    prefix = ns_prefix(env)

    def records(r, index, key):
        out = {}
        for rid in r("ZRANGE", prefix + index, 0, -1):
            flat = r("HGETALL", prefix + key + rid.decode())
            out[rid.decode()] = {flat[k].decode(): flat[k + 1].decode()
                                 for k in range(0, len(flat), 2)}
        return out

    with redis(env) as r:
        return records(r, "holds", "hold:"), records(r, "pls", "pl:")


def overlaps(holds, placements):
    """Per unit, the times it was held or placed, from the store's timestamps; returns the pairs
    of records whose times overlap. A confirmed hold and its placement are one stretch."""
    spans = {}
    for hid, h in holds.items():
        start = int(h["created"])
        if h.get("placement"):
            p = placements.get(h["placement"], {})
            stop = int(p["discharged"]) if p.get("discharged") else float("inf")
        else:
            stop = int(h["closed"]) if h.get("closed") else float("inf")
        spans.setdefault((h["shelter"], h["unit"]), []).append((start, stop, hid))
    found = []
    for unit, ss in spans.items():
        ss.sort()
        for (a0, a1, a), (b0, b1, b) in zip(ss, ss[1:]):
            if b0 < a1:
                found.append((unit, a, b))
    return found


def view(conn):
    return strip_volatile({sid: conn.call("shelter.show", {"shelter": sid})["shelter"]
                           for sid, _, _, _ in SHELTERS})


def quarter_medians(samples, pid, seconds):
    first = [s[pid] for t, s in samples if t <= seconds / 4]
    last = [s[pid] for t, s in samples if t >= seconds * 3 / 4]
    return (statistics.median_low(first), statistics.median_low(last),
            max(s[pid] for _, s in samples))


@pytest.mark.daemon_config(SOAK_CONFIG)
def test_soak(env, second, capsys):
    # Certificates are issued here, one after another: scripts/pki is not safe to run in
    # parallel, and the client threads would otherwise ask for them at once.
    for role, ident in PRINCIPALS + [("shelter", sid) for sid, _, _, _ in SHELTERS]:
        env.pki.get(role, ident)
    setup_shelters(env)
    with env.connect(*ADMIN) as a1, second.connect(*ADMIN) as a2:
        first_view = view(a1)
        wait_for(lambda: view(a2) == first_view, 10, "the second daemon to load the shelters")

    ledger = Ledger()
    pids = [env.daemon.proc.pid, second.daemon.proc.pid]
    samples = []
    t0 = time.monotonic()
    end = t0 + SECONDS
    run_threads([client(i, env, second, ledger, end) for i in range(THREADS)] +
                [rss_sampler(pids, samples, end)], timeout=SECONDS + 120)
    took = time.monotonic() - t0

    # Figures first, so that a failure below still shows them.
    with capsys.disabled():
        print(f"\nsoak: {THREADS} clients on 2 daemons for {took:.0f} s, "
              f"{len(UNITS)} units in {len(SHELTERS)} shelters")
        total = sum(ledger.ops.values())
        print(f"operations: {total} ({total / took:.0f}/s): " +
              ", ".join(f"{op} {n}" for op, n in sorted(ledger.ops.items())))
        print("refusals by code: " + (", ".join(f"{op} {code} {n}" for (op, code), n in
                                                sorted(ledger.errors.items())) or "none"))
        if ledger.refused_ids:
            print(f"ids the daemon issued and refused as personal data: {ledger.refused_ids}")
        for name, pid in zip(("first", "second"), pids):
            q1, q4, peak = quarter_medians(samples, pid, SECONDS)
            print(f"RSS of the {name} daemon: first quarter {q1} KiB, last quarter {q4} KiB "
                  f"(growth {q4 - q1:+d} KiB, bound {RSS_GROWTH_KIB}), peak {peak} KiB, "
                  f"{len(samples)} samples")

    assert not ledger.violations, "\n".join(ledger.violations[:20])
    refused_ids = Counter(op for op, _ in ledger.refused_ids)
    unexpected = {k: n for k, n in ledger.errors.items()
                  if k[1] not in EXPECTED_REFUSALS.get(k[0], set()) and
                  not (k[1] == "personal_data" and n == refused_ids[k[0]])}
    assert not unexpected, f"unexpected refusals: {unexpected}"
    for op in WEIGHTS:
        assert ledger.ops[op] > 0, f"the run made no {op}: too short to show anything"
    assert ledger.placements and any(p["state"] == "discharged"
                                      for p in ledger.placements.values())

    # The store's whole record: every hold acknowledged is there as the clients were told,
    # nothing else is, and no unit was ever held or placed twice at the same time.
    holds, placements = store_records(env)
    assert set(holds) == set(ledger.holds), \
        f"holds in the store but never acknowledged: {sorted(set(holds) - set(ledger.holds))[:5]}" \
        f"; acknowledged but missing: {sorted(set(ledger.holds) - set(holds))[:5]}"
    for hid, mine in ledger.holds.items():
        h = holds[hid]
        assert ((h["shelter"], h["unit"]), h["state"]) == (mine["unit"], mine["state"]), (hid, h)
    assert set(placements) == set(ledger.placements), "placements differ from those acknowledged"
    for pid, mine in ledger.placements.items():
        p = placements[pid]
        assert ((p["shelter"], p["unit"]), p["hold"], p["state"]) == \
            (mine["unit"], mine["hold"], mine["state"]), (pid, p)
    both = overlaps(holds, placements)
    assert not both, f"units held or placed twice at once: {both[:5]}"

    # The final state, as both daemons show it, is what the clients were told.
    with env.connect(*ADMIN) as a1, second.connect(*ADMIN) as a2:
        final = view(a1)
        wait_for(lambda: view(a2) == final, 10, "the second daemon to answer as the first")
    for sid, shelter in final.items():
        for u in shelter["units"]:
            mine = ledger.live.get((sid, u["id"]))
            if mine is None:
                assert not u["held"] and u["state"] in ("free", "occupied", "closed"), (sid, u)
            elif mine["placement"] is None:
                assert u["held"] and u["state"] == "free", (sid, u, mine)
            else:
                assert not u["held"] and u["state"] == "occupied", (sid, u, mine)
    open_holds = {hid for hid, h in holds.items() if h["state"] == "held"}
    assert open_holds == {m["hold"] for m in ledger.live.values() if m["placement"] is None}
    active = {pid for pid, p in placements.items() if p["state"] == "active"}
    assert active == {m["placement"] for m in ledger.live.values() if m["placement"]}

    # Memory: no growth beyond the bound between the first and the last quarter.
    for name, pid in zip(("first", "second"), pids):
        q1, q4, _ = quarter_medians(samples, pid, SECONDS)
        assert q4 - q1 <= RSS_GROWTH_KIB, \
            f"the {name} daemon's RSS grew from {q1} KiB to {q4} KiB during the run"

    # Nothing at error level in either daemon's log.
    for name, d in (("first", env.daemon), ("second", second.daemon)):
        errors = [ln for ln in d.log_text().splitlines() if ERROR_LINE.search(ln)]
        assert not errors, f"the {name} daemon logged errors:\n" + "\n".join(errors[:20])

    # Last, as it is the known fault of the module comment: everything above was checked with
    # the holds and placements whose ids were refused left as they were.
    assert not ledger.refused_ids, \
        f"the daemon refused {len(ledger.refused_ids)} ids it had issued itself as personal " \
        f"data: {ledger.refused_ids[:10]}"
