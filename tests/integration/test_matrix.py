"""The authorisation table of PROTOCOL.md section 6, cell by cell: every op of section 5 sent by
every role and scope (shelter own / other, social own municipality / other, on-call whose area
holds the target / another area / no area, admin) through the independent protocol client. A
refused request answers `forbidden` and leaves every key of the namespace as it was (only the
audit stream and the counters may move); an allowed one is never answered `forbidden`. Two
persons who hold certificates of one principal have the same cells, and the trail tells them
apart. A shelter sees its own shelter alone; on-call sees the holds and placements of its area
alone. A certificate that names no usable principal gets `unauthorized` for every op, and
changes nothing either."""

import pytest

from conftest import ADMIN, LOW_RISK_ARGS
from security import audit_entries, keyspace, keyspace_diff

OWN = "own-sh"       # the shelter every request is aimed at (municipality 0180)
OTHER = "other-sh"   # another shelter (municipality 1480)
SPARE = "spare-sh"   # a shelter without holds, which the admin may retire

# (role, id, person): social-own and social-own-b are two people of Stockholm's social
# services; the on-call ids have the areas of conftest.ONCALL_AREAS (jour-sthlm Stockholm
# county, where OWN is; jour-gbg Västra Götaland, where OTHER is) or none (jour-nowhere).
PRINCIPALS = {
    "shelter-own": ("shelter", OWN, "SE2321000016-S001"),
    "shelter-other": ("shelter", OTHER, "SE2321000016-S002"),
    "social-own": ("social", "0180", "SE2321000016-A001"),
    "social-own-b": ("social", "0180", "SE2321000016-B002"),
    "social-other": ("social", "1480", None),
    "oncall": ("oncall", "jour-sthlm", "SE2321000016-J001"),
    "oncall-other-area": ("oncall", "jour-gbg", None),
    "oncall-no-area": ("oncall", "jour-nowhere", None),
    "admin": (*ADMIN, "SE2321000016-0001"),
}
EVERYONE = set(PRINCIPALS)
ADMIN_ONLY = {"admin"}
SHELTER_OWN = {"shelter-own"}
ONCALL_ALL = {"oncall", "oncall-other-area", "oncall-no-area"}
SOCIAL_ALL = {"social-own", "social-own-b", "social-other"}

# op -> the principals section 6 lets through for the target below.
ALLOWED = {
    "shelter.add": ADMIN_ONLY,
    "shelter.update": ADMIN_ONLY,
    "shelter.retire": ADMIN_ONLY,
    "unit.add": ADMIN_ONLY,
    "unit.update": ADMIN_ONLY,
    "unit.remove": ADMIN_ONLY,
    "vacancy.set": SHELTER_OWN,
    "vacancy.confirm": SHELTER_OWN,
    "intake.pause": SHELTER_OWN,
    "intake.resume": SHELTER_OWN,
    # A shelter sees its own shelter alone.
    "shelter.show": EVERYONE - {"shelter-other"},
    "shelter.list": EVERYONE,
    "free": EVERYONE,
    "search": SOCIAL_ALL | ONCALL_ALL | {"admin"},
    # The target is in Stockholm: on-call of another area, or of none, may not hold for it.
    "hold": {"social-own", "social-own-b", "oncall"},
    "hold.accept": SHELTER_OWN,
    "hold.release": {"social-own", "social-own-b", "oncall"},
    "hold.confirm": SHELTER_OWN,
    "hold.decline": SHELTER_OWN,
    "placement.discharge": SHELTER_OWN,
    "holds.list": EVERYONE - {"admin"},
    "placements.list": EVERYONE - {"admin"},
    "audit": ADMIN_ONLY,
    "stats": ADMIN_ONLY,
    "whoami": EVERYONE,
    "watch": EVERYONE,
    # A standing search is made for the household's home (Stockholm): on-call of another area,
    # or of none, may not make one for it.
    "standing.add": {"social-own", "social-own-b", "social-other", "oncall"},
    "standing.list": SOCIAL_ALL | ONCALL_ALL,
    "standing.cancel": {"social-own", "social-own-b", "oncall"},
    # The follow-up of 0180: its own social services, on-call of its area, admin.
    "followup": {"social-own", "social-own-b", "oncall", "admin"},
    "directory": ADMIN_ONLY,
}
assert len(ALLOWED) == 31
# Two persons of one principal are one principal to the matrix.
assert all(("social-own" in a) == ("social-own-b" in a) for a in ALLOWED.values())


