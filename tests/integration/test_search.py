"""Search through the real daemon and client against the default safety policy
(conf/policy.conf) on real municipalities: which units come back, in which order, and why the
others were ruled out."""

import time

import pytest

from conftest import wait_for, LOW_RISK
from referrals import REASONS, RESULT_KEYS, geography, hits, now_ms

# -- the safety policy, table-driven ---------------------------------------------------------

# One shelter per place, one free two-bed unit "a" each. Seen from Stockholm (0180) with the
# perpetrator in Uppsala (0380):
POLICY_FLEET = [
    # id                municipality  protection   where it lies
    ("sthlm-jour", "0180", 3),       # home
    ("nacka-jour", "0182", 3),       # borders home
    ("vasby-jour", "0114", 2),       # home county, borders neither; protection 2
    ("nynas-jour", "0192", 3),       # home county, borders neither
    ("enkoping-jour", "0381", 3),    # perpetrator's county, borders the perpetrator's
    ("norrtalje-jour", "0188", 3),   # home county, borders the perpetrator's
    ("uppsala-jour", "0380", 3),     # perpetrator
    ("norrkoping-jour", "0581", 3),  # another county (05)
    ("alvkarleby-jour", "0319", 3),  # perpetrator's county, borders neither
    ("gbg-jour", "1480", 3),         # another county (14)
    ("malmo-jour", "1280", 1),       # another county (12); protection 1
    ("lulea-jour", "2580", 2),       # another county (25); protection 2
]
ALL = [s for s, _, _ in POLICY_FLEET]

# (risk, home, perpetrator municipalities, listed exclusions,
#  expected shelters in order, expected non-zero ruled_out counts)
POLICY_CASES = [
    ("low", "0180", ["0380"], [], ALL, {}),
    ("low", "0180", ["0380"], ["1480", "0182"],
     ["sthlm-jour", "vasby-jour", "nynas-jour", "enkoping-jour", "norrtalje-jour",
      "uppsala-jour", "norrkoping-jour", "alvkarleby-jour", "malmo-jour", "lulea-jour"],
     {"safety_policy": 2}),
    ("moderate", "0180", ["0380"], [],
     ["nacka-jour", "vasby-jour", "nynas-jour", "enkoping-jour", "norrtalje-jour",
      "norrkoping-jour", "alvkarleby-jour", "gbg-jour", "malmo-jour", "lulea-jour"],
     {"safety_policy": 2}),
    ("moderate", "0180", ["0380"], ["2580"],
     ["nacka-jour", "vasby-jour", "nynas-jour", "enkoping-jour", "norrtalje-jour",
      "norrkoping-jour", "alvkarleby-jour", "gbg-jour", "malmo-jour"],
     {"safety_policy": 3}),
    ("moderate", "1480", [], [],
     ["malmo-jour", "norrkoping-jour", "enkoping-jour", "nynas-jour", "sthlm-jour",
      "vasby-jour", "nacka-jour", "uppsala-jour", "alvkarleby-jour", "norrtalje-jour",
      "lulea-jour"],
     {"safety_policy": 1}),
    ("high", "0180", ["0380"], [],
     ["vasby-jour", "nynas-jour", "norrkoping-jour", "alvkarleby-jour", "gbg-jour",
      "lulea-jour"],
     {"safety_policy": 5, "protection_level": 1}),
    ("high", "0380", [], [],
     ["vasby-jour", "alvkarleby-jour", "sthlm-jour", "nacka-jour", "nynas-jour",
      "norrkoping-jour", "gbg-jour", "lulea-jour"],
     {"safety_policy": 3, "protection_level": 1}),
    ("high", "0380", ["0180", "1480"], [],
     ["vasby-jour", "alvkarleby-jour", "nynas-jour", "norrkoping-jour", "lulea-jour"],
     {"safety_policy": 6, "protection_level": 1}),
    ("high", "0380", ["0180"], ["0192"],
     ["vasby-jour", "alvkarleby-jour", "norrkoping-jour", "gbg-jour", "lulea-jour"],
     {"safety_policy": 6, "protection_level": 1}),
    # Listed exclusions are excluded themselves, never their neighbours or their county.
    ("high", "1480", [], ["0182"],
     ["norrkoping-jour", "enkoping-jour", "nynas-jour", "sthlm-jour", "vasby-jour",
      "uppsala-jour", "alvkarleby-jour", "norrtalje-jour", "lulea-jour"],
     {"safety_policy": 2, "protection_level": 1}),
    ("severe", "1480", [], ["0180"],
     ["norrkoping-jour", "enkoping-jour", "nynas-jour", "nacka-jour", "uppsala-jour",
      "alvkarleby-jour", "norrtalje-jour"],
     {"safety_policy": 2, "protection_level": 3}),
    ("severe", "0180", ["0380"], [],
     ["norrkoping-jour", "gbg-jour"],
     {"safety_policy": 8, "protection_level": 3}),
    ("severe", "0180", ["0380"], ["0581"],
     ["gbg-jour"],
     {"safety_policy": 9, "protection_level": 3}),
    ("severe", "0380", [], [],
     ["sthlm-jour", "nacka-jour", "nynas-jour", "norrkoping-jour", "gbg-jour"],
     {"safety_policy": 4, "protection_level": 3}),
    ("severe", "1480", ["0180"], [],
     ["norrkoping-jour", "enkoping-jour", "uppsala-jour", "alvkarleby-jour"],
     {"safety_policy": 6, "protection_level": 3}),
]


