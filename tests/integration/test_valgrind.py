"""No leaks under valgrind: the daemon runs a representative workload under memcheck (every
kind of request, refusals, hostile frames, failed TLS handshakes, a reload, connections that
vanish mid-request) and exits on SIGTERM with no definite or indirect leak and no error."""

import re
import shutil
import signal
import socket
import ssl
import subprocess
import pytest

from conftest import ADMIN, FRISTADD, shelter_args, tail, wait_for, LOW_RISK
import fristad_proto
from fristad_proto import ConnectionClosed, frame, request_body

VALGRIND = shutil.which("valgrind")
START_WAIT = 180
STOP_WAIT = 180


def sanitized(binary):
    try:
        out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True,
                             timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    return re.search(r"lib(asan|ubsan|tsan|lsan)", out) is not None


def skip_reason():
    if not VALGRIND:
        return "valgrind is not installed"
    if not FRISTADD.exists():
        return None  # the env fixture reports it
    if sanitized(FRISTADD):
        return "fristadd is built with sanitizers, which do not run under valgrind"
    return None


pytestmark = pytest.mark.skipif(skip_reason() is not None, reason=skip_reason() or "")

REFUSED = (ConnectionClosed, ssl.SSLError, ConnectionResetError, BrokenPipeError, TimeoutError,
           OSError)


@pytest.fixture
def under_valgrind(env_unstarted):
    env = env_unstarted
    log = env.workdir / "valgrind.log"
    env.daemon.wrapper = [VALGRIND, "--leak-check=full", "--show-leak-kinds=definite,indirect",
                          "--errors-for-leak-kinds=definite,indirect", "--error-exitcode=99",
                          "--track-fds=no", "--num-callers=30", f"--log-file={log}"]
    env.daemon.update_config({"server": {"frame_timeout": "2s", "handshake_timeout": "5s"},
                              "holds": {"reference_retention": "1s",
                                        "sweep_interval": "200ms"}})
    env.redis.start()
    env.daemon.spawn().wait_ready(timeout=START_WAIT)
    env.valgrind_log = log
    return env


def attempt(fn):
    try:
        fn()
    except REFUSED:
        pass


