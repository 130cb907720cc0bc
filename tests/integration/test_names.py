"""Municipalities and counties by name or code in every option that takes one, the lookup
command, the refusal of a name that could be two places, and the same name for the same thing
in every table. The JSON keeps the wire's keys and codes."""

import json
import subprocess

import pytest

from conftest import FRISTAD, LOW_RISK


@pytest.fixture
def shelters(env):
    env.add_shelter("frida-sthlm", "Kvinnojouren Frida", municipality="Stockholm", protection=2)
    env.add_unit("frida-sthlm", "r1", 2)
    env.add_shelter("hamnen-gbg", "Skyddat boende Hamnen", kind="skyddat_boende",
                    operator="kommunal", ivo_registered=True,
                    municipality="göteborg", protection=3)
    env.add_unit("hamnen-gbg", "lgh1", 4)
    env.add_shelter("malmo-kris", "Kriscentrum Malmö", kind="kriscentrum", municipality="1280")
    env.add_unit("malmo-kris", "k1", 3)
    for sid, unit in (("frida-sthlm", "r1"), ("hamnen-gbg", "lgh1"), ("malmo-kris", "k1")):
        env.cli("shelter", sid).ok("vacancy", sid, unit, "free")
    return env


def local(*args, env=None):
    """The client with no server at all: the lookup command needs none."""
    proc = subprocess.run([str(FRISTAD), *args], capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL,
                          env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"})
    return proc


def test_names_are_stored_as_codes(shelters):
    env = shelters
    assert env.show("frida-sthlm")["municipality"] == "0180"
    assert env.show("hamnen-gbg")["municipality"] == "1480"
    social = env.cli("social", "0180")
    by_code = social.ok("search", "--from", "0180", "--risk", "high", "--perpetrator-in",
                        "0380,0184", "--exclude", "1280")
    by_name = social.ok("search", "--from", "STOCKHOLM", "--risk", "high", "--perpetrator-in",
                        "Uppsala", "--perpetrator-in", "solna", "--exclude", "Malmo")
    assert by_name["results"] == by_code["results"] and by_name["results"]
    assert {r["shelter"] for r in by_code["results"]} == {"hamnen-gbg"}


def test_counties_by_name(shelters):
    env = shelters
    for county in ("Västra Götaland", "vastra gotalands lan", "14", "Västra Götalands län"):
        units = env.admin.ok("free", "--county", county)["units"]
        assert [u["shelter"] for u in units] == ["hamnen-gbg"], county
    assert [s["id"] for s in env.admin.ok("shelter", "list", "--county", "Skåne")["shelters"]] \
        == ["malmo-kris"]
    env.admin("free", "--county", "Västergötland").usage("--county")
    msg = env.admin("free", "--county", "Väster").usage("--county")
    assert "Västerbottens län (24)" in msg and "Västernorrlands län (22)" in msg, msg
    msg = env.admin("free", "--county", "Skåne", "--municipality", "Uppsala").usage("--county")
    assert "--municipality Uppsala (0380) is not in --county Skåne län (12)" in msg, msg


def test_a_name_of_two_places_is_refused_with_both(shelters):
    env = shelters
    social = env.cli("social", "0180")
    for spelling in ("Habo", "habo", "HABO"):
        msg = social("search", "--from", spelling, "--risk", "low").usage("--from")
        assert "Habo (0643)" in msg and "Håbo (0305)" in msg, msg
    # Spelt with its å, or by its code, it is one place.
    assert social.ok("search", "--from", "Håbo", "--risk", "low")["results"]
    assert social.ok("search", "--from", "0643", "--risk", "low")["results"]
    msg = social("search", "--from", "Upp", "--risk", "low").usage("--from")
    assert "Uppsala (0380)" in msg and "Upplands-Bro (0139)" in msg, msg
    # A unique start of a name is enough; a typo gets the nearest names.
    assert social.ok("search", "--from", "Upplands-B", "--risk", "low")["results"]
    msg = social("search", "--from", "Stokholm", "--risk", "low").usage("--from")
    assert "did you mean Stockholm (0180)" in msg, msg
    msg = env.cli("oncall", "jour-1")("hold", "frida-sthlm", "r1", *LOW_RISK, "--ref", "KS-1", "--for",
                                      "Nowhere").usage("--for")
    assert "no municipality is called 'Nowhere'" in msg, msg
    # An on-call hold for a municipality named by name is made for its code.
    held = env.cli("oncall", "jour-1").ok("hold", "frida-sthlm", "r1", *LOW_RISK, "--ref", "KS-1", "--for",
                                          "Malmö")
    listed = env.cli("oncall", "jour-1").ok("holds")["holds"]
    assert [h["municipality"] for h in listed if h["hold"] == held["hold"]] == ["1280"]


def test_usage_errors_name_the_option_and_exit_2(shelters):
    env = shelters
    adm = env.admin
    for args, flag in [
        (["search", "--from", "0180", "--risk", "low", "--limit", "0"], "--limit"),
        (["unit", "add", "frida-sthlm", "r9", "--beds", "99"], "--beds"),
        (["shelter", "update", "frida-sthlm", "--name", "x" * 300], "--name"),
        (["shelter", "update", "frida-sthlm", "--phone", "call me"], "--phone"),
        (["shelter", "update", "frida-sthlm", "--kind", "hotel"], "--kind"),
        (["audit", "--principal", "nobody"], "--principal"),
    ]:
        msg = adm(*args).usage(flag)
        assert "field '" not in msg, msg
    # Personal data keeps its own code, and the message names the option too.
    err = env.cli("social", "0180")("hold", "frida-sthlm", "r1", *LOW_RISK, "--ref", "19121212-1212") \
        .refused("personal_data")
    assert "--ref" in err["message"], err


def test_lookup_command(shelters):
    r = local("municipality", "uppsala")
    assert r.returncode == 0, r
    assert r.stdout == "MUNICIPALITY    COUNTY\nUppsala (0380)  Uppsala län (03)\n", r.stdout
    r = local("--json", "municipality", "habo")
    assert r.returncode == 0, r
    assert json.loads(r.stdout) == {"municipalities": [
        {"municipality": "0305", "municipality_name": "Håbo", "county": "03",
         "county_name": "Uppsala län"},
        {"municipality": "0643", "municipality_name": "Habo", "county": "06",
         "county_name": "Jönköpings län"}]}
    r = local("--json", "municipality", "Skåne")
    assert len(json.loads(r.stdout)["municipalities"]) == 33
    r = local("--json", "municipality", "Narnia")
    assert r.returncode == 1 and json.loads(r.stdout)["error"]["code"] == "not_found", r


def test_tables_show_names_and_json_keeps_codes(shelters):
    env = shelters
    social = env.cli("social", "0180")
    argv = social.argv("search", "--from", "Stockholm", "--risk", "low")
    del argv[1]  # --json
    table = subprocess.run(argv, capture_output=True, text=True, timeout=30,
                           env=env.cli_environ()).stdout
    header = table.splitlines()[0].split()
    assert header == ["#", "SHELTER", "UNIT", "NAME", "KIND", "MUNICIPALITY", "COUNTY", "KM",
                      "BEDS", "PROT", "FRESHNESS", "RECEIVES", "IVO"], table
    assert "Malmö (1280)" in table and "Skåne län (12)" in table, table
    res = social.ok("search", "--from", "Stockholm", "--risk", "low")["results"]
    assert {r["municipality"] for r in res} == {"0180", "1280", "1480"}
    assert all("municipality_name" not in r for r in res)
