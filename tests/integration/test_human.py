"""The client's output for people: every listing's table, the empty-list lines and the sentences
of writes, compared whole. Times and server-made ids vary from run to run, so they are replaced
by placeholders of the same width; alignment is compared as it is. The client runs with TZ=UTC,
so that the zone it shows beside local times is the same wherever the tests run.

One thing has one name in every table: SHELTER, UNIT, MUNICIPALITY as "Stockholm (0180)",
COUNTY as "Stockholms län (01)", FRESHNESS."""

import re
import subprocess

import pytest
from conftest import LOW_RISK

# Local times as the client prints them: seconds only in the audit trail.
SECONDS = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
MINUTES = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d")
CLOCK = re.compile(r"until \d\d:\d\d ")


@pytest.fixture
def people(env):
    env.add_shelter("frida-sthlm", "Kvinnojouren Frida", municipality="0180", protection=2,
                    phone="08-555 010 10", groups=["women", "youth"], boys_max_age=12,
                    languages=["sv", "en"], competences=["hbv", "interpreter"],
                    operator="ideell")
    env.add_unit("frida-sthlm", "r1", 2)
    env.add_unit("frida-sthlm", "r2", 4, accessible=True)
    env.add_shelter("hamnen-gbg", "Skyddat boende Hamnen", kind="skyddat_boende",
                    operator="kommunal", ivo_registered=True,
                    municipality="1480", protection=3, phone="+46 31 700 00 00", pets=True)
    env.add_unit("hamnen-gbg", "lgh1", 5, accessible=True)
    env.add_shelter("malmo-kris", "Kriscentrum Malmö", kind="kriscentrum", municipality="1280",
                    protection=1, phone="040-34 50 00")
    return env


class Human:
    """Runs `fristad` without --json as one principal; ids the test learnt are renamed."""

    def __init__(self, env, cli, names):
        self.env = env
        self.cli = cli
        self.names = names

    def __call__(self, *args):
        argv = self.cli.argv(*args)
        assert argv[1] == "--json"
        del argv[1]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=30,
                              stdin=subprocess.DEVNULL, env={**self.env.cli_environ(), "TZ": "UTC"})
        assert proc.returncode == 0 and proc.stderr == "", (argv, proc)
        text = SECONDS.sub("YYYY-MM-DD hh:mm:ss", proc.stdout)
        text = MINUTES.sub("YYYY-MM-DD hh:mm", text)
        text = CLOCK.sub("until hh:mm ", text)
        for real, name in self.names.items():
            text = text.replace(real, name.ljust(len(real)))
        return text


