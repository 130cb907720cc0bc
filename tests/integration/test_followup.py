"""Follow-up statistics (`fristad stats` with a follow-up option, op `followup`): a scenario with
known counts across two months, checked cell by cell for exact values and suppression, for a
municipality and a county, in JSON, CSV and the table for people; the month boundary in Swedish
time; who may see which area; and that the counts outlive the records.

Redis and the daemon run with a shifted wall clock (timeshift.c, preloaded), both reading one
shift file, so the test walks them through March and April 2027 (the daemon's certificates and
revocation list are still valid then) and asks in May. The clients run on the real clock. Each
step sets the clock to a moment of Swedish local time given with its offset."""

import csv
import datetime
import io
import os
import subprocess
import time
from pathlib import Path

import msgpack
import pytest

from conftest import ADMIN, SOURCE_ROOT, wait_for
from referrals import geography
from security import ns_prefix, redis

TIMESHIFT = Path(os.environ.get("FRISTAD_TIMESHIFT") or
                 SOURCE_ROOT / "build/tests/integration/libtimeshift.so")

pytestmark = pytest.mark.skipif(not TIMESHIFT.exists(), reason=f"{TIMESHIFT} is not built")

SHELTER = "s-sthlm"
UNITS = [f"a{i}" for i in range(1, 9)]
LOW = {"risk": "low"}
REASONS = ["safety_policy", "protection_level", "beds", "children_limit", "boys_age",
           "target_group", "wheelchair", "pets", "substance", "language", "competence",
           "permit"]
CODES = ["no_room", "household", "needs", "safety", "staffing", "other"]


class Clock:
    """The shifted wall clock of Redis and the daemon."""

    def __init__(self, path):
        self.path = path
        self.path.write_text("+0\n")
        self.env = {"LD_PRELOAD": str(TIMESHIFT), "TIMESHIFT_FILE": str(path)}

    def set(self, iso):
        """Moves the clock to `iso` (with its offset) from now on, running from there."""
        target = datetime.datetime.fromisoformat(iso).timestamp()
        tmp = self.path.with_suffix(".new")
        tmp.write_text(f"{target - time.time():+.3f}\n")
        tmp.replace(self.path)  # whole, never half written


@pytest.fixture
def fake(env_unstarted):
    """(env, clock): Redis and fristadd on the shifted clock, counts flushed every 2 s."""
    env = env_unstarted
    clock = Clock(env.workdir / "timeshift")
    wrapper = ["env", *(f"{k}={v}" for k, v in clock.env.items())]
    env.redis.wrapper = wrapper
    # Under AddressSanitizer the preloaded library stands before the ASan runtime.
    env.daemon.wrapper = wrapper + [
        "ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:verify_asan_link_order=0"]
    env.daemon.update_config({"holds": {"sweep_interval": "2s"}})
    clock.set("2027-03-10T10:00:00+01:00")
    env.start()
    return env, clock


def counter(env, month, mun, field):
    """A raw follow-up counter in Redis: the exact count behind a cell shown as <3."""
    with redis(env) as r:
        v = r("HGET", f"{ns_prefix(env)}fu:{month}:{mun}", field)
    return int(v) if v is not None else 0


def wait_counter(env, month, mun, field, want, what):
    wait_for(lambda: counter(env, month, mun, field) == want, 15,
             f"{what}: fu:{month}:{mun} {field} == {want}",
             detail=lambda: f"it is {counter(env, month, mun, field)}")


def hold(conn, home, unit, ref, children=(), **extra):
    args = {**LOW, "home": home, "shelter": SHELTER, "unit": unit, "ref": ref, **extra}
    if children:
        args["children"] = [{"age": a, "sex": s} for a, s in children]
    return conn.call("hold", args)["hold"]


