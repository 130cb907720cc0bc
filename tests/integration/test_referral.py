"""The referral from search to arrival: the hold carries the referral and is checked with the
search's own predicate (every rule of the default policy and every household constraint, one
by one), hold succeeds for exactly the units search returns (random shelters and referrals
across real municipalities), the life cycle held -> accepted -> confirmed and its other ends,
what the shelter sees of the household, intake hours in search, the remembered search of
'fristad hold N', and the defects an attacker's run found in the hold."""

import random
import re
import time
from datetime import datetime, timedelta, timezone

import msgpack
import pytest

from conftest import LOW_RISK, wait_for
from referrals import geography, hits, redis_command
from security import keyspace, keyspace_diff, ns_prefix

# A valid Swedish personal identity number (check digit and all): old hex ids could hold one.
PIN = "8112189876"


def refused_unchanged(env, cli, args, code, message=None):
    """The request is refused with `code` (and the message holds `message`), and nothing in
    the namespace moved but the audit stream and the counters."""
    before = keyspace(env)
    r = cli(*args)
    r.refused(code)
    if message:
        assert message in r.json["error"]["message"], r.json
    after = keyspace(env)
    assert before == after, keyspace_diff(before, after)
    return r


# -- every rule of the policy and every household constraint --------------------------------


@pytest.fixture
def registry(env):
    """Shelters placed for the rules: around Stockholm (the household's home, 0180) and far
    away in Göteborg with every household constraint set."""
    g = geography()
    assert "0184" in g.borders["0180"] and "0188" not in g.borders["0180"]
    assert g.county("0188") == "01" and g.county("0380") == "03"
    for sid, mun in (("s-home", "0180"), ("s-border", "0184"), ("s-county", "0188"),
                     ("s-perp", "0380")):
        env.add_shelter(sid, f"Jour {sid}", municipality=mun, protection=3)
        env.add_unit(sid, "u1", 6, accessible=True)
        env.cli("shelter", sid).ok("vacancy", sid, "u1", "free")
    env.add_shelter("s-far", "Jour långt bort", municipality="1480", protection=1,
                    max_children=1, boys_max_age=12, languages=["sv"])
    env.add_unit("s-far", "small", 2)
    env.add_unit("s-far", "big", 6, accessible=True)
    for u in ("small", "big"):
        env.cli("shelter", "s-far").ok("vacancy", "s-far", u, "free")
    return env


# (case, shelter, unit, referral that the unit is ineligible for, reason, eligible referral)
BASE = ["--from", "0180"]
RULES = [
    ("listed exclusion", "s-far", "big", BASE + ["--risk", "low", "--exclude", "1480"],
     "safety_policy", BASE + ["--risk", "low", "--exclude", "0380"]),
    ("home municipality", "s-home", "u1", BASE + ["--risk", "moderate"], "safety_policy",
     BASE + ["--risk", "low"]),
    ("perpetrator's municipality", "s-perp", "u1",
     BASE + ["--risk", "moderate", "--perpetrator-in", "0380"], "safety_policy",
     BASE + ["--risk", "moderate", "--perpetrator-in", "1480"]),
    ("bordering municipality", "s-border", "u1", BASE + ["--risk", "high"], "safety_policy",
     BASE + ["--risk", "moderate"]),
    ("same county", "s-county", "u1", BASE + ["--risk", "severe"], "safety_policy",
     BASE + ["--risk", "high"]),
    ("protection level", "s-far", "big", BASE + ["--risk", "high"], "protection_level",
     BASE + ["--risk", "moderate"]),
    ("beds", "s-far", "small", BASE + ["--risk", "low", "--adults", "2", "--child", "3f"],
     "beds", BASE + ["--risk", "low", "--child", "3f"]),
    ("children limit", "s-far", "big", BASE + ["--risk", "low", "--child", "3f", "--child", "5m"],
     "children_limit", BASE + ["--risk", "low", "--child", "5m"]),
    ("boys' age", "s-far", "big", BASE + ["--risk", "low", "--child", "14m"], "boys_age",
     BASE + ["--risk", "low", "--child", "14f"]),
    ("target group", "s-far", "big", BASE + ["--risk", "low", "--group", "men"],
     "target_group", BASE + ["--risk", "low", "--group", "women"]),
    ("wheelchair", "s-far", "small", BASE + ["--risk", "low", "--wheelchair"], "wheelchair",
     BASE + ["--risk", "low"]),
    ("pets", "s-far", "big", BASE + ["--risk", "low", "--pets"], "pets",
     BASE + ["--risk", "low"]),
    ("substance", "s-far", "big", BASE + ["--risk", "low", "--substance"], "substance",
     BASE + ["--risk", "low"]),
    ("language", "s-far", "big", BASE + ["--risk", "low", "--language", "ar"], "language",
     BASE + ["--risk", "low", "--language", "sv"]),
]


