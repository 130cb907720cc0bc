"""The registry end to end through the real client: admin registers and changes shelters and
units, a shelter reports its vacancies, everyone lists and sees free units."""

import socket
import time

import pytest

from conftest import ADMIN, Cli, shelter_args, strip_volatile, wait_for

SHELTER_KEYS = {"id", "name", "kind", "municipality", "municipality_name", "county",
                "protection", "groups", "max_children", "boys_max_age", "pets", "substance",
                "languages", "intake_hours", "paused", "retired", "updated_at", "data_age_s", "stale", "units",
                "competences", "operator", "ivo_permit", "ivo_permit_date", "ivo_registered"}
# A listing shows who runs each shelter and, to all but other shelters, its IVO permit.
SUMMARY_KEYS = {"id", "name", "kind", "municipality", "municipality_name", "county",
                "protection", "units", "free_units", "paused", "stale", "data_age_s",
                "operator", "ivo_permit", "ivo_permit_date", "ivo_registered"}
FREE_KEYS = {"shelter", "name", "kind", "municipality", "municipality_name", "county", "unit",
             "beds", "accessible", "protection", "stale", "data_age_s"}


def now_ms():
    return int(time.time() * 1000)


def wait_past(ms):
    """Waits (bounded) until the wall clock is past a server timestamp, so a new one differs."""
    wait_for(lambda: now_ms() > ms + 1, 5, "the clock to move past the server's timestamp",
             interval=0.005)


@pytest.fixture
def fleet(env):
    """Four shelters across the country, with units, all registered by the admin."""
    env.add_shelter("frida-sthlm", "Kvinnojouren Frida", municipality="0180", protection=2,
                    phone="08-555 010 10", groups=["women", "youth"], max_children=4,
                    boys_max_age=12, languages=["sv", "en", "ar"])
    env.add_unit("frida-sthlm", "r1", 2)
    env.add_unit("frida-sthlm", "r2", 4, accessible=True)
    env.add_unit("frida-sthlm", "r3", 1)
    env.add_shelter("vasby-jour", "Väsby kvinnojour", municipality="0114", protection=1,
                    phone="08-590 111 22")
    env.add_unit("vasby-jour", "a", 3)
    env.add_shelter("hamnen-gbg", "Skyddat boende Hamnen", kind="skyddat_boende",
                    operator="kommunal", ivo_registered=True,
                    municipality="1480", protection=3, phone="+46 31 700 00 00",
                    groups=["women", "hbtqi"], pets=True, substance=True)
    env.add_unit("hamnen-gbg", "lgh1", 5, accessible=True)
    env.add_unit("hamnen-gbg", "lgh2", 2)
    env.add_shelter("malmo-kris", "Kriscentrum Malmö", kind="kriscentrum",
                    municipality="1280", protection=1, phone="040-34 50 00", groups=["men"])
    env.add_unit("malmo-kris", "k1", 1)
    env.add_shelter("lulea-jour", "Luleå kvinnojour", municipality="2580", protection=2,
                    phone="0920-100 00")
    env.add_unit("lulea-jour", "u1", 2)
    return env


def test_register_and_show(env):
    added = env.add_shelter("frida-sthlm", "Kvinnojouren Frida", municipality="0180",
                            protection=2, phone="08-555 010 10", groups=["women", "youth"],
                            max_children=4, boys_max_age=12, pets=True,
                            languages=["sv", "en", "ar"])
    # A write's reply never discloses the intake phone; shelter.show does, and audits it.
    assert set(added) == SHELTER_KEYS, sorted(added)
    env.add_unit("frida-sthlm", "r2", 4, accessible=True)
    env.add_unit("frida-sthlm", "r1", 2)

    s = env.show("frida-sthlm")
    assert s["id"] == "frida-sthlm"
    assert s["name"] == "Kvinnojouren Frida"
    assert s["kind"] == "kvinnojour"
    assert s["municipality"] == "0180"
    assert s["municipality_name"] == "Stockholm"
    assert s["county"] == "01"
    assert s["protection"] == 2
    assert s["phone"] == "08-555 010 10"
    assert sorted(s["groups"]) == ["women", "youth"]
    assert s["max_children"] == 4
    assert s["boys_max_age"] == 12
    assert s["pets"] is True
    assert s["substance"] is False
    assert sorted(s["languages"]) == ["ar", "en", "sv"]
    assert s["paused"] is False and s["retired"] is False
    assert isinstance(s["updated_at"], int) and abs(s["updated_at"] - now_ms()) < 600_000
    assert s["stale"] is False
    # Units sorted by id; a new unit starts closed and unheld.
    assert s["units"] == [
        {"id": "r1", "beds": 2, "accessible": False, "state": "closed", "held": False},
        {"id": "r2", "beds": 4, "accessible": True, "state": "closed", "held": False},
    ]