def scenario(env, clock):
    """March and April 2027 for the municipalities 0180, 0114 and 0115 (all in county 01)."""
    admin = env.connect(*ADMIN)
    admin.call("shelter.add", {"shelter": SHELTER, "name": "Jouren i stan", "kind": "kvinnojour",
                               "municipality": "0180", "protection": 1, "phone": "08-555 010 10"})
    for u in UNITS:
        admin.call("unit.add", {"shelter": SHELTER, "unit": u, "beds": 4})
    shelter = env.connect("shelter", SHELTER)
    for u in UNITS:
        shelter.call("vacancy.set", {"shelter": SHELTER, "unit": u, "state": "free"})
    sthlm, vasby = env.connect("social", "0180"), env.connect("social", "0114")
    oncall = env.connect("oncall", "jour-sthlm")

    # 10 March, 10:00 (CET). Three searches that find units, three that find none (no unit is
    # wheelchair accessible): 0180 3, 0114 3 with the reason wheelchair.
    for _ in range(3):
        assert sthlm.call("search", {**LOW, "home": "0180"})["results"]
    for _ in range(3):
        r = vasby.call("search", {**LOW, "home": "0114", "wheelchair": True})
        assert not r["results"] and r["ruled_out"]["wheelchair"] == 8
    # Holds: 0180 five, 0114 two (they will expire), 0115 one by on-call (released).
    h = [hold(sthlm, "0180", "a1", "KS-1", [(2, "f"), (4, "m"), (14, "m")]),
         hold(sthlm, "0180", "a2", "KS-2", [(5, "f"), (9, "m")]),
         hold(sthlm, "0180", "a3", "KS-3"),
         hold(sthlm, "0180", "a4", "KS-4"),
         hold(sthlm, "0180", "a5", "KS-5")]
    hold(vasby, "0114", "a6", "VA-1")
    hold(vasby, "0114", "a7", "VA-2")
    k = hold(oncall, "0115", "a8", "VT-1", municipality="0115")
    oncall.call("hold.release", {"hold": k})

    clock.set("2027-03-10T10:05:00+01:00")
    shelter.call("hold.decline", {"hold": h[3], "reason": "no_room"})
    shelter.call("hold.decline", {"hold": h[4], "reason": "household"})
    # Accepted 10, 20 and 30 minutes after the holds were made (median 20), confirmed after
    # 40, 50 and 60 (median 50). Half a minute more than the whole minutes: making the holds
    # took some seconds of real time after 10:00.
    for i, at in enumerate(("10:10:30", "10:20:30", "10:30:30")):
        clock.set(f"2027-03-10T{at}+01:00")
        shelter.call("hold.accept", {"hold": h[i]})
    placements = []
    for i, at in enumerate(("10:40:30", "10:50:30", "11:00:30")):
        clock.set(f"2027-03-10T{at}+01:00")
        placements.append(shelter.call("hold.confirm", {"hold": h[i]})["placement"]["placement"])
    # The 0114 holds ran out at 11:00; the sweep counts them.
    clock.set("2027-03-10T11:30:00+01:00")
    wait_counter(env, "2027-03", "0114", "expiries", 2, "the sweep expiring the 0114 holds")

    # The turn of the month in Swedish time, 22:00 UTC on 31 March (summer time since the
    # 28th). A hold and a search a minute before count in March, those half a minute after in
    # April, although it is still March in UTC. The search just before midnight reaches the
    # store after it (counts go out every 2 s) and still counts in March.
    clock.set("2027-03-31T23:59:00+02:00")
    hold(sthlm, "0180", "a4", "KS-6")
    clock.set("2027-03-31T23:59:58+02:00")
    sthlm.call("search", {**LOW, "home": "0180"})
    clock.set("2027-04-01T00:00:30+02:00")
    hold(sthlm, "0180", "a5", "KS-7")
    sthlm.call("search", {**LOW, "home": "0180"})
    wait_counter(env, "2027-03", "0180", "searches", 4, "the last March search")
    wait_counter(env, "2027-04", "0180", "searches", 1, "the first April search")

    # 3 April: the three households leave after 24 nights each; the two holds have expired.
    clock.set("2027-04-03T12:00:00+02:00")
    for p in placements:
        shelter.call("placement.discharge", {"placement": p})
    wait_counter(env, "2027-04", "0180", "expiries", 2, "the sweep expiring the April holds")

    # 2 May: March and April are reported; every record is past its reference retention.
    clock.set("2027-05-02T10:00:00+02:00")
    wait_for(lambda: not sthlm.call("holds.list")["holds"], 15,
             "the closed holds to be deleted after the reference retention")
    assert not sthlm.call("placements.list")["placements"]
    for c in (admin, shelter, sthlm, vasby, oncall):
        c.close()


