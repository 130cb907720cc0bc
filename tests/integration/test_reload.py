"""SIGHUP reloads configuration and certificates without dropping connections (a revoked
certificate excepted), refuses a broken configuration as a whole, and the TLS profile offers
only forward-secret AEAD suites, without compression or session resumption."""

import hashlib
import secrets
import shutil
import socket
import ssl
import subprocess
import threading

import msgpack
import pytest

from conftest import ADMIN, Cert, Cli, wait_for
import fristad_proto
from fristad_proto import ConnectionClosed
from security import served

REFUSED = (ConnectionClosed, ssl.SSLError, ConnectionResetError, BrokenPipeError, TimeoutError)


def codes(replies):
    return ["ok" if r["ok"] else r["error"]["code"] for r in replies]


def refused(env, cert):
    """True when a new connection with this certificate gets no answer."""
    try:
        with fristad_proto.Connection(env.daemon.host, env.daemon.port, cert.crt, cert.key,
                                      env.pki.ca, timeout=10) as c:
            c.request("whoami", timeout=10)
    except REFUSED:
        return True
    return False


def fingerprint(env, **kw):
    admin = env.cert(*ADMIN)
    with fristad_proto.Connection(env.daemon.host, env.daemon.port, admin.crt, admin.key,
                                  env.pki.ca, **kw) as c:
        der = c.sock.getpeercert(binary_form=True)
        assert c.call("whoami")["role"] == "admin"
    return hashlib.sha256(der).hexdigest()


def issue(pki, out_dir, name, subject="/O=Fristad/CN=localhost", eku="serverAuth",
          san="DNS:localhost, IP:127.0.0.1"):
    """A certificate from the deployment's CA (a server certificate unless told otherwise)."""
    key, csr, crt, ext = (out_dir / f"{name}.{x}" for x in ("key", "csr", "crt", "ext"))
    ext.write_text("basicConstraints = critical, CA:FALSE\n"
                   "keyUsage = critical, digitalSignature\n"
                   f"extendedKeyUsage = {eku}\n" +
                   (f"subjectAltName = {san}\n" if san else ""))
    run = lambda *a: subprocess.run(["openssl", *map(str, a)], check=True, capture_output=True,
                                    timeout=60)
    run("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", key, "-subj", subject, "-out", csr)
    run("x509", "-req", "-in", csr, "-CA", pki.ca, "-CAkey", pki.dir / "ca.key",
        "-set_serial", "0x" + secrets.token_hex(8), "-days", "30", "-extfile", ext,
        "-out", crt)
    return crt, key


def issue_server_cert(pki, out_dir, name):
    return issue(pki, out_dir, name)


@pytest.fixture
def own_server_cert(env_unstarted):
    """The daemon serves a copy of the server certificate that the test may replace."""
    env = env_unstarted
    crt, key = env.workdir / "server.crt", env.workdir / "server.key"
    shutil.copy(env.pki.server_crt, crt)
    shutil.copy(env.pki.server_key, key)
    env.daemon.update_config({"tls": {"cert": str(crt), "key": str(key)}})
    return env.start()


def test_open_connections_survive_reloads(env):
    env.add_shelter("frida-sthlm", "Kvinnojouren Frida")
    conns = [env.connect("social", "0180"), env.connect(*ADMIN),
             env.connect("shelter", "frida-sthlm", max_version=ssl.TLSVersion.TLSv1_2)]
    for c in conns:
        assert c.call("whoami")
    for i in range(3):
        # Requests in flight while the signal arrives are answered too.
        ids = [conns[1].send("shelter.list") for _ in range(20)]
        assert "configuration reloaded" in env.daemon.reload()
        for rid in ids:
            assert conns[1].recv_reply(rid)["ok"]
        for c in conns:
            assert c.call("whoami"), f"a connection stopped working after reload {i + 1}"
    assert conns[2].call("shelter.show", {"shelter": "frida-sthlm"})["shelter"]["phone"]


def test_revoked_certificate_loses_its_open_connection(env):
    victim = env.pki.get("oncall", "jour-revoked", name="reload-revoked-oncall")
    bystander = env.connect("oncall", "jour-ok")
    open_conn = env.connect(cert=victim)
    assert open_conn.call("whoami")["id"] == "jour-revoked"
    assert not refused(env, victim)
    env.pki.revoke(victim)
    # Until the reload the daemon has not read the new list.
    assert open_conn.call("whoami")["id"] == "jour-revoked"
    assert "configuration reloaded" in env.daemon.reload()
    try:
        open_conn.wait_closed(timeout=10)
    except TimeoutError:
        pytest.fail("the connection of a revoked certificate stayed open after the reload")
    assert "revoked" in env.daemon.log_text()
    assert refused(env, victim)
    assert env.cli(cert=victim)("whoami").exit == 3
    # Everyone else keeps their connection.
    assert bystander.call("whoami")["id"] == "jour-ok"
    assert served(env)["role"] == "admin"


