"""Privacy (PROTOCOL.md section 4 and DESIGN.md): Fristad stores no personal identity number and
no street address, keeps a referral's reference only for the reference retention, and tells the
intake phone only to those who may know it. "Stores no" is checked where it matters: every key
and value of the namespace in Redis, and the daemon's own log at debug level."""

import re

import pytest

from conftest import ADMIN, REDIS_SERVER, shelter_args, wait_for, LOW_RISK, LOW_RISK_ARGS
from security import dump_namespace, keyspace, keyspace_diff, ns_prefix, pin_forms, redis

FRIDA = "frida-sthlm"
PHONE = "08-555 010 10"
PHONE_DIGITS = "0855501010"

DEBUG = {"log": {"level": "debug"}}

# A personnummer (born 1981-12-18), one born 1912 written with '+' (100 years or older), and a
# samordningsnummer (day of birth + 60: 1970-10-03 -> 701063).
PERSONNUMMER = pin_forms("19", "811218", "987")
CENTENARIAN = pin_forms("19", "120514", "371")
SAMORDNING = pin_forms("19", "701063", "234")


def digits_only(s):
    return re.sub(r"\D", "", s)


def spellings(number):
    """Every way the number might have been written down, for grepping."""
    d = digits_only(number)
    d10 = d[-10:]
    return {d, d10, f"{d10[:6]}-{d10[6:]}", f"{d10[:6]}+{d10[6:]}", f"{d10[:6]} {d10[6:]}"}


def assert_nowhere(env, needles, log_since=0):
    """No needle in any key or value of the namespace, nor in the daemon's log."""
    blob = dump_namespace(env)
    log = env.daemon.log_text(log_since)
    for n in needles:
        assert n.encode() not in blob, f"{n!r} is stored in Redis"
        assert n not in log, f"{n!r} is in the daemon's log"


@pytest.fixture
def held(env):
    """A shelter with two free units, one of them held by social services in Stockholm."""
    env.add_shelter(FRIDA, "Kvinnojouren Frida", municipality="0180", phone=PHONE)
    env.add_unit(FRIDA, "r1", 2)
    env.add_unit(FRIDA, "r2", 2)
    shelter = env.cli("shelter", FRIDA)
    shelter.ok("vacancy", FRIDA, "r1", "free")
    shelter.ok("vacancy", FRIDA, "r2", "free")
    env.hold_id = env.cli("social", "0180").ok("hold", FRIDA, "r1", *LOW_RISK, "--ref", "case-held")["hold"]
    return env


def pin_requests(env, value):
    """(principal, op, args) that carry the value in each kind of string field."""
    hid = env.hold_id
    return [
        (("social", "0180"), "hold", {**LOW_RISK_ARGS, "shelter": FRIDA, "unit": "r2", "ref": value}),
        (("social", "0180"), "hold", {**LOW_RISK_ARGS, "shelter": FRIDA, "unit": "r2", "ref": f"case:{value}"}),
        (("social", "0180"), "hold", {**LOW_RISK_ARGS, "shelter": FRIDA, "unit": "r2", "ref": "case-ok",
                                      "idempotency_key": f"key-{value}"}),
        (("shelter", FRIDA), "hold.decline", {"hold": hid, "reason": "other", "note": value}),
        (("shelter", FRIDA), "hold.decline", {"hold": hid,
                                              "reason": "other", "note": f"the woman ({value}) left"}),
        (ADMIN, "shelter.add", {"shelter": "ny-jour", "name": f"Jour {value}",
                                "kind": "kvinnojour", "municipality": "0180",
                                "protection": 1, "phone": "08-123 456 78"}),
        (ADMIN, "shelter.update", {"shelter": FRIDA, "name": value}),
        (ADMIN, "unit.add", {"shelter": FRIDA, "unit": f"u{value}", "beds": 2}),
        (ADMIN, "audit", {"principal": f"social:{value}"}),
    ]


def id_safe(value):
    return re.fullmatch(r"[0-9A-Za-z.:/_-]+", value) is not None


@pytest.mark.daemon_config(DEBUG)
@pytest.mark.parametrize("number", [PERSONNUMMER, CENTENARIAN, SAMORDNING],
                         ids=["personnummer", "centenarian", "samordningsnummer"])