@pytest.mark.parametrize("case", RULES, ids=[r[0] for r in RULES])
def test_an_ineligible_unit_is_refused_and_an_eligible_one_held(registry, case):
    env = registry
    _, sid, unit, bad, reason, good = case
    social = env.cli("social", "0180")
    # The search agrees: the unit is not among its results, and the reason is counted.
    found = social.ok("search", *bad, "--limit", "200")
    assert (sid, unit) not in hits(found)
    r = refused_unchanged(env, social, ["hold", sid, unit, *bad, "--ref", "KS-1"],
                          "ineligible")
    assert reason in r.json["error"]["message"]
    # The same unit, with a referral it fits: the search offers it and the hold goes through.
    assert (sid, unit) in hits(social.ok("search", *good, "--limit", "200"))
    held = social.ok("hold", sid, unit, *good, "--ref", "KS-2")
    assert held["shelter"] == sid and held["unit"] == unit and held["state"] == "held"


def test_oncall_holds_for_the_home_municipality_unless_it_names_one(registry):
    env = registry
    oncall = env.cli("oncall", "socialjour-sthlm")
    h = oncall.ok("hold", "s-far", "big", "--from", "0182", "--risk", "low", "--ref", "NATT-1")
    assert h["municipality"] == "0182"
    assert h["hold"] in {x["hold"] for x in env.cli("social", "0182").ok("holds")["holds"]}
    oncall.ok("release", h["hold"])
    h = oncall.ok("hold", "s-far", "big", "--from", "0182", "--risk", "low", "--ref", "NATT-2",
                  "--for", "0180")
    assert h["municipality"] == "0180"


# -- hold succeeds for exactly what search returns ------------------------------------------