def test_replaced_server_certificate_is_served_after_reload(own_server_cert):
    env = own_server_cert
    old = fingerprint(env)
    assert old == hashlib.sha256(ssl.PEM_cert_to_DER_cert(
        env.pki.server_crt.read_text())).hexdigest()
    kept = env.connect(*ADMIN)
    crt, key = issue_server_cert(env.pki, env.workdir, "server-new")
    new_der = ssl.PEM_cert_to_DER_cert(crt.read_text())
    shutil.copy(crt, env.workdir / "server.crt")
    shutil.copy(key, env.workdir / "server.key")
    # Not before the signal.
    assert fingerprint(env) == old
    assert "configuration reloaded" in env.daemon.reload()
    new = fingerprint(env)
    assert new == hashlib.sha256(new_der).hexdigest() and new != old
    assert fingerprint(env, max_version=ssl.TLSVersion.TLSv1_2) == new
    # The real client verifies the new certificate against the CA.
    assert env.admin.ok("whoami")["role"] == "admin"
    # The connection made under the old certificate goes on.
    assert kept.call("whoami")["role"] == "admin"

    # A certificate that does not match its key is refused, and the current pair stays.
    other_crt, _ = issue_server_cert(env.pki, env.workdir, "server-other")
    shutil.copy(other_crt, env.workdir / "server.crt")
    assert "reload failed" in env.daemon.reload()
    assert fingerprint(env) == new
    assert kept.call("whoami")["role"] == "admin"


@pytest.mark.daemon_config({"server": {"rate": 1000, "burst": 2000}})
def test_rate_takes_effect_on_reload(env):
    with env.connect("social", "0180") as c:
        assert codes(c.pipeline([("whoami", None)] * 30)).count("ok") == 30
        env.daemon.update_config({"server": {"rate": 2, "burst": 4}})
        assert "configuration reloaded" in env.daemon.reload()
        got = codes(c.pipeline([("whoami", None)] * 30))
        assert set(got) == {"ok", "rate_limited"} and got.count("ok") <= 8, got
        # New principals get the new limit too.
        with env.connect("social", "1480") as other:
            got = codes(other.pipeline([("whoami", None)] * 30))
            assert got.count("ok") <= 8, got
        env.daemon.update_config({"server": {"rate": 1000, "burst": 2000}})
        assert "configuration reloaded" in env.daemon.reload()
        wait_for(lambda: c.request("whoami")[0], 5, "the budget to refill")
        assert codes(c.pipeline([("whoami", None)] * 30)).count("ok") == 30


# Each turns the good configuration text into a broken one.
BROKEN = [
    ("syntax", lambda t: t + "\nthis is not ini\n[unclosed\n"),
    ("unknown key", lambda t: t + "\n[server]\nmax_conections = 9\n"),
    ("out of range", lambda t: t.replace("rate = 5", "rate = 0")),
    ("burst below rate", lambda t: t.replace("burst = 5", "burst = 1")),
    ("bad duration", lambda t: t.replace("[holds]", "[holds]\nsweep_interval = soon")),
    ("missing CA", lambda t: t.replace("ca.crt", "no-such-ca.crt")),
]


@pytest.mark.daemon_config({"server": {"rate": 5, "burst": 5}})
def test_broken_configuration_is_refused_as_a_whole(env):
    good = env.daemon.config_path.read_text()
    with env.connect("oncall", "jour-a") as c:
        for what, breaks in BROKEN:
            broken = breaks(good)
            assert broken != good, what
            env.daemon.config_path.write_text(broken)
            line = env.daemon.reload()
            assert "reload failed" in line, (what, line)
            # Still served, on the open connection and on new ones, with the old limits.
            ok, res = c.request("whoami", timeout=5)
            assert ok or res["code"] == "rate_limited", (what, res)
            assert served(env)["role"] == "admin"
        wait_for(lambda: c.request("whoami")[0], 5, "the budget to refill")
        got = codes(c.pipeline([("whoami", None)] * 20))
        assert got.count("ok") <= 7 and got.count("rate_limited") >= 13, got
    env.daemon.config_path.write_text(good)
    assert "configuration reloaded" in env.daemon.reload()