def test_personal_identity_numbers_are_refused_and_never_stored(held, number):
    env = held
    log0 = env.daemon.log_size()
    before = keyspace(env)
    conns = {}
    checked = 0
    for form, value in number.items():
        for who, op, args in pin_requests(env, value):
            text_field = "note" in args or "name" in args
            if not text_field and not id_safe(value):
                continue  # '+' is outside the alphabet of ids and references: bad_request
            c = conns.get(who) or conns.setdefault(who, env.connect(*who))
            ok, res = c.request(op, args)
            assert not ok and res["code"] == "personal_data", (form, op, args, res)
            # The message names the field, never the value.
            assert digits_only(value)[-4:] not in res["message"], res
            checked += 1
            # A valid request in between: 16 refusals in a row would close the connection.
            assert c.call("whoami")
    assert checked >= 40
    after = keyspace(env)
    assert after == before, keyspace_diff(before, after)
    # The hold is still open: the refused decline did not close it.
    assert env.show(FRIDA)["units"][0]["held"] is True
    # Through the real client too.
    env.cli("social", "0180")("hold", FRIDA, "r2", *LOW_RISK, "--ref", number["12-dash"]) \
        .refused("personal_data")
    env.cli("shelter", FRIDA)("decline", env.hold_id, "--reason", "other", "--note", number["10-plus"]) \
        .refused("personal_data")
    assert_nowhere(env, spellings(number["12"]), log0)


@pytest.mark.daemon_config(DEBUG)
def test_near_misses_are_not_personal_numbers(held):
    """The guard is a check, not a ban on digits: a wrong check digit or an impossible date
    goes through, so the guard above is not passing by refusing every number."""
    env = held
    good = PERSONNUMMER["10"]
    bad_check = good[:9] + str((int(good[9]) + 1) % 10)
    with env.connect("social", "0180") as c:
        for ref in (bad_check, "811318-9876", "case-2026-000123"):
            ok, res = c.request("hold", {**LOW_RISK_ARGS, "shelter": FRIDA, "unit": "r2", "ref": ref})
            assert ok, (ref, res)
            c.call("hold.release", {"hold": res["hold"]})


# An id as daemon/dispatch.c new_id makes them: "h" or "p" and 16 random hex digits. This one
# holds 1703799401, a Luhn-valid coordination number (born 17-03-19, day + 60).
OWN_ID_DIGITS = "420b1703799401bf"


def test_ids_the_daemon_issues_are_not_personal_data(held):
    """An id in the daemon's own form is looked up, never refused as personal data: about one
    random id in 10,000 has ten decimal digits in a row that pass the check, and a hold with
    such an id could be neither confirmed, declined nor released, a placement never
    discharged. test_soak.py meets such ids by chance; this test does not wait for chance."""
    env = held
    hold, placement = "h" + OWN_ID_DIGITS, "p" + OWN_ID_DIGITS
    with env.connect("social", "0180") as social, env.connect("shelter", FRIDA) as shelter:
        for conn, op, args in ((social, "hold.release", {"hold": hold}),
                               (shelter, "hold.confirm", {"hold": hold}),
                               (shelter, "hold.decline", {"hold": hold, "reason": "no_room", "note": "ingen plats"}),
                               (shelter, "placement.discharge", {"placement": placement})):
            ok, res = conn.request(op, args)
            assert not ok and res["code"] == "not_found", (op, res)


ADDRESSES = ["Storgatan 12", "Box 123", "123 45 Stockholm", "12345 Malmö",
             "Drottninggatan 5B", "Kungsvägen 3, 2 tr", "bor på Vasagatan 14 med barnen",
             "Lilla Torget 2", "Storgatan 12, 123 45 Stockholm"]


@pytest.mark.daemon_config(DEBUG)
def test_street_addresses_are_refused_and_never_stored(held):
    env = held
    log0 = env.daemon.log_size()
    before = keyspace(env)
    with env.connect("shelter", FRIDA) as sh, env.connect(*ADMIN) as adm:
        for addr in ADDRESSES:
            ok, res = sh.request("hold.decline", {"hold": env.hold_id,
                                                  "reason": "other", "note": f"moved to {addr}"})
            assert not ok and res["code"] == "personal_data", (addr, res)
            ok, res = adm.request("shelter.update", {"shelter": FRIDA, "name": addr})
            assert not ok and res["code"] == "personal_data", (addr, res)
            ok, res = adm.request("shelter.add", {
                "shelter": "ny-jour", "name": f"Jouren {addr}", "kind": "kvinnojour",
                "municipality": "0180", "protection": 1, "phone": "08-123 456 78"})
            assert not ok and res["code"] == "personal_data", (addr, res)
            assert addr not in res["message"]
            assert sh.call("whoami") and adm.call("whoami")
    after = keyspace(env)
    assert after == before, keyspace_diff(before, after)
    env.cli("shelter", FRIDA)("decline", env.hold_id, "--reason", "other", "--note", "Storgatan 12") \
        .refused("personal_data")
    env.admin("shelter", "update", FRIDA, "--name", "Box 123").refused("personal_data")
    assert_nowhere(env, ["Storgatan 12", "Box 123", "123 45", "12345 Malm", "Drottninggatan",
                         "Kungsvägen", "Vasagatan", "Lilla Torget"], log0)
    # Ordinary words and numbers still pass.
    sh = env.cli("shelter", FRIDA)
    sh.ok("decline", env.hold_id, "--reason", "other", "--note", "full until week 12, no room for 3 children")


# -- ways past the first version of the guards (issue 11, item 3) --------------------------