def search_args(home, risk, perpetrators=(), exclude=(), *extra):
    args = ["search", "--from", home, "--risk", risk]
    for p in perpetrators:
        args += ["--perpetrator-in", p]
    for x in exclude:
        args += ["--exclude", x]
    return args + [str(e) for e in extra]


def check_results(res, home):
    """Every result has exactly the documented fields, a distance that is the rounded
    haversine distance between the centroids, and the shelter's county."""
    geo = geography()
    assert set(res) == {"results", "ruled_out"}, res
    assert set(res["ruled_out"]) == set(REASONS), res["ruled_out"]
    for r in res["results"]:
        assert set(r) == RESULT_KEYS, r
        assert r["distance_km"] == geo.distance_km(home, r["municipality"]), r
        assert r["county"] == geo.county(r["municipality"]), r
        assert isinstance(r["data_age_s"], int) and r["data_age_s"] >= 0, r


def expected_ruled_out(nonzero):
    return {reason: nonzero.get(reason, 0) for reason in REASONS}


@pytest.fixture(scope="module")
def policy_geography_holds():
    """The places chosen for the table lie where the table says they do."""
    geo = geography()
    places = {s: m for s, m, _ in POLICY_FLEET}
    assert places["nacka-jour"] in geo.borders["0180"]
    assert places["norrtalje-jour"] in geo.borders["0380"]
    assert places["enkoping-jour"] in geo.borders["0380"]
    for s in ("vasby-jour", "nynas-jour", "alvkarleby-jour", "norrtalje-jour", "enkoping-jour"):
        assert places[s] not in geo.borders["0180"], s
    for s in ("vasby-jour", "nynas-jour", "alvkarleby-jour", "nacka-jour"):
        assert places[s] not in geo.borders["0380"], s
    assert {geo.county(places[s]) for s in ("vasby-jour", "nynas-jour", "norrtalje-jour")} \
        == {"01"}
    assert {geo.county(places[s]) for s in ("enkoping-jour", "alvkarleby-jour")} == {"03"}
    return True


@pytest.fixture
def policy_fleet(env, policy_geography_holds):
    for sid, mun, prot in POLICY_FLEET:
        env.add_shelter(sid, f"Jour {sid}", municipality=mun, protection=prot)
        env.add_unit(sid, "a", 2)
        env.cli("shelter", sid).ok("vacancy", sid, "a", "free")
    return env


