"""Holds and placements end to end through the real client: hold, confirm, discharge, release,
decline and expiry; idempotent retries; who may do what to which hold; and that every refusal
leaves everything as it was."""

import time

import pytest

from conftest import wait_for, LOW_RISK, LOW_RISK_ARGS
from referrals import (HOLD_REPLY_KEYS, free_units, hits, now_ms, personnummer, referral_state,
                       unit_states)

SHELTERS = ["frida-sthlm", "hamnen-gbg"]
FRIDA_PHONE = "08-555 010 10"
HAMNEN_PHONE = "+46 31 700 00 00"
HOUSEHOLD_KEYS = {"risk", "adults", "children", "group", "wheelchair", "pets", "substance"}
HOLD_KEYS = {"hold", "shelter", "unit", "ref", "municipality", "by", "state", "created_at",
             "expires_at"} | HOUSEHOLD_KEYS
PLACEMENT_KEYS = {"placement", "hold", "shelter", "unit", "ref", "municipality", "by", "state",
                  "placed_at", "risk", "adults", "children", "group"}


class Actors:
    def __init__(self, env):
        self.env = env
        self.soc = env.cli("social", "0180")        # Stockholm's social services
        self.gbg = env.cli("social", "1480")        # Göteborg's
        self.onc = env.cli("oncall", "socialjouren-sthlm")
        self.frida = env.cli("shelter", "frida-sthlm")
        self.hamnen = env.cli("shelter", "hamnen-gbg")
        self.admin = env.admin

    def state(self):
        return referral_state(self.env, SHELTERS, self.onc)

    def hold(self, who, shelter, unit, ref, *extra):
        res = who.ok("hold", shelter, unit, *LOW_RISK, "--ref", ref, *extra)
        assert set(res) == HOLD_REPLY_KEYS, res
        assert (res["shelter"], res["unit"]) == (shelter, unit), res
        return res

    def holds(self, who):
        return {h["hold"]: h for h in who.ok("holds")["holds"]}

    def hold_record(self, hid):
        found = [h for h in self.onc.ok("holds")["holds"] if h["hold"] == hid]
        assert len(found) == 1, found
        return found[0]

    def refused_unchanged(self, who, args, code):
        """The request is refused with `code` and nothing anybody can see changed."""
        before = self.state()
        who(*args).refused(code)
        after = self.state()
        assert after == before, f"{args} refused with {code} but changed something"


@pytest.fixture
def world(env):
    env.add_shelter("frida-sthlm", "Kvinnojouren Frida", municipality="0180", protection=2,
                    phone=FRIDA_PHONE)
    for uid, beds in (("r1", 2), ("r2", 3), ("r3", 4)):
        env.add_unit("frida-sthlm", uid, beds)
        env.cli("shelter", "frida-sthlm").ok("vacancy", "frida-sthlm", uid, "free")
    env.add_shelter("hamnen-gbg", "Skyddat boende Hamnen", kind="skyddat_boende",
                    operator="kommunal", ivo_registered=True,
                    municipality="1480", protection=3, phone=HAMNEN_PHONE)
    for uid in ("lgh1", "lgh2"):
        env.add_unit("hamnen-gbg", uid, 4)
        env.cli("shelter", "hamnen-gbg").ok("vacancy", "hamnen-gbg", uid, "free")
    return Actors(env)


ALL_FREE = [("frida-sthlm", "r1"), ("frida-sthlm", "r2"), ("frida-sthlm", "r3"),
            ("hamnen-gbg", "lgh1"), ("hamnen-gbg", "lgh2")]


def test_hold_takes_the_unit(world):
    w = world
    env = w.env
    assert free_units(w.admin) == ALL_FREE
    t0 = now_ms()
    h = w.hold(w.soc, "frida-sthlm", "r1", "ARENDE-2024:17")
    t1 = now_ms()
    assert isinstance(h["hold"], str) and h["hold"]
    assert h["phone"] == FRIDA_PHONE
    # The default hold time of the test daemon is 60 minutes.
    assert t0 + 3_600_000 - 2000 <= h["expires_at"] <= t1 + 3_600_000 + 2000, h

    # Taken: not free, not offered, shown as held.
    assert ("frida-sthlm", "r1") not in free_units(w.admin)
    assert ("frida-sthlm", "r1") not in free_units(w.gbg)
    res = w.onc.ok("search", "--from", "0180", "--risk", "low")
    assert hits(res) == [("frida-sthlm", "r2"), ("frida-sthlm", "r3"), ("hamnen-gbg", "lgh1"),
                         ("hamnen-gbg", "lgh2")]
    units = unit_states(env.show("frida-sthlm"))
    assert units["r1"] == ("free", True)
    assert units["r2"] == ("free", False)
    summary = w.admin.ok("shelter", "list", "--municipality", "0180")["shelters"][0]
    assert summary["free_units"] == 2

    record = w.holds(w.soc)[h["hold"]]
    assert set(record) == HOLD_KEYS, record
    assert record["state"] == "held"
    assert record["ref"] == "ARENDE-2024:17"
    assert record["municipality"] == "0180" and record["by"] == "social:0180"
    assert record["expires_at"] == h["expires_at"]
    assert t0 - 1000 <= record["created_at"] <= t1 + 1000
    assert (record["shelter"], record["unit"]) == ("frida-sthlm", "r1")

    # A second hold on it, by anyone, is a conflict and changes nothing.
    w.refused_unchanged(w.gbg, ["hold", "frida-sthlm", "r1", *LOW_RISK, "--ref", "GBG-1"], "conflict")
    w.refused_unchanged(w.soc, ["hold", "frida-sthlm", "r1", *LOW_RISK, "--ref", "ARENDE-2"], "conflict")
    w.refused_unchanged(w.onc, ["hold", "frida-sthlm", "r1", *LOW_RISK, "--ref", "JOUR-1"], "conflict")
    assert len(w.holds(w.onc)) == 1

    # The phone was disclosed to the holder only; others still do not see it.
    assert "phone" not in env.show("frida-sthlm", who=w.soc)