D10 = PERSONNUMMER["10"]  # 8112189876
FULLWIDTH = str.maketrans("0123456789-", "０１２３４５６７８９－")

# Every way the number was written that the first guard let through, each in the field kinds
# it fits: ids and references take only A-Z a-z 0-9 . _ - : /, text takes anything.
PIN_VARIANTS = {
    "dot": f"{D10[:6]}.{D10[6:]}",
    "underscore": f"{D10[:6]}_{D10[6:]}",
    "slash": f"{D10[:6]}/{D10[6:]}",
    "colon": f"{D10[:6]}:{D10[6:]}",
    "en-dash": f"{D10[:6]}\u2013{D10[6:]}",
    "minus-sign": f"19{D10[:6]}\u2212{D10[6:]}",
    "no-break-space": f"{D10[:6]}\u00a0{D10[6:]}",
    "full-width": f"{D10[:6]}-{D10[6:]}".translate(FULLWIDTH),
    "split-by-spaces": f"19 {D10[:2]} {D10[2:4]} {D10[4:6]}-{D10[6:]}",
    "split-by-dots": f"19{D10[:2]}.{D10[2:4]}.{D10[4:6]}.{D10[6:]}",
    "soft-hyphen": f"{D10[:6]}\u00ad{D10[6:]}",
    "zero-width-space": f"{D10[:6]}\u200b{D10[6:]}",
    "spaced-dash": f"{D10[:6]} - {D10[6:]}",
}

ADDRESS_VARIANTS = ["SE-123 45 Stockholm", "(123 45 Stockholm)", "Storgatan nr 12",
                    "Stureplan 4", "Kungsg. 12", "12 Main Street", "c/o Andersson, Ringv 5",
                    "Lgh 1102", "Storgatan\u00a012", "Storgatan12",
                    "Storgatan\u200b12", "１２３ ４５ Malmö"]


def variant_requests(env, value):
    """(principal, op, args) carrying the value in every field it fits."""
    hid = env.hold_id
    reqs = [
        (("shelter", FRIDA), "hold.decline", {"hold": hid, "reason": "other", "note": value}),
        (("shelter", FRIDA), "hold.decline", {"hold": hid, "reason": "other",
                                              "note": f"kvinnan ({value}) har flyttat"}),
        (ADMIN, "shelter.update", {"shelter": FRIDA, "name": f"Jour {value}"}),
    ]
    if re.fullmatch(r"[0-9A-Za-z._-]+", value):  # a shelter or unit id
        reqs += [
            (ADMIN, "shelter.add", {"shelter": value, "name": "Ny jour", "kind": "kvinnojour",
                                    "municipality": "0180", "protection": 1,
                                    "phone": "08-123 456 78"}),
            (ADMIN, "unit.add", {"shelter": FRIDA, "unit": value, "beds": 2}),
        ]
    if id_safe(value):  # a reference or an idempotency key
        reqs += [
            (("social", "0180"), "hold", {**LOW_RISK_ARGS, "shelter": FRIDA, "unit": "r2",
                                          "ref": f"KS/{value}"}),
            (("social", "0180"), "hold", {**LOW_RISK_ARGS, "shelter": FRIDA, "unit": "r2",
                                          "ref": "case-ok", "idempotency_key": f"k:{value}"}),
        ]
    return reqs


@pytest.mark.daemon_config(DEBUG)
def test_written_variants_of_personal_numbers_are_refused_and_never_stored(held):
    """Issue 11 item 3: separators, Unicode dashes and spaces, full-width digits, split digits;
    a shelter or unit id shaped so would have become a Redis key that is never deleted."""
    env = held
    log0 = env.daemon.log_size()
    before = keyspace(env)
    conns = {}
    sent = 0
    for form, value in PIN_VARIANTS.items():
        for who, op, args in variant_requests(env, value):
            c = conns.get(who) or conns.setdefault(who, env.connect(*who))
            ok, res = c.request(op, args)
            assert not ok and res["code"] == "personal_data", (form, op, args, res)
            assert D10[-4:] not in res["message"], res
            sent += 1
            assert c.call("whoami")
    assert sent >= 50, sent
    after = keyspace(env)
    assert after == before, keyspace_diff(before, after)
    # The id of the issue, as the real client sends it.
    env.admin("shelter", "add", *shelter_args(f"{D10[:6]}_{D10[6:]}", "Ny jour")) \
        .refused("personal_data")
    assert_nowhere(env, spellings(PERSONNUMMER["12"]) | {f"{D10[:6]}_{D10[6:]}"}, log0)