def test_default_policy_table(policy_fleet):
    env = policy_fleet
    geo = geography()
    social = env.cli("social", "0180")
    failures = []
    for risk, home, perps, excl, expected, ruled in POLICY_CASES:
        res = social.ok(*search_args(home, risk, perps, excl, "--limit", 50))
        check_results(res, home)
        got = [r["shelter"] for r in res["results"]]
        assert all(r["unit"] == "a" for r in res["results"])
        # The table's order is nearest first: a check on the table itself.
        dist = [geo.distance(home, dict((s, m) for s, m, _ in POLICY_FLEET)[s])
                for s in expected]
        assert dist == sorted(dist), (risk, home, perps, excl)
        if got != expected or res["ruled_out"] != expected_ruled_out(ruled):
            failures.append(f"{risk} from {home}, perpetrator in {perps}, excluded {excl}:\n"
                            f"  got      {got} {res['ruled_out']}\n"
                            f"  expected {expected} {expected_ruled_out(ruled)}")
    assert not failures, "\n".join(failures)


def test_oncall_and_admin_search_alike(policy_fleet):
    env = policy_fleet
    args = search_args("0180", "high", ["0380"], [])
    social = env.cli("social", "0180").ok(*args)
    assert hits(social) == [(s, "a") for s in ("vasby-jour", "nynas-jour", "norrkoping-jour",
                                               "alvkarleby-jour", "gbg-jour", "lulea-jour")]
    for who in (env.cli("oncall", "socialjouren-sthlm"), env.admin):
        other = who.ok(*args)
        assert hits(other) == hits(social)
        assert other["ruled_out"] == social["ruled_out"]


def test_distances_are_rounded_centroid_distances(policy_fleet):
    env = policy_fleet
    geo = geography()
    social = env.cli("social", "2580")
    res = social.ok("search", "--from", "2580", "--risk", "low", "--limit", 50)
    check_results(res, "2580")
    by_shelter = {r["shelter"]: r for r in res["results"]}
    assert by_shelter["lulea-jour"]["distance_km"] == 0
    # Values worked out here from conf/municipalities.csv with the haversine formula.
    for sid, mun, _ in POLICY_FLEET:
        assert by_shelter[sid]["distance_km"] == geo.distance_km("2580", mun), sid
    # Nearest first, from Luleå: the most distant is Malmö.
    assert res["results"][0]["shelter"] == "lulea-jour"
    assert res["results"][-1]["shelter"] == "malmo-jour"


# -- household needs ----------------------------------------------------------------------

# All protection 1 or more, around Stockholm; seen from Stockholm (0180) at risk low,
# alfa, beta and delta are 0 km away, gamma (Nacka) 13 km and epsilon (Upplands Väsby) 24 km.
NEEDS_FLEET = {
    "alfa": dict(municipality="0180", protection=1, max_children=1, languages=["sv"],
                 units=[("a1", 2, False), ("a2", 4, True)]),
    "beta": dict(municipality="0180", protection=2, boys_max_age=12, pets=True,
                 languages=["sv", "en"], units=[("b1", 3, False), ("b2", 6, False)]),
    "gamma": dict(municipality="0182", protection=3, groups=["women", "hbtqi"], substance=True,
                  pets=True, languages=["ar", "en"], max_children=3, boys_max_age=15,
                  units=[("g1", 4, True), ("g2", 1, False)]),
    "delta": dict(municipality="0180", protection=1, groups=["men"], units=[("d1", 2, False)]),
    "epsilon": dict(municipality="0114", protection=2, groups=["youth", "women"],
                    languages=["fi", "sv"], units=[("e1", 5, True)]),
}