def test_settings_that_need_a_restart_keep_their_running_value(env):
    port = env.daemon.port
    env.daemon.update_config({"server": {"listen": "127.0.0.1:1"},
                              "redis": {"namespace": "elsewhere"}})
    line = env.daemon.reload()
    assert "configuration reloaded" in line, line
    log = env.daemon.log_text()
    assert "[server] listen changed" in log and "[redis] namespace changed" in log
    with env.connect(*ADMIN) as c:
        assert c.port == port and c.call("whoami")["role"] == "admin"
        assert c.call("shelter.add", {"shelter": "ny-jour", "name": "Ny", "kind": "other",
                                      "municipality": "0180", "protection": 1,
                                      "phone": "08-123 456 78"})
    # The running namespace is the one written to.
    assert env.admin.ok("shelter", "show", "ny-jour")["shelter"]["id"] == "ny-jour"


# -- the TLS profile -------------------------------------------------------------------------


def tls12_attempt(env, cipher):
    """Handshakes with TLS 1.2 offering only this cipher: the negotiated one, or None."""
    admin = env.cert(*ADMIN)
    # Made outside the try: a cipher this client cannot offer is an error of the test.
    ctx = fristad_proto.tls_context(admin.crt, admin.key, env.pki.ca,
                                    max_version=ssl.TLSVersion.TLSv1_2,
                                    ciphers=cipher + ":@SECLEVEL=0")
    try:
        with fristad_proto.Connection(env.daemon.host, env.daemon.port, context=ctx,
                                      timeout=10) as c:
            got = c.sock.cipher()[0]
            assert c.sock.compression() is None
            assert c.call("whoami")["role"] == "admin"
            return got
    except (ssl.SSLError, ConnectionClosed, ConnectionResetError):
        return None


def all_tls12_ciphers():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.set_ciphers("ALL:COMPLEMENTOFALL:@SECLEVEL=0")
    return sorted({c["name"] for c in ctx.get_ciphers() if c["protocol"] != "TLSv1.3"})


# Mozilla's "intermediate" TLS 1.2 list (research/reliability.md 1.8).
PROFILE = {"ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
           "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
           "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305"}


def forward_secret_aead(name):
    return name.startswith("ECDHE-") and ("-GCM-" in name or "CHACHA20-POLY1305" in name)


def test_tls12_offers_only_ecdhe_with_aead(env):
    accepted = {}
    for cipher in all_tls12_ciphers():
        got = tls12_attempt(env, cipher)
        if got:
            accepted[cipher] = got
    assert accepted, "no TLS 1.2 cipher was accepted at all"
    bad = [c for c in accepted if not forward_secret_aead(c)]
    assert not bad, f"TLS 1.2 accepts ciphers without forward secrecy or AEAD: {bad}"
    assert set(accepted) <= PROFILE, set(accepted) - PROFILE
    assert all(accepted[c] == c for c in accepted), accepted
    assert "ECDHE-ECDSA-AES128-GCM-SHA256" in accepted or \
        "ECDHE-RSA-AES128-GCM-SHA256" in accepted
    for weak in ("ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA384",
                 "ECDHE-ECDSA-AES128-SHA256", "AES128-GCM-SHA256", "AES256-SHA",
                 "AES128-SHA256", "DHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES128-CCM",
                 "ECDHE-ECDSA-CAMELLIA128-SHA256", "ECDHE-ECDSA-ARIA128-GCM-SHA256"):
        assert weak in all_tls12_ciphers(), f"this client cannot offer {weak}"
        assert tls12_attempt(env, weak) is None, weak
    assert served(env)["role"] == "admin"


def test_tls13_suites_no_compression_no_resumption(env):
    admin = env.cert(*ADMIN)
    with env.connect(*ADMIN) as c:
        assert c.tls_version == "TLSv1.3"
        assert c.sock.cipher()[0] in ("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
                                      "TLS_CHACHA20_POLY1305_SHA256")
        assert c.sock.compression() is None
        c.call("whoami")
    # A session is never resumed: resumption would skip the certificate and revocation
    # checks of the new connection.
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        ctx = fristad_proto.tls_context(admin.crt, admin.key, env.pki.ca, max_version=version)
        with fristad_proto.Connection(env.daemon.host, env.daemon.port, context=ctx) as first:
            first.call("whoami")
            session = first.sock.session
        raw = socket.create_connection((env.daemon.host, env.daemon.port), timeout=10)
        with ctx.wrap_socket(raw, server_hostname=env.daemon.host, session=session) as s:
            s.sendall(fristad_proto.frame(fristad_proto.request_body("whoami", None, 1)))
            s.settimeout(10)
            assert s.recv(4)
            assert not s.session_reused, f"a {version.name} session was resumed"