@pytest.mark.daemon_config(DEBUG)
def test_written_variants_of_addresses_are_refused_and_never_stored(held):
    env = held
    log0 = env.daemon.log_size()
    before = keyspace(env)
    with env.connect("shelter", FRIDA) as sh, env.connect(*ADMIN) as adm:
        for addr in ADDRESS_VARIANTS:
            ok, res = sh.request("hold.decline", {"hold": env.hold_id, "reason": "other",
                                                  "note": f"har flyttat till {addr}"})
            assert not ok and res["code"] == "personal_data", (addr, res)
            ok, res = adm.request("shelter.update", {"shelter": FRIDA, "name": addr})
            assert not ok and res["code"] == "personal_data", (addr, res)
            assert addr not in res["message"]
            assert sh.call("whoami") and adm.call("whoami")
    after = keyspace(env)
    assert after == before, keyspace_diff(before, after)
    assert_nowhere(env, ["123 45", "Storgatan", "Stureplan", "Kungsg", "Main Street",
                         "Ringv", "Lgh 1102", "c/o"], log0)


# -- the false-positive list beside the table -------------------------------------------------
#
# Written for this test, before the widened patterns were: names a registrar gives shelters,
# and the notes staff write when they decline a hold, at night and in a hurry, with the
# numbers, dates, times, floors and room numbers such notes carry. None holds personal data,
# so every refusal among them is a false positive.

SHELTER_NAMES = [
    "Kvinnojouren Frida", "Kvinnojouren i Huddinge", "Tjejjouren Väst", "Skyddat boende Hamnen",
    "Kvinno- och tjejjouren Blenda", "Terrafem", "Kvinnojouren Ronja", "Kriscentrum för kvinnor",
    "Kriscentrum för män Malmö", "Kvinnojouren Moa", "Alla Kvinnors Hus", "Kvinnojouren Sara",
    "Skyddat boende Norrsken", "Kvinnojouren Kerstin", "Ungdomsjouren Stockholm",
    "Kvinnojouren i Sundsvall", "Kvinnojouren Embla", "Stödcentrum för brottsutsatta",
    "Kvinnojouren Lilith", "Kvinnojour Nordost", "Kvinnojouren Anna", "Kvinnojouren i Lund",
    "Kvinnojouren Sesam", "Tjejjouren Tysta Ropet", "Skyddat boende Fyren 2",
    "Kvinnojouren Gävle", "Kvinnojouren Kristianstad", "Kvinnojouren Freja",
    "Kvinnojouren i Kungsbacka", "Kvinnojouren Malin", "Brottsofferjouren Västra Götaland",
    "Kvinnojouren Hjärtat", "Mansjouren Sydost", "Kvinnojouren Tranan",
    "Kvinnojouren i Botkyrka", "Hbtqi-jouren Regnbågen", "Skyddat boende Linden",
    "Kvinnojouren Vintergatan", "Kvinnojouren i Västerås", "Kvinnojouren Siri",
    "Tjejjouren Luna", "Kvinnojouren Kvinnohuset", "Jouren för våldsutsatta i Uppsala",
    "Kvinnojouren Storsjön", "Kvinnojouren i Piteå", "Skyddat boende Lärkan",
    "Kvinnojouren Ellen", "Kvinnojouren Borlänge", "Kvinnojouren Nyköping",
    "Kvinnojouren Vilja", "Kvinnojouren i Eskilstuna", "Skyddat boende Trappan 3",
    "Hedersrelaterat skyddat boende Sydväst", "Kvinnojouren Blå Huset",
    "Kvinnojouren Ester", "Kvinnojouren i Östersund", "Kvinnojouren Rosen",
    "Kriscentrum Mölndal", "Skyddat boende Ankaret", "Kvinnojouren i Karlstad",
    "Kvinnojouren Tjejzonen", "Kvinnojouren Kvinnofridsvägen",
    "Stiftelsen Kvinnojouren Skåne", "Kvinnojouren Amanda", "Kvinnojouren Linnea",
    "Skyddat boende Solrosen", "Kvinnojouren i Visby", "Kvinnojouren Varberg",
    "Kvinnojouren Falun", "Unga kvinnors jour 24/7", "Jourboende Södra 1",
    "Kvinnojouren Kalmar län", "Kvinnojouren i Örebro", "Kvinnojouren Gry",
    "Skyddat boende Björken", "Kvinnojouren i Lidköping", "Kvinnojouren Agnes",
    "Kriscentrum Familjefrid", "Kvinnojouren Iris", "Skyddat boende Torget",
    "Kvinnojouren Vallentuna", "Kvinnojouren Täby", "Women's Shelter Gothenburg",
    "Safe House North 2", "Kvinnojouren Mira", "Tjejjouren Göta",
    "Kvinnojouren i Jönköping", "Kvinnojouren Hanna", "Skyddat boende Kompassen",
    "Kvinnojouren Hässleholm", "Kvinnojouren Sunnan", "Kvinnojouren Beda",
]