def test_hold_needs_a_free_unit_of_an_open_shelter(world):
    w = world
    env = w.env
    env.add_unit("frida-sthlm", "r9", 2)  # closed until opened
    w.frida.ok("vacancy", "frida-sthlm", "r3", "occupied")
    w.refused_unchanged(w.soc, ["hold", "frida-sthlm", "r9", *LOW_RISK, "--ref", "A-1"], "conflict")
    w.refused_unchanged(w.soc, ["hold", "frida-sthlm", "r3", *LOW_RISK, "--ref", "A-1"], "conflict")
    w.refused_unchanged(w.soc, ["hold", "frida-sthlm", "nope", *LOW_RISK, "--ref", "A-1"], "not_found")
    w.refused_unchanged(w.soc, ["hold", "no-such-jour", "r1", *LOW_RISK, "--ref", "A-1"], "not_found")

    w.hamnen.ok("intake", "pause", "hamnen-gbg")
    w.refused_unchanged(w.soc, ["hold", "hamnen-gbg", "lgh1", *LOW_RISK, "--ref", "A-1"], "conflict")
    w.hamnen.ok("intake", "resume", "hamnen-gbg")
    w.hold(w.soc, "hamnen-gbg", "lgh1", "A-1")

    w.admin.ok("shelter", "retire", "frida-sthlm")
    w.refused_unchanged(w.onc, ["hold", "frida-sthlm", "r1", *LOW_RISK, "--ref", "A-2"], "conflict")
    assert [h["ref"] for h in w.holds(w.onc).values()] == ["A-1"]


@pytest.mark.daemon_config({"holds": {"ttl": "2s", "sweep_interval": "100ms"}})
def test_hold_expires_by_itself(world):
    w = world
    t0 = now_ms()
    h = w.hold(w.soc, "frida-sthlm", "r2", "ARENDE-EXP")
    t1 = now_ms()
    assert t0 + 2000 - 500 <= h["expires_at"] <= t1 + 2000 + 500, h
    hid = h["hold"]
    held_at = time.monotonic()
    assert ("frida-sthlm", "r2") not in free_units(w.admin)

    # Nothing but the passing of time (and the daemon's sweep) frees the unit.
    wait_for(lambda: ("frida-sthlm", "r2") in free_units(w.admin), 10,
             "the expired hold to free its unit")
    assert time.monotonic() - held_at >= 1.5, "the unit was free again before the hold time"
    assert unit_states(w.env.show("frida-sthlm"))["r2"] == ("free", False)
    assert ("frida-sthlm", "r2") in hits(w.soc.ok("search", "--from", "0180", "--risk", "low"))

    for who in (w.soc, w.frida, w.onc):
        record = w.holds(who)[hid]
        assert record["state"] == "expired", record
        assert "placement" not in record
        assert record["closed_at"] >= record["expires_at"], record
        assert set(record) == HOLD_KEYS | {"closed_at"}, record

    # An expired hold can never be confirmed, declined or released.
    w.refused_unchanged(w.frida, ["confirm", hid], "conflict")
    w.refused_unchanged(w.frida, ["decline", hid, "--reason", "other", "--note", "för sent"], "conflict")
    w.refused_unchanged(w.soc, ["release", hid], "conflict")
    assert w.hold_record(hid)["state"] == "expired"
    assert w.onc.ok("placements")["placements"] == []

    # The unit can be held again, by anyone.
    h2 = w.hold(w.gbg, "frida-sthlm", "r2", "GBG-2")
    assert h2["hold"] != hid


@pytest.mark.daemon_config({"holds": {"ttl": "2s", "sweep_interval": "100ms"}})
def test_confirm_racing_expiry_is_never_both(world):
    """A shelter confirming over and over while the hold runs out: either the confirmation
    came first (confirmed, a placement) or it is refused (expired) - never both."""
    w = world
    h = w.hold(w.soc, "frida-sthlm", "r1", "ARENDE-RACE")
    hid = h["hold"]
    deadline = time.monotonic() + 10
    # Wait (bounded) until the hold is about to expire, then try to confirm it.
    wait_for(lambda: now_ms() >= h["expires_at"] - 150, 5, "the hold's expiry to come close",
             interval=0.01)
    results = []
    while time.monotonic() < deadline:
        r = w.frida("confirm", hid)
        results.append(r)
        if r.exit == 0 or now_ms() > h["expires_at"] + 500:
            break
    codes = [r.exit for r in results]
    record = w.hold_record(hid)
    placements = w.onc.ok("placements")["placements"]
    if 0 in codes:
        assert codes.index(0) == len(codes) - 1
        assert record["state"] == "confirmed" and len(placements) == 1
        assert placements[0]["placed_at"] < record["expires_at"], (record, placements)
        assert unit_states(w.env.show("frida-sthlm"))["r1"] == ("occupied", False)
    else:
        for r in results:
            r.refused("conflict")
        assert record["state"] == "expired" and placements == []
        wait_for(lambda: ("frida-sthlm", "r1") in free_units(w.admin), 5, "the unit to be free")