def test_client_initiated_renegotiation_is_refused(env):
    """What testssl.sh cannot check without a client certificate: a TLS 1.2 client that asks
    to renegotiate is refused (an attacker could otherwise make the server work per request)."""
    openssl = shutil.which("openssl")
    if not openssl:
        pytest.skip("openssl is not installed")
    admin = env.cert(*ADMIN)
    argv = [openssl, "s_client", "-tls1_2", "-connect", f"{env.daemon.host}:{env.daemon.port}",
            "-cert", str(admin.crt), "-key", str(admin.key), "-CAfile", str(env.pki.ca),
            "-verify_return_error"]
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    try:
        # "R" on a line of its own asks s_client to renegotiate.
        p.stdin.write(b"R\n")
        p.stdin.flush()
        out, _ = p.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
        pytest.fail("openssl s_client hung: " + out.decode(errors="replace")[-2000:])
    text = out.decode(errors="replace")
    assert "Verify return code: 0 (ok)" in text, text[-2000:]
    assert "RENEGOTIATING" in text, text[-2000:]
    assert p.returncode != 0 and "no renegotiation" in text, text[-2000:]
    assert served(env)["role"] == "admin"


def expired_crl(pki, workdir):
    """A CRL of the deployment's CA whose next update is long past (made from a copy of the
    CA's database, so the session's PKI is left as it is)."""
    ca_copy = workdir / "ca-copy"
    shutil.copytree(pki.dir, ca_copy)
    cnf = ca_copy / "openssl.cnf"
    cnf.write_text(cnf.read_text().replace(str(pki.dir.resolve()), str(ca_copy)))
    out = workdir / "expired-crl.pem"
    subprocess.run(["openssl", "ca", "-config", str(cnf), "-gencrl",
                    "-crl_lastupdate", "20200101000000Z", "-crl_nextupdate", "20200201000000Z",
                    "-out", str(out)], check=True, capture_output=True, timeout=60)
    return out


@pytest.mark.parametrize("which", ["another CA's", "expired"])
def test_unusable_revocation_list_is_refused_on_reload(env, which):
    """A revocation list that would refuse every client is a broken configuration: the reload
    must fail and the running list stay, not lock everyone out."""
    crl = env.pki.rogue_dir / "crl.pem" if which == "another CA's" else \
        expired_crl(env.pki, env.workdir)
    kept = env.connect("social", "0180")
    env.daemon.update_config({"tls": {"crl": str(crl)}})
    line = env.daemon.reload()
    try:
        after = served(env)
    except REFUSED as e:
        after = e
    assert "reload failed" in line and after == {"role": "admin", "id": "ops-anna"}, \
        f"{which} revocation list: the reload answered '{line}', and then a valid client " \
        f"got {after!r}"
    assert kept.call("whoami")["id"] == "0180"
    # The list still in force is the deployment's: a revoked certificate stays refused.
    assert refused(env, env.pki.revoked)


def test_certificate_not_for_client_authentication_is_refused(env):
    """A certificate of the deployment's CA that names a principal but was issued for servers
    only (extendedKeyUsage serverAuth) does not open a connection."""
    crt, key = issue(env.pki, env.workdir, "server-only-admin",
                     subject="/O=Fristad/OU=admin/CN=ops-mallory", eku="serverAuth", san=None)
    assert refused(env, Cert("server-only-admin", crt, key, env.pki.ca))
    # The same subject with clientAuth is let in: the purpose is what was refused.
    crt, key = issue(env.pki, env.workdir, "client-admin",
                     subject="/O=Fristad/OU=admin/CN=ops-mallory", eku="clientAuth", san=None)
    with env.connect(cert=Cert("client-admin", crt, key, env.pki.ca)) as c:
        assert c.call("whoami") == {"role": "admin", "id": "ops-mallory"}