def test_hold_succeeds_exactly_for_the_search_results(env):
    """Random shelters in real municipalities and random referrals: before anything is held,
    every free unit is held (and released again) iff the search returned it."""
    rng = random.Random(20261126)
    codes = sorted(geography().places)
    admin = env.connect("admin", "ops-anna", timeout=30)
    units = []
    for i in range(18):
        sid = f"r{i:02d}"
        args = {"shelter": sid, "name": f"Jour {i}", "kind": "kvinnojour",
                "municipality": rng.choice(codes[:60] if i % 2 else codes),
                "protection": rng.randint(1, 3), "phone": "08-123 456 78",
                "groups": rng.sample(["women", "men", "hbtqi", "youth"], rng.randint(1, 3)),
                "pets": rng.random() < 0.5, "substance": rng.random() < 0.5,
                "languages": rng.sample(["sv", "en", "ar", "fa"], rng.randint(0, 3))}
        if rng.random() < 0.6:
            args["max_children"] = rng.randint(0, 4)
        if rng.random() < 0.6:
            args["boys_max_age"] = rng.randint(8, 17)
        admin.call("shelter.add", args)
        with env.connect("shelter", sid) as sh:
            for k in range(3):
                uid = f"u{k}"
                admin.call("unit.add", {"shelter": sid, "unit": uid, "beds": rng.randint(1, 6),
                                        "accessible": rng.random() < 0.4})
                state = rng.choice(["free", "free", "free", "occupied", "closed"])
                sh.call("vacancy.set", {"shelter": sid, "unit": uid, "state": state})
                if state == "free":
                    units.append((sid, uid))
            if rng.random() < 0.15:
                sh.call("intake.pause", {"shelter": sid})
    social = env.connect("social", "0180", timeout=30)
    oncall = env.connect("oncall", "socialjour-sthlm", timeout=30)
    checked = held = 0
    for n in range(25):
        home = rng.choice(codes)
        referral = {"home": home, "risk": rng.choice(["low", "moderate", "high", "severe"]),
                    "adults": rng.randint(1, 2),
                    "children": [{"age": rng.randint(0, 17), "sex": rng.choice("mf")}
                                 for _ in range(rng.randint(0, 3))]}
        if rng.random() < 0.3:
            referral["group"] = rng.choice(["women", "men", "hbtqi", "youth"])
        for need in ("wheelchair", "pets", "substance"):
            if rng.random() < 0.2:
                referral[need] = True
        if rng.random() < 0.2:
            referral["language"] = rng.choice(["sv", "en", "ar", "fa"])
        if rng.random() < 0.5:
            referral["perpetrator"] = rng.sample(codes, rng.randint(1, 3))
        if rng.random() < 0.2:
            referral["exclude"] = rng.sample(codes, rng.randint(1, 5))
        who = social if referral["home"] == "0180" else oncall
        found = set(hits(who.call("search", dict(referral, limit=200))))
        for sid, uid in units:
            ok, res = who.request("hold", dict(referral, shelter=sid, unit=uid, ref=f"P-{n}"))
            checked += 1
            if (sid, uid) in found:
                assert ok, (referral, sid, uid, res)
                held += 1
                who.call("hold.release", {"hold": res["hold"]})
            else:
                assert not ok and res["code"] in ("ineligible", "conflict"), \
                    (referral, sid, uid, res)
    print(f"\n{checked} holds tried, {held} held (each one a search result)")
    assert held > 20 and checked - held > 100


# -- the life cycle ---------------------------------------------------------------------------


@pytest.fixture
def frida(env):
    env.add_shelter("frida-sthlm", "Kvinnojouren Frida", municipality="0180", protection=2)
    env.add_shelter("hamnen-gbg", "Hamnen", municipality="1480", protection=2)
    for u in ("r1", "r2", "r3"):
        env.add_unit("frida-sthlm", u, 4)
        env.cli("shelter", "frida-sthlm").ok("vacancy", "frida-sthlm", u, "free")
    return env


def state_of(env, hid):
    return {h["hold"]: h for h in env.cli("oncall", "jour").ok("holds")["holds"]}[hid]


def test_held_accepted_confirmed(frida):
    env = frida
    social, shelter = env.cli("social", "0180"), env.cli("shelter", "frida-sthlm")
    h = social.ok("hold", "frida-sthlm", "r1", *LOW_RISK, "--ref", "KS-1")
    before = time.time() * 1000
    acc = shelter.ok("accept", h["hold"])["hold"]
    assert acc["state"] == "accepted" and acc["accepted_at"] >= h["expires_at"] - 3600 * 1000
    # Six hours (the default arrival time) from the acceptance, not 60 minutes from the hold.
    assert abs(acc["expires_at"] - (before + 6 * 3600 * 1000)) < 60 * 1000
    assert social.ok("holds")["holds"][0]["state"] == "accepted"  # the holder sees it
    done = shelter.ok("confirm", h["hold"])
    assert done["hold"]["state"] == "confirmed" and done["placement"]["state"] == "active"
    env.cli("shelter", "frida-sthlm").ok("discharge", done["placement"]["placement"])
    # Accepting with an arrival time: that time is the new expiry; more than a day is refused.
    h2 = social.ok("hold", "frida-sthlm", "r2", *LOW_RISK, "--ref", "KS-2")
    acc2 = shelter.ok("accept", h2["hold"], "--arrival-by", "+90m")["hold"]
    assert abs(acc2["expires_at"] - (time.time() * 1000 + 90 * 60 * 1000)) < 60 * 1000
    h3 = social.ok("hold", "frida-sthlm", "r3", *LOW_RISK, "--ref", "KS-3")
    refused_unchanged(env, shelter, ["accept", h3["hold"], "--arrival-by", "+25h"], "bad_request",
                      "24 hours")


