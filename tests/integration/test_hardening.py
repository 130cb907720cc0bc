"""Hostile and careless use of the real-time and referral ops, against the real daemon: each test
here is a way in that was once open. A watching connection takes no further requests, not even
ones that arrived in the same read as the watch; a standing search matches only by the whole
predicate a search and a hold apply."""

import json
import signal
import time

import pytest

from conftest import LOW_RISK_ARGS, wait_for
from fristad_proto import ConnectionClosed, frame, request_body
from referrals import redis_command, second  # noqa: F401 (fixture)
from security import ns_prefix


@pytest.fixture
def shelters(env):
    for sid, mun in (("frida-sthlm", "0180"), ("hamnen-gbg", "1480")):
        env.add_shelter(sid, f"Jour {sid}", municipality=mun, protection=2)
        for u in ("r1", "r2"):
            env.add_unit(sid, u, 3)
            env.cli("shelter", sid).ok("vacancy", sid, u, "free")
    return env


def replies_until_closed(conn, timeout):
    """Every frame the server sends until it closes the connection (or the time is up)."""
    got = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            got.append(conn.read_frame(max(deadline - time.monotonic(), 0.01)))
        except (ConnectionClosed, TimeoutError, OSError):
            break
    return got


def test_a_request_in_the_same_read_as_a_watch_is_dropped(shelters):
    """A watching connection takes no further requests: a hold sent right behind the watch, in
    the same TCP segment, must neither be made nor answered."""
    env = shelters
    with env.connect("social", "0180") as c:
        hold = {**LOW_RISK_ARGS, "shelter": "hamnen-gbg", "unit": "r1", "ref": "PIPE-1"}
        c.send_raw(frame(request_body("watch", None, 1)) + frame(request_body("hold", hold, 2)))
        first = c.recv_reply(1, timeout=10)
        assert first["ok"] and first["result"]["watching"], first
        got = replies_until_closed(c, 1.5)
        assert [r for r in got if r["id"] == 2] == [], got
    assert env.show("hamnen-gbg")["units"][0]["held"] is False
    assert env.cli("social", "0180").ok("holds")["holds"] == []


@pytest.mark.daemon_config({"events": {"heartbeat": "200ms"}})
def test_a_second_watch_in_the_same_read_is_dropped(shelters):
    """Two watches in one segment: the first ends with `gone`, and the second one must not be
    left behind as a watcher whose request was finished with the first (its heartbeat would
    then write through freed memory)."""
    env = shelters
    redis_command(env.redis.sock, "SET", ns_prefix(env) + "log:floor", "9999999999999-0")
    with env.connect("admin", "ops-anna") as c:
        c.send_raw(frame(request_body("watch", {"since": "1-0"}, 1)) +
                   frame(request_body("watch", None, 2)))
        got = replies_until_closed(c, 3)
    assert [r for r in got if r["id"] == 2] == [], got
    assert [r["error"]["code"] for r in got if r["id"] == 1 and not r["ok"]] == ["gone"], got
    time.sleep(1)  # heartbeats of a watcher left behind would go out now
    assert env.daemon.running
    assert env.admin.ok("whoami")["role"] == "admin"
    # Watching works as before for this principal.
    with env.connect("admin", "ops-anna") as c:
        rid = c.send("watch")
        assert c.recv_reply(rid, timeout=5)["ok"]
        assert "heartbeat" in c.recv_reply(rid, timeout=5)["result"]


def test_a_standing_search_keeps_the_competences_it_needs(shelters):
    """A standing search that needs a competence is matched only by a shelter that has it, as a
    search and a hold would decide: the stored referral must keep `need`."""
    env = shelters
    for sid in ("frida-sthlm", "hamnen-gbg"):
        for u in ("r1", "r2"):
            env.cli("shelter", sid).ok("vacancy", sid, u, "occupied")
    env.admin.ok("shelter", "update", "hamnen-gbg", "--competences", "hbv")
    social = env.cli("social", "0180")
    referral = ["--from", "0180", "--risk", "low", "--need", "hbv"]
    st = social.ok("standing", "add", *referral, "--ref", "NEED-1")["standing"]["standing"]
    with env.connect("social", "0180") as c:
        rid = c.send("watch", {"types": ["match"]})
        assert c.recv_reply(rid, timeout=5)["ok"]
        # frida has no hbv: a search does not offer it, and the standing search must not either.
        env.cli("shelter", "frida-sthlm").ok("vacancy", "frida-sthlm", "r1", "free")
        assert social.ok("search", *referral)["results"] == []
        # hamnen has it: one match.
        env.cli("shelter", "hamnen-gbg").ok("vacancy", "hamnen-gbg", "r1", "free")
        m = c.recv_reply(rid, timeout=5)["result"]["event"]
        assert (m["standing"], m["shelter"], m["unit"]) == (st, "hamnen-gbg", "r1"), m