def test_defaults_and_limits_absent(env):
    env.add_shelter("plain", "Plain jour", municipality="2580", phone="0920-123 45")
    s = env.show("plain")
    assert s["groups"] == ["women"]
    assert s["max_children"] is None and s["boys_max_age"] is None
    assert s["pets"] is False and s["substance"] is False
    assert s["languages"] == []
    assert s["municipality_name"] == "Luleå" and s["county"] == "25"
    assert s["units"] == []


def test_update_fields(fleet):
    env = fleet
    before = env.show("frida-sthlm")
    wait_past(before["updated_at"])
    env.admin.ok("shelter", "update", "frida-sthlm", "--name", "Frida Stockholm",
                 "--protection", 3, "--groups", "women,hbtqi", "--max-children", 6,
                 "--boys-max-age", 15, "--languages", "sv,fi", "--phone", "08-555 999 99")
    after = env.show("frida-sthlm")
    assert after["name"] == "Frida Stockholm"
    assert after["protection"] == 3
    assert sorted(after["groups"]) == ["hbtqi", "women"]
    assert after["max_children"] == 6 and after["boys_max_age"] == 15
    assert sorted(after["languages"]) == ["fi", "sv"]
    assert after["phone"] == "08-555 999 99"
    # Untouched fields keep their values, units and their states are untouched.
    for k in ("kind", "municipality", "county", "pets", "substance", "units"):
        assert after[k] == before[k], k
    # Moving to another municipality changes county and name with it.
    env.admin.ok("shelter", "update", "frida-sthlm", "--municipality", "1281")
    moved = env.show("frida-sthlm")
    assert (moved["municipality"], moved["municipality_name"], moved["county"]) == \
        ("1281", "Lund", "12")

    env.admin.ok("unit", "update", "frida-sthlm", "r1", "--beds", 6, "--accessible")
    r1 = next(u for u in env.show("frida-sthlm")["units"] if u["id"] == "r1")
    assert r1["beds"] == 6 and r1["accessible"] is True


def test_vacancy_states_and_free(fleet):
    env = fleet
    # Nothing is free: every unit starts closed.
    assert env.admin.ok("free") == {"units": []}

    frida = env.cli("shelter", "frida-sthlm")
    frida.ok("vacancy", "frida-sthlm", "r1", "free")
    frida.ok("vacancy", "frida-sthlm", "r2", "occupied")
    frida.ok("vacancy", "frida-sthlm", "r3", "free")
    env.cli("shelter", "hamnen-gbg").ok("vacancy", "hamnen-gbg", "lgh2", "free")
    env.cli("shelter", "lulea-jour").ok("vacancy", "lulea-jour", "u1", "free")

    states = {u["id"]: u["state"] for u in env.show("frida-sthlm")["units"]}
    assert states == {"r1": "free", "r2": "occupied", "r3": "free"}

    free = env.cli("social", "0180").ok("free")["units"]
    for f in free:
        assert set(f) == FREE_KEYS, sorted(f)
    # Sorted by municipality, shelter, unit.
    assert [(f["municipality"], f["shelter"], f["unit"]) for f in free] == [
        ("0180", "frida-sthlm", "r1"),
        ("0180", "frida-sthlm", "r3"),
        ("1480", "hamnen-gbg", "lgh2"),
        ("2580", "lulea-jour", "u1"),
    ]
    f0 = free[0]
    assert (f0["name"], f0["kind"], f0["municipality_name"], f0["county"], f0["beds"],
            f0["accessible"], f0["protection"], f0["stale"]) == \
        ("Kvinnojouren Frida", "kvinnojour", "Stockholm", "01", 2, False, 2, False)

    # Closing and occupying take units off the free list again.
    frida.ok("vacancy", "frida-sthlm", "r1", "closed")
    frida.ok("vacancy", "frida-sthlm", "r3", "occupied")
    free = env.admin.ok("free")["units"]
    assert [(f["shelter"], f["unit"]) for f in free] == [("hamnen-gbg", "lgh2"),
                                                          ("lulea-jour", "u1")]
    assert [(f["shelter"], f["unit"]) for f in env.admin.ok("free", "--county", "14")["units"]] \
        == [("hamnen-gbg", "lgh2")]
    assert env.admin.ok("free", "--municipality", "0180")["units"] == []
    assert [f["unit"] for f in env.admin.ok("free", "--municipality", "2580")["units"]] == ["u1"]


