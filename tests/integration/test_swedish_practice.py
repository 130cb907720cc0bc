"""Swedish practice in the data: a referral's needed competences, who runs a shelter and its IVO
permit (since 1 April 2024 a non-profit's or company's protected housing needs one, a
municipality's own must be registered), who sees the permit, each accompanying child as a
decision of its own with the follow-up counts per basis and age band, and what becomes of
shelters, holds and placements registered before any of this existed."""

import subprocess
import time

import pytest

from conftest import wait_for
from referrals import hits, redis_command
from security import keyspace, keyspace_diff

# Far from the household's home (0180, Stockholm) at low risk: nothing but the rule under test
# rules these out.
LOW = ["--from", "0180", "--risk", "low"]


def refused_unchanged(env, cli, args, code):
    before = keyspace(env)
    r = cli(*args)
    r.refused(code)
    after = keyspace(env)
    assert before == after, keyspace_diff(before, after)
    return r.json["error"]["message"]


def usage_unchanged(env, cli, args, flag, role, ident, op, wire):
    """The client refuses the value as a usage error naming the flag, and the server refuses
    the same value, sent over the protocol, with bad_request; nothing changes either way."""
    before = keyspace(env)
    cli(*args).usage(flag)
    with env.connect(role, ident) as c:
        ok, e = c.request(op, wire)
    assert not ok and e["code"] == "bad_request", e
    after = keyspace(env)
    assert before == after, keyspace_diff(before, after)
    return e["message"]


def free_unit(env, sid, unit="u1", beds=4):
    env.add_unit(sid, unit, beds)
    env.cli("shelter", sid).ok("vacancy", sid, unit, "free")


def search(env, *args, who=("social", "0180")):
    return env.cli(*who).ok("search", *LOW, "--limit", 200, *args)


def human(env, cli, *args):
    """The client's output for people (without --json)."""
    argv = [a for a in cli.argv(*args) if a != "--json"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL, env=env.cli_environ())
    assert proc.returncode == 0, proc
    return proc.stdout


def no_match_reasons(env):
    return env.admin.ok("stats")["ruled_out"]


# -- competences and needs --------------------------------------------------------------------


@pytest.fixture
def competent(env):
    env.add_shelter("heder-gbg", "Jouren mot hedersvåld", municipality="1480",
                    competences=["hbv", "psychiatric"])
    env.add_shelter("tolk-mlm", "Jouren med tolk", municipality="1280",
                    competences=["hbv", "interpreter"])
    env.add_shelter("dov-ume", "Jouren för döva", municipality="2480", competences=["deaf"])
    env.add_shelter("vanlig-lul", "Jouren i Luleå", municipality="2580")
    for sid in ("heder-gbg", "tolk-mlm", "dov-ume", "vanlig-lul"):
        free_unit(env, sid)
    return env


def test_a_need_is_offered_only_shelters_with_that_competence(competent):
    env = competent
    assert env.show("heder-gbg")["competences"] == ["hbv", "psychiatric"]
    assert env.show("vanlig-lul")["competences"] == []

    # Without a need everyone is offered.
    assert len(hits(search(env))) == 4
    res = search(env, "--need", "hbv")
    assert sorted(hits(res)) == [("heder-gbg", "u1"), ("tolk-mlm", "u1")]
    assert res["ruled_out"]["competence"] == 2
    # Every need must be met: repeated or comma-separated.
    res = search(env, "--need", "hbv", "--need", "psychiatric")
    assert hits(res) == [("heder-gbg", "u1")] and res["ruled_out"]["competence"] == 3
    assert hits(search(env, "--need", "hbv,interpreter")) == [("tolk-mlm", "u1")]

    # A hold checks the need as the search does.
    social = env.cli("social", "0180")
    msg = refused_unchanged(env, social, ["hold", "vanlig-lul", "u1", *LOW, "--need", "hbv",
                                          "--ref", "KS-1"], "ineligible")
    assert "competence" in msg
    held = social.ok("hold", "tolk-mlm", "u1", *LOW, "--need", "interpreter", "--ref", "KS-2")
    # The shelter sees what the household needs.
    seen = env.cli("shelter", "tolk-mlm").ok("holds")["holds"]
    assert [(h["hold"], h["need"]) for h in seen] == [(held["hold"], ["interpreter"])]

    # Nothing fits: the search is counted with competence among its reasons.
    before = no_match_reasons(env)["competence"]
    res = search(env, "--need", "hbv,deaf")
    assert hits(res) == [] and res["ruled_out"]["competence"] == 3
    wait_for(lambda: no_match_reasons(env)["competence"] == before + 1, 10,
             "the no-match search to be counted under competence")

    # A competence once declared can be changed, also to none.
    env.admin.ok("shelter", "update", "vanlig-lul", "--competences", "hbv")
    assert ("vanlig-lul", "u1") in hits(search(env, "--need", "hbv"))
    env.admin.ok("shelter", "update", "vanlig-lul", "--competences", "")
    assert env.show("vanlig-lul")["competences"] == []