# (extra search arguments, expected (shelter, unit) in order, non-zero ruled_out counts)
NEEDS_CASES = [
    # Same distance: the smallest unit that fits first; distance before size.
    ([], ["alfa/a1", "beta/b1", "alfa/a2", "beta/b2", "gamma/g2", "gamma/g1", "epsilon/e1"],
     {"target_group": 1}),
    (["--adults", 3], ["beta/b1", "alfa/a2", "beta/b2", "gamma/g1", "epsilon/e1"],
     {"beds": 3, "target_group": 1}),
    # Two children: alfa takes at most one; a household of three needs three beds.
    (["--child", "3f", "--child", "5f"], ["beta/b1", "beta/b2", "gamma/g1", "epsilon/e1"],
     {"beds": 3, "children_limit": 2, "target_group": 1}),
    (["--child", "1f", "--child", "2m", "--child", "4f", "--child", "6m"],
     ["beta/b2", "epsilon/e1"],
     {"beds": 6, "children_limit": 4, "target_group": 1}),
    # A boy of 13 is older than beta's limit of 12.
    (["--child", "13m"], ["alfa/a1", "alfa/a2", "gamma/g1", "epsilon/e1"],
     {"boys_age": 2, "beds": 1, "target_group": 1}),
    # A boy of exactly 12 is taken.
    (["--child", "12m"], ["alfa/a1", "beta/b1", "alfa/a2", "beta/b2", "gamma/g1", "epsilon/e1"],
     {"beds": 1, "target_group": 1}),
    # Girls are not limited by age.
    (["--child", "16f"], ["alfa/a1", "beta/b1", "alfa/a2", "beta/b2", "gamma/g1", "epsilon/e1"],
     {"beds": 1, "target_group": 1}),
    # A boy of 16 is over beta's 12 and gamma's 15; g2 also lacks a bed (counted under both).
    (["--child", "16m"], ["alfa/a1", "alfa/a2", "epsilon/e1"],
     {"boys_age": 4, "beds": 1, "target_group": 1}),
    (["--child", "15m"], ["alfa/a1", "alfa/a2", "gamma/g1", "epsilon/e1"],
     {"boys_age": 2, "beds": 1, "target_group": 1}),
    (["--wheelchair"], ["alfa/a2", "gamma/g1", "epsilon/e1"],
     {"wheelchair": 5, "target_group": 1}),
    (["--pets"], ["beta/b1", "beta/b2", "gamma/g2", "gamma/g1"],
     {"pets": 4, "target_group": 1}),
    (["--substance"], ["gamma/g2", "gamma/g1"],
     {"substance": 6, "target_group": 1}),
    (["--language", "en"], ["beta/b1", "beta/b2", "gamma/g2", "gamma/g1"],
     {"language": 4, "target_group": 1}),
    (["--language", "fi"], ["epsilon/e1"],
     {"language": 7, "target_group": 1}),
    (["--group", "hbtqi"], ["gamma/g2", "gamma/g1"], {"target_group": 6}),
    (["--group", "men"], ["delta/d1"], {"target_group": 7}),
    (["--group", "youth"], ["epsilon/e1"], {"target_group": 7}),
    (["--group", "women"],
     ["alfa/a1", "beta/b1", "alfa/a2", "beta/b2", "gamma/g2", "gamma/g1", "epsilon/e1"],
     {"target_group": 1}),
    (["--adults", 2, "--child", "4m", "--wheelchair", "--pets"], ["gamma/g1"],
     {"beds": 3, "wheelchair": 5, "pets": 4, "target_group": 1}),
]


@pytest.fixture
def needs_fleet(env):
    for sid, spec in NEEDS_FLEET.items():
        spec = dict(spec)
        units = spec.pop("units")
        env.add_shelter(sid, f"Jour {sid}", **spec)
        for uid, beds, acc in units:
            env.add_unit(sid, uid, beds, accessible=acc)
            env.cli("shelter", sid).ok("vacancy", sid, uid, "free")
    return env