DECLINE_NOTES = [
    "ingen plats för hund", "pojken är 16 år, vi tar pojkar upp till 15",
    "full till vecka 12", "personal saknas i natt, ring igen efter 08:00",
    "kan ta emot från 2026-11-28 kl 10:00", "tre barn ryms inte i lägenheten",
    "rum 2 och 3 renoveras", "rullstolsanpassat rum upptaget till 14/12",
    "ring 112 vid akut fara", "vi saknar personal som talar tigrinja",
    "missbruk pågår, vi har inte stöd för det", "säkerhetsrisk: förövaren känner till orten",
    "lägenheten är för liten för 2 vuxna och 4 barn", "kan ta emot först i morgon 09:00",
    "vi tar inte emot män", "åldersgräns 18 år", "ingen natt-personal 22-07",
    "full until week 12, no room for 3 children", "no room, try again after 6 pm",
    "husdjur ej tillåtna, tyvärr", "två platser lediga från måndag",
    "behov av tolk som vi inte kan ordna i natt", "kontakta oss igen kl 13.30",
    "vi har bara ett rum med 2 sängar", "förövaren har tidigare hittat hit",
    "plats finns 3/12 om det fungerar", "pojke 14 år går bra men inte 17",
    "rum 4 är reserverat för en annan kommun", "inte anpassat för rullstol",
    "kan ta emot efter 16:00 i dag", "vi är fullbelagda till och med 2026-12-01",
    "ring jouren 08-123 45 67 i morgon", "personalen är sjuk, 1 av 3 i tjänst",
    "för hög risk för vårt boende, skyddsnivå 3 krävs", "vi har ingen hund-vänlig lägenhet",
    "två barn under 3 år kräver annan lägenhet", "vi tar emot max 4 barn",
    "lägenhet 2 har fuktskada", "hon behöver stöd med missbruk som vi inte ger",
    "ledigt igen om ca 2 veckor", "kan ni höra av er efter helgen?",
    "ingen plats förrän 15 december", "vi kan ta emot på fredag kl 14",
    "mamman och 2 barn ryms, men inte 5", "hbtqi-person, vi är inget hbtqi-boende",
    "placerad här tidigare, samma förövare", "för nära förövarens arbetsplats",
    "kommun 0180 har redan en placering här", "beslut saknas från socialtjänsten",
    "rummet har bara 1 säng", "stängt för inskrivning v. 51-52",
    "vi tar inte emot över helgen", "språket kan vi inte stödja", "ej 24/7-bemanning",
    "personal finns bara dagtid 8-17", "ring på telefon 08-555 010 10 under dagtid",
    "barnet är 17, för gammalt för vår verksamhet", "kan ta emot 1 vuxen och 2 barn",
    "plats 3 är upptagen", "lägenhet 12 är ledig från 2026-12-03",
    "skyddsnivå 2 räcker inte enligt er bedömning", "vi väntar på besked från rum 5",
    "boendet är under flytt till annan ort", "för långt från barnens skola",
    "vi saknar säkerhetsdörr", "hunden är för stor",
    "vänta 30 min, vi kollar med nattpersonalen", "avböjt efter samtal med handläggare",
    "kan inte ta emot i natt, prova jouren i Solna", "ring 020-50 50 50 för nationell stödlinje",
    "boende 2 stängt tills vidare", "full, 12 av 12 platser belagda",
    "7 personer på väntelista", "kommer inte fram i snöovädret",
    "tar bara emot kvinnor 18-25 år", "ingen parkering för hennes bil, säkerhetsrisk",
    "inget ledigt i höst", "behöver ha ett eget rum, vi har bara delat",
    "pojken 13 år ok, men pojken 16 år inte", "ingen plats v 48",
    "rummen på plan 3 renoveras", "hissen är trasig, rullstol går inte",
    "saknar personal med teckenspråk", "vi har haft hot mot boendet i veckan",
    "kan ta emot tidigast 2026-11-30 08:00", "kl 23:00 är sista inskrivning",
    "hon har tidigare bott hos oss 2024", "ring efter 7:30",
    "sorry, no staff tonight", "children over 12 not accepted", "full, 0 beds left",
    "contact us after 8 am", "1 room, 2 beds, no cot", "next free bed from 3 Dec",
    "vi tar emot i dag mellan 14 och 18", "för många barn, max 3",
    "kan inte garantera säkerheten", "behöver protection level 3",
    "lägenheten ligger för nära hennes arbete", "kommunen har inte avtal med oss",
    "ärendet 2026-1234 behöver nytt beslut", "fullt t.o.m. 2026-12-15",
    "väntetid ca 3 dagar", "ring oss 08:00-16:00 vardagar",
    "plats finns i annan kommun genom oss", "ej lämpligt för barn under 1 år",
    "inte i natt, kanske i morgon", "svårt med allergier, vi har katt",
    "rökfritt boende, hon röker", "bara 2 rum kvar, båda för ensamstående",
    "prova Kvinnojouren Frida", "vi tar inte emot vid pågående missbruk",
    "nej, 3 barn är för många för rum 7", "avböjer p.g.a. säkerhet",
    "hon vill inte flytta så långt", "personal på kurs 12-14 nov",
    "renovering vecka 47-49", "plats från 1/1", "hör av er 2026-12-02",
    "ring igen kl 10", "ingen personal 24 timmar", "inga lediga rum 2026",
    "kan ta 2 vuxna om de är syskon", "pappan är med, vi tar inte män",
    "pojke 15 år, gränsen går vid 14", "avböjt, se telefonsamtal 21:45",
    "lugnt boende behövs, vi har 8 barn här nu", "boende för unga 16-25",
    "ledig lägenhet nr 4 men för liten", "rum nr 2 är beläggning",
    "kan ta emot 12/12 kl 12", "väntar på städning av rum 3",
    "inte tillgänglig 25-26 dec", "fullt, se vår lista uppdaterad 06:30",
]