class World:
    """Shelters, units, holds and a placement that the requests aim at."""

    def __init__(self, env):
        self.env = env
        admin = env.connect(*ADMIN)
        for sid, mun, phone in ((OWN, "0180", "08-555 010 10"), (OTHER, "1480", "031-700 00 00"),
                                (SPARE, "0180", "08-555 020 20")):
            admin.call("shelter.add", {"shelter": sid, "name": f"Jour {sid}",
                                       "kind": "kvinnojour", "municipality": mun,
                                       "protection": 1, "phone": phone})
        self.own_units = ["u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8", "ua", "ub", "uc"]
        for u in self.own_units:
            admin.call("unit.add", {"shelter": OWN, "unit": u, "beds": 2})
        admin.call("unit.add", {"shelter": OTHER, "unit": "x1", "beds": 2})
        admin.call("unit.add", {"shelter": SPARE, "unit": "s1", "beds": 2})
        with env.connect("shelter", OWN) as sh:
            for u in self.own_units:
                sh.call("vacancy.set", {"shelter": OWN, "unit": u, "state": "free"})
        with env.connect("shelter", OTHER) as sh:
            sh.call("vacancy.set", {"shelter": OTHER, "unit": "x1", "state": "free"})
        self.holds = {}
        with env.connect("social", "0180") as so:
            for name, unit in (("target", "u1"), ("for-oncall", "u6"), ("confirm", "u7"),
                               ("decline", "u8"), ("placed", "u2"), ("accept", "ua"),
                               ("for-b", "uc")):
                self.holds[name] = so.call("hold", {**LOW_RISK_ARGS, "shelter": OWN, "unit": unit,
                                                    "ref": f"case-{name}"})["hold"]
        with env.connect("social", "1480") as so:
            self.holds["other"] = so.call("hold", {**LOW_RISK_ARGS, "shelter": OTHER, "unit": "x1",
                                                   "ref": "case-other"})["hold"]
        with env.connect("shelter", OWN) as sh:
            self.placement = sh.call("hold.confirm", {"hold": self.holds["placed"]})[
                "placement"]["placement"]
        self.standing = {}
        for name, who in (("target", "social-own"), ("social", "social-own"),
                          ("social-b", "social-own-b"), ("oncall", "oncall")):
            with env.connect(cert=cert_of(env, who)) as c:
                self.standing[name] = c.call("standing.add", {**LOW_RISK_ARGS,
                                                              "ref": f"st-{name}"})[
                    "standing"]["standing"]
        admin.close()

    def args(self, op, who, allowed):
        """The request: aimed at OWN, its hold or its placement. An allowed request gets a
        target of its own, so that every allowed cell can succeed in turn."""
        h = self.holds
        table = {
            "shelter.add": {"shelter": "new-sh", "name": "Ny jour", "kind": "kriscentrum",
                            "municipality": "0180", "protection": 2, "phone": "08-123 456 78"},
            "shelter.update": {"shelter": OWN, "name": "Omdöpt jour"},
            "shelter.retire": {"shelter": SPARE},
            "unit.add": {"shelter": OWN, "unit": "u9", "beds": 3},
            "unit.update": {"shelter": OWN, "unit": "u3", "beds": 5},
            "unit.remove": {"shelter": OWN, "unit": "u9" if allowed else "u3"},
            "vacancy.set": {"shelter": OWN, "unit": "u3", "state": "occupied"},
            "vacancy.confirm": {"shelter": OWN},
            "intake.pause": {"shelter": OWN},
            "intake.resume": {"shelter": OWN},
            "shelter.show": {"shelter": OWN},
            "shelter.list": None,
            "free": None,
            "search": {"home": "0180", "risk": "low"},
            "hold": {**LOW_RISK_ARGS, "shelter": OWN,
                     "unit": {"oncall": "u5", "social-own-b": "ub"}.get(who, "u4"),
                     "ref": "case-new", "municipality": "0180"},
            "hold.accept": {"hold": h["accept"] if allowed else h["target"]},
            "watch": {"types": ["held"]},
            "standing.add": {**LOW_RISK_ARGS, "ref": "st-new"},
            "standing.list": None,
            "standing.cancel": {"standing": self.standing[
                {"oncall": "oncall", "social-own-b": "social-b"}.get(who, "social")
                if allowed else "target"]},
            "hold.release": {"hold": {"oncall": h["for-oncall"], "social-own-b": h["for-b"]}
                             .get(who, h["target"]) if allowed else h["target"]},
            "hold.confirm": {"hold": h["confirm"] if allowed else h["target"]},
            "hold.decline": {"hold": h["decline"] if allowed else h["target"],
                             "reason": "needs", "note": "no room for the dog"},
            "placement.discharge": {"placement": self.placement},
            "holds.list": None,
            "placements.list": None,
            "audit": {"limit": 5},
            "stats": None,
            "whoami": None,
            "followup": {"municipality": "0180"},
            "directory": None,
        }
        args = table[op]
        if op == "hold" and who == "social-own":
            # The municipality defaults to the certificate's own.
            args = {k: v for k, v in args.items() if k != "municipality"}
        if op == "hold" and who.startswith("oncall") and not allowed:
            # On-call outside its area, both ways: naming the municipality, and by default
            # the household's home.
            args = {k: v for k, v in args.items() if k != "municipality"}
        return args