class FakeServer(threading.Thread):
    """A TLS server on 127.0.0.1 with the given certificate that records what a client sends."""

    def __init__(self, crt, key):
        super().__init__(daemon=True)
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(str(crt), str(key))
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(20)
        self.port = self.sock.getsockname()[1]
        self.received = b""
        self.handshake_ok = False

    def run(self):
        try:
            raw, _ = self.sock.accept()
        except OSError:
            return
        with raw:
            try:
                with self.ctx.wrap_socket(raw, server_side=True) as s:
                    self.handshake_ok = True
                    s.settimeout(5)
                    self.received = s.recv(65536)
                    rid = msgpack.unpackb(self.received[4:], raw=False)["id"]
                    s.sendall(fristad_proto.frame(fristad_proto.packb(
                        {"id": rid, "ok": True, "result": {"role": "admin", "id": "fake"}})))
            except (OSError, ssl.SSLError, ValueError, KeyError):
                pass

    def close(self):
        self.sock.close()


def test_client_refuses_a_client_certificate_posing_as_the_server(env):
    """Anyone may hold a client certificate of the deployment's CA, and oncall and admin ids
    are free text: a certificate "/OU=oncall/CN=localhost" must not let its holder pose as the
    server to the real client."""
    admin = env.cert(*ADMIN)

    def talk(crt, key):
        fake = FakeServer(crt, key)
        fake.start()
        try:
            r = Cli(env, admin, server=f"localhost:{fake.port}")("whoami", timeout=30)
            fake.join(20)
        finally:
            fake.close()
        return r, fake

    # The fake server with the real server certificate is believed: the check below can fail.
    r, fake = talk(env.pki.server_crt, env.pki.server_key)
    assert r.exit == 0 and fake.received, r.describe()
    poser = env.pki.get("oncall", "localhost", name="poser-oncall-localhost")
    r, fake = talk(poser.crt, poser.key)
    assert r.exit == 3, "the client accepted a client certificate as the server's:\n" + \
        r.describe()
    assert fake.received == b"", "the client sent its request to an impostor"


def test_oncall_areas_follow_the_configuration_on_reload(env):
    """[oncall] says whom each on-call service acts for; SIGHUP applies a change to the
    connections already open, and an id taken out acts for none."""
    admin = env.connect(*ADMIN)
    for sid, mun in (("jour-0180", "0180"), ("jour-1480", "1480")):
        admin.call("shelter.add", {"shelter": sid, "name": f"Jour {mun}", "kind": "kvinnojour",
                                   "municipality": mun, "protection": 1,
                                   "phone": "08-123 456 78"})
        for u in ("a", "b"):
            admin.call("unit.add", {"shelter": sid, "unit": u, "beds": 2})
        with env.connect("shelter", sid) as sh:
            for u in ("a", "b"):
                sh.call("vacancy.set", {"shelter": sid, "unit": u, "state": "free"})
    env.daemon.update_config({"oncall": {"socialjour-reload": "0180"}})
    assert "configuration reloaded" in env.daemon.reload()
    oc = env.connect("oncall", "socialjour-reload")

    def hold(sid, unit, **extra):
        return oc.request("hold", {"home": sid[-4:], "risk": "low", "shelter": sid, "unit": unit,
                                   "ref": f"case-{sid}-{unit}", **extra})

    ok, h1 = hold("jour-0180", "a")
    assert ok, h1
    ok, res = hold("jour-1480", "a")
    assert not ok and res["code"] == "forbidden", res
    ok, res = hold("jour-1480", "a", municipality="0180")  # named for one of its own: fine
    assert ok and res["municipality"] == "0180", res
    oc.call("hold.release", {"hold": res["hold"]})

    env.daemon.update_config({"oncall": {"socialjour-reload": "14"}})
    assert "configuration reloaded" in env.daemon.reload()
    ok, h2 = hold("jour-1480", "b")
    assert ok, h2
    ok, res = hold("jour-0180", "b")
    assert not ok and res["code"] == "forbidden", res
    assert {h["hold"] for h in oc.call("holds.list")["holds"]} == {h2["hold"]}
    ok, res = oc.request("hold.release", {"hold": h1["hold"]})
    assert not ok and res["code"] == "forbidden", res

    env.daemon.update_config({"oncall": {"socialjour-reload": None}})
    assert "configuration reloaded" in env.daemon.reload()
    assert oc.call("holds.list")["holds"] == [] and oc.call("placements.list")["placements"] == []
    for sid in ("jour-0180", "jour-1480"):
        ok, res = hold(sid, "b")
        assert not ok and res["code"] == "forbidden", res
    ok, res = oc.request("hold.release", {"hold": h2["hold"]})
    assert not ok and res["code"] == "forbidden", res
    # Stockholm's own social services still release their hold.
    with env.connect("social", "0180") as so:
        assert so.call("hold.release", {"hold": h1["hold"]})["hold"]["state"] == "released"