def test_idempotent_retry(world):
    w = world
    key = "retry-key-0001"
    first = w.hold(w.soc, "frida-sthlm", "r1", "ARENDE-7", "--idempotency-key", key)
    again = w.hold(w.soc, "frida-sthlm", "r1", "ARENDE-7", "--idempotency-key", key)
    assert again["hold"] == first["hold"]
    assert again["expires_at"] == first["expires_at"]
    assert again["phone"] == FRIDA_PHONE
    assert list(w.holds(w.soc)) == [first["hold"]]
    assert w.hold_record(first["hold"])["state"] == "held"

    # The same key for another request is a conflict, and nothing is held for it.
    w.refused_unchanged(w.soc, ["hold", "frida-sthlm", "r1", *LOW_RISK, "--ref", "ARENDE-8",
                                "--idempotency-key", key], "conflict")
    w.refused_unchanged(w.soc, ["hold", "frida-sthlm", "r2", *LOW_RISK, "--ref", "ARENDE-7",
                                "--idempotency-key", key], "conflict")
    w.refused_unchanged(w.soc, ["hold", "hamnen-gbg", "lgh1", *LOW_RISK, "--ref", "ARENDE-7",
                                "--idempotency-key", key], "conflict")
    assert ("frida-sthlm", "r2") in free_units(w.admin)

    # Another principal's key of the same spelling is its own.
    other = w.hold(w.gbg, "frida-sthlm", "r2", "ARENDE-7", "--idempotency-key", key)
    assert other["hold"] != first["hold"]
    third = w.hold(w.onc, "frida-sthlm", "r3", "ARENDE-9", "--idempotency-key", key)
    assert third["hold"] not in (first["hold"], other["hold"])
    assert sorted(w.holds(w.onc)) == sorted([first["hold"], other["hold"], third["hold"]])
    # A retry of the other principal's request is still answered with its own hold.
    assert w.hold(w.gbg, "frida-sthlm", "r2", "ARENDE-7", "--idempotency-key", key)["hold"] \
        == other["hold"]
    assert len(w.holds(w.onc)) == 3

    # A new key is a new request: the unit is taken now.
    w.refused_unchanged(w.soc, ["hold", "frida-sthlm", "r1", *LOW_RISK, "--ref", "ARENDE-7",
                                "--idempotency-key", "retry-key-0002"], "conflict")


def test_idempotency_key_covers_the_municipality(world):
    """On-call services name the municipality a hold is for. The same key with another
    municipality is another request (a conflict), not a retry to be answered with a hold made
    for someone else."""
    w = world
    key = "oncall-key-0001"
    for_sthlm = w.hold(w.onc, "hamnen-gbg", "lgh1", "NATT-1", "--idempotency-key", key,
                       "--for", "0180")
    assert w.hold(w.onc, "hamnen-gbg", "lgh1", "NATT-1", "--idempotency-key", key,
                  "--for", "0180")["hold"] == for_sthlm["hold"]
    w.refused_unchanged(w.onc, ["hold", "hamnen-gbg", "lgh1", *LOW_RISK, "--ref", "NATT-1",
                                "--idempotency-key", key, "--for", "1480"], "conflict")
    # Without --for the household's home municipality is responsible: here another one.
    w.refused_unchanged(w.onc, ["hold", "hamnen-gbg", "lgh1", "--from", "1480", "--risk", "low",
                                "--ref", "NATT-1", "--idempotency-key", key], "conflict")
    assert w.hold_record(for_sthlm["hold"])["municipality"] == "0180"
    assert list(w.holds(w.onc)) == [for_sthlm["hold"]]
    assert w.holds(w.gbg) == {}


def test_release(world):
    w = world
    env = w.env
    h = w.hold(w.soc, "frida-sthlm", "r1", "ARENDE-REL")
    before = now_ms()
    res = w.soc.ok("release", h["hold"])
    record = res["hold"]
    assert set(record) == HOLD_KEYS | {"closed_at"}, record
    assert record["hold"] == h["hold"] and record["state"] == "released"
    assert before - 1000 <= record["closed_at"] <= now_ms() + 1000
    assert ("frida-sthlm", "r1") in free_units(w.admin)
    assert unit_states(env.show("frida-sthlm"))["r1"] == ("free", False)
    assert w.holds(w.soc)[h["hold"]]["state"] == "released"

    # On-call services may release anybody's hold.
    h2 = w.hold(w.gbg, "hamnen-gbg", "lgh1", "GBG-REL")
    assert w.onc.ok("release", h2["hold"])["hold"]["state"] == "released"
    assert ("hamnen-gbg", "lgh1") in free_units(w.admin)
    assert w.holds(w.gbg)[h2["hold"]]["state"] == "released"
    # And the unit can be held again at once.
    w.hold(w.soc, "frida-sthlm", "r1", "ARENDE-REL-2")


def test_decline(world):
    w = world
    h = w.hold(w.soc, "frida-sthlm", "r2", "ARENDE-DEC")
    reason = "Ingen personal i natt, ring Hamnen"
    res = w.frida.ok("decline", h["hold"], "--reason", "other", "--note", reason)
    assert set(res["hold"]) == HOLD_KEYS | {"closed_at", "reason", "note"}, res
    assert res["hold"]["state"] == "declined"
    assert res["hold"]["reason"] == "other" and res["hold"]["note"] == reason
    assert ("frida-sthlm", "r2") in free_units(w.admin)
    assert unit_states(w.env.show("frida-sthlm"))["r2"] == ("free", False)
    # The municipality sees why.
    record = w.holds(w.soc)[h["hold"]]
    assert record["state"] == "declined" and record["note"] == reason
    assert "closed_at" in record and "placement" not in record
    assert w.onc.ok("placements")["placements"] == []