@pytest.fixture
def world(env):
    return World(env)


def cert_of(env, who):
    role, ident, person = PRINCIPALS[who]
    return env.pki.get(role, ident, person)


def conns(env):
    return {k: env.connect(cert=cert_of(env, k)) for k in PRINCIPALS}


def test_every_refusal_is_forbidden_and_changes_nothing(world):
    env = world.env
    cs = conns(env)
    # The snapshot sees the world: shelters, units, holds, the placement and their indexes.
    assert len(keyspace(env)) > 25
    refused = 0
    for op, allowed in ALLOWED.items():
        for who in PRINCIPALS:
            if who in allowed:
                continue
            args = world.args(op, who, False)
            before = keyspace(env)
            ok, res = cs[who].request(op, args)
            after = keyspace(env)
            assert not ok and res["code"] == "forbidden", (op, who, args, res)
            assert after == before, \
                f"{op} by {who} was refused but changed the store:\n" + \
                keyspace_diff(before, after)
            refused += 1
            # The connection stays open after a refusal.
            assert cs[who].call("whoami")["role"] == PRINCIPALS[who][0]
    assert refused == len(PRINCIPALS) * len(ALLOWED) - sum(len(a) for a in ALLOWED.values())
    # Every refusal is in the trail with the person who was refused.
    persons = {f.get("person") for _, f in audit_entries(env) if f["result"] == "forbidden"}
    for who in ("shelter-other", "social-own", "social-own-b", "oncall", "admin"):
        assert PRINCIPALS[who][2] in persons, who


