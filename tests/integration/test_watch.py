"""Real time: the event log and `watch`, with real Redis, two daemons and the real client. A
shelter's watcher sees a hold on its unit within a second, also one made through the other
daemon; the holder's watcher sees the acceptance; nobody sees what is outside their scope. The
client resumes across a restart of its daemon with no gap and no duplicate; a sequence older
than the log is `gone`. Unanswered holds escalate once per step whichever daemon sweeps; a
standing search calls back exactly once for a bed that fits, and never for one that does not."""

import json
import os
import signal
import subprocess
import threading
import time

import pytest

from conftest import FRISTAD, LOW_RISK, LOW_RISK_ARGS, wait_for
from fristad_proto import ConnectionClosed
from referrals import SecondDaemon, redis_command, second  # noqa: F401 (fixture)
from security import ns_prefix


class Watcher:
    """A protocol connection that watches, with a reader thread collecting its frames."""

    def __init__(self, conn, **args):
        self.conn = conn
        self.rid = conn.send("watch", args or None)
        self.first = conn.recv_reply(self.rid, timeout=10)
        self.events = []
        self.heartbeats = 0
        self.error = None
        self.closed = False
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    def _read(self):
        while True:
            try:
                r = self.conn.recv_reply(self.rid, timeout=120)
            except (ConnectionClosed, OSError, TimeoutError):
                self.closed = True
                return
            if not r["ok"]:
                self.error = r["error"]
                continue
            if "event" in r["result"]:
                self.events.append(r["result"]["event"])
            elif "heartbeat" in r["result"]:
                self.heartbeats += 1

    def types(self, **match):
        return [e["type"] for e in self.events
                if all(e.get(k) == v for k, v in match.items())]

    def wait(self, what, timeout=5, **match):
        def seen():
            return [e for e in self.events if e["type"] == what and
                    all(e.get(k) == v for k, v in match.items())]
        return wait_for(seen, timeout, f"a '{what}' event {match}")[0]


@pytest.fixture
def shelters(env):
    for sid, mun in (("frida-sthlm", "0180"), ("hamnen-gbg", "1480")):
        env.add_shelter(sid, f"Jour {sid}", municipality=mun, protection=2)
        for u in ("r1", "r2"):
            env.add_unit(sid, u, 3)
            env.cli("shelter", sid).ok("vacancy", sid, u, "free")
    return env


def test_watchers_see_their_own_and_only_their_own(shelters, second):
    env = shelters
    frida = Watcher(env.connect("shelter", "frida-sthlm"))
    hamnen = Watcher(second.connect("shelter", "hamnen-gbg"))
    social = Watcher(env.connect("social", "0180"))
    other_social = Watcher(env.connect("social", "1480"))
    admin = Watcher(second.connect("admin", "ops-anna"))
    for w in (frida, hamnen, social, other_social, admin):
        assert w.first["ok"] and w.first["result"]["watching"], w.first
    # A hold through the other daemon reaches frida's watcher, connected to this one, at once.
    started = time.monotonic()
    h = second.cli("social", "0180").ok("hold", "frida-sthlm", "r1", *LOW_RISK, "--ref", "KS-1")
    held = frida.wait("held", 1.0, hold=h["hold"])
    assert time.monotonic() - started < 1.5
    assert held["shelter"] == "frida-sthlm" and held["unit"] == "r1"
    assert held["municipality"] == "0180"
    # Events hold no reference, callback or phone.
    assert not {"ref", "callback", "phone"} & set(held)
    # The holder sees the acceptance; the admin everything.
    env.cli("shelter", "frida-sthlm").ok("accept", h["hold"])
    social.wait("accepted", 2, hold=h["hold"])
    admin.wait("accepted", 2, hold=h["hold"])
    # A hold for Göteborg at hamnen: hamnen sees it, frida and social:0180 do not.
    h2 = env.cli("social", "1480").ok("hold", "hamnen-gbg", "r1", "--from", "1480", "--risk",
                                      "low", "--ref", "KS-2")
    hamnen.wait("held", 2, hold=h2["hold"])
    other_social.wait("held", 2, hold=h2["hold"])
    env.cli("shelter", "hamnen-gbg").ok("vacancy", "hamnen-gbg", "r2", "closed")
    hamnen.wait("vacancy", 2, unit="r2", state="closed")
    admin.wait("vacancy", 2, unit="r2")
    time.sleep(0.5)
    assert h2["hold"] not in {e.get("hold") for e in frida.events + social.events}
    assert all(e["shelter"] == "frida-sthlm" for e in frida.events)
    assert all(e.get("municipality") == "0180" for e in social.events)
    assert "vacancy" not in social.types() + other_social.types()
    assert all(e.get("municipality") == "1480" for e in other_social.events)