def test_confirm_and_discharge(world):
    w = world
    env = w.env
    h = w.hold(w.soc, "frida-sthlm", "r3", "ARENDE-PL")
    t0 = now_ms()
    res = w.frida.ok("confirm", h["hold"])
    t1 = now_ms()
    assert set(res) == {"hold", "placement"}
    hold, pl = res["hold"], res["placement"]
    assert set(hold) == HOLD_KEYS | {"closed_at", "placement"}, hold
    assert hold["state"] == "confirmed" and hold["placement"] == pl["placement"]
    assert set(pl) == PLACEMENT_KEYS, pl
    assert pl["state"] == "active" and pl["hold"] == h["hold"]
    assert (pl["shelter"], pl["unit"], pl["ref"]) == ("frida-sthlm", "r3", "ARENDE-PL")
    assert pl["municipality"] == "0180" and pl["by"] == "social:0180"
    assert t0 - 1000 <= pl["placed_at"] <= t1 + 1000
    pid = pl["placement"]

    assert unit_states(env.show("frida-sthlm"))["r3"] == ("occupied", False)
    assert ("frida-sthlm", "r3") not in free_units(w.admin)
    for who in (w.soc, w.frida, w.onc):
        listed = who.ok("placements")["placements"]
        assert [p["placement"] for p in listed] == [pid], who.cert
        assert listed[0]["state"] == "active"
    for who in (w.gbg, w.hamnen):
        assert who.ok("placements")["placements"] == []
    assert w.holds(w.soc)[h["hold"]]["state"] == "confirmed"

    res = w.frida.ok("discharge", pid)
    assert set(res["placement"]) == PLACEMENT_KEYS | {"discharged_at"}, res
    assert res["placement"]["state"] == "discharged"
    assert res["placement"]["discharged_at"] >= pl["placed_at"]
    assert unit_states(env.show("frida-sthlm"))["r3"] == ("free", False)
    assert ("frida-sthlm", "r3") in free_units(w.admin)
    for who in (w.soc, w.frida):
        assert [(p["placement"], p["state"]) for p in who.ok("placements")["placements"]] == \
            [(pid, "discharged")]
    # The unit can be held again.
    w.hold(w.gbg, "frida-sthlm", "r3", "GBG-NEXT")


def test_wrong_principal_is_forbidden_and_changes_nothing(world):
    w = world
    held = w.hold(w.soc, "frida-sthlm", "r1", "ARENDE-A")["hold"]
    placed_hold = w.hold(w.soc, "frida-sthlm", "r2", "ARENDE-B")["hold"]
    pid = w.frida.ok("confirm", placed_hold)["placement"]["placement"]
    gbg_hold = w.hold(w.gbg, "hamnen-gbg", "lgh1", "GBG-A")["hold"]
    admin_cli = w.admin

    cases = [
        # release: only the municipality that made it, or on-call
        (w.gbg, ["release", held]),
        (w.soc, ["release", gbg_hold]),
        (w.frida, ["release", held]),
        (w.hamnen, ["release", gbg_hold]),
        (admin_cli, ["release", held]),
        # confirm and decline: only the shelter the hold is on
        (w.hamnen, ["confirm", held]),
        (w.frida, ["confirm", gbg_hold]),
        (w.soc, ["confirm", held]),
        (w.onc, ["confirm", held]),
        (admin_cli, ["confirm", held]),
        (w.hamnen, ["decline", held, "--reason", "other", "--note", "inte vår"]),
        (w.soc, ["decline", held, "--reason", "other", "--note", "ångrat"]),
        (w.onc, ["decline", gbg_hold, "--reason", "other", "--note", "fel"]),
        # discharge: only the shelter of the placement
        (w.hamnen, ["discharge", pid]),
        (w.soc, ["discharge", pid]),
        (w.onc, ["discharge", pid]),
        (admin_cli, ["discharge", pid]),
        # hold: social services for their own municipality, and on-call
        (admin_cli, ["hold", "frida-sthlm", "r3", *LOW_RISK, "--ref", "ADM-1"]),
        (w.frida, ["hold", "frida-sthlm", "r3", *LOW_RISK, "--ref", "SELF-1"]),
        (w.soc, ["hold", "frida-sthlm", "r3", *LOW_RISK, "--ref", "FOR-GBG", "--for", "1480"]),
        (w.gbg, ["hold", "hamnen-gbg", "lgh2", *LOW_RISK, "--ref", "FOR-STHLM", "--for", "0180"]),
        # vacancies of another shelter
        (w.hamnen, ["vacancy", "frida-sthlm", "r3", "closed"]),
    ]
    before = w.state()
    failures = []
    for who, args in cases:
        r = who(*args)
        if not (r.exit == 1 and r.error_code == "forbidden"):
            failures.append(f"{who.cert.name} {args}: exit {r.exit} {r.stdout.strip()}")
        after = w.state()
        if after != before:
            failures.append(f"{who.cert.name} {args} changed the state")
            before = after
    assert not failures, "\n".join(failures)

    # Everything is as it was: the hold, the placement and the other hold are intact.
    assert w.hold_record(held)["state"] == "held"
    assert w.hold_record(gbg_hold)["state"] == "held"
    assert [p["state"] for p in w.onc.ok("placements")["placements"]] == ["active"]
    assert free_units(w.admin) == [("frida-sthlm", "r3"), ("hamnen-gbg", "lgh2")]
    # And the right principals still can.
    w.soc.ok("release", held)
    w.hamnen.ok("confirm", gbg_hold)
    w.frida.ok("discharge", pid)


def test_wrong_state_is_conflict_and_changes_nothing(world):
    w = world
    released = w.hold(w.soc, "frida-sthlm", "r1", "ARENDE-R")["hold"]
    w.soc.ok("release", released)
    confirmed = w.hold(w.soc, "frida-sthlm", "r2", "ARENDE-C")["hold"]
    pid = w.frida.ok("confirm", confirmed)["placement"]["placement"]
    declined = w.hold(w.gbg, "hamnen-gbg", "lgh1", "GBG-D")["hold"]
    w.hamnen.ok("decline", declined, "--reason", "other", "--note", "fullt")
    done_hold = w.hold(w.gbg, "hamnen-gbg", "lgh2", "GBG-E")["hold"]
    done = w.hamnen.ok("confirm", done_hold)["placement"]["placement"]
    w.hamnen.ok("discharge", done)

    cases = [
        (w.frida, ["confirm", released]),
        (w.frida, ["decline", released, "--reason", "other", "--note", "x"]),
        (w.soc, ["release", released]),
        (w.soc, ["release", confirmed]),
        (w.onc, ["release", confirmed]),
        (w.frida, ["decline", confirmed, "--reason", "other", "--note", "x"]),
        (w.hamnen, ["confirm", declined]),
        (w.gbg, ["release", declined]),
        # Confirmed once, its placement since ended: no repeat of that confirmation.
        (w.hamnen, ["confirm", done_hold]),
    ]
    before = w.state()
    failures = []
    for who, args in cases:
        r = who(*args)
        if not (r.exit == 1 and r.error_code == "conflict"):
            failures.append(f"{who.cert.name} {args}: exit {r.exit} {r.stdout.strip()}")
        after = w.state()
        if after != before:
            failures.append(f"{who.cert.name} {args} changed the state")
            before = after
    assert not failures, "\n".join(failures)
    # What the shelter did already is answered as it was the first time (a repeat whose answer
    # was lost), and changes nothing.
    for who, args in [(w.frida, ["confirm", confirmed]), (w.hamnen, ["discharge", done])]:
        assert who.ok(*args), args
        assert w.state() == before, args

    states = {h["hold"]: h["state"] for h in w.onc.ok("holds")["holds"]}
    assert states == {released: "released", confirmed: "confirmed", declined: "declined",
                      done_hold: "confirmed"}
    placements = {p["placement"]: p["state"] for p in w.onc.ok("placements")["placements"]}
    assert placements == {pid: "active", done: "discharged"}
    # Unknown ids are not found.
    w.refused_unchanged(w.frida, ["confirm", "h0000000000000000"], "not_found")
    w.refused_unchanged(w.frida, ["discharge", "p0000000000000000"], "not_found")
    w.refused_unchanged(w.soc, ["release", "h0000000000000000"], "not_found")