def workload(env):
    admin = env.admin
    frida = env.cli("shelter", "frida-sthlm")
    social = env.cli("social", "0180")
    oncall = env.cli("oncall", "jour-sthlm")

    # Registry.
    admin.ok("shelter", "add", *shelter_args("frida-sthlm", "Kvinnojouren Frida",
                                             protection=2, max_children=3, boys_max_age=12,
                                             languages=["sv", "en"], groups=["women", "youth"]))
    admin.ok("shelter", "add", *shelter_args("hamnen-gbg", "Hamnen", kind="skyddat_boende",
                                             operator="kommunal", ivo_registered=True,
                                             municipality="1480", protection=3, pets=True))
    for u, beds in (("r1", 2), ("r2", 4), ("r3", 1)):
        admin.ok("unit", "add", "frida-sthlm", u, "--beds", beds)
    admin.ok("unit", "add", "hamnen-gbg", "lgh1", "--beds", 5, "--accessible")
    admin.ok("unit", "update", "frida-sthlm", "r3", "--beds", 2)
    admin.ok("shelter", "update", "frida-sthlm", "--name", "Frida", "--pets")
    admin.ok("unit", "add", "hamnen-gbg", "tmp", "--beds", 1)
    admin.ok("unit", "remove", "hamnen-gbg", "tmp")
    # Vacancies.
    for u in ("r1", "r2", "r3"):
        frida.ok("vacancy", "frida-sthlm", u, "free")
    env.cli("shelter", "hamnen-gbg").ok("vacancy", "hamnen-gbg", "lgh1", "free")
    frida.ok("vacancy", "confirm", "frida-sthlm")
    frida.ok("intake", "pause", "frida-sthlm")
    frida.ok("intake", "resume", "frida-sthlm")
    # Listings and search, found and not found.
    social.ok("shelter", "list")
    social.ok("shelter", "list", "--county", "01")
    social.ok("free", "--municipality", "0180")
    admin.ok("shelter", "show", "frida-sthlm")
    social.ok("shelter", "show", "hamnen-gbg")
    social.ok("search", "--from", "0114", "--risk", "moderate", "--child", "14m",
              "--child", "3f", "--language", "sv")
    social.ok("search", "--from", "1480", "--risk", "severe", "--wheelchair",
              "--perpetrator-in", "0180", "--exclude", "0114")
    # Holds and placements.
    h1 = social.ok("hold", "frida-sthlm", "r1", *LOW_RISK, "--ref", "case-1",
                   "--idempotency-key", "idem-0001")["hold"]
    social.ok("hold", "frida-sthlm", "r1", *LOW_RISK, "--ref", "case-1", "--idempotency-key", "idem-0001")
    h2 = oncall.ok("hold", "frida-sthlm", "r2", *LOW_RISK, "--ref", "case-2", "--for", "0180")["hold"]
    h3 = social.ok("hold", "hamnen-gbg", "lgh1", *LOW_RISK, "--ref", "case-3")["hold"]
    pl = frida.ok("confirm", h1)["placement"]["placement"]
    frida.ok("decline", h2, "--reason", "other", "--note", "no room for the dog")
    social.ok("release", h3)
    social.ok("holds")
    frida.ok("placements")
    oncall.ok("holds")
    frida.ok("discharge", pl)
    admin.ok("audit", "--since", "1h", "--shelter", "frida-sthlm")
    admin.ok("stats")
    # Refusals of every layer.
    social("shelter", "retire", "frida-sthlm").refused("forbidden")
    admin("shelter", "add", *shelter_args("frida-sthlm", "Again")).refused("conflict")
    social("hold", "frida-sthlm", "r9", *LOW_RISK, "--ref", "case-9").refused("not_found")
    social("hold", "frida-sthlm", "r3", *LOW_RISK, "--ref", "811218-9876").refused("personal_data")
    cert = env.pki.custom("vg-no-ou", "/O=Fristad/CN=someone")
    env.cli(cert=cert)("whoami").refused("unauthorized")
    admin.ok("shelter", "retire", "hamnen-gbg")

    # Hostile frames on one connection, a lost framing on another.
    with env.connect(*ADMIN) as c:
        for body in (b"\x01", b"\xc1", b"\x81\xa2id\xc1", b"\xdd\xff\xff\xff\xff",
                     fristad_proto.packb({"id": 1, "op": "launch"}),
                     fristad_proto.packb({"id": 2, "op": "hold", "args": {"shelter": 3}})):
            c.send_frame(body)
            c.read_frame()
        assert c.call("whoami")["role"] == "admin"
    with env.connect(*ADMIN) as c:
        c.send_raw(b"\xff\xff\xff\xff")
        attempt(lambda: c.wait_closed(timeout=30))
    # A frame left incomplete (closed by the frame timeout) and one cut by the client.
    with env.connect(*ADMIN) as c:
        c.send_raw(b"\x00\x00\x00\x40\x82")
        attempt(lambda: c.wait_closed(timeout=30))
    c = env.connect(*ADMIN)
    c.send_raw(b"\x00\x00\x00\x40\x82")
    c.close()
    # Requests in flight when the client disappears.
    c = env.connect("oncall", "jour-sthlm")
    c.send_raw(b"".join(frame(request_body(op, None, i)) for i, op in
                        enumerate(["holds.list", "placements.list", "shelter.list"] * 10)))
    c.close()
    # Failed TLS: no certificate, another CA, an expired and a revoked one, plain text,
    # and a handshake abandoned half way.
    for crt, key in ((None, None), (env.pki.rogue.crt, env.pki.rogue.key),
                     (env.pki.expired.crt, env.pki.expired.key),
                     (env.pki.revoked.crt, env.pki.revoked.key)):
        def refused_conn(crt=crt, key=key):
            with fristad_proto.Connection(env.daemon.host, env.daemon.port, crt, key,
                                          env.pki.ca, timeout=30) as x:
                x.request("whoami", timeout=30)
        attempt(refused_conn)
    with socket.create_connection((env.daemon.host, env.daemon.port), timeout=30) as s:
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        attempt(lambda: s.recv(100))
    with socket.create_connection((env.daemon.host, env.daemon.port), timeout=30) as s:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = ctx.wrap_bio(inc, out)
        attempt(obj.do_handshake)
        s.sendall(out.read())
        s.settimeout(30)
        attempt(lambda: s.recv(5))
    # A reload, with a connection open across it, and the old TLS context freed.
    with env.connect("social", "0180") as c:
        assert "configuration reloaded" in env.daemon.reload(timeout=60)
        assert c.call("whoami")["id"] == "0180"
    # Redis goes away and comes back: requests meanwhile are refused, then served again.
    env.redis.stop()
    r = frida("vacancy", "confirm", "frida-sthlm")
    assert r.error_code in ("unavailable", "outcome_unknown"), r.describe()
    social.ok("shelter", "list")  # answered from the index
    env.redis.start()
    wait_for(lambda: frida("vacancy", "confirm", "frida-sthlm").exit == 0, 60,
             "service after Redis came back", interval=0.5)
    # The sweep deletes the closed holds' references (retention 1 s).
    wait_for(lambda: social.ok("holds")["holds"] == [], 60,
             "the sweep to delete closed holds", interval=0.5)


def test_no_leaks_under_valgrind(under_valgrind):
    env = under_valgrind
    workload(env)
    # Some connections open at shutdown: idle, and with a request on its way.
    idle = env.connect("oncall", "jour-idle")
    assert idle.call("whoami")
    busy = env.connect(*ADMIN)
    busy.send("stats")
    env.daemon.proc.send_signal(signal.SIGTERM)
    try:
        rc = env.daemon.proc.wait(STOP_WAIT)
    except subprocess.TimeoutExpired:
        env.daemon.kill()
        pytest.fail(f"fristadd under valgrind did not exit within {STOP_WAIT} s of SIGTERM")
    idle.close()
    busy.close()
    report = env.valgrind_log.read_text(errors="replace")
    summary = re.search(r"ERROR SUMMARY: (\d+) errors", report)
    detail = tail(env.valgrind_log, 120)
    assert summary, "valgrind wrote no summary:\n" + detail
    definite = re.search(r"definitely lost: ([\d,]+) bytes", report)
    indirect = re.search(r"indirectly lost: ([\d,]+) bytes", report)
    assert not definite or definite.group(1) == "0", "definite leaks:\n" + detail
    assert not indirect or indirect.group(1) == "0", "indirect leaks:\n" + detail
    assert summary.group(1) == "0", "valgrind reports errors:\n" + detail
    assert rc == 0, f"fristadd under valgrind exited with {rc}:\n" + detail
    assert "stopped" in env.daemon.log_text()