def test_household_needs_table(needs_fleet):
    env = needs_fleet
    social = env.cli("social", "0180")
    failures = []
    for extra, expected, ruled in NEEDS_CASES:
        res = social.ok("search", "--from", "0180", "--risk", "low", *map(str, extra))
        check_results(res, "0180")
        got = [f"{s}/{u}" for s, u in hits(res)]
        if got != expected or res["ruled_out"] != expected_ruled_out(ruled):
            failures.append(f"search {extra}:\n  got      {got} {res['ruled_out']}\n"
                            f"  expected {expected} {expected_ruled_out(ruled)}")
    assert not failures, "\n".join(failures)


def test_no_match_counts_every_reason(needs_fleet):
    """A household that nothing fits: every free unit is counted under each reason it fails."""
    env = needs_fleet
    res = env.cli("oncall", "socialjouren-sthlm").ok(
        "search", "--from", "0180", "--risk", "severe", "--group", "men", "--adults", 2,
        "--child", "16m", "--child", "3f", "--child", "5f", "--child", "7f", "--wheelchair",
        "--pets", "--substance", "--language", "fi")
    check_results(res, "0180")
    assert res["results"] == []
    assert res["ruled_out"] == {
        "safety_policy": 8,      # every unit is in Stockholm county (severe)
        "protection_level": 6,   # all but gamma's two units are below protection 3
        "beds": 7,               # six people: only b2 has six beds
        "children_limit": 4,     # alfa takes one child, gamma three
        "boys_age": 4,           # beta to 12, gamma to 15
        "target_group": 7,       # only delta takes men
        "wheelchair": 5,         # a1, b1, b2, g2, d1
        "pets": 4,               # alfa, delta, epsilon
        "substance": 6,          # all but gamma
        "language": 7,           # only epsilon speaks Finnish
        "competence": 0,         # nothing was needed
        "permit": 0,             # none of them is protected housing
    }


# -- what is not offered ------------------------------------------------------------------


def test_unavailable_units_are_not_offered(env):
    env.add_shelter("p1", "Jour ett", municipality="0180")
    env.add_unit("p1", "u1", 2)
    env.add_unit("p1", "u2", 3)
    env.add_unit("p1", "u3", 4)
    env.add_shelter("p2", "Jour två", municipality="0182")
    env.add_unit("p2", "u1", 2)
    env.add_shelter("p3", "Jour tre", municipality="0114")
    env.add_unit("p3", "u1", 2)
    for sid, uid in (("p1", "u1"), ("p1", "u2"), ("p2", "u1"), ("p3", "u1")):
        env.cli("shelter", sid).ok("vacancy", sid, uid, "free")
    social = env.cli("social", "0180")

    def found(*extra):
        res = social.ok("search", "--from", "0180", "--risk", "low", *map(str, extra))
        check_results(res, "0180")
        return [f"{s}/{u}" for s, u in hits(res)], res["ruled_out"]

    # p1/u3 was never opened: a closed unit is not offered.
    assert found()[0] == ["p1/u1", "p1/u2", "p2/u1", "p3/u1"]
    assert found("--limit", 1)[0] == ["p1/u1"]
    assert found("--limit", 3)[0] == ["p1/u1", "p1/u2", "p2/u1"]
    # Only units offered count as ruled out: four free units, none accessible.
    assert found("--wheelchair")[1]["wheelchair"] == 4

    hold = social.ok("hold", "p1", "u1", *LOW_RISK, "--ref", "ARENDE-1")
    assert found()[0] == ["p1/u2", "p2/u1", "p3/u1"]
    assert found("--wheelchair")[1]["wheelchair"] == 3

    env.cli("shelter", "p1").ok("confirm", hold["hold"])  # u1 is now occupied by a placement
    env.cli("shelter", "p1").ok("vacancy", "p1", "u2", "occupied")
    assert found()[0] == ["p2/u1", "p3/u1"]

    env.cli("shelter", "p2").ok("intake", "pause", "p2")
    results, ruled = found()
    assert results == ["p3/u1"]
    assert found("--wheelchair")[1]["wheelchair"] == 1  # a paused shelter is not considered
    assert env.show("p2")["paused"] is True

    env.cli("shelter", "p2").ok("intake", "resume", "p2")
    assert found()[0] == ["p2/u1", "p3/u1"]

    env.admin.ok("shelter", "retire", "p3")
    assert found()[0] == ["p2/u1"]
    assert found("--wheelchair")[1]["wheelchair"] == 1

    env.cli("shelter", "p2").ok("vacancy", "p2", "u1", "closed")
    results, ruled = found()
    assert results == [] and ruled == expected_ruled_out({})