def test_filters(shelters):
    env = shelters
    only_gbg = Watcher(env.connect("admin", "ops-anna"), municipality="1480")
    only_vacancy = Watcher(env.connect("admin", "ops-anna"), types=["vacancy"])
    env.cli("shelter", "frida-sthlm").ok("vacancy", "frida-sthlm", "r2", "occupied")
    env.cli("shelter", "hamnen-gbg").ok("vacancy", "hamnen-gbg", "r2", "occupied")
    env.cli("social", "0180").ok("hold", "frida-sthlm", "r1", *LOW_RISK, "--ref", "F-1")
    only_vacancy.wait("vacancy", 2, shelter="hamnen-gbg")
    only_gbg.wait("vacancy", 2, shelter="hamnen-gbg")
    time.sleep(0.5)
    assert {e["shelter"] for e in only_gbg.events} == {"hamnen-gbg"}
    assert set(only_vacancy.types()) == {"vacancy"} and len(only_vacancy.events) == 2


@pytest.mark.daemon_config({"events": {"heartbeat": "300ms"}, "server": {"idle_timeout": "1s"}})
def test_heartbeats_keep_an_idle_watcher(shelters):
    w = Watcher(shelters.connect("shelter", "frida-sthlm"))
    time.sleep(2.5)
    assert not w.closed and w.heartbeats >= 4


def cli_watch(env, role, ident, *args):
    """The real client's `watch --json`, with its output in a file (for crash-safe reading)."""
    cert = env.pki.get(role, ident)
    out = open(env.workdir / f"watch-{role}-{ident}.jsonl", "wb")
    argv = [str(FRISTAD), "--json", "--server", f"{env.daemon.host}:{env.daemon.port}",
            "--cert", str(cert.crt), "--key", str(cert.key), "--ca", str(cert.ca), "watch",
            *args]
    p = subprocess.Popen(argv, stdout=out, stderr=subprocess.PIPE, env=env.cli_environ())
    return p, out.name


def lines(path):
    with open(path) as f:
        return [json.loads(ln) for ln in f if ln.strip()]


def test_the_client_resumes_across_a_restart_with_no_gap_and_no_duplicate(shelters):
    env = shelters
    # From now on (a time, not a sequence): the client may connect after the first change.
    p, path = cli_watch(env, "shelter", "frida-sthlm", "--since", str(int(time.time() * 1000)))
    frida = env.cli("shelter", "frida-sthlm")
    try:
        expected = []
        for i in range(4):
            frida.ok("vacancy", "frida-sthlm", "r2", ("occupied", "free")[i % 2])
            expected.append(("occupied", "free")[i % 2])
        wait_for(lambda: len(lines(path)) == 4, 10, "four events printed")
        # The daemon goes away; events are made through another daemon meanwhile.
        port = env.daemon.port
        env.daemon.stop()
        other = SecondDaemon(env, "other").start()
        try:
            o = other.cli("shelter", "frida-sthlm")
            for i in range(3):
                o.ok("vacancy", "frida-sthlm", "r2", ("occupied", "free")[i % 2])
                expected.append(("occupied", "free")[i % 2])
        finally:
            problems = other.close()
        assert not problems, problems
        # The daemon comes back on the same port; the client finds it and resumes.
        env.daemon.update_config({"server": {"listen": f"127.0.0.1:{port}"}})
        env.daemon.start()
        frida.ok("vacancy", "frida-sthlm", "r2", "occupied")
        expected.append("occupied")
        wait_for(lambda: len(lines(path)) >= len(expected), 30, "the client to resume")
        time.sleep(1)
        got = lines(path)
        seqs = [e["seq"] for e in got]
        assert len(seqs) == len(set(seqs)), "an event was printed twice"
        assert [e["state"] for e in got] == expected, got
        assert seqs == sorted(seqs, key=lambda s: tuple(map(int, s.split("-"))))
    finally:
        p.send_signal(signal.SIGINT)
        rc = p.wait(10)
    assert rc == 0, p.stderr.read()


@pytest.mark.daemon_config({"events": {"max_length": 1000},
                            "holds": {"sweep_interval": "100ms"}})