# What the widened guards may cost at most: a refusal of one in a hundred of these texts.
MAX_FALSE_POSITIVE_RATE = 0.01


def test_false_positive_rate_of_the_guards(held, capsys):
    """Sends every name and note of the list through the daemon and counts personal_data
    refusals; prints the rate, and fails above MAX_FALSE_POSITIVE_RATE."""
    env = held
    refused = []
    with env.connect(*ADMIN) as adm, env.connect("shelter", FRIDA) as sh:
        for i, name in enumerate(SHELTER_NAMES):
            ok, res = adm.request("shelter.add", {"shelter": f"fp-{i:03d}", "name": name,
                                                  "kind": "kvinnojour", "municipality": "0180",
                                                  "protection": 1, "phone": "08-123 456 78"})
            if not ok:
                assert res["code"] == "personal_data", (name, res)
                refused.append(name)
        social = env.connect("social", "0180")
        for note in DECLINE_NOTES:
            # Each note declines a fresh hold, so every one is checked as a real decline is.
            hid = social.call("hold", {**LOW_RISK_ARGS, "shelter": FRIDA, "unit": "r2",
                                       "ref": "case-fp"})["hold"]
            ok, res = sh.request("hold.decline", {"hold": hid, "reason": "other", "note": note})
            if not ok:
                assert res["code"] == "personal_data", (note, res)
                refused.append(note)
                social.call("hold.release", {"hold": hid})
    total = len(SHELTER_NAMES) + len(DECLINE_NOTES)
    rate = len(refused) / total
    with capsys.disabled():
        print(f"\nprivacy guards: {len(refused)} false positives in {total} texts "
              f"({len(SHELTER_NAMES)} shelter names, {len(DECLINE_NOTES)} decline notes): "
              f"{100 * rate:.1f} %" + (f": {refused}" if refused else ""))
    assert rate <= MAX_FALSE_POSITIVE_RATE, refused


def counts(env):
    s = env.admin.ok("stats")
    return s["holds"], s["placements"]


@pytest.mark.daemon_config({"holds": {"reference_retention": "1s", "sweep_interval": "100ms"},
                            **DEBUG})
def test_references_are_deleted_after_the_retention(held):
    env = held
    social = env.cli("social", "0180")
    shelter = env.cli("shelter", FRIDA)
    oncall = env.cli("oncall", "jour-sthlm")
    env.add_unit(FRIDA, "r3", 2)
    env.add_unit(FRIDA, "r4", 2)
    for u in ("r3", "r4"):
        shelter.ok("vacancy", FRIDA, u, "free")
    # Closed in every way: released, declined, confirmed and then discharged.
    shelter.ok("decline", env.hold_id, "--reason", "other", "--note", "no room for the dog")  # case-held
    released = social.ok("hold", FRIDA, "r1", *LOW_RISK, "--ref", "case-released")["hold"]
    social.ok("release", released)
    placed = social.ok("hold", FRIDA, "r2", *LOW_RISK, "--ref", "case-placed")["hold"]
    placement = shelter.ok("confirm", placed)["placement"]["placement"]
    shelter.ok("discharge", placement)
    # Still open: a hold, and an active placement.
    open_hold = social.ok("hold", FRIDA, "r1", *LOW_RISK, "--ref", "case-open")["hold"]
    active = social.ok("hold", FRIDA, "r3", *LOW_RISK, "--ref", "case-active")["hold"]
    active_pl = shelter.ok("confirm", active)["placement"]["placement"]
    before = counts(env)

    closed_refs = ["case-held", "case-released", "case-placed", "no room for the dog"]

    closed_records = [f"hold:{h}" for h in (env.hold_id, released, placed, active)] + \
        [f"pl:{placement}"]

    def purged():
        blob = dump_namespace(env)
        keys = keyspace(env, exclude=())
        return not any(r.encode() in blob for r in closed_refs) and \
            not any((ns_prefix(env) + k).encode() in keys for k in closed_records)

    wait_for(purged, 15, "closed holds and placements to be deleted after the retention")
    for who in (social, shelter, oncall):
        holds = {h["hold"]: h for h in who.ok("holds")["holds"]}
        # The confirmed hold is closed too: its placement carries the reference on.
        assert set(holds) == {open_hold}, holds
        assert holds[open_hold]["ref"] == "case-open"
        pls = {p["placement"]: p for p in who.ok("placements")["placements"]}
        assert set(pls) == {active_pl}, pls
        assert pls[active_pl]["ref"] == "case-active"
    # Records of closed holds and placements are gone from Redis, not just from the lists.
    keys = b"\n".join(keyspace(env, exclude=()))
    for hid in (env.hold_id, released, placed, active):
        assert hid.encode() not in keys, hid
    assert placement.encode() not in keys
    # Only the counts remain, and they are not lowered by the deletion.
    holds, placements = counts(env)
    assert (holds, placements) == before
    assert holds["made"] == 5 and holds["declined"] == 1 and holds["released"] == 1
    assert holds["confirmed"] == 2
    assert placements["made"] == 2 and placements["discharged"] == 1
    # The open ones keep their reference.
    blob = dump_namespace(env)
    assert b"case-open" in blob and b"case-active" in blob
    # The daemon never logged a reference, a reason or the phone, even at debug level.
    log = env.daemon.log_text()
    for secret in closed_refs + ["case-open", "case-active", PHONE]:
        assert secret not in log, secret