def plain(cli, *args):
    """Runs the client without --json (CSV, or the table for people); returns its stdout."""
    argv = cli.argv(*args)
    argv.remove("--json")
    out = subprocess.run(argv, capture_output=True, text=True, env=cli.env.cli_environ(),
                         timeout=30)
    assert out.returncode == 0, (argv, out.stderr)
    return out.stdout


def month(doc, name):
    [m] = [m for m in doc["months"] if m["month"] == name]
    return m


def below3(**shown):
    """A month in which every cell is "<3" but the ones named (nested ones as "reasons",
    "declines", "children" maps)."""
    reasons = shown.pop("reasons", {})
    declines = shown.pop("declines", {})
    children = shown.pop("children", {})
    m = {k: "<3" for k in ("searches", "no_match", "holds", "acceptances", "expiries",
                           "placements", "discharges", "median_minutes_to_acceptance",
                           "median_minutes_to_arrival", "nights")}
    m.update(shown)
    m["no_match_reasons"] = {r: reasons.get(r, "<3") for r in REASONS}
    m["declines"] = {c: declines.get(c, "<3") for c in CODES}
    m["children_placed"] = {b: children.get(b, "<3") for b in ("0-6", "7-12", "13-17")}
    return m


# What each area shows: exact counts of 3 and more, "<3" below, "x" where a county cell
# would give a municipality's "<3" away.
STHLM_MARCH = below3(searches=4, holds=6, acceptances=3, placements=3,
                     median_minutes_to_acceptance=20, median_minutes_to_arrival=50,
                     children={"0-6": 3})
STHLM_APRIL = below3(discharges=3, nights=72)
VASBY_MARCH = below3(searches=3, no_match=3, reasons={"wheelchair": 3})
# County 01: 0180 and 0114 have 3 searches or more and the 24 other municipalities none, so
# the county's 7 would tell that they had none: x. The 9 holds are 6 (0180) and 3 hidden in
# 25 municipalities (0114: 2, 0115: 1): shown.
COUNTY_MARCH = below3(searches="x", no_match="x", reasons={"wheelchair": "x"}, holds=9,
                      acceptances="x", placements="x", median_minutes_to_acceptance="x",
                      median_minutes_to_arrival="x", children={"0-6": "x"})
COUNTY_APRIL = below3(discharges="x", nights="x")