def test_hold_n_carries_the_searchs_need(competent):
    env = competent
    social = env.cli("social", "0180")
    res = social.ok("search", *LOW, "--need", "deaf")
    assert hits(res) == [("dov-ume", "u1")]
    held = social.ok("hold", "1", "--ref", "KS-DOV")
    assert held["shelter"] == "dov-ume"
    assert env.cli("shelter", "dov-ume").ok("holds")["holds"][0]["need"] == ["deaf"]


# -- operator and IVO permit ------------------------------------------------------------------


@pytest.fixture
def protected(env):
    """Protected housing far from Stockholm, run in every way the law knows."""
    env.add_shelter("privat-utan", "Privat utan tillstånd", kind="skyddat_boende",
                    municipality="1480", protection=3, operator="privat")
    env.add_shelter("ideell-med", "Ideell med tillstånd", kind="skyddat_boende",
                    municipality="1280", protection=3, operator="ideell",
                    ivo_permit="3.5.1-10001/2024", ivo_permit_date="2024-06-03")
    env.add_shelter("kommun-utan", "Kommunal oregistrerad", kind="skyddat_boende",
                    municipality="2480", protection=3, operator="kommunal")
    env.add_shelter("kommun-med", "Kommunal registrerad", kind="skyddat_boende",
                    municipality="2580", protection=3, operator="kommunal", ivo_registered=True)
    env.add_shelter("okand", "Operatör okänd", kind="skyddat_boende", municipality="1880",
                    protection=3)
    # A women's shelter needs no permit, whoever runs it.
    env.add_shelter("jour-privat", "Privat kvinnojour", municipality="0580", operator="privat")
    for sid in ("privat-utan", "ideell-med", "kommun-utan", "kommun-med", "okand",
                "jour-privat"):
        free_unit(env, sid)
    return env