def test_limit(env):
    """At most 20 results unless the search asks for another number; ruled_out counts every
    free unit whatever the limit."""
    env.add_shelter("stor", "Stora jouren", municipality="0182")
    env.add_shelter("liten", "Lilla jouren", municipality="0180")
    stor, liten = env.cli("shelter", "stor"), env.cli("shelter", "liten")
    for i in range(24):
        env.add_unit("stor", f"s{i:02d}", 1 + i % 6)
        stor.ok("vacancy", "stor", f"s{i:02d}", "free")
    env.add_unit("liten", "x", 6)
    liten.ok("vacancy", "liten", "x", "free")
    social = env.cli("social", "0180")
    # Nearest first (liten is in Stockholm itself), then fewest beds, then unit id.
    order = [("liten", "x")] + sorted((("stor", f"s{i:02d}") for i in range(24)),
                                      key=lambda su: (1 + int(su[1][1:]) % 6, su[1]))
    res = social.ok("search", "--from", "0180", "--risk", "low")
    check_results(res, "0180")
    assert hits(res) == order[:20]
    res = social.ok("search", "--from", "0180", "--risk", "low", "--limit", 200)
    assert hits(res) == order
    res = social.ok("search", "--from", "0180", "--risk", "low", "--limit", 3, "--adults", 5)
    assert hits(res) == [("liten", "x"), ("stor", "s04"), ("stor", "s10")]
    assert res["ruled_out"] == expected_ruled_out({"beds": 16})
    social("search", "--from", "0180", "--risk", "low", "--limit", 0).usage("--limit")
    social("search", "--from", "0180", "--risk", "low", "--limit", 201).usage("--limit")


# -- freshness ------------------------------------------------------------------------------


@pytest.mark.daemon_config({"holds": {"stale_after": "2s"}})
def test_stale_shelters_rank_after_fresh(env):
    # From Stockholm: near (0 km), mid (Nacka, 13 km), far (Upplands Väsby, 24 km).
    for sid, mun in (("near", "0180"), ("mid", "0182"), ("far", "0114")):
        env.add_shelter(sid, f"Jour {sid}", municipality=mun)
        env.add_unit(sid, "a", 2)
        env.cli("shelter", sid).ok("vacancy", sid, "a", "free")
    social = env.cli("social", "0180")

    def search():
        res = social.ok("search", "--from", "0180", "--risk", "low")
        check_results(res, "0180")
        return res["results"]

    fresh = search()
    assert [r["shelter"] for r in fresh] == ["near", "mid", "far"]
    assert all(r["stale"] is False and r["data_age_s"] <= 1 for r in fresh), fresh

    def all_stale():
        rs = search()
        return rs if all(r["stale"] for r in rs) else None

    stale = wait_for(all_stale, 10, "every shelter to turn stale", interval=0.2)
    assert [r["shelter"] for r in stale] == ["near", "mid", "far"]
    assert all(r["data_age_s"] >= 2 for r in stale), stale

    # Confirming makes a shelter fresh again; a vacancy change does too.
    t0 = time.monotonic()
    env.cli("shelter", "far").ok("vacancy", "confirm", "far")
    env.cli("shelter", "mid").ok("vacancy", "mid", "a", "free")
    results = search()
    assert time.monotonic() - t0 < 1.5, "too slow to search within stale_after of the change"
    assert [(r["shelter"], r["stale"]) for r in results] == \
        [("mid", False), ("far", False), ("near", True)], results
    by = {r["shelter"]: r for r in results}
    assert by["mid"]["data_age_s"] <= 1 and by["far"]["data_age_s"] <= 1
    assert by["near"]["data_age_s"] >= 2
    # Stale or not, the distance is the same.
    assert [r["distance_km"] for r in results] == [13, 24, 0]

    # data_age_s counts from updated_at, the last change or confirmation.
    show = env.show("near")
    age = (now_ms() - show["updated_at"]) // 1000
    assert abs(show["data_age_s"] - age) <= 1
    assert show["stale"] is True