def test_a_sequence_older_than_the_log_is_gone(shelters):
    env = shelters
    first = Watcher(env.connect("admin", "ops-anna"))
    with env.connect("shelter", "frida-sthlm", timeout=60) as c:
        c.call("vacancy.set", {"shelter": "frida-sthlm", "unit": "r2", "state": "occupied"})
        old = first.wait("vacancy", 2)["seq"]
        # More events than the log keeps (1,000 at most): the sweep trims the oldest.
        replies = c.pipeline([("vacancy.set", {"shelter": "frida-sthlm", "unit": "r2",
                                               "state": ("free", "occupied")[i % 2]})
                              for i in range(1500)], timeout=60)
        assert all(r["ok"] for r in replies)
    length = lambda: int(redis_command(env.redis.sock, "XLEN", ns_prefix(env) + "log")[1:])
    wait_for(lambda: length() < 1300, 10, "the sweep to trim the event log")
    with env.connect("admin", "ops-anna") as c:
        rid = c.send("watch", {"since": old})
        reply = c.recv_reply(rid, timeout=10)
        if reply["ok"]:  # the stream began; the refusal follows and ends it
            reply = c.recv_reply(rid, timeout=10)
        assert not reply["ok"] and reply["error"]["code"] == "gone", reply
        # A sequence the log still holds resumes fine.
        recent = first.events[-1]["seq"]
    again = Watcher(env.connect("admin", "ops-anna"), since=recent)
    assert again.first["ok"]
    time.sleep(0.5)
    assert again.error is None
    # The real client says so and stops, exit 1 (with --json, the error is its last line).
    p, path = cli_watch(env, "admin", "ops-anna", "--since", old)
    assert p.wait(15) == 1
    assert lines(path)[-1]["error"]["code"] == "gone"


@pytest.mark.daemon_config({"holds": {"escalate_after": "1s", "escalate_oncall_after": "2s",
                                      "sweep_interval": "100ms"}})
def test_escalation_once_per_step_whichever_daemon_sweeps(shelters, second):
    env = shelters
    admin = Watcher(env.connect("admin", "ops-anna"))
    oncall = Watcher(second.connect("oncall", "socialjour-sthlm"))
    social = env.cli("social", "0180")
    unanswered = social.ok("hold", "frida-sthlm", "r1", *LOW_RISK, "--ref", "E-1")["hold"]
    answered = social.ok("hold", "frida-sthlm", "r2", *LOW_RISK, "--ref", "E-2")["hold"]
    env.cli("shelter", "frida-sthlm").ok("accept", answered)
    admin.wait("escalated", 5, hold=unanswered, step=2)
    time.sleep(1.5)  # both daemons sweep many times more
    steps = [e["step"] for e in admin.events if e["type"] == "escalated"]
    assert sorted(steps) == [1, 2], admin.events
    assert all(e["hold"] == unanswered for e in admin.events if e["type"] == "escalated")
    # On-call sees step 2 (it acts for Stockholm), not step 1 (for the shelter and the holder).
    assert [e["step"] for e in oncall.events if e["type"] == "escalated"] == [2]


def test_standing_search_calls_back_once_for_a_fitting_bed(shelters, second):
    env = shelters
    social = env.cli("social", "0180")
    for sid in ("frida-sthlm", "hamnen-gbg"):
        for u in ("r1", "r2"):
            env.cli("shelter", sid).ok("vacancy", sid, u, "occupied")
    # Nothing fits now: the search says so; a standing search is registered instead.
    referral = ["--from", "0180", "--risk", "high", "--adults", "1", "--child", "9f"]
    assert social.ok("search", *referral)["results"] == []
    st = social.ok("search", *referral, "--standing", "--ref", "VANTA-1", "--hours", "2")
    sid = st["standing"]["standing"]
    assert st["standing"]["state"] == "active"
    w = Watcher(env.connect("social", "0180"), types=["match"])
    # A unit in the household's own municipality (excluded at high risk) frees up: no match.
    env.cli("shelter", "frida-sthlm").ok("vacancy", "frida-sthlm", "r1", "free")
    # Too few beds somewhere allowed: no match.
    env.admin.ok("unit", "add", "hamnen-gbg", "small", "--beds", "1")
    env.cli("shelter", "hamnen-gbg").ok("vacancy", "hamnen-gbg", "small", "free")
    # A fitting unit frees up, through the other daemon: exactly one match, from both daemons.
    second.cli("shelter", "hamnen-gbg").ok("vacancy", "hamnen-gbg", "r2", "free")
    m = w.wait("match", 3)
    assert (m["standing"], m["shelter"], m["unit"]) == (sid, "hamnen-gbg", "r2")
    time.sleep(1.0)
    assert len(w.events) == 1, w.events
    # The match holds nothing by itself.
    assert env.show("hamnen-gbg")["units"][1]["held"] is False
    listed = social.ok("standing", "list")["standing"]
    assert [(s["standing"], s["matches"]) for s in listed] == [(sid, 1)]
    # Cancelled, it calls back no more.
    social.ok("standing", "cancel", sid)
    env.cli("shelter", "hamnen-gbg").ok("vacancy", "hamnen-gbg", "r1", "free")
    time.sleep(1.0)
    assert len(w.events) == 1
    stats = env.admin.ok("stats")
    assert stats["standing"]["made"] == 1 and stats["standing"]["matched"] == 1