@pytest.mark.parametrize("code", ["no_room", "household", "needs", "safety", "staffing",
                                  "other"])
def test_held_declined_with_each_code(frida, code):
    env = frida
    h = env.cli("social", "0180").ok("hold", "frida-sthlm", "r1", *LOW_RISK, "--ref", "KS-1")
    res = env.cli("shelter", "frida-sthlm").ok("decline", h["hold"], "--reason", code)
    assert res["hold"]["state"] == "declined" and res["hold"]["reason"] == code
    assert "note" not in res["hold"]
    declines = env.admin.ok("stats")["declines"]
    assert declines == {c: int(c == code) for c in declines}
    # A free-text reason is refused with the codes named.
    h2 = env.cli("social", "0180").ok("hold", "frida-sthlm", "r2", *LOW_RISK, "--ref", "KS-2")
    r = env.cli("shelter", "frida-sthlm")("decline", h2["hold"], "--reason", "inget rum")
    assert "no_room, household, needs, safety, staffing, other" in r.usage("--reason")
    # The server refuses it too, whatever client sends it, and the hold stays held.
    with env.connect("shelter", "frida-sthlm") as c:
        ok, e = c.request("hold.decline", {"hold": h2["hold"], "reason": "inget rum"})
    assert not ok and e["code"] == "bad_request", e
    assert "no_room, household, needs, safety, staffing, other" in e["message"]
    assert state_of(env, h2["hold"])["state"] == "held"


@pytest.mark.daemon_config({"holds": {"arrival_ttl": "2s", "sweep_interval": "100ms"}})
def test_accepted_expires_at_the_arrival_deadline(frida):
    env = frida
    social, shelter = env.cli("social", "0180"), env.cli("shelter", "frida-sthlm")
    h = social.ok("hold", "frida-sthlm", "r1", *LOW_RISK, "--ref", "KS-1")
    shelter.ok("accept", h["hold"])
    wait_for(lambda: ("frida-sthlm", "r1") in {(u["shelter"], u["unit"])
                                               for u in social.ok("free")["units"]}, 15,
             "the accepted hold to expire and free its unit")
    assert state_of(env, h["hold"])["state"] == "expired"
    assert social.ok("placements")["placements"] == []
    refused_unchanged(env, shelter, ["confirm", h["hold"]], "conflict")
    assert env.admin.ok("stats")["holds"]["expired"] == 1


def test_accepted_declined_or_released(frida):
    env = frida
    social, shelter = env.cli("social", "0180"), env.cli("shelter", "frida-sthlm")
    h = social.ok("hold", "frida-sthlm", "r1", *LOW_RISK, "--ref", "KS-1")
    shelter.ok("accept", h["hold"])
    res = shelter.ok("decline", h["hold"], "--reason", "safety", "--note", "hotet har ändrats")
    assert res["hold"]["state"] == "declined" and res["hold"]["note"] == "hotet har ändrats"
    h2 = social.ok("hold", "frida-sthlm", "r2", *LOW_RISK, "--ref", "KS-2")
    shelter.ok("accept", h2["hold"])
    assert social.ok("release", h2["hold"])["hold"]["state"] == "released"
    assert len(social.ok("free")["units"]) == 3