def test_protected_housing_without_a_permit_is_never_offered(protected):
    env = protected
    res = search(env)
    assert sorted(hits(res)) == [("ideell-med", "u1"), ("jour-privat", "u1"),
                                 ("kommun-med", "u1")]
    assert res["ruled_out"]["permit"] == 3
    offered = {r["shelter"]: r for r in res["results"]}
    assert offered["ideell-med"]["operator"] == "ideell"
    assert offered["ideell-med"]["ivo_permit"] == "3.5.1-10001/2024"
    assert offered["ideell-med"]["ivo_permit_date"] == "2024-06-03"
    assert offered["kommun-med"]["ivo_registered"] is True
    # Not for the on-call service either, whatever the risk.
    for risk in ("low", "moderate", "high", "severe"):
        oncall = env.cli("oncall", "socialjour-sthlm").ok(
            "search", "--from", "0180", "--risk", risk, "--limit", 200)
        assert not {"privat-utan", "kommun-utan", "okand"} & {s for s, _ in hits(oncall)}

    # A hold is refused as the search rules it out, and nothing is written.
    social = env.cli("social", "0180")
    for sid in ("privat-utan", "kommun-utan", "okand"):
        msg = refused_unchanged(env, social, ["hold", sid, "u1", *LOW, "--ref", "KS-1"],
                                "ineligible")
        assert "permit" in msg, msg
    oncall = env.cli("oncall", "socialjour-sthlm")
    refused_unchanged(env, oncall, ["hold", "privat-utan", "u1", *LOW, "--ref", "NATT-1"],
                      "ineligible")

    # Nothing else fits: counted under permit for follow-up.
    before = no_match_reasons(env)["permit"]
    res = search(env, "--language", "fi")
    assert hits(res) == [] and res["ruled_out"]["permit"] == 3
    wait_for(lambda: no_match_reasons(env)["permit"] == before + 1, 10,
             "the no-match search to be counted under permit")

    # Once the permit is recorded the same unit is offered and can be held.
    env.admin.ok("shelter", "update", "privat-utan", "--ivo-permit", "3.5.1-20002/2025",
                 "--ivo-permit-date", "2025-01-15")
    assert ("privat-utan", "u1") in hits(search(env))
    held = social.ok("hold", "privat-utan", "u1", *LOW, "--ref", "KS-2")
    assert held["state"] == "held"
    # A municipal one once it is registered.
    env.admin.ok("shelter", "update", "kommun-utan", "--ivo-registered")
    assert ("kommun-utan", "u1") in hits(search(env))
    # A revoked permit takes the unit out of the offer again.
    env.admin.ok("shelter", "update", "ideell-med", "--no-ivo-permit")
    shown = env.show("ideell-med")
    assert shown["ivo_permit"] is None and shown["ivo_permit_date"] is None
    assert ("ideell-med", "u1") not in hits(search(env))
    # A permit is no registration: a municipality's own housing needs its registration.
    env.admin.ok("shelter", "update", "kommun-med", "--no-ivo-registered", "--ivo-permit",
                 "3.5.1-1/2024", "--ivo-permit-date", "2024-04-01")
    assert ("kommun-med", "u1") not in hits(search(env))


def test_a_permit_goes_with_its_date(protected):
    env = protected
    admin = env.admin
    for args, flag, wire in (
            (["--ivo-permit", "3.5.1-3/2024"], "--ivo-permit", {"ivo_permit": "3.5.1-3/2024"}),
            (["--ivo-permit-date", "2024-04-01"], "--ivo-permit-date",
             {"ivo_permit_date": "2024-04-01"}),
            (["--ivo-permit", "3.5.1-3/2024", "--ivo-permit-date", "2023-02-29"],
             "--ivo-permit-date", {"ivo_permit": "3.5.1-3/2024", "ivo_permit_date": "2023-02-29"}),
            (["--operator", "region"], "--operator", {"operator": "region"})):
        usage_unchanged(env, admin, ["shelter", "update", "privat-utan", *args], flag,
                        "admin", "ops-anna", "shelter.update", {"shelter": "privat-utan", **wire})
    r = admin("shelter", "update", "privat-utan", "--no-ivo-permit", "--ivo-permit", "x1")
    assert r.exit == 2, r.describe()