def test_vacancy_set_on_held_or_placed_unit_is_conflict(world):
    w = world
    h = w.hold(w.soc, "frida-sthlm", "r1", "ARENDE-V")["hold"]
    for state in ("occupied", "closed", "free"):
        w.refused_unchanged(w.frida, ["vacancy", "frida-sthlm", "r1", state], "conflict")
    pid = w.frida.ok("confirm", h)["placement"]["placement"]
    for state in ("free", "closed", "occupied"):
        w.refused_unchanged(w.frida, ["vacancy", "frida-sthlm", "r1", state], "conflict")
    assert unit_states(w.env.show("frida-sthlm"))["r1"] == ("occupied", False)
    w.frida.ok("discharge", pid)
    # Once discharged the shelter reports the unit as usual.
    w.frida.ok("vacancy", "frida-sthlm", "r1", "closed")
    assert unit_states(w.env.show("frida-sthlm"))["r1"] == ("closed", False)
    # A unit that is held or placed cannot be removed either, nor its shelter retired.
    w.hold(w.gbg, "hamnen-gbg", "lgh1", "GBG-V")
    w.refused_unchanged(w.admin, ["unit", "remove", "hamnen-gbg", "lgh1"], "conflict")
    w.refused_unchanged(w.admin, ["shelter", "retire", "hamnen-gbg"], "conflict")


def test_lists_are_scoped(world):
    w = world
    stoc = w.hold(w.soc, "frida-sthlm", "r1", "S-1", "--for", "0180")["hold"]
    g_ham = w.hold(w.gbg, "hamnen-gbg", "lgh1", "G-1")["hold"]
    g_fri = w.hold(w.gbg, "frida-sthlm", "r2", "G-2")["hold"]
    o_ham = w.hold(w.onc, "hamnen-gbg", "lgh2", "O-1", "--for", "0180")["hold"]

    def ids(who, what="holds"):
        return [x["hold" if what == "holds" else "placement"] for x in who.ok(what)[what]]

    # Newest first.
    assert ids(w.onc) == [o_ham, g_fri, g_ham, stoc]
    assert ids(w.frida) == [g_fri, stoc]
    assert ids(w.hamnen) == [o_ham, g_ham]
    # A municipality sees the holds made for it: its own, and on-call's on its behalf.
    assert ids(w.soc) == [o_ham, stoc]
    assert ids(w.gbg) == [g_fri, g_ham]
    assert ids(w.env.cli("social", "2580")) == []
    assert ids(w.env.cli("shelter", "lulea-jour")) == []
    assert w.holds(w.soc)[o_ham]["by"] == "oncall:socialjouren-sthlm"
    assert w.holds(w.soc)[o_ham]["municipality"] == "0180"
    # Göteborg may not release the hold made for Stockholm; Stockholm may.
    w.refused_unchanged(w.gbg, ["release", o_ham], "forbidden")
    extra = w.hold(w.onc, "frida-sthlm", "r3", "O-2", "--for", "0180")["hold"]
    assert w.soc.ok("release", extra)["hold"]["state"] == "released"
    assert ids(w.soc)[0] == extra

    p_fri = w.frida.ok("confirm", g_fri)["placement"]["placement"]
    p_ham = w.hamnen.ok("confirm", o_ham)["placement"]["placement"]
    assert ids(w.onc, "placements") == [p_ham, p_fri]
    assert ids(w.frida, "placements") == [p_fri]
    assert ids(w.hamnen, "placements") == [p_ham]
    assert ids(w.gbg, "placements") == [p_fri]
    assert ids(w.soc, "placements") == [p_ham]
    assert ids(w.env.cli("social", "2580"), "placements") == []

    w.admin("holds").refused("forbidden")
    w.admin("placements").refused("forbidden")