def test_change_result_is_current_shelter(fleet):
    env = fleet
    vasby = env.cli("shelter", "vasby-jour")
    res = vasby.ok("vacancy", "vasby-jour", "a", "free")
    assert res["shelter"]["id"] == "vasby-jour"
    assert [u["state"] for u in res["shelter"]["units"]] == ["free"]
    # The reply is the shelter as it is now, as the shelter itself sees it, less the intake
    # phone, which only shelter.show discloses.
    shown = strip_volatile(env.show("vasby-jour", who=vasby))
    assert shown.pop("phone")
    assert strip_volatile(res["shelter"]) == shown


def test_confirm_updates_updated_at(fleet):
    env = fleet
    shelter = env.cli("shelter", "lulea-jour")
    shelter.ok("vacancy", "lulea-jour", "u1", "free")
    t1 = env.show("lulea-jour")["updated_at"]
    wait_past(t1)
    shelter.ok("vacancy", "confirm", "lulea-jour")
    s = env.show("lulea-jour")
    assert s["updated_at"] > t1
    assert s["updated_at"] <= now_ms() + 1000
    assert s["stale"] is False and s["data_age_s"] <= 5
    # Confirming changes no state.
    assert [u["state"] for u in s["units"]] == ["free"]

    # A vacancy change also sets updated_at; an unrelated shelter's stays as it was.
    other_before = env.show("malmo-kris")["updated_at"]
    wait_past(s["updated_at"])
    shelter.ok("vacancy", "lulea-jour", "u1", "occupied")
    assert env.show("lulea-jour")["updated_at"] > s["updated_at"]
    assert env.show("malmo-kris")["updated_at"] == other_before


def test_list_by_county_and_municipality(fleet):
    env = fleet
    env.cli("shelter", "frida-sthlm").ok("vacancy", "frida-sthlm", "r2", "free")
    social = env.cli("social", "1480")
    listing = social.ok("shelter", "list")["shelters"]
    for s in listing:
        assert set(s) == SUMMARY_KEYS, sorted(s)
    # Sorted by municipality, then id.
    assert [(s["municipality"], s["id"]) for s in listing] == [
        ("0114", "vasby-jour"), ("0180", "frida-sthlm"), ("1280", "malmo-kris"),
        ("1480", "hamnen-gbg"), ("2580", "lulea-jour")]
    frida = next(s for s in listing if s["id"] == "frida-sthlm")
    assert frida["units"] == 3 and frida["free_units"] == 1
    assert frida["municipality_name"] == "Stockholm" and frida["county"] == "01"
    assert "phone" not in frida

    county01 = social.ok("shelter", "list", "--county", "01")["shelters"]
    assert [s["id"] for s in county01] == ["vasby-jour", "frida-sthlm"]
    assert [s["id"] for s in social.ok("shelter", "list", "--municipality", "1480")["shelters"]] \
        == ["hamnen-gbg"]
    assert social.ok("shelter", "list", "--county", "03")["shelters"] == []
    assert [s["id"] for s in social.ok("shelter", "list", "--county", "25")["shelters"]] == \
        ["lulea-jour"]


def test_phone_only_for_admin_and_self(fleet):
    env = fleet
    assert env.show("hamnen-gbg")["phone"] == "+46 31 700 00 00"
    assert env.show("hamnen-gbg", who=env.cli("shelter", "hamnen-gbg"))["phone"] == \
        "+46 31 700 00 00"
    for who in (env.cli("social", "0180"), env.cli("oncall", "socialjouren-sthlm")):
        assert "phone" not in env.show("hamnen-gbg", who=who)
    # Another shelter sees neither the phone nor anything else of it.
    env.cli("shelter", "frida-sthlm")("shelter", "show", "hamnen-gbg").refused("forbidden")


def test_a_shelter_sees_its_own_shelter_alone(fleet):
    """Issue 11 item 10: other shelters' names, municipalities and vacancies are for social
    services, on-call and admin; a shelter's list, show and free give its own shelter alone."""
    env = fleet
    frida = env.cli("shelter", "frida-sthlm")
    frida.ok("vacancy", "frida-sthlm", "r1", "free")
    env.cli("shelter", "hamnen-gbg").ok("vacancy", "hamnen-gbg", "lgh1", "free")
    env.cli("shelter", "vasby-jour").ok("vacancy", "vasby-jour", "a", "free")
    assert [s["id"] for s in frida.ok("shelter", "list")["shelters"]] == ["frida-sthlm"]
    assert [s["id"] for s in frida.ok("shelter", "list", "--county", "01")["shelters"]] == \
        ["frida-sthlm"]
    assert frida.ok("shelter", "list", "--county", "14")["shelters"] == []
    assert {u["shelter"] for u in frida.ok("free")["units"]} == {"frida-sthlm"}
    assert frida.ok("free", "--municipality", "1480")["units"] == []
    for other in ("hamnen-gbg", "vasby-jour", "no-such-jour"):
        # Forbidden whether or not it exists: the answer says nothing about other shelters.
        err = frida("shelter", "show", other).refused("forbidden")
        assert other not in err["message"]
    assert frida.ok("shelter", "show", "frida-sthlm")["shelter"]["id"] == "frida-sthlm"
    # Everyone else still sees them all.
    for who in (env.cli("social", "0180"), env.cli("oncall", "socialjouren-sthlm"), env.admin):
        assert len(who.ok("shelter", "list")["shelters"]) == 5
        assert {u["shelter"] for u in who.ok("free")["units"]} == \
            {"frida-sthlm", "hamnen-gbg", "vasby-jour"}