def test_the_permit_is_never_shown_to_other_shelters(protected):
    env = protected
    permit_keys = {"ivo_permit", "ivo_permit_date", "ivo_registered"}
    sid = "ideell-med"
    # The admin, the shelter itself, social services and the on-call service see it.
    for who in (("admin", "ops-anna"), ("shelter", sid), ("social", "0180"),
                ("oncall", "socialjour-sthlm")):
        shown = env.show(sid, env.cli(*who))
        assert shown["ivo_permit"] == "3.5.1-10001/2024", who
        assert shown["operator"] == "ideell"
        listed = {s["id"]: s for s in env.cli(*who).ok("shelter", "list")["shelters"]}
        assert listed[sid]["ivo_permit"] == "3.5.1-10001/2024", who
    # Another shelter sees nothing of it at all (a shelter sees its own shelter alone): not in
    # show, the listing, or a write's reply.
    other = env.cli("shelter", "kommun-med")
    other("shelter", "show", sid).refused("forbidden")
    listed = {s["id"]: s for s in other.ok("shelter", "list")["shelters"]}
    assert set(listed) == {"kommun-med"}, listed
    assert listed["kommun-med"]["ivo_registered"] is True  # its own, it sees
    assert "3.5.1-10001/2024" not in other("shelter", "list").stdout
    own = other.ok("vacancy", "kommun-med", "u1", "occupied")["shelter"]
    assert own["ivo_registered"] is True and not permit_keys - set(own)
    # Human output: the admin's listing shows operator and permit; the other shelter's its own.
    text = human(env, env.admin, "shelter", "list")
    line = next(ln for ln in text.splitlines() if ln.startswith(sid))
    assert line.split()[-2:] == ["ideell", "3.5.1-10001/2024"], text
    text = human(env, other, "shelter", "list")
    assert not any(ln.startswith(sid) for ln in text.splitlines()), text
    assert "3.5.1-10001/2024" not in text
    assert "permit 3.5.1-10001/2024, granted 2024-06-03" in \
        human(env, env.cli("social", "0180"), "shelter", "show", sid)


# -- each child a decision --------------------------------------------------------------------


@pytest.fixture
def family(env):
    env.add_shelter("familj-gbg", "Familjejouren", municipality="1480", max_children=6)
    for u in ("u1", "u2", "u3", "u4"):
        free_unit(env, "familj-gbg", u, beds=6)
    return env


def children_placed(env):
    return env.admin.ok("stats")["children"]


def test_each_child_gets_its_basis_and_is_counted(family):
    env = family
    social = env.cli("social", "0180")
    shelter = env.cli("shelter", "familj-gbg")
    before = children_placed(env)
    assert set(before) == {"sol", "lag_2024_79", "lvu"}
    assert all(set(v) == {"0-6", "7-12", "13-17"} for v in before.values())

    # Two children, their bases given at confirmation in the referral's order.
    h1 = social.ok("hold", "familj-gbg", "u1", *LOW, "--child", "4f", "--child", "14m",
                   "--ref", "KS-BARN-1")["hold"]
    p1 = shelter.ok("confirm", h1, "--child-basis", "lag_2024_79", "--child-basis", "lvu")
    assert p1["placement"]["children"] == [{"age": 4, "sex": "f", "basis": "lag_2024_79"},
                                           {"age": 14, "sex": "m", "basis": "lvu"}]
    # Given by the municipality with the hold; the shelter confirms without repeating them.
    h2 = social.ok("hold", "familj-gbg", "u2", *LOW, "--child", "9m", "--child", "2f",
                   "--child-basis", "lvu", "--child-basis", "sol", "--ref", "KS-BARN-2")["hold"]
    seen = {h["hold"]: h for h in shelter.ok("holds")["holds"]}
    assert seen[h2]["children"] == [{"age": 9, "sex": "m", "basis": "lvu"},
                                    {"age": 2, "sex": "f", "basis": "sol"}]
    p2 = shelter.ok("confirm", h2)["placement"]
    assert [c["basis"] for c in p2["children"]] == ["lvu", "sol"]
    # Neither: every child's decision is under Socialtjänstlagen.
    h3 = social.ok("hold", "familj-gbg", "u3", *LOW, "--child", "16f", "--ref",
                   "KS-BARN-3")["hold"]
    p3 = shelter.ok("confirm", h3)["placement"]
    assert p3["children"] == [{"age": 16, "sex": "f", "basis": "sol"}]

    # One basis per child, or none: anything else is refused and changes nothing.
    h4 = social.ok("hold", "familj-gbg", "u4", *LOW, "--child", "5m", "--child", "7f",
                   "--ref", "KS-BARN-4")["hold"]
    refused_unchanged(env, shelter, ["confirm", h4, "--child-basis", "lvu"], "bad_request")
    usage_unchanged(env, social, ["hold", "familj-gbg", "u4", *LOW, "--child", "5m",
                                  "--child-basis", "sol", "--child-basis", "lvu", "--ref",
                                  "KS-X"], "--child-basis", "social", "0180", "hold",
                    {"shelter": "familj-gbg", "unit": "u4", "home": "0180", "risk": "low",
                     "children": [{"age": 5, "sex": "m"}], "child_basis": ["sol", "lvu"],
                     "ref": "KS-X"})
    usage_unchanged(env, shelter, ["confirm", h4, "--child-basis", "lss"], "--child-basis",
                    "shelter", "familj-gbg", "hold.confirm", {"hold": h4, "child_basis": ["lss"]})

    # 'fristad hold N' with the bases of the remembered search's children.
    social.ok("release", h4)
    assert hits(social.ok("search", *LOW, "--child", "12m", "--child", "1f")) == \
        [("familj-gbg", "u4")]
    h5 = social.ok("hold", "1", "--ref", "KS-BARN-5", "--child-basis", "lvu", "--child-basis",
                   "lag_2024_79")["hold"]
    p5 = shelter.ok("confirm", h5)["placement"]
    assert p5["children"] == [{"age": 12, "sex": "m", "basis": "lvu"},
                              {"age": 1, "sex": "f", "basis": "lag_2024_79"}]

    # The placements keep the bases; no names, no dates of birth: ages and sexes only.
    pls = {p["placement"]: p for p in social.ok("placements")["placements"]}
    assert pls[p1["placement"]["placement"]]["children"][1] == \
        {"age": 14, "sex": "m", "basis": "lvu"}
    # Follow-up: children placed per basis and age band.
    after = children_placed(env)
    diff = {(b, band): after[b][band] - before[b][band]
            for b in after for band in after[b] if after[b][band] != before[b][band]}
    assert diff == {("lag_2024_79", "0-6"): 2, ("lvu", "13-17"): 1, ("lvu", "7-12"): 2,
                    ("sol", "0-6"): 1, ("sol", "13-17"): 1}, diff
    assert env.admin.ok("stats")["placements"]["made"] == 4


