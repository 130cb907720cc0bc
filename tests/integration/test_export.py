"""`fristad export hsds` (op `directory`): the registry as Open Referral HSDS 3.0 JSON for a public
page. Every shelter that is not retired is one service with its organization and its
municipality as the only location; what must never be in it is looked for in the whole text:
an intake phone of protected housing or of a high-security shelter, a unit's id or state, a
hold's reference or callback, whether intake is paused."""

import re
import time

import pytest

from conftest import wait_for
from security import audit_entries

UUID5 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")

PUBLIC_PHONES = {"frida": "08-555 010 10", "jour-2": "08-555 020 20"}
SECRET_PHONES = ["040-555 777 77", "018-555 333 33", "08-555 999 99"]
SECRET_WORDS = ["unit-secret", "lgh-hemlig", "KS-2026-0417", "070-555 12 34", "paused",
                "occupied", "held", "closed", '"addresses"', '"latitude"', '"longitude"']


@pytest.fixture
def registry(env):
    a = env.admin
    env.add_shelter("frida", "Kvinnojouren Frida", municipality="0180", protection=2,
                    phone=PUBLIC_PHONES["frida"], groups=["women", "hbtqi"], max_children=4,
                    boys_max_age=15, pets=True, languages=["sv", "en", "ar"])
    env.add_unit("frida", "unit-secret-1", 4, accessible=True)
    env.add_unit("frida", "unit-secret-2", 2)
    env.add_shelter("tryggt", "Tryggt boende", kind="skyddat_boende", municipality="1280",
                    protection=2, phone=SECRET_PHONES[0])
    env.add_unit("tryggt", "lgh-hemlig", 5)
    env.add_shelter("kris", "Kriscentrum Uppsala", kind="kriscentrum", municipality="0380",
                    protection=3, phone=SECRET_PHONES[1])
    env.add_unit("kris", "unit-secret-3", 3)
    env.add_shelter("jour-2", "Jour två", municipality="0180", protection=1,
                    phone=PUBLIC_PHONES["jour-2"], substance=True)
    env.add_unit("jour-2", "unit-secret-4", 2)
    env.add_shelter("gammal", "Nedlagd jour", municipality="0180", phone=SECRET_PHONES[2])
    a.ok("shelter", "retire", "gammal")
    # Vacancies, a pause and a hold with a reference and callback: none of it is public.
    for sid, unit in (("frida", "unit-secret-1"), ("frida", "unit-secret-2"),
                      ("tryggt", "lgh-hemlig"), ("jour-2", "unit-secret-4")):
        env.cli("shelter", sid).ok("vacancy", sid, unit, "free")
    env.cli("shelter", "jour-2").ok("intake", "pause", "jour-2")
    env.cli("social", "0180").ok("hold", "frida", "unit-secret-1", "--ref", "KS-2026-0417",
                                 "--callback", "070-555 12 34", "--from", "0180", "--risk", "low")
    return env


def export(env):
    res = env.admin("export", "hsds")
    doc = res.ok()
    return doc, res.stdout