def test_wrong_principal_or_state_changes_nothing(frida):
    env = frida
    social, shelter = env.cli("social", "0180"), env.cli("shelter", "frida-sthlm")
    other_shelter = env.cli("shelter", "hamnen-gbg")
    h = social.ok("hold", "frida-sthlm", "r1", *LOW_RISK, "--ref", "KS-1")["hold"]
    refused_unchanged(env, other_shelter, ["accept", h], "forbidden")
    refused_unchanged(env, social, ["accept", h], "forbidden")
    refused_unchanged(env, env.cli("social", "1480"), ["release", h], "forbidden")
    shelter.ok("accept", h)
    refused_unchanged(env, shelter, ["accept", h], "conflict", "accepted")
    refused_unchanged(env, other_shelter, ["confirm", h], "forbidden")
    refused_unchanged(env, other_shelter, ["decline", h, "--reason", "other"], "forbidden")
    shelter.ok("decline", h, "--reason", "no_room")
    for args in (["accept", h], ["confirm", h], ["decline", h, "--reason", "other"]):
        refused_unchanged(env, shelter, args, "conflict", "declined")
    refused_unchanged(env, social, ["release", h], "conflict", "declined")


def test_the_shelter_sees_the_household_and_nothing_of_where_it_lives(frida):
    env = frida
    social = env.cli("social", "1480")
    h = social.ok("hold", "frida-sthlm", "r1", "--from", "1480", "--risk", "moderate",
                  "--perpetrator-in", "0380", "--exclude", "0182", "--adults", "1", "--child",
                  "14m", "--child", "6f", "--callback", "070-123 45 67", "--ref",
                  "KS-2026-0417")
    record = {x["hold"]: x for x in env.cli("shelter", "frida-sthlm").ok("holds")["holds"]}[
        h["hold"]]
    assert record["adults"] == 1
    assert record["children"] == [{"age": 14, "sex": "m"}, {"age": 6, "sex": "f"}]
    assert record["risk"] == "moderate" and record["group"] == "women"
    assert not record["pets"] and not record["wheelchair"] and "language" not in record
    assert record["callback"] == "070-123 45 67" and record["ref"] == "KS-2026-0417"
    assert record["municipality"] == "1480"
    # Nothing about where the household lives or where the perpetrator is, anywhere.
    assert not {"home", "perpetrator", "exclude"} & set(record)
    stored = str(keyspace(env, exclude=("audit", "stats", "events")))
    for code in ("0380", "0182"):
        assert code not in stored, code
    text = env.cli("shelter", "frida-sthlm")("holds")
    assert text.exit == 0


# -- intake hours -----------------------------------------------------------------------------


def stockholm_now():
    """Stockholm's local time now, by the rule Sweden keeps (CET, CEST from the last Sunday of
    March to the last Sunday of October), computed here independently of the daemon."""
    now = datetime.now(timezone.utc)

    def last_sunday(month):
        d = datetime(now.year, month, 31, 1, tzinfo=timezone.utc)
        return d - timedelta(days=(d.weekday() + 1) % 7)
    summer = last_sunday(3) <= now < last_sunday(10)
    return now + timedelta(hours=2 if summer else 1), 2 if summer else 1


def test_a_shelter_closed_now_ranks_after_one_open_now(env):
    local, _ = stockholm_now()
    days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    later = days[(local.weekday() + 2) % 7]  # the day after tomorrow, all day
    env.add_shelter("near-closed", "Nära, stängd", municipality="0184",
                    intake_hours=f"{later} 00:00-24:00")
    env.add_shelter("far-open", "Långt bort, öppen", municipality="1480")
    for sid in ("near-closed", "far-open"):
        env.add_unit(sid, "u1", 2)
        env.cli("shelter", sid).ok("vacancy", sid, "u1", "free")
    social = env.cli("social", "0180")
    res = social.ok("search", "--from", "0180", "--risk", "low")["results"]
    assert [r["shelter"] for r in res] == ["far-open", "near-closed"]
    assert res[0]["receives_from"] is None
    opening = datetime.fromisoformat(res[1]["receives_from"])
    assert opening.utcoffset() in (timedelta(hours=1), timedelta(hours=2))
    start = (local + timedelta(days=2)).replace(hour=0, minute=0, second=0, microsecond=0)
    assert opening.replace(tzinfo=None) == start.replace(tzinfo=None)
    # Planning an arrival an hour after that opening, both can receive: the nearer comes first.
    arrival = (opening + timedelta(hours=1)).isoformat()
    planned = social.ok("search", "--from", "0180", "--risk", "low", "--arrival-at",
                        arrival)["results"]
    assert [r["shelter"] for r in planned] == ["near-closed", "far-open"]
    assert all(r["receives_from"] is None for r in planned)
    assert env.show("near-closed")["intake_hours"] == f"{later} 00:00-24:00"