def test_a_shelter_that_now_may_take_the_household_calls_back(shelters):
    """When an admin records what makes a shelter fit (a competence the referral needs, the IVO
    permit of protected housing), its free units are checked against the standing searches as
    when it changes any other thing it takes."""
    env = shelters
    for sid in ("frida-sthlm", "hamnen-gbg"):
        for u in ("r1", "r2"):
            env.cli("shelter", sid).ok("vacancy", sid, u, "occupied")
    env.add_shelter("lila-uppsala", "Lila", kind="skyddat_boende", municipality="0380",
                    protection=3, operator="ideell")
    env.add_unit("lila-uppsala", "a1", 3)
    env.cli("shelter", "lila-uppsala").ok("vacancy", "lila-uppsala", "a1", "free")
    env.cli("shelter", "hamnen-gbg").ok("vacancy", "hamnen-gbg", "r1", "free")
    social = env.cli("social", "0180")
    permit = social.ok("standing", "add", "--from", "0180", "--risk", "low", "--exclude", "1480",
                       "--ref", "PERMIT-1")["standing"]["standing"]
    need = social.ok("standing", "add", "--from", "0180", "--risk", "low", "--need", "hbv",
                     "--exclude", "0380", "--ref", "NEED-2")["standing"]["standing"]
    with env.connect("social", "0180") as c:
        rid = c.send("watch", {"types": ["match"]})
        assert c.recv_reply(rid, timeout=5)["ok"]
        env.admin.ok("shelter", "update", "lila-uppsala", "--ivo-permit", "3.5.1-1/2024",
                     "--ivo-permit-date", "2024-05-20")
        m = c.recv_reply(rid, timeout=5)["result"]["event"]
        assert (m["standing"], m["shelter"], m["unit"]) == (permit, "lila-uppsala", "a1"), m
        env.admin.ok("shelter", "update", "hamnen-gbg", "--competences", "hbv")
        m = c.recv_reply(rid, timeout=5)["result"]["event"]
        assert (m["standing"], m["shelter"], m["unit"]) == (need, "hamnen-gbg", "r1"), m


def test_the_archive_does_not_follow_a_link_planted_in_its_directory(env_unstarted):
    """Whoever may write to the archive directory must not make the daemon cut or re-mode a file
    elsewhere by planting a link under the month's name: the daemon writes only to a regular
    file of its own, and while it cannot, the records stay in the store."""
    from test_archive import FRIDA, archive_config, exists, frida, month_files
    env = env_unstarted
    directory = archive_config(env)
    directory.mkdir(mode=0o700)
    victim = env.workdir / "victim.txt"
    victim.write_bytes(b"first line\nsecond line without an end")
    victim.chmod(0o644)
    for f in month_files(directory):
        f.symlink_to(victim)
    env.start()
    frida(env)
    hid = env.cli("social", "0180").ok("hold", FRIDA, "r1", "--from", "0180", "--risk", "low",
                                       "--ref", "KS-LINK-1")["hold"]
    env.cli("social", "0180").ok("release", hid)
    wait_for(lambda: "archiving" in env.daemon.log_text(), 10, "an archiving attempt")
    time.sleep(0.5)
    assert victim.read_bytes() == b"first line\nsecond line without an end"
    assert victim.stat().st_mode & 0o777 == 0o644
    assert exists(env, f"hold:{hid}")