def test_counts_by_month_and_area(fake):
    env, clock = fake
    scenario(env, clock)

    # The exact counts behind some "<3" cells: 1 and 2.
    for m, mun, field, want in (("2027-03", "0180", "declines:no_room", 1),
                                ("2027-03", "0180", "declines:household", 1),
                                ("2027-03", "0180", "children:7-12", 1),
                                ("2027-03", "0180", "children:13-17", 1),
                                ("2027-03", "0114", "holds", 2),
                                ("2027-03", "0114", "expiries", 2),
                                ("2027-03", "0115", "holds", 1),
                                ("2027-04", "0180", "holds", 1),
                                ("2027-04", "0180", "searches", 1),
                                ("2027-04", "0180", "expiries", 2),
                                ("2027-03", "0180", "no_match", 0)):
        assert counter(env, m, mun, field) == want, (m, mun, field)

    # Social services: their own municipality by default, the latest twelve months.
    sthlm = env.cli("social", "0180")
    doc = sthlm.ok("stats", "--from", "2026-05")
    assert doc["municipality"] == "0180"
    assert (doc["from_month"], doc["to_month"]) == ("2026-05", "2027-04")
    assert [m["month"] for m in doc["months"]] == [f"2026-{i:02}" for i in range(5, 13)] + \
        [f"2027-{i:02}" for i in range(1, 5)]
    assert month(doc, "2027-03") == {"month": "2027-03", **STHLM_MARCH}
    assert month(doc, "2027-04") == {"month": "2027-04", **STHLM_APRIL}
    assert month(doc, "2027-02") == {"month": "2027-02", **below3()}
    assert sthlm.ok("followup")["months"] == doc["months"][-12:]
    # Twelve months for people: two tables of six, within 100 columns.
    table = plain(sthlm, "followup")
    assert table.count("2026-11") == 1 and table.count("\nSearches") == 2, table
    assert max(len(line) for line in table.splitlines()) <= 100, table

    # The same as CSV: one line a month, the cells as in JSON.
    rows = list(csv.DictReader(io.StringIO(plain(sthlm, "stats", "--from", "2027-03", "--to",
                                                 "2027-04", "--csv"))))
    assert [r["month"] for r in rows] == ["2027-03", "2027-04"]
    march = rows[0]
    assert march["municipality"] == "0180"
    assert (march["searches"], march["holds"], march["acceptances"], march["placements"]) == \
        ("4", "6", "3", "3")
    assert (march["median_minutes_to_acceptance"], march["median_minutes_to_arrival"]) == \
        ("20", "50")
    assert (march["children_placed_0_6"], march["children_placed_7_12"],
            march["children_placed_13_17"]) == ("3", "<3", "<3")
    assert march["declines_no_room"] == "<3" and march["declines_household"] == "<3"
    assert march["no_match_reasons_wheelchair"] == "<3" and march["nights"] == "<3"
    assert (rows[1]["discharges"], rows[1]["nights"], rows[1]["holds"]) == ("3", "72", "<3")
    assert len(rows[0]) == 2 + 10 + len(REASONS) + 6 + 3  # area, month, measures, reasons, codes, ages

    # Another municipality and the county, for the admin; on-call sees any too.
    admin = env.admin
    vasby = admin.ok("stats", "--municipality", "Upplands Väsby", "--from", "2027-03",
                     "--to", "2027-03")
    assert vasby["municipality"] == "0114"
    assert month(vasby, "2027-03") == {"month": "2027-03", **VASBY_MARCH}
    county = admin.ok("stats", "--county", "01", "--from", "2027-03", "--to", "2027-04")
    assert county["county"] == "01" and "municipality" not in county
    assert month(county, "2027-03") == {"month": "2027-03", **COUNTY_MARCH}
    assert month(county, "2027-04") == {"month": "2027-04", **COUNTY_APRIL}
    assert env.cli("oncall", "jour-sthlm").ok("stats", "--county", "Stockholms län", "--from",
                                              "2027-03", "--to", "2027-04") == county
    rows = list(csv.DictReader(io.StringIO(plain(admin, "stats", "--county", "01", "--from",
                                                 "2027-03", "--to", "2027-04", "--csv"))))
    assert [(r["county"], r["month"], r["searches"], r["holds"], r["expiries"]) for r in rows] \
        == [("01", "2027-03", "x", "9", "<3"), ("01", "2027-04", "<3", "<3", "<3")]

    # For people: a table of measures by month, the markers as they are.
    table = plain(admin, "stats", "--county", "01", "--from", "2027-03", "--to", "2027-04")
    lines = {ln.split("  ")[0].rstrip(): ln.split() for ln in table.splitlines()}
    assert lines["Holds"][-2:] == ["9", "<3"], table
    assert lines["Searches"][-2:] == ["x", "<3"], table
    assert "Stockholms län (01)" in table

    # The operator's running counters keep their form for scripts.
    legacy = admin.ok("stats")
    assert legacy["searches"] == 8 and legacy["no_match"] == 3
    assert legacy["holds"]["made"] == 10 and legacy["holds"]["expired"] == 4
    assert legacy["declines"]["no_room"] == 1 and legacy["placements"]["discharged"] == 3