# -- the remembered search --------------------------------------------------------------------


def test_hold_n_holds_a_result_of_the_last_search(frida):
    env = frida
    social = env.cli("social", "0180")
    found = social.ok("search", "--from", "1480", "--risk", "moderate", "--child", "9f")
    first = hits(found)[0]
    held = social.ok("hold", "1", "--ref", "KS-N", "--callback", "070-1112233")
    assert (held["shelter"], held["unit"]) == first
    record = {h["hold"]: h for h in social.ok("holds")["holds"]}[held["hold"]]
    assert record["risk"] == "moderate" and record["children"] == [{"age": 9, "sex": "f"}]
    assert record["callback"] == "070-1112233" and record["municipality"] == "0180"
    # The file is the user's alone and holds no reference.
    files = list(env.workdir.rglob("last-search"))
    assert len(files) == 1 and (files[0].stat().st_mode & 0o077) == 0
    assert b"KS-N" not in files[0].read_bytes()
    # Another result number than the search had, or the options of a referral: usage errors.
    def usage(r, words):
        assert r.exit == 2 and r.json["error"]["code"] == "usage", r.describe()
        assert words in r.json["error"]["message"], r.describe()
    usage(social("hold", "7", "--ref", "KS-N2"), "has 3 results")
    usage(social("hold", "1", "--ref", "KS-N2", "--risk", "low"), "--risk")
    # Made with another certificate: refused.
    usage(env.cli("oncall", "jour")("hold", "1", "--ref", "KS-N3"), "another")
    # Older than 30 minutes: refused, with a word to search again.
    data = msgpack.unpackb(files[0].read_bytes(), raw=False)
    data["saved_at"] -= 31 * 60 * 1000
    files[0].write_bytes(msgpack.packb(data))
    usage(social("hold", "2", "--ref", "KS-N4"), "search again")


# -- what an attacker's run found --------------------------------------------------------------


def test_old_ids_that_look_like_personal_numbers_stay_closable(frida):
    """A hold and a placement written with ids of the old hex form that hold a personal
    identity number's digits can still be confirmed and discharged."""
    env = frida
    ns = ns_prefix(env)
    sock = env.redis.sock
    now = int(time.time() * 1000)
    hid, pid = "h" + PIN + "000000", "p" + PIN + "00000a"

    def r(*args):
        reply = redis_command(sock, *args)
        assert not reply.startswith("-"), (args, reply)
    r("HSET", f"{ns}hold:{hid}", "shelter", "frida-sthlm", "unit", "r2", "ref", "OLD-1",
      "by", "social:0180", "municipality", "0180", "state", "held", "created_at", now,
      "expires_at", now + 3600000, "risk", "low", "adults", 1, "children", "", "group", "women",
      "wheelchair", 0, "pets", 0, "substance", 0)
    r("HSET", f"{ns}unit:frida-sthlm:r2", "hold", hid)
    r("ZADD", f"{ns}holds:open", now + 3600000, hid)
    r("SADD", f"{ns}holds:by:social:0180", hid)
    for k in ("holds", "holds:s:frida-sthlm", "holds:m:0180"):
        r("ZADD", ns + k, now, hid)
    r("HSET", f"{ns}pl:{pid}", "hold", "hxxxxxxxxxxxxxxxx", "shelter", "frida-sthlm",
      "unit", "r3", "ref", "OLD-2", "by", "social:0180", "municipality", "0180",
      "state", "active", "placed_at", now)
    r("HSET", f"{ns}unit:frida-sthlm:r3", "placement", pid, "state", "occupied")
    for k in ("pls", "pls:s:frida-sthlm", "pls:m:0180"):
        r("ZADD", ns + k, now, pid)
    shelter = env.cli("shelter", "frida-sthlm")
    done = shelter.ok("confirm", hid)
    assert done["hold"]["state"] == "confirmed"
    assert not any(c.isdigit() for c in done["placement"]["placement"])
    assert shelter.ok("discharge", pid)["placement"]["state"] == "discharged"
    assert shelter.ok("discharge", done["placement"]["placement"])