# -- shelters, holds and placements registered before -----------------------------------------


def write_before(env):
    """Records as the previous fristadd wrote them: no competences, no operator, no permit, no
    needs, no bases."""
    ns = "{%s}:" % env.daemon.namespace
    now = int(time.time() * 1000)

    def r(*args):
        reply = redis_command(env.redis.sock, *args)
        assert not reply.startswith("-"), (args, reply)

    def shelter(sid, kind, mun, version):
        r("SADD", ns + "shelters", sid)
        r("HSET", ns + "s:" + sid, "name", f"Gamla {sid}", "kind", kind, "municipality", mun,
          "protection", 3, "phone", "031-700 00 00", "groups", "women", "max_children", -1,
          "boys_max_age", -1, "pets", 0, "substance", 0, "languages", "sv",
          "intake_hours", "24/7", "paused", 0, "retired", 0, "updated_at", now,
          "created_at", now, "version", version)
        r("SADD", ns + "u:" + sid, "u1", "u2")
        r("HSET", ns + f"unit:{sid}:u1", "beds", 4, "accessible", 0, "state", "free",
          "changed_at", now)
        r("HSET", ns + f"unit:{sid}:u2", "beds", 4, "accessible", 0, "state", "occupied",
          "changed_at", now, "hold", "hbbbbbbbbbbbbbbbb")

    shelter("gammal-jour", "kvinnojour", "1480", 1)
    shelter("gammalt-skydd", "skyddat_boende", "1280", 2)
    # An open hold with two children, and an active placement, both from before.
    r("HSET", ns + "hold:hbbbbbbbbbbbbbbbb", "shelter", "gammal-jour", "unit", "u2", "ref",
      "KS-GAMMAL", "by", "social:0180", "municipality", "0180", "state", "accepted",
      "created_at", now, "expires_at", now + 3600000, "accepted_at", now, "risk", "high",
      "adults", 1, "children", "3f,13m", "group", "women", "wheelchair", 0, "pets", 0,
      "substance", 0)
    r("HSET", ns + "unit:gammalt-skydd:u2", "placement", "pbbbbbbbbbbbbbbbb")
    r("HDEL", ns + "unit:gammalt-skydd:u2", "hold")
    r("HSET", ns + "pl:pbbbbbbbbbbbbbbbb", "hold", "hcccccccccccccccc", "shelter",
      "gammalt-skydd", "unit", "u2", "ref", "KS-PLACERAD", "by", "social:0180",
      "municipality", "0180", "state", "active", "placed_at", now, "risk", "severe",
      "adults", 1, "children", "8m", "group", "women")
    for key in ("holds", "holds:s:gammal-jour", "holds:m:0180"):
        r("ZADD", ns + key, now, "hbbbbbbbbbbbbbbbb")
    r("ZADD", ns + "holds:open", now + 3600000, "hbbbbbbbbbbbbbbbb")
    r("SADD", ns + "holds:by:social:0180", "hbbbbbbbbbbbbbbbb")
    for key in ("pls", "pls:s:gammalt-skydd", "pls:m:0180"):
        r("ZADD", ns + key, now, "pbbbbbbbbbbbbbbbb")
    r("SET", ns + "schema", 2)
    r("SET", ns + "ver", 2)