def test_tables(people):
    env = people
    names = {}
    adm = Human(env, env.admin, names)
    frida = Human(env, env.cli("shelter", "frida-sthlm"), names)
    hamnen = Human(env, env.cli("shelter", "hamnen-gbg"), names)
    soc = Human(env, env.cli("social", "0180"), names)

    assert soc("free") == "No free unit.\n"
    assert soc("holds") == "No holds.\n"
    assert soc("placements") == "No placements.\n"
    assert soc("search", "--from", "0180", "--risk", "low") == (
        "No eligible unit.\n"
        "ruled out: nothing (no free unit was considered)\n")
    assert adm("shelter", "list", "--county", "03") == "No shelters.\n"

    assert frida("vacancy", "frida-sthlm", "r1", "free") == (
        "Unit r1 of frida-sthlm is now free.\n"
        "\n"
        "UNIT  BEDS  ACCESSIBLE  STATE   HELD\n"
        "r1       2  no          free    no\n"
        "r2       4  yes         closed  no\n")
    frida("vacancy", "frida-sthlm", "r2", "free")
    hamnen("vacancy", "hamnen-gbg", "lgh1", "free")

    assert adm("shelter", "list") == (
        "SHELTER      NAME                   KIND            MUNICIPALITY      COUNTY                     PROT  FREE/UNITS  FRESHNESS  OPERATOR  IVO\n"
        "frida-sthlm  Kvinnojouren Frida     kvinnojour      Stockholm (0180)  Stockholms län (01)           2  2/2         <1 min     ideell    -\n"
        "malmo-kris   Kriscentrum Malmö      kriscentrum     Malmö (1280)      Skåne län (12)                1  0/0         <1 min     unknown   -\n"
        "hamnen-gbg   Skyddat boende Hamnen  skyddat_boende  Göteborg (1480)   Västra Götalands län (14)     3  1/1         <1 min     kommunal  registered\n")
    assert soc("free", "--municipality", "0180") == (
        "SHELTER      UNIT  NAME                KIND        MUNICIPALITY      COUNTY               BEDS  ACCESSIBLE  PROT  FRESHNESS\n"
        "frida-sthlm  r1    Kvinnojouren Frida  kvinnojour  Stockholm (0180)  Stockholms län (01)     2  no             2  <1 min\n"
        "frida-sthlm  r2    Kvinnojouren Frida  kvinnojour  Stockholm (0180)  Stockholms län (01)     4  yes            2  <1 min\n")
    assert soc("search", "--from", "0180", "--risk", "low") == (
        "#  SHELTER      UNIT  NAME                   KIND            MUNICIPALITY      COUNTY                      KM  BEDS  PROT  FRESHNESS  RECEIVES  IVO\n"
        "1  frida-sthlm  r1    Kvinnojouren Frida     kvinnojour      Stockholm (0180)  Stockholms län (01)          0     2     2  <1 min     now       -\n"
        "2  frida-sthlm  r2    Kvinnojouren Frida     kvinnojour      Stockholm (0180)  Stockholms län (01)          0     4     2  <1 min     now       -\n"
        "3  hamnen-gbg   lgh1  Skyddat boende Hamnen  skyddat_boende  Göteborg (1480)   Västra Götalands län (14)  391     5     3  <1 min     now       registered\n")
    assert soc("search", "--from", "1480", "--risk", "severe", "--child", "14m") == (
        "No eligible unit.\n"
        "ruled out: protection_level 2, boys_age 2, safety_policy 1\n")

    held = env.cli("social", "0180").ok("hold", "frida-sthlm", "r1", *LOW_RISK, "--ref", "KS-1",
                                        "--child", "4m", "--need", "hbv")["hold"]
    names[held] = "<h1>"
    second = soc("hold", "frida-sthlm", "r2", *LOW_RISK, "--ref", "KS-2")
    assert re.fullmatch(r"Held frida-sthlm/r2 as h[0-9a-z]+ until hh:mm \(local time\)\. "
                        r"Intake phone: 08-555 010 10\n", second), second
    h2 = re.search(r" as (h[0-9a-z]+) ", second).group(1)
    names[h2] = "<h2>"
    assert soc("holds") == (
        "HOLD               SHELTER      UNIT  REF   MUNICIPALITY      BY           STATE  RISK  HOUSEHOLD   NEEDS  CALLBACK  CREATED               EXPIRES               CLOSED\n"
        "<h2>               frida-sthlm  r2    KS-2  Stockholm (0180)  social:0180  held   low   1 adult     -      -         YYYY-MM-DD hh:mm UTC  YYYY-MM-DD hh:mm UTC  -\n"
        "<h1>               frida-sthlm  r1    KS-1  Stockholm (0180)  social:0180  held   low   1 adult 4m  hbv    -         YYYY-MM-DD hh:mm UTC  YYYY-MM-DD hh:mm UTC  -\n")
    confirmed = env.cli("shelter", "frida-sthlm").ok("confirm", held,
                                                     "--child-basis", "lag_2024_79")
    names[confirmed["placement"]["placement"]] = "<p1>"
    assert frida("decline", h2, "--reason", "other", "--note", "no room after all") == (
        "Declined hold <h2>              (frida-sthlm/r2); the unit is free again.\n")
    assert frida("placements") == (
        "PLACEMENT          HOLD               SHELTER      UNIT  REF   MUNICIPALITY      BY           STATE   CHILDREN        PLACED                DISCHARGED\n"
        "<p1>               <h1>               frida-sthlm  r1    KS-1  Stockholm (0180)  social:0180  active  4m:lag_2024_79  YYYY-MM-DD hh:mm UTC  -\n")
    assert frida("holds") == (
        "HOLD               SHELTER      UNIT  REF   MUNICIPALITY      BY           STATE      RISK  HOUSEHOLD   NEEDS  CALLBACK  CREATED               EXPIRES               CLOSED\n"
        "<h2>               frida-sthlm  r2    KS-2  Stockholm (0180)  social:0180  declined   low   1 adult     -      -         YYYY-MM-DD hh:mm UTC  YYYY-MM-DD hh:mm UTC  YYYY-MM-DD hh:mm UTC\n"
        "<h1>               frida-sthlm  r1    KS-1  Stockholm (0180)  social:0180  confirmed  low   1 adult 4m  hbv    -         YYYY-MM-DD hh:mm UTC  YYYY-MM-DD hh:mm UTC  YYYY-MM-DD hh:mm UTC\n")

    assert adm("shelter", "show", "frida-sthlm") == (
        "Shelter:      frida-sthlm\n"
        "Name:         Kvinnojouren Frida\n"
        "Kind:         kvinnojour\n"
        "Municipality: Stockholm (0180)\n"
        "County:       Stockholms län (01)\n"
        "Protection:   2 (enhanced)\n"
        "Groups:       women, youth\n"
        "Max children: no limit\n"
        "Boys max age: 12\n"
        "Pets:         no\n"
        "Substance:    no\n"
        "Languages:    sv, en\n"
        "Competences:  hbv, interpreter\n"
        "Operator:     ideell\n"
        "IVO:          no permit, not registered\n"
        "Phone:        08-555 010 10\n"
        "Intake:       open\n"
        "Intake hours: 24/7\n"
        "Updated:      YYYY-MM-DD hh:mm UTC (<1 min)\n"
        "\n"
        "UNIT  BEDS  ACCESSIBLE  STATE     HELD\n"
        "r1       2  no          occupied  no\n"
        "r2       4  yes         free      no\n")
    assert adm("shelter", "show", "malmo-kris").endswith("\nNo units.\n")
    assert adm("audit", "--shelter", "frida-sthlm", "--principal", "shelter:frida-sthlm") == (
        "AT                       PRINCIPAL            OP            TARGET                                                             RESULT\n"
        "YYYY-MM-DD hh:mm:ss UTC  shelter:frida-sthlm  hold.decline  frida-sthlm/r2 hold <h2>                                           ok\n"
        "YYYY-MM-DD hh:mm:ss UTC  shelter:frida-sthlm  hold.confirm  frida-sthlm/r1 hold <h1>              placement <p1>               ok\n"
        "YYYY-MM-DD hh:mm:ss UTC  shelter:frida-sthlm  vacancy.set   frida-sthlm/r2                                                     ok\n"
        "YYYY-MM-DD hh:mm:ss UTC  shelter:frida-sthlm  vacancy.set   frida-sthlm/r1                                                     ok\n")
    assert adm("audit", "--principal", "social:9999") == "No audit entries.\n"