def test_a_retry_after_the_hold_closed_is_a_conflict(frida):
    env = frida
    social, shelter = env.cli("social", "0180"), env.cli("shelter", "frida-sthlm")
    key = ["--idempotency-key", "retry-key-0001"]
    h = social.ok("hold", "frida-sthlm", "r1", *LOW_RISK, "--ref", "KS-R", *key)
    assert social.ok("hold", "frida-sthlm", "r1", *LOW_RISK, "--ref", "KS-R", *key)["hold"] == \
        h["hold"]
    shelter.ok("decline", h["hold"], "--reason", "staffing")
    r = refused_unchanged(env, social,
                          ["hold", "frida-sthlm", "r1", *LOW_RISK, "--ref", "KS-R", *key],
                          "conflict", "declined")
    assert "phone" not in r.stdout
    key2 = ["--idempotency-key", "retry-key-0002"]
    h2 = social.ok("hold", "frida-sthlm", "r2", *LOW_RISK, "--ref", "KS-S", *key2)
    social.ok("release", h2["hold"])
    refused_unchanged(env, social, ["hold", "frida-sthlm", "r2", *LOW_RISK, "--ref", "KS-S",
                                    *key2], "conflict", "released")


@pytest.mark.daemon_config({"holds": {"max_open": 2}})
def test_open_holds_are_capped_per_principal(frida):
    env = frida
    social = env.cli("social", "0180")
    a = social.ok("hold", "frida-sthlm", "r1", *LOW_RISK, "--ref", "C-1")
    b = social.ok("hold", "frida-sthlm", "r2", *LOW_RISK, "--ref", "C-2")
    env.cli("shelter", "frida-sthlm").ok("accept", b["hold"])  # accepted is still open
    refused_unchanged(env, social, ["hold", "frida-sthlm", "r3", *LOW_RISK, "--ref", "C-3"],
                      "limit_reached")
    # Another principal has its own cap.
    env.cli("oncall", "jour").ok("hold", "frida-sthlm", "r3", *LOW_RISK, "--ref", "C-4")
    social.ok("release", a["hold"])
    env.cli("oncall", "jour").ok("holds")
    assert social.ok("hold", "frida-sthlm", "r1", *LOW_RISK, "--ref", "C-5")


def test_vacancy_set_on_a_retired_shelter_is_a_conflict(frida):
    env = frida
    env.admin.ok("shelter", "retire", "hamnen-gbg")
    env.add_shelter("old-jour", "Gamla jouren", municipality="0180")
    env.add_unit("old-jour", "u1", 2)
    env.admin.ok("shelter", "retire", "old-jour")
    refused_unchanged(env, env.cli("shelter", "old-jour"), ["vacancy", "old-jour", "u1", "free"],
                      "conflict", "retired")


def test_a_personal_number_is_no_hold_id(frida):
    env = frida
    for args in (["release", "h-" + PIN], ["release", PIN]):
        assert "hold id" in env.cli("social", "0180")(*args).usage("hold id")
    before = keyspace(env)
    with env.connect("social", "0180") as c:
        for hid in ("h-" + PIN, PIN):
            ok, e = c.request("hold.release", {"hold": hid})
            assert not ok and e["code"] == "bad_request" and "hold id" in e["message"], e
    assert keyspace(env) == before, keyspace_diff(before, keyspace(env))
    assert re.search(PIN.encode().decode(), str(keyspace(env))) is None