def test_a_hold_is_checked_against_the_shelter_as_the_store_has_it(env, second):
    """The eligibility check runs on the daemon's copy of the shelter; the store makes the hold.
    A daemon that has not yet heard of a change made through another one (here: it is stopped
    while the permit is revoked, with the hold already waiting in its socket) must not let a
    hold through that the store's shelter rules out: protected housing without its permit."""
    env.add_shelter("lila-uppsala", "Lila", kind="skyddat_boende", municipality="0380",
                    protection=3, operator="ideell", ivo_permit="3.5.1-1/2024")
    env.add_unit("lila-uppsala", "a1", 3)
    env.cli("shelter", "lila-uppsala").ok("vacancy", "lila-uppsala", "a1", "free")
    wait_for(lambda: second.admin.ok("shelter", "show", "lila-uppsala")["shelter"]["units"][0]
             ["state"] == "free", 5, "the second daemon to see the free unit")
    hold = {"home": "0180", "risk": "low", "shelter": "lila-uppsala", "unit": "a1",
            "ref": "RACE-1"}
    with env.connect("social", "0180") as c:
        assert c.call("whoami")["role"] == "social"
        env.daemon.proc.send_signal(signal.SIGSTOP)
        try:
            rid = c.send("hold", hold)
            time.sleep(0.2)
            second.admin.ok("shelter", "update", "lila-uppsala", "--no-ivo-permit")
        finally:
            env.daemon.proc.send_signal(signal.SIGCONT)
        reply = c.recv_reply(rid, timeout=10)
    assert not reply["ok"], reply
    assert reply["error"]["code"] in ("ineligible", "conflict"), reply
    assert env.admin.ok("shelter", "show", "lila-uppsala")["shelter"]["units"][0]["held"] is False


def test_hold_n_is_refused_with_another_pkcs12_identity(shelters):
    """'hold N' holds a result of the last search made with the same certificate; with PKCS#12
    files the certificate is the file, so a search made as one principal is not held as
    another (with the first one's referral)."""
    from test_p12 import PASS, client, export
    env = shelters
    stockholm = export(env, env.cert("social", "0180"), env.workdir / "sthlm.p12", PASS)
    goteborg = export(env, env.cert("social", "1480"), env.workdir / "gbg.p12", PASS)
    secret = {"FRISTAD_P12_PASS": PASS}
    r = client(env, stockholm, "search", "--from", "0180", "--risk", "low", extra_env=secret)
    assert r.returncode == 0 and json.loads(r.stdout)["results"], r
    r = client(env, goteborg, "hold", "1", "--ref", "P12-1", extra_env=secret)
    assert r.returncode == 2 and "another server or certificate" in r.stdout, r
    assert env.cli("social", "1480").ok("holds")["holds"] == []
    # With the file it searched with, it holds.
    r = client(env, stockholm, "hold", "1", "--ref", "P12-2", extra_env=secret)
    assert r.returncode == 0, r


FILL_LOG = ("for i = 1, tonumber(ARGV[1]) do redis.call('XADD', KEYS[1], '*', 'type', 'vacancy', "
            "'at', '1', 'shelter', 'frida-sthlm', 'unit', 'r1', 'state', 'free') end return 1")


@pytest.mark.daemon_config({"log": {"level": "debug"}})
def test_a_watcher_that_reads_nothing_while_catching_up_is_closed_cleanly(env_unstarted):
    """A watcher that resumes from long ago and then reads nothing fills its unread output; the
    daemon closes it. It must not touch the watcher it has just freed while doing so (the
    sanitizer build sees that as a use after free)."""
    env = env_unstarted
    env.redis.start()
    # A long log from before the daemon started: only a resuming watcher reads it.
    assert redis_command(env.redis.sock, "EVAL", FILL_LOG, 1, ns_prefix(env) + "log",
                         100000, timeout=60) == ":1"
    env.daemon.start()
    with env.connect("admin", "ops-anna") as c:
        c.send("watch", {"since": "0-0"})
        # It reads nothing; the daemon sends until it gives up on it.
        wait_for(lambda: "too many unread replies" in env.daemon.log_text(), 40,
                 "the daemon to close the watcher that reads nothing")
    assert env.daemon.running
    assert env.admin.ok("whoami")["role"] == "admin"
    assert not env.daemon.sanitizer_reports()


def test_audit_since_a_sequence_starts_after_it(env):
    """`since` as a sequence means after that entry, for the audit trail as for the event log;
    it must not be read as 0 (the whole trail from its start)."""
    env.add_shelter("frida-sthlm", "Frida")
    with env.connect("admin", "ops-anna") as c:
        everything = c.call("audit", {"limit": 200})["entries"]
        assert everything
        assert c.call("audit", {"since": "9999999999999-0"})["entries"] == []
        last = everything[-1]["at"]
        after = c.call("audit", {"since": f"{last}-99999"})["entries"]
        assert all(e["at"] > last for e in after), after