def test_retire(fleet):
    env = fleet
    env.cli("shelter", "malmo-kris").ok("vacancy", "malmo-kris", "k1", "free")
    assert "malmo-kris" in [f["shelter"] for f in env.admin.ok("free")["units"]]

    assert env.admin.ok("shelter", "retire", "malmo-kris")["shelter"]["id"] == "malmo-kris"

    assert "malmo-kris" not in [s["id"] for s in env.admin.ok("shelter", "list")["shelters"]]
    assert env.admin.ok("shelter", "list", "--county", "12")["shelters"] == []
    assert "malmo-kris" not in [f["shelter"] for f in env.admin.ok("free")["units"]]
    assert env.show("malmo-kris")["retired"] is True
    # Issue 11 item 7: its name and municipality are the registry's, the admin's alone.
    for who in (env.cli("social", "1280"), env.cli("oncall", "socialjouren-sthlm"),
                env.cli("shelter", "malmo-kris")):
        err = who("shelter", "show", "malmo-kris").refused("not_found")
        assert "Malmö" not in err["message"]
    # A retired id stays taken, and a retired shelter is not changed any more.
    env.admin("shelter", "add", *shelter_args("malmo-kris", "Again", municipality="1280")) \
        .refused("conflict")
    env.admin("shelter", "update", "malmo-kris", "--name", "Renamed").refused("conflict")
    assert env.show("malmo-kris")["name"] == "Kriscentrum Malmö"
    # Others are untouched.
    assert len(env.admin.ok("shelter", "list")["shelters"]) == 4


def test_validation_errors(fleet):
    env = fleet
    adm = env.admin
    adm("shelter", "add", *shelter_args("nowhere", "Ingenstans", municipality="0000")) \
        .usage("--municipality")
    adm("shelter", "show", "nowhere").refused("not_found")

    adm("shelter", "add", *shelter_args("frida-sthlm", "Duplicate")).refused("conflict")
    assert env.show("frida-sthlm")["name"] == "Kvinnojouren Frida"

    adm("unit", "add", "no-such-shelter", "x", "--beds", 1).refused("not_found")
    adm("unit", "add", "frida-sthlm", "r1", "--beds", 1).refused("conflict")
    adm("unit", "update", "frida-sthlm", "nope", "--beds", 2).refused("not_found")
    adm("shelter", "update", "no-such-shelter", "--name", "X").refused("not_found")
    adm("shelter", "retire", "no-such-shelter").refused("not_found")
    env.cli("shelter", "frida-sthlm")("vacancy", "frida-sthlm", "nope", "free") \
        .refused("not_found")

    # A personal identity number in a name is refused and nothing is stored.
    adm("shelter", "add", *shelter_args("pnr", "Jour 19121212-1212")).refused("personal_data")
    adm("shelter", "add", *shelter_args("addr", "Storgatan 12")).refused("personal_data")
    adm("shelter", "show", "pnr").refused("not_found")
    adm("shelter", "show", "addr").refused("not_found")

    ids = [s["id"] for s in adm.ok("shelter", "list")["shelters"]]
    assert sorted(ids) == ["frida-sthlm", "hamnen-gbg", "lulea-jour", "malmo-kris",
                           "vasby-jour"]


def test_unit_remove(fleet):
    env = fleet
    env.admin.ok("unit", "remove", "frida-sthlm", "r3")
    assert [u["id"] for u in env.show("frida-sthlm")["units"]] == ["r1", "r2"]
    env.admin("unit", "remove", "frida-sthlm", "r3").refused("not_found")
    summary = env.admin.ok("shelter", "list", "--municipality", "0180")["shelters"][0]
    assert summary["units"] == 2


def test_cli_usage_and_connection_errors(env):
    # Usage errors exit 2 before anything is sent.
    assert env.admin("shelter", "frobnicate").exit == 2
    # Nothing listens on this port: connection failure, exit 3.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = Cli(env, env.pki.get(*ADMIN), server=f"127.0.0.1:{port}")("whoami")
    assert r.exit == 3, r.describe()
    # And the daemon is fine.
    assert env.admin.ok("whoami") == {"role": "admin", "id": "ops-anna"}