def test_every_allowed_cell_is_served(world):
    env = world.env
    cs = conns(env)
    results = {}
    for op, allowed in ALLOWED.items():
        for who in PRINCIPALS:
            if who not in allowed:
                continue
            args = world.args(op, who, True)
            # A watch turns its connection into a stream: it gets one of its own.
            conn = env.connect(cert=cert_of(env, who)) if op == "watch" else cs[who]
            ok, res = conn.request(op, args)
            assert ok, (op, who, args, res)
            results[op, who] = res

    # shelter.show: the intake phone only for the shelter itself and the admin.
    for who in ALLOWED["shelter.show"]:
        shown = results["shelter.show", who]["shelter"]
        assert ("phone" in shown) == (who in ("shelter-own", "admin")), (who, shown)
    # The follow-up of 0180: twelve months by default, for each who may see it.
    for who in ("social-own", "social-own-b", "oncall", "admin"):
        res = results["followup", who]
        assert res["municipality"] == "0180" and len(res["months"]) == 12, (who, res)
    # The public directory gives a kvinnojour's phone, and nothing of its units but counts.
    entries = {e["shelter"]: e for e in results["directory", "admin"]["shelters"]}
    assert entries[OWN]["phone"] == "08-555 010 10" and entries[OWN]["units"] == 11
    assert "u1" not in repr(results["directory", "admin"])
    # A shelter's listings hold its own shelter alone; everyone else's all three.
    listed = {who: {s["id"] for s in results["shelter.list", who]["shelters"]}
              for who in PRINCIPALS}
    free = {who: {u["shelter"] for u in results["free", who]["units"]} for who in PRINCIPALS}
    assert listed["shelter-own"] == {OWN} and free["shelter-own"] <= {OWN}
    assert listed["shelter-other"] == {OTHER} and free["shelter-other"] <= {OTHER}
    for who in PRINCIPALS:
        if not who.startswith("shelter"):
            assert listed[who] == {OWN, OTHER, "new-sh"}, who  # SPARE is retired by now
    # The hold reply is where social services learn the phone.
    assert results["hold", "social-own"]["phone"] == "08-555 010 10"
    assert results["hold", "oncall"]["phone"] == "08-555 010 10"

    h = world.holds

    def ids(res, key, idkey):
        return {x[idkey] for x in res[key]}

    # "own" for listings: each principal sees exactly its own holds and placements.
    own_holds = {h["target"], h["for-oncall"], h["confirm"], h["decline"], h["placed"],
                 h["accept"], h["for-b"], results["hold", "social-own"]["hold"],
                 results["hold", "social-own-b"]["hold"], results["hold", "oncall"]["hold"]}
    assert ids(results["holds.list", "shelter-own"], "holds", "hold") == own_holds
    assert ids(results["holds.list", "shelter-other"], "holds", "hold") == {h["other"]}
    assert ids(results["holds.list", "social-other"], "holds", "hold") == {h["other"]}
    social_own = ids(results["holds.list", "social-own"], "holds", "hold")
    assert h["other"] not in social_own and h["target"] in social_own
    # The oncall hold named 0180 as the municipality it acted for.
    assert results["hold", "oncall"]["hold"] in social_own
    # On-call sees the records of its area alone: Stockholm county, Västra Götaland, nothing.
    assert ids(results["holds.list", "oncall"], "holds", "hold") == own_holds
    assert ids(results["holds.list", "oncall-other-area"], "holds", "hold") == {h["other"]}
    assert ids(results["holds.list", "oncall-no-area"], "holds", "hold") == set()
    # Both persons of Stockholm see the same holds.
    assert ids(results["holds.list", "social-own-b"], "holds", "hold") == social_own
    own_placements = {world.placement,
                      results["hold.confirm", "shelter-own"]["placement"]["placement"]}
    for who, expected in (("shelter-own", own_placements), ("shelter-other", set()),
                          ("social-own", own_placements), ("social-own-b", own_placements),
                          ("social-other", set()), ("oncall", own_placements),
                          ("oncall-other-area", set()), ("oncall-no-area", set())):
        assert ids(results["placements.list", who], "placements", "placement") == expected, who

    # The allowed writes took effect.
    admin = cs["admin"]
    own = admin.call("shelter.show", {"shelter": OWN})["shelter"]
    units = {u["id"]: u for u in own["units"]}
    assert own["name"] == "Omdöpt jour" and not own["paused"]
    assert "u9" not in units and units["u3"]["beds"] == 5 and units["u3"]["state"] == "occupied"
    assert units["u2"]["state"] == "free"  # discharged
    assert units["ua"]["held"]  # accepted: the household is on its way
    assert units["u7"]["state"] == "occupied"  # confirmed
    assert units["u1"]["held"] is False and units["u6"]["held"] is False
    assert units["u4"]["held"] and units["u5"]["held"] and units["ub"]["held"]
    assert units["uc"]["held"] is False  # released by the second person of Stockholm
    assert admin.call("shelter.show", {"shelter": SPARE})["shelter"]["retired"] is True
    assert admin.call("shelter.show", {"shelter": "new-sh"})["shelter"]["kind"] == "kriscentrum"