def test_personal_identity_number_as_ref_is_refused(world):
    w = world
    numbers = [
        "19800101-0001",
        personnummer("19800101", "000", sep=""),
        personnummer("19800101", "000")[2:],
        personnummer("19800101", "000", sep="")[2:],
        personnummer("19121212", "121"),
        personnummer("20050317", "238"),
        personnummer("19800161", "123"),        # coordination number (day + 60)
        "ARENDE:" + personnummer("19640823", "332"),
        "x/" + personnummer("19990228", "567", sep="") + "/y",
    ]
    assert numbers[0] == personnummer("19800101", "000")
    before = w.state()
    for pnr in numbers:
        w.soc("hold", "frida-sthlm", "r1", *LOW_RISK, "--ref", pnr).refused("personal_data")
        w.onc("hold", "frida-sthlm", "r2", *LOW_RISK, "--ref", "SAFE-REF",
              "--idempotency-key", pnr).refused("personal_data")
    assert w.state() == before
    assert w.holds(w.onc) == {}
    assert free_units(w.admin) == ALL_FREE
    # Not even the refusals left the numbers behind: Redis's append-only file, which holds
    # every write, has none of them, in any spelling.
    aof = b"".join(p.read_bytes() for p in w.env.redis.dir.rglob("*") if p.is_file())
    for pnr in numbers:
        digits = "".join(ch for ch in pnr if ch.isdigit())
        for form in {pnr, digits, digits[-10:]}:
            assert form.encode() not in aof, f"{form} is stored in Redis"

    # A reason that names a person's number is refused too; the hold stays held.
    h = w.hold(w.soc, "frida-sthlm", "r1", "ARENDE-OK")["hold"]
    w.refused_unchanged(w.frida, ["decline", h, "--reason", "other", "--note", "gäller 19800101-0001"],
                        "personal_data")
    assert w.hold_record(h)["state"] == "held"

    # A number whose check digit is wrong is no personal number and is an acceptable ref.
    ok = w.hold(w.soc, "frida-sthlm", "r2", "19800101-0002")
    assert w.hold_record(ok["hold"])["ref"] == "19800101-0002"
    # (And that is where a stored ref would be found.)
    aof = b"".join(p.read_bytes() for p in w.env.redis.dir.rglob("*") if p.is_file())
    assert b"19800101-0002" in aof and b"ARENDE-OK" in aof


@pytest.mark.daemon_config({"holds": {"ttl": "3s", "sweep_interval": "1m", "max_open": 1000}})
def test_expired_holds_beyond_one_sweep(env):
    """More holds run out at once than one sweep expires (100 per call; the timer is slow
    here). Every one of them is expired all the same, whichever request meets it first: it
    cannot be confirmed, and its unit is free - to be reported on, removed or held again, and
    its shelter retired."""
    big_ids = [f"stor-{k}" for k in range(4)]
    for sid in big_ids:
        env.add_shelter(sid, f"Stora jouren {sid[-1]}", municipality="0180")
    env.add_shelter("lilla-jouren", "Lilla jouren", municipality="0182")
    admin = env.connect("admin", "ops-anna", timeout=60)
    oncall = env.connect("oncall", "socialjouren-sthlm", timeout=60)
    shelters = {sid: env.connect("shelter", sid, timeout=60) for sid in big_ids}
    shelters["lilla-jouren"] = env.connect("shelter", "lilla-jouren", timeout=60)
    # The small shelter's holds are made last, so they run out last.
    units = [(sid, f"u{i:03d}") for sid in big_ids for i in range(103)] + \
            [("lilla-jouren", "a"), ("lilla-jouren", "b")]
    for rep in admin.pipeline([("unit.add", {"shelter": s, "unit": u, "beds": 2})
                               for s, u in units], timeout=60):
        assert rep["ok"], rep
    for sid, conn in shelters.items():
        reqs = [("vacancy.set", {"shelter": s, "unit": u, "state": "free"})
                for s, u in units if s == sid]
        assert all(rep["ok"] for rep in conn.pipeline(reqs, timeout=60))
    replies = oncall.pipeline([("hold", {**LOW_RISK_ARGS, "shelter": s, "unit": u, "ref": f"MANGA-{u}"})
                               for s, u in units], timeout=60)
    assert all(r["ok"] for r in replies), [r for r in replies if not r["ok"]][:3]
    holds = [r["result"] for r in replies]
    big = sorted((h for h in holds if h["shelter"] != "lilla-jouren"),
                 key=lambda h: h["expires_at"])
    # The last four to run out are in the shelter whose holds were made last.
    assert {h["shelter"] for h in big[-4:]} == {"stor-3"}
    small = [h for h in holds if h["shelter"] == "lilla-jouren"]
    assert min(h["expires_at"] for h in small) >= big[-1]["expires_at"]
    # All holds were made before the first one ran out, so no hold request expired any.
    assert small[-1]["expires_at"] - big[0]["expires_at"] < 2500
    wait_for(lambda: now_ms() > small[-1]["expires_at"] + 100, 10,
             "every hold to run out", interval=0.05)
    assert {h["state"] for h in oncall.call("holds.list")["holds"]} == {"expired"}

    # Each request below expires at most 100 holds, earliest first, before its own work, so
    # each meets holds that no sweep has reached yet.
    failures = []

    def attempt(what, conn, op, args, want_ok):
        ok, res = conn.request(op, args)
        if ok != want_ok:
            failures.append(f"{what}: {'accepted' if ok else res['code']}: {res}")

    attempt("retire the small shelter, whose holds all ran out", admin, "shelter.retire",
            {"shelter": "lilla-jouren"}, True)
    attempt("confirm the last hold of the big shelters", shelters["stor-3"],
            "hold.confirm", {"hold": big[-1]["hold"]}, False)
    attempt("report the unit of the second last as closed", shelters["stor-3"],
            "vacancy.set", {"shelter": "stor-3", "unit": big[-2]["unit"],
                            "state": "closed"}, True)
    attempt("remove the unit of the third last", admin, "unit.remove",
            {"shelter": "stor-3", "unit": big[-3]["unit"]}, True)
    attempt("hold the unit of the fourth last again", oncall, "hold",
            {**LOW_RISK_ARGS, "shelter": "stor-3", "unit": big[-4]["unit"], "ref": "EFTER-1"}, True)

    states = {h["hold"]: h["state"] for h in oncall.call("holds.list")["holds"]}
    for h in big[-4:] + small:
        if states.get(h["hold"]) != "expired":
            failures.append(f"the hold on {h['unit']} is {states.get(h['hold'])}, not expired")
    placements = oncall.call("placements.list")["placements"]
    if placements:
        failures.append(f"placements made on expired holds: {placements}")
    assert not failures, "\n".join(failures)
    units = {u["id"]: (u["state"], u["held"]) for u in env.show("stor-3")["units"]}
    assert units[big[-1]["unit"]] == ("free", False)
    assert units[big[-2]["unit"]] == ("closed", False)
    assert big[-3]["unit"] not in units
    assert units[big[-4]["unit"]] == ("free", True)
    assert env.show("lilla-jouren")["retired"] is True