def test_zero_limits_and_changed_limits(env):
    """A limit of 0 is a limit (no children; no boys older than 0), unlike an absent one; a
    changed limit applies to the next search."""
    env.add_shelter("noll", "Nolljouren", municipality="0180", max_children=0)
    env.add_unit("noll", "a", 4)
    env.cli("shelter", "noll").ok("vacancy", "noll", "a", "free")
    env.add_shelter("pojk", "Pojkjouren", municipality="0182", boys_max_age=0)
    env.add_unit("pojk", "a", 4)
    env.cli("shelter", "pojk").ok("vacancy", "pojk", "a", "free")
    social = env.cli("social", "0180")

    def found(*extra):
        res = social.ok("search", "--from", "0180", "--risk", "low", *map(str, extra))
        check_results(res, "0180")
        return [s for s, _ in hits(res)], res["ruled_out"]

    assert found() == (["noll", "pojk"], expected_ruled_out({}))
    assert found("--child", "0m") == (["pojk"], expected_ruled_out({"children_limit": 1}))
    assert found("--child", "1m") == ([], expected_ruled_out({"children_limit": 1,
                                                               "boys_age": 1}))
    assert found("--child", "9f") == (["pojk"], expected_ruled_out({"children_limit": 1}))

    env.admin.ok("shelter", "update", "noll", "--max-children", 2)
    env.admin.ok("shelter", "update", "pojk", "--boys-max-age", 12)
    assert found("--child", "12m", "--child", "3f") == (["noll", "pojk"],
                                                        expected_ruled_out({}))
    assert found("--child", "13m") == (["noll"], expected_ruled_out({"boys_age": 1}))
    assert found("--child", "1f", "--child", "2f", "--child", "3f") == \
        (["pojk"], expected_ruled_out({"children_limit": 1}))
    env.admin.ok("shelter", "update", "noll", "--max-children", 20)
    env.admin.ok("shelter", "update", "pojk", "--boys-max-age", 17)
    assert found("--child", "17m", "--child", "1f", "--child", "2f") == \
        (["noll", "pojk"], expected_ruled_out({}))
    s = env.show("pojk")
    assert s["boys_max_age"] == 17 and s["max_children"] is None


def test_searches_are_counted_for_follow_up(needs_fleet):
    """Every search is counted, a search that finds nothing is counted with each reason that
    ruled units out, and the counts reach `stats` without the searches touching Redis."""
    env = needs_fleet
    before = env.admin.ok("stats")
    who = env.cli("social", "0180")
    assert who.ok("search", "--from", "0180", "--risk", "low")["results"]
    for _ in range(2):
        res = who.ok("search", "--from", "0180", "--risk", "severe", "--child", "16m")
        assert res["results"] == []
    ruled = {r for r, n in res["ruled_out"].items() if n}
    assert "safety_policy" in ruled

    def counted():
        s = env.admin.ok("stats")
        return s if s["searches"] == before["searches"] + 3 else None
    after = wait_for(counted, 10, "the searches to be counted")
    assert after["no_match"] == before["no_match"] + 2
    for reason, n in after["ruled_out"].items():
        assert n == before["ruled_out"][reason] + (2 if reason in ruled else 0), reason