def test_social_may_name_its_own_municipality_only(world):
    env = world.env
    with env.connect("social", "0180") as so:
        ok, res = so.request("hold", {**LOW_RISK_ARGS, "shelter": OWN, "unit": "u4", "ref": "case-a",
                                      "municipality": "0180"})
        assert ok, res
        before = keyspace(env)
        for mun in ("1480", "0114", "2580"):
            ok, res = so.request("hold", {**LOW_RISK_ARGS, "shelter": OWN, "unit": "u5", "ref": "case-b",
                                          "municipality": mun})
            assert not ok and res["code"] == "forbidden", (mun, res)
        assert keyspace(env) == before
    # On-call services act for the municipalities of their area, and the hold is listed there.
    with env.connect("oncall", "jour-gbg") as oc:
        hid = oc.call("hold", {**LOW_RISK_ARGS, "shelter": OWN, "unit": "u5", "ref": "case-c",
                               "municipality": "1480"})["hold"]
    with env.connect("social", "1480") as so:
        assert hid in {x["hold"] for x in so.call("holds.list")["holds"]}
        # ... and so that municipality may release it, while 0180 may not.
    with env.connect("social", "0180") as so:
        before = keyspace(env)
        ok, res = so.request("hold.release", {"hold": hid})
        assert not ok and res["code"] == "forbidden", res
        assert keyspace(env) == before
    with env.connect("social", "1480") as so:
        assert so.call("hold.release", {"hold": hid})["hold"]["state"] == "released"


UNUSABLE = [
    ("mx-no-ou", "/O=Fristad/CN=own-sh"),
    ("mx-no-cn", "/O=Fristad/OU=admin"),
    ("mx-two-cn", "/O=Fristad/OU=shelter/CN=own-sh/CN=other-sh"),
    ("mx-two-ou", "/O=Fristad/OU=admin/OU=admin/CN=ops-anna"),
    ("mx-unknown-role", "/O=Fristad/OU=operator/CN=ops-anna"),
    ("mx-role-in-o", "/O=admin/CN=ops-anna"),
    ("mx-social-name", "/O=Fristad/OU=social/CN=stockholm"),
    ("mx-social-code", "/O=Fristad/OU=social/CN=9999"),
    ("mx-social-county", "/O=Fristad/OU=social/CN=01"),
    ("mx-shelter-bad-id", "/O=Fristad/OU=shelter/CN=-own-sh"),
    ("mx-shelter-long-id", "/O=Fristad/OU=shelter/CN=" + "a" * 33),
    ("mx-oncall-pin", "/O=Fristad/OU=oncall/CN=198112189876"),
]


def test_unusable_certificate_is_unauthorized_for_every_op(world):
    env = world.env
    wrong = []
    for name, subject in UNUSABLE:
        cert = env.pki.custom(name, subject)
        before = keyspace(env)
        with env.connect(cert=cert) as c:
            for op in ALLOWED:
                for allowed in (False, True):
                    args = world.args(op, "admin", allowed)
                    ok, res = c.request(op, args)
                    if ok or res["code"] != "unauthorized":
                        wrong.append(f"{name} ({subject}): {op} {args} -> {res}")
        after = keyspace(env)
        assert after == before, f"{name}: " + keyspace_diff(before, after)
        # The real client says the same.
        r = env.cli(cert=cert)("stats")
        if r.error_code != "unauthorized":
            wrong.append(f"{name}: fristad stats -> {r.describe()}")
    assert not wrong, "\n".join(wrong)