@pytest.mark.daemon_config({"holds": {"reference_retention": "2s", "sweep_interval": "100ms"}})
def test_purging_an_old_hold_keeps_a_reused_key(env):
    """An idempotency key that expired and was used again belongs to the new hold: deleting
    the old hold's record after its retention must not delete the new hold's key."""
    from referrals import redis_command
    env.add_shelter("frida-sthlm", "Kvinnojouren Frida", municipality="0180")
    for u in ("r1", "r2"):
        env.add_unit("frida-sthlm", u, 2)
        env.cli("shelter", "frida-sthlm").ok("vacancy", "frida-sthlm", u, "free")
    social = env.cli("social", "0180")
    key = "reused-key-001"
    old = social.ok("hold", "frida-sthlm", "r1", *LOW_RISK, "--ref", "KS-1", "--idempotency-key", key)
    social.ok("release", old["hold"])
    # The key's own 24-hour lifetime runs out before the old hold's record is purged.
    idem = f"{{{env.daemon.namespace}}}:idem:social:0180:{key}"
    assert redis_command(env.redis.sock, "DEL", idem) == ":1"
    new = social.ok("hold", "frida-sthlm", "r2", *LOW_RISK, "--ref", "KS-2", "--idempotency-key", key)
    assert new["hold"] != old["hold"]
    wait_for(lambda: redis_command(env.redis.sock, "EXISTS",
                                   f"{{{env.daemon.namespace}}}:hold:{old['hold']}") == ":0",
             15, "the released hold's record to be purged")
    # A retry of the new request still gets the new hold, not a second one.
    again = social.ok("hold", "frida-sthlm", "r2", *LOW_RISK, "--ref", "KS-2", "--idempotency-key", key)
    assert again["hold"] == new["hold"]
    assert [h["hold"] for h in social.ok("holds")["holds"]] == [new["hold"]]


@pytest.mark.daemon_config({"holds": {"max_open": 2000}})
def test_lists_come_in_pages(env):
    """A large municipality's or an on-call service's records do not fit one reply, and none may
    silently fall off the end: holds.list and placements.list answer 200 records at a time,
    newest first, each page but the last ending with "next", the cursor the next page follows;
    the client asks for every page, also to find the hold a short id names. Records of one
    millisecond on both sides of a page's end, in one list or merged from several, are each
    listed once; a record purged between pages does not end the listing; and a cursor shows
    nothing but the asker's own records."""
    import bulk
    page = 200
    plan = {"manga-sthlm": ("0180", 250), "manga-solna": ("0184", 200)}
    admin = env.connect("admin", "ops-anna", timeout=120)
    oncall = env.connect("oncall", "socialjouren-sthlm", timeout=120)
    for sid, (mun, n) in plan.items():
        env.add_shelter(sid, f"Stora jouren {mun}", municipality=mun)
        units = [f"u{i:03d}" for i in range(n)]
        assert all(r["ok"] for r in admin.pipeline(
            [("unit.add", {"shelter": sid, "unit": u, "beds": 2}) for u in units], timeout=120))
        shelter = env.connect("shelter", sid, timeout=120)
        assert all(r["ok"] for r in shelter.pipeline(
            [("vacancy.set", {"shelter": sid, "unit": u, "state": "free"}) for u in units],
            timeout=120))
        shelter.close()
    # Made in turn for the two municipalities, so that their lists interleave.
    order = [(sid, f"u{i:03d}") for i in range(250) for sid in plan if i < plan[sid][1]]
    replies = oncall.pipeline([("hold", {**LOW_RISK_ARGS, "shelter": sid, "unit": u,
                                         "ref": f"SIDA-{u}", "municipality": plan[sid][0]})
                               for sid, u in order], timeout=180)
    assert all(r["ok"] for r in replies), [r for r in replies if not r["ok"]][:3]
    made = {sid: [r["result"] for r in replies if r["result"]["shelter"] == sid] for sid in plan}
    sthlm, solna = made["manga-sthlm"], made["manga-solna"]

    def newest_first(holds):
        # Every hold runs the same time: by expiry is by creation.
        return [h["hold"] for h in sorted(holds, key=lambda h: (h["expires_at"], h["hold"]),
                                          reverse=True)]

    def pages(conn, op, key, ident, after=None):
        got = []
        while True:
            p = conn.call(op, {"after": after} if after else {})
            got.append([r[ident] for r in p[key]])
            if "next" not in p:
                return got
            assert p["next"].endswith("-" + got[-1][-1]), p["next"]
            after = p["next"]

    social = env.connect("social", "0180", timeout=60)
    got = pages(social, "holds.list", "holds", "hold")
    assert [len(p) for p in got] == [page, 50]
    assert sum(got, []) == newest_first(sthlm)
    # A whole page: full, and without "next".
    got = pages(env.connect("social", "0184", timeout=60), "holds.list", "holds", "hold")
    assert got == [newest_first(solna)]
    got = pages(oncall, "holds.list", "holds", "hold")
    assert [len(p) for p in got] == [page, page, 50]
    assert sum(got, []) == newest_first(sthlm + solna)
    # The client shows one list of every page, and finds a short id beyond the first page.
    listed = env.cli("oncall", "socialjouren-sthlm").ok("holds")
    assert "next" not in listed and len(listed["holds"]) == 450
    oldest = sum(got, [])[-1]
    prefixes = {h[:k] for h in sum(got, [])[:-1] for k in range(2, 17)}
    short = next(oldest[:k] for k in range(2, 17) if oldest[:k] not in prefixes)
    released = env.cli("oncall", "socialjouren-sthlm").ok("release", short)
    assert released["hold"]["hold"] == oldest, released

    # Records of a few milliseconds, many of each, in both lists merged and at the page ends.
    ns = env.daemon.namespace
    r = bulk.Redis(env.redis.sock)
    scores = {}
    for i, h in enumerate(h for pair in zip(sthlm, solna) for h in pair):
        scores[h["hold"]] = 1700000000000 + i // 150  # page ends fall inside groups
    for h in sthlm[len(solna):]:
        scores[h["hold"]] = 1700000000009
    for sid, (mun, _) in plan.items():
        for h in made[sid]:
            r.call("ZADD", f"{{{ns}}}:holds:m:{mun}", scores[h["hold"]], h["hold"])
    for h in sthlm:
        r.call("ZADD", f"{{{ns}}}:holds:s:manga-sthlm", "1700000000000", h["hold"])
    expect = sorted(scores, key=lambda hid: (scores[hid], hid), reverse=True)
    got = pages(oncall, "holds.list", "holds", "hold")
    assert [len(p) for p in got] == [page, page, 50]
    assert sum(got, []) == expect
    shelter = env.connect("shelter", "manga-sthlm", timeout=60)
    got = pages(shelter, "holds.list", "holds", "hold")
    assert [len(p) for p in got] == [page, 50]
    assert sum(got, []) == sorted((h["hold"] for h in sthlm), reverse=True)

    # The record a page ended with is purged before the next page is asked for: the listing
    # goes on from where it was.
    first = oncall.call("holds.list")
    gone = first["holds"][-1]["hold"]
    r.call("ZREM", f"{{{ns}}}:holds:m:{first['holds'][-1]['municipality']}", gone)
    r.call("DEL", f"{{{ns}}}:hold:{gone}")
    rest = pages(oncall, "holds.list", "holds", "hold", after=first["next"])
    assert [h["hold"] for h in first["holds"]] + sum(rest, []) == expect
    r.close()

    # A cursor shows the asker's own records and no one else's: Stockholm after a cursor made
    # of a Solna hold gets its own holds older than that time.
    cursor = f"{scores[solna[0]['hold']]}-{solna[0]['hold']}"
    own = [h for h in expect if h in {x["hold"] for x in sthlm}]
    assert sum(pages(social, "holds.list", "holds", "hold", after=cursor), []) == \
        [h for h in own if scores[h] < scores[solna[0]["hold"]] or
         (scores[h] == scores[solna[0]["hold"]] and h < solna[0]["hold"])]
    for after in ("h0000000000000000", "1700000000000", "1700000000000-", "0-h00",
                  "1700000000000-p0000000000000000", "17000000000000000-h0000000000000000",
                  "", "x" * 33, "Hold/1"):
        ok, err = social.request("holds.list", {"after": after})
        assert not ok and err["code"] == "bad_request", (after, err)

    # Placements the same way.
    open_sthlm = [h for h in sthlm if h["hold"] not in (oldest, gone)]
    confirmed = shelter.pipeline([("hold.confirm", {"hold": h["hold"]}) for h in open_sthlm],
                                 timeout=120)
    assert all(c["ok"] for c in confirmed), [c for c in confirmed if not c["ok"]][:3]
    placed = [c["result"]["placement"] for c in confirmed]
    got = pages(social, "placements.list", "placements", "placement")
    assert [len(p) for p in got] == [page, len(open_sthlm) - page]
    assert sum(got, []) == [p["placement"] for p in sorted(
        placed, key=lambda p: (p["placed_at"], p["placement"]), reverse=True)]
    ok, err = shelter.request("placements.list", {"after": "1700000000000-h0000000000000000"})
    assert not ok and err["code"] == "bad_request", err
    assert len(env.cli("shelter", "manga-sthlm").ok("placements")["placements"]) == \
        len(open_sthlm)