@pytest.mark.daemon_config({"holds": {"reference_retention": "1s", "sweep_interval": "100ms"}})
def test_reference_of_an_idempotent_hold_is_deleted_too(held):
    """A hold made with an idempotency key: its reference must go with the hold."""
    env = held
    social = env.cli("social", "0180")
    hid = social.ok("hold", FRIDA, "r2", *LOW_RISK, "--ref", "case-idem-77", "--idempotency-key",
                    "idem-key-0001")["hold"]
    social.ok("release", hid)

    def hold_gone():
        return hid.encode() not in b"\n".join(keyspace(env, exclude=()))

    wait_for(hold_gone, 15, "the released hold to be deleted")
    with redis(env) as r:
        holders = [k for k in r.keys(ns_prefix(env) + "*")
                   if b"case-idem-77" in repr(r.value(k)).encode()]
    assert not holders, \
        f"the reference outlives its hold (reference retention 1 s) in {holders}"


def strings(obj):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from strings(k)
            yield from strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from strings(v)
    elif isinstance(obj, str):
        yield obj
    elif isinstance(obj, bytes):
        yield obj.decode("utf-8", "replace")


def has_phone(obj):
    return any(PHONE_DIGITS in digits_only(s) for s in strings(obj))


@pytest.mark.daemon_config(DEBUG)
def test_intake_phone_only_where_allowed(held):
    env = held
    hid = env.hold_id
    who = {
        "own": ("shelter", FRIDA),
        "other": ("shelter", "hamnen-gbg"),
        "social": ("social", "0180"),
        "oncall": ("oncall", "jour-sthlm"),
        "admin": ADMIN,
    }
    c = {k: env.connect(*v) for k, v in who.items()}
    replies = []  # (who, op, result, may show the phone)

    def run(k, op, args=None, may=False):
        ok, res = c[k].request(op, args)
        assert ok, (k, op, res)
        replies.append((k, op, res, may))
        return res

    for k in who:
        if k != "other":  # another shelter may not see this one at all
            run(k, "shelter.show", {"shelter": FRIDA}, may=k in ("own", "admin"))
        run(k, "shelter.list")
        run(k, "free")
        run(k, "whoami")
    for k in ("social", "oncall", "admin"):
        run(k, "search", {"home": "0114", "risk": "low"})
    h2 = run("oncall", "hold", {**LOW_RISK_ARGS, "shelter": FRIDA, "unit": "r2", "ref": "case-2",
                                "municipality": "0180", "idempotency_key": "key-00000001"},
             may=True)
    assert h2["phone"] == PHONE
    # The idempotent replay is a hold reply too.
    assert run("oncall", "hold", {**LOW_RISK_ARGS, "shelter": FRIDA, "unit": "r2", "ref": "case-2",
                                  "municipality": "0180", "idempotency_key": "key-00000001"},
               may=True)["phone"] == PHONE
    for k in ("own", "other", "social", "oncall"):
        run(k, "holds.list")
        run(k, "placements.list")
    pl = run("own", "hold.confirm", {"hold": hid})["placement"]["placement"]
    run("own", "hold.decline", {"hold": h2["hold"], "reason": "no_room"})
    run("own", "placement.discharge", {"placement": pl})
    h3 = run("social", "hold", {**LOW_RISK_ARGS, "shelter": FRIDA, "unit": "r1", "ref": "case-3"}, may=True)
    run("social", "hold.release", {"hold": h3["hold"]})
    run("own", "vacancy.set", {"shelter": FRIDA, "unit": "r2", "state": "occupied"}, may=True)
    run("own", "vacancy.confirm", {"shelter": FRIDA}, may=True)
    run("admin", "unit.update", {"shelter": FRIDA, "unit": "r2", "beds": 3}, may=True)
    run("admin", "audit", {"limit": 200})
    run("admin", "stats")
    for k in who:
        if k != "other":
            run(k, "shelter.show", {"shelter": FRIDA}, may=k in ("own", "admin"))

    leaks = [(k, op) for k, op, res, may in replies if not may and has_phone(res)]
    assert not leaks, f"the intake phone is in replies to {leaks}"
    # The check itself finds the phone where it is.
    assert all(has_phone(res) for k, op, res, may in replies
               if op in ("hold", "shelter.show") and may)
    # Nor is it in the audit trail (which the admin reads), or in the daemon's log.
    assert PHONE not in env.daemon.log_text()
    for ch in c.values():
        ch.close()