def test_shelters_registered_before_keep_working(env_unstarted):
    """A record without the new fields loads: no competences, operator unknown, no permit. A
    women's shelter is offered as before; protected housing is held back under permit until an
    admin records who runs it and its permit, because nothing shows that it may be offered.
    Its holds and placements go on; a child of an old hold gets the basis sol at confirmation,
    and a placement made before shows no basis (none was recorded)."""
    env = env_unstarted
    env.redis.start()
    write_before(env)
    env.daemon.start()

    for sid in ("gammal-jour", "gammalt-skydd"):
        shown = env.show(sid)
        assert shown["competences"] == [] and shown["operator"] is None, shown
        assert shown["ivo_permit"] is None and shown["ivo_registered"] is False, shown
    res = search(env)
    assert hits(res) == [("gammal-jour", "u1")]
    assert res["ruled_out"]["permit"] == 1
    # No competence recorded: a referral that needs one is not offered it.
    res = search(env, "--need", "hbv")
    assert hits(res) == [] and res["ruled_out"]["competence"] == 2
    text = human(env, env.admin, "shelter", "list")
    line = next(ln for ln in text.splitlines() if ln.startswith("gammalt-skydd"))
    assert line.split()[-2:] == ["unknown", "none"], text

    # The old hold and placement go on as before.
    placement = env.cli("shelter", "gammal-jour").ok("confirm", "hbbbbbbbbbbbbbbbb")["placement"]
    assert placement["children"] == [{"age": 3, "sex": "f", "basis": "sol"},
                                     {"age": 13, "sex": "m", "basis": "sol"}]
    old = {p["placement"]: p for p in env.cli("social", "0180").ok("placements")["placements"]}
    assert old["pbbbbbbbbbbbbbbbb"]["children"] == [{"age": 8, "sex": "m"}]
    env.cli("shelter", "gammalt-skydd").ok("discharge", "pbbbbbbbbbbbbbbbb")

    # Recorded by the admin, the protected housing is offered again.
    env.admin.ok("shelter", "update", "gammalt-skydd", "--operator", "ideell", "--ivo-permit",
                 "3.5.1-777/2024", "--ivo-permit-date", "2024-09-30", "--competences", "hbv")
    res = search(env, "--need", "hbv")
    assert sorted(hits(res)) == [("gammalt-skydd", "u1"), ("gammalt-skydd", "u2")]
    # A restart reads the same.
    env.daemon.restart()
    assert env.show("gammalt-skydd")["ivo_permit"] == "3.5.1-777/2024"
    assert ("gammal-jour", "u1") in hits(search(env))