def test_pages_of_a_wide_area_merge_every_list(env, capsys):
    """An on-call service whose area is the whole country merges 290 lists, newest first, each
    record once, page after page. Each list is read a chunk at a time, not a page of every
    list; Redis's time per page is printed (a figure, not asserted)."""
    import bulk
    ns = env.daemon.namespace
    r = bulk.Redis(env.redis.sock)
    codes = bulk.codes()
    made = r.call("EVAL", """
local P, per, n = ARGV[1], tonumber(ARGV[2]), 0
for i = 3, #ARGV do
    for k = 1, per do
        n = n + 1
        local id, at = string.format('h%016d', n), 1700000000000 + (n * 7919) % 100000000
        redis.call('HSET', P .. 'hold:' .. id, 'shelter', 'jour', 'unit', 'u1', 'ref', 'R-' .. n,
                   'by', 'oncall:socialjouren-sthlm', 'state', 'released', 'created_at', at,
                   'expires_at', at + 1800000, 'municipality', ARGV[i], 'risk', 'low',
                   'adults', 1, 'group', 'women')
        redis.call('ZADD', P .. 'holds:m:' .. ARGV[i], at, id)
    end
end
return n""", 0, "{%s}:" % ns, 300, *codes)
    r.call("CONFIG", "SET", "slowlog-log-slower-than", "0")
    r.call("CONFIG", "SET", "slowlog-max-len", "1000000")
    r.call("SLOWLOG", "RESET")
    oncall = env.connect("oncall", "socialjouren-sthlm", timeout=120)
    after, seen, previous = None, [], None
    for _ in range(4):
        page = oncall.call("holds.list", {"after": after} if after else {})
        rows = [(h["created_at"], h["hold"]) for h in page["holds"]]
        assert len(rows) == 200 and rows == sorted(rows, reverse=True)
        assert previous is None or rows[0] < previous
        previous, after = rows[-1], page["next"]
        seen += rows
    assert len(set(seen)) == len(seen) == 800
    calls = sorted(e[2] / 1000 for e in r.call("SLOWLOG", "GET", -1)
                   if e[3][:2] == [b"FCALL", b"fristad_holds_list"])
    r.call("CONFIG", "SET", "slowlog-log-slower-than", "10000")
    r.close()
    with capsys.disabled():
        print(f"\n  {made} holds in {len(codes)} municipalities: Redis time per page of 200, "
              "ms: " + ", ".join(f"{c:.1f}" for c in calls))