def test_export_is_hsds_and_public(registry):
    env = registry
    doc, text = export(env)

    # One HSDS API page of services.
    assert {k: doc[k] for k in ("total_items", "total_pages", "page_number", "size",
                                "first_page", "last_page", "empty")} == {
        "total_items": 4, "total_pages": 1, "page_number": 1, "size": 4, "first_page": True,
        "last_page": True, "empty": False}
    services = {s["name"]: s for s in doc["contents"]}
    assert set(services) == {"Kvinnojouren Frida", "Tryggt boende", "Kriscentrum Uppsala",
                             "Jour två"}
    ids = set()
    for s in doc["contents"]:
        # What HSDS 3.0 requires of each object, and ids that are UUIDs.
        assert s["status"] == "active" and s["description"] and s["name"]
        org = s["organization"]
        assert org["name"] == s["name"] and org["description"]
        assert s["organization_id"] == org["id"]
        [sal] = s["service_at_locations"]
        loc = sal["location"]
        assert sal["service_id"] == s["id"] and sal["location_id"] == loc["id"]
        assert loc["location_type"] == "physical"
        assert loc["external_identifier_type"] == "kommunkod"
        assert set(loc) == {"id", "location_type", "name", "description", "external_identifier",
                            "external_identifier_type"}
        for lang in s["languages"]:
            assert lang["service_id"] == s["id"] and re.fullmatch(r"[a-z]{2,3}", lang["code"])
        for p in s["phones"]:
            assert p["service_id"] == s["id"] and p["number"] and p["type"] == "voice"
        objects = [s, org, sal, loc, *s["languages"], *s["phones"]]
        for o in objects:
            assert UUID5.fullmatch(o["id"]), o
        ids.update(o["id"] for o in objects if o is not loc)
    # Every id is its object's own; Stockholm is one location for its two shelters.
    assert len(ids) == sum(3 + len(s["languages"]) + len(s["phones"]) for s in doc["contents"])
    sthlm = {s["service_at_locations"][0]["location"]["id"] for s in doc["contents"]
             if s["service_at_locations"][0]["location"]["external_identifier"] == "0180"}
    assert len(sthlm) == 1

    frida = services["Kvinnojouren Frida"]
    assert frida["service_at_locations"][0]["location"]["name"] == "Stockholm (kommun 0180)"
    assert [l["code"] for l in frida["languages"]] == ["sv", "en", "ar"]
    assert "up to 4 children (boys up to the age of 15)" in frida["eligibility_description"]
    assert "Women and hbtqi people" in frida["eligibility_description"]
    assert "2 units with 6 beds, 1 wheelchair accessible" in frida["description"]
    assert "Pets are welcome" in frida["description"]
    assert "Substance-use support" in services["Jour två"]["description"]

    # Phones: a kvinnojour's, never protected housing's or a high-security shelter's.
    assert {n: [p["number"] for p in s["phones"]] for n, s in services.items()} == {
        "Kvinnojouren Frida": [PUBLIC_PHONES["frida"]], "Jour två": [PUBLIC_PHONES["jour-2"]],
        "Tryggt boende": [], "Kriscentrum Uppsala": []}
    for secret in SECRET_PHONES + SECRET_WORDS:
        assert secret not in text, secret
    assert "Nedlagd jour" not in text

    # The same ids in every export, so a page that loads a new one keeps its links.
    assert export(env)[1] == text

    # The phones given are one audited disclosure per export. The entry is sent to Redis beside
    # the reply, not before it: it may land a moment after the export has returned.
    def disclosures():
        found = [e for _, e in audit_entries(env) if e["op"] == "directory"]
        return found if len(found) >= 2 else None

    entries = wait_for(disclosures, 5, "both exports' disclosures in the audit trail")
    time.sleep(0.2)
    assert [e for _, e in audit_entries(env) if e["op"] == "directory"] == entries
    assert all(e["principal"] == "admin:ops-anna" and e.get("phone") == "disclosed"
               for e in entries)


def test_export_is_for_the_admin(registry):
    env = registry
    for who in (("social", "0180"), ("oncall", "jour-sthlm"), ("shelter", "frida")):
        assert env.cli(*who)("export", "hsds").refused("forbidden")
    assert env.admin("export", "hsds", "--county", "01").usage("--county")


def test_phones_are_withheld_when_the_disclosure_cannot_be_audited(registry):
    env = registry
    env.redis.stop()
    res = env.admin("export", "hsds")
    doc = res.ok()
    assert len(doc["contents"]) == 4
    assert all(s["phones"] == [] for s in doc["contents"])
    assert "left out" in res.stderr
    env.redis.start()


def test_an_empty_registry_is_an_empty_page(env):
    doc = env.admin.ok("export", "hsds")
    assert doc["total_items"] == 0 and doc["empty"] is True and doc["contents"] == []