def files_holding(root, needle):
    found = []
    for p in sorted(root.rglob("*")):
        if p.is_file() and not p.is_socket():
            try:
                if needle in p.read_bytes():
                    found.append(str(p.relative_to(root)))
            except OSError:
                pass
    return found


@pytest.mark.daemon_config({"holds": {"reference_retention": "1s", "sweep_interval": "100ms"}})
def test_deleted_references_do_not_stay_on_disk(env_unstarted):
    """With the embedded Redis (spawn mode) the data directory is Fristad's own: once a closed
    hold's reference and decline reason are deleted, no file there may keep them (the
    append-only file records every write until it is rewritten)."""
    env = env_unstarted
    env.daemon.update_config({"redis": {"mode": "spawn", "address": None,
                                        "server": REDIS_SERVER}})
    env.daemon.start()
    env.add_shelter(FRIDA, "Kvinnojouren Frida", municipality="0180", phone=PHONE)
    env.add_unit(FRIDA, "r1", 2)
    shelter = env.cli("shelter", FRIDA)
    shelter.ok("vacancy", FRIDA, "r1", "free")
    social = env.cli("social", "0180")
    hid = social.ok("hold", FRIDA, "r1", *LOW_RISK, "--ref", "case-on-disk-42")["hold"]
    shelter.ok("decline", hid, "--reason", "other", "--note", "declined-on-disk-7")
    wait_for(lambda: social.ok("holds")["holds"] == [], 15, "the declined hold to be deleted")

    def clean():
        return not (files_holding(env.daemon.data_dir, b"case-on-disk-42") or
                    files_holding(env.daemon.data_dir, b"declined-on-disk-7"))

    try:
        wait_for(clean, 10, "the data directory to forget the deleted reference", interval=0.2)
    except pytest.fail.Exception:
        pytest.fail("a deleted reference and decline reason are still on disk in "
                    f"{files_holding(env.daemon.data_dir, b'case-on-disk-42')} of the data "
                    "directory, 10 s after their records were deleted")
    assert env.admin.ok("stats")["holds"]["declined"] == 1


@pytest.mark.daemon_config({"holds": {"reference_retention": "1s", "sweep_interval": "100ms",
                                      "disk_purge_delay": "1h"}})
def test_a_purge_owed_to_the_disk_survives_a_restart(env_unstarted):
    """Issue 11 item 4: the "rewrite needed" flag lived in memory alone. Release a hold, stop the
    daemon within the purge delay, and the reference stayed in the append-only file across the
    restart. The debt is kept in Redis now, and the restarted daemon pays it at once."""
    env = env_unstarted
    env.daemon.update_config({"redis": {"mode": "spawn", "address": None,
                                        "server": REDIS_SERVER}})
    env.daemon.start()
    env.add_shelter(FRIDA, "Kvinnojouren Frida", municipality="0180", phone=PHONE)
    env.add_unit(FRIDA, "r1", 2)
    env.cli("shelter", FRIDA).ok("vacancy", FRIDA, "r1", "free")
    social = env.cli("social", "0180")
    data = env.daemon.data_dir

    def on_disk(ref):
        return files_holding(data, ref.encode())

    # The first purge is rewritten off the disk at once (no rewrite for an hour before it).
    first = social.ok("hold", FRIDA, "r1", *LOW_RISK, "--ref", "case-first-31")["hold"]
    social.ok("release", first)
    wait_for(lambda: not on_disk("case-first-31"), 15, "the first purge to leave the disk")
    # The second falls within the purge delay of an hour: Redis has deleted it, the file not.
    second = social.ok("hold", FRIDA, "r1", *LOW_RISK, "--ref", "case-second-32")["hold"]
    social.ok("release", second)
    wait_for(lambda: social.ok("holds")["holds"] == [], 15, "the second hold to be deleted")
    assert on_disk("case-second-32"), "the append-only file was rewritten within the delay"
    # Stopped within the delay, started again.
    env.daemon.stop()
    env.daemon.start()
    try:
        wait_for(lambda: not on_disk("case-second-32"), 15,
                 "the restarted daemon to take the deleted reference off the disk",
                 interval=0.2)
    except pytest.fail.Exception:
        pytest.fail(f"a deleted reference is still on disk in {on_disk('case-second-32')} "
                    "after a restart within the purge delay")