def counts_of(month_cells):
    """The count cells of a month as {measure: value}, nested ones flattened; medians and
    nights, which are no counts, left out."""
    out = {}
    for k, v in month_cells.items():
        if isinstance(v, dict):
            out.update({f"{k}.{sub}": x for sub, x in v.items()})
        elif k not in ("month", "nights") and not k.startswith("median"):
            out[k] = v
    return out


def forced_cells(county_value, shown, k):
    """What an attacker who knows the rule (followup.h) learns from a county cell about k
    municipality cells shown as "<3" (each 0, 1 or 2) when the others sum to `shown`: the
    values that some hidden cell must have, whichever total of the hidden ones is possible."""
    def possible(r):
        total = shown + r
        if county_value == "<3":
            return total < 3
        if county_value == "x":
            return total >= 3 and (k == 1 or r <= 1 or r >= 2 * k - 1)
        return total == county_value
    totals = [r for r in range(0, 2 * k + 1) if possible(r)]
    assert totals, (county_value, shown, k)  # what the server sent is consistent
    # A hidden cell may be v when the other k - 1 can make up the rest of some total.
    values = {v for r in totals for v in (0, 1, 2) if 0 <= r - v <= 2 * (k - 1)}
    return values if len(values) == 1 else set()


def test_differences_give_no_cell_away(fake):
    """The attacks on suppression, performed: a county minus its municipalities (knowing the
    rule that hides county cells), the same month asked for in two overlapping periods, and a
    month asked for before it has ended."""
    env, clock = fake
    scenario(env, clock)
    muns = sorted(c for c, p in geography().places.items() if p["county"] == "01")
    assert len(muns) == 26
    with env.connect(*ADMIN) as admin:
        def ask(**area):
            return admin.call("followup", {**area, "from_month": "2027-03",
                                           "to_month": "2027-04"})["months"]
        county = ask(county="01")
        per_mun = {m: ask(municipality=m) for m in muns}
        for i, name in enumerate(("2027-03", "2027-04")):
            whole = counts_of(county[i])
            parts = {m: counts_of(per_mun[m][i]) for m in muns}
            for measure, value in whole.items():
                cells = [parts[m][measure] for m in muns]
                hidden = [c for c in cells if c == "<3"]
                shown = sum(c for c in cells if c != "<3")
                if hidden:
                    assert not forced_cells(value, shown, len(hidden)), (name, measure, value)
        # The attack is real: were the county's 7 searches shown, the 24 municipalities
        # without one (hidden as "<3") would be known to have had none.
        assert forced_cells(7, 7, 24) == {0}
        # Two overlapping periods: March alone is March as part of March-April, and no total
        # over months is given to subtract.
        march = admin.call("followup", {"county": "01", "from_month": "2027-03",
                                        "to_month": "2027-03"})["months"]
        assert march == county[:1]
        assert not any("total" in k for m in county for k in counts_of(m))
        # The month so far, asked twice, would tell what happened in between: not reported.
        ok, err = admin.request("followup", {"county": "01", "to_month": "2027-05"})
        assert not ok and err["code"] == "bad_request"


def test_who_sees_what_and_bad_months(fake):
    env, clock = fake
    clock.set("2027-05-02T10:00:00+02:00")
    sthlm = env.cli("social", "0180")
    # Social services see their own municipality only; a county holds others.
    assert sthlm("stats", "--municipality", "0114").refused("forbidden")
    assert sthlm("stats", "--county", "01").refused("forbidden")
    assert sthlm.ok("stats", "--municipality", "Stockholm")["municipality"] == "0180"
    # A shelter sees none; the admin and on-call must name the area.
    assert env.cli("shelter", "s-x")("stats", "--municipality", "0180").refused("forbidden")
    err = env.admin("stats", "--from", "2027-01").refused("bad_request")
    assert "municipality" in err["message"] and "county" in err["message"]
    # A month not yet reported, and months the rules refuse before sending.
    err = sthlm("stats", "--to", "2027-05").refused("bad_request")
    assert "2027-04" in err["message"]
    assert env.cli("social", "0180")("stats", "--from", "2027-4").usage("--from")
    sthlm("stats", "--from", "2027-03", "--to", "2027-01").usage("--from")
    sthlm("stats", "--from", "2024-01", "--to", "2027-01").usage("36 months")
    sthlm("stats", "--csv", "--json").usage("--csv")
    env.admin("audit", "--csv").usage("--csv")
    sthlm("stats", "--municipality", "0114", "--county", "14").usage("--municipality")
    # The daemon is alive and served.
    assert sthlm.ok("whoami")["id"] == "0180"