@pytest.mark.daemon_config({"holds": {"sweep_interval": "100ms"}})
def test_standing_search_expires(shelters):
    env = shelters
    social = env.cli("social", "0180")
    st = social.ok("standing", "add", "--from", "1480", "--risk", "low", "--ref", "V-2",
                   "--hours", "1")["standing"]["standing"]
    key = ns_prefix(env) + "standing"
    assert redis_command(env.redis.sock, "ZADD", key, "XX", "CH", 1, st) == ":1"
    wait_for(lambda: social.ok("standing", "list")["standing"][0]["state"] == "expired", 5,
             "the standing search to expire")
    assert env.admin.ok("stats")["standing"]["expired_without_match"] == 1


def test_watch_and_standing_are_scoped(shelters):
    env = shelters
    st = env.cli("social", "0180").ok("standing", "add", "--from", "1480", "--risk", "low",
                                      "--ref", "V-3")["standing"]["standing"]
    env.cli("social", "1480")("standing", "cancel", st).refused("forbidden")
    assert env.cli("social", "1480").ok("standing", "list")["standing"] == []
    env.cli("shelter", "frida-sthlm")("standing", "list").refused("forbidden")
    with env.connect("shelter", "frida-sthlm") as c:
        ok, res = c.request("standing.add", {**LOW_RISK_ARGS, "ref": "X"})
        assert not ok and res["code"] == "forbidden"


@pytest.mark.daemon_config({"oncall": {"jour-vast": "14"}})
def test_oncall_watches_only_the_municipalities_of_its_agreement(shelters):
    """Issue 11 item 9: an on-call service sees, holds, releases and watches only for the
    municipalities its agreement lists; one that is not listed watches nothing of anyone's."""
    env = shelters
    vast = Watcher(env.connect("oncall", "jour-vast"))        # Västra Götaland: 1480
    sthlm = Watcher(env.connect("oncall", "jour-sthlm"))      # Stockholm county: 0180
    nobody = Watcher(env.connect("oncall", "jour-nowhere"))   # not listed
    for w in (vast, sthlm, nobody):
        assert w.first["ok"], w.first
    h_sthlm = env.cli("social", "0180").ok("hold", "frida-sthlm", "r1", *LOW_RISK,
                                           "--ref", "KS-S")["hold"]
    h_gbg = env.cli("social", "1480").ok("hold", "hamnen-gbg", "r1", "--from", "1480",
                                         "--risk", "low", "--ref", "KS-G")["hold"]
    vast.wait("held", 2, hold=h_gbg)
    sthlm.wait("held", 2, hold=h_sthlm)
    env.cli("social", "0180").ok("release", h_sthlm)
    env.cli("social", "1480").ok("release", h_gbg)
    vast.wait("released", 2, hold=h_gbg)
    sthlm.wait("released", 2, hold=h_sthlm)
    time.sleep(0.5)
    assert {e.get("municipality") for e in vast.events} == {"1480"}, vast.events
    assert {e.get("municipality") for e in sthlm.events} == {"0180"}, sthlm.events
    assert nobody.events == [], nobody.events
    # A standing search is made for a municipality of the agreement only.
    with env.connect("oncall", "jour-vast") as c:
        ok, res = c.request("standing.add", {**LOW_RISK_ARGS, "ref": "ST-1"})  # home 0180
        assert not ok and res["code"] == "forbidden", res
        ok, res = c.request("standing.add", {**LOW_RISK_ARGS, "ref": "ST-2",
                                             "municipality": "1480"})
        assert ok, res