def test_search_counts_survive_a_restart_and_count_once(env_unstarted):
    """Searches counted in memory reach the store when the daemon stops (SIGTERM), and a batch
    sent again after a lost reply is added once."""
    env = env_unstarted
    env.daemon.update_config({"holds": {"sweep_interval": "60s"}})  # no flush by the timer
    env.start()
    with env.connect("social", "0180") as c:
        for _ in range(5):
            c.call("search", {**LOW, "home": "0180"})
    env.daemon.restart()
    months = {k.decode() for k in redis(env).keys(ns_prefix(env) + "fu:*:0180")}
    assert len(months) == 1, months
    [key] = months
    with redis(env) as r:
        assert int(r("HGET", key, "searches")) == 5
        # The store adds a batch once by its daemon id and number, however often it comes.
        envelope = msgpack.packb({"caller": "system:counts", "op": "search_stat", "args": {
            "daemon": "dtest", "batch": 1, "cells": [
                {"month": key.split(":")[-2], "municipality": "0180", "searches": 2,
                 "no_match": 0, "reasons": {}}]}})
        for _ in range(3):
            r("FCALL", "fristad_search_stat", 1, ns_prefix(env) + "ver", envelope)
        assert int(r("HGET", key, "searches")) == 7
        assert int(r("HGET", ns_prefix(env) + "stats", "searches")) == 7


def test_store_months_are_swedish_time(env_unstarted):
    """The Redis Functions have no time zones: they compute Swedish local time by the EU rule
    (fristad.lua, stockholm_month). Here that code runs in Redis against the system's time zone
    database on both sides of every change of month and of summer time from 2000 to 2099."""
    from zoneinfo import ZoneInfo
    env = env_unstarted
    env.redis.start()
    lua = (SOURCE_ROOT / "daemon/fristad.lua").read_text()
    code = lua[lua.index("local function days_from_civil"):lua.index("-- Minutes in a histogram")]
    script = code + """
local out = {}
for i, ms in ipairs(ARGV) do
    out[i] = stockholm_month(tonumber(ms)) .. ' ' .. stockholm_day(tonumber(ms))
end
return out
"""
    zone = ZoneInfo("Europe/Stockholm")
    moments = []
    for year in range(2000, 2100):
        for mon in range(1, 13):
            start = datetime.datetime(year, mon, 1, tzinfo=zone).timestamp()
            moments += [start - 1, start]
        for mon in (3, 10):  # summer time begins and ends at 01:00 UTC on the last Sunday
            last = datetime.datetime(year, mon, 31, 1, tzinfo=datetime.timezone.utc)
            edge = (last - datetime.timedelta(days=(last.weekday() + 1) % 7)).timestamp()
            moments += [edge - 1, edge, edge + 3600 * 23]
    want = []
    for t in moments:
        local = datetime.datetime.fromtimestamp(t, zone)
        day = (local.date() - datetime.date(1970, 1, 1)).days
        want.append(f"{local.year:04}-{local.month:02} {day}")
    with redis(env) as r:
        got = [g.decode() for g in r("EVAL", script, 0, *[int(t * 1000) for t in moments])]
    wrong = [(m, g, w) for m, g, w in zip(moments, got, want) if g != w]
    assert not wrong, wrong[:5]
    assert len(moments) == 3000
