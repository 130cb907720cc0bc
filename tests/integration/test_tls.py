"""Transport: only TLS 1.2+ with a valid client certificate from the deployment's CA gets a
connection; everything else is refused, and the daemon goes on serving."""

import socket
import ssl
import time

import pytest

import fristad_proto
from conftest import Cert, Cli, wait_for

REFUSED = (fristad_proto.ConnectionClosed, ssl.SSLError, ConnectionResetError,
           BrokenPipeError)


def assert_refused(env, cert=None, key=None, **kw):
    """Connects and sends whoami; the server must refuse: at the handshake or, with TLS 1.3,
    on the first read. A reply or a hang is a failure."""
    conn = None
    try:
        conn = fristad_proto.Connection(env.daemon.host, env.daemon.port, cert, key,
                                        env.pki.ca, timeout=10, **kw)
    except REFUSED as e:
        return str(e)
    try:
        ok, res = conn.request("whoami", timeout=10)
    except REFUSED as e:
        return str(e)
    except TimeoutError:
        pytest.fail("the server neither answered nor closed the connection")
    finally:
        conn.close()
    pytest.fail(f"the server answered a refused client: ok={ok} {res}")


def assert_serves(env):
    with env.connect("admin", "ops-anna") as c:
        assert c.call("whoami") == {"role": "admin", "id": "ops-anna"}
    assert env.admin.ok("whoami")["role"] == "admin"


def test_valid_client_tls13_and_tls12(env):
    with env.connect("social", "0180") as c:
        assert c.tls_version == "TLSv1.3"
        assert c.call("whoami") == {"role": "social", "id": "0180"}
    with env.connect("social", "0180", max_version=ssl.TLSVersion.TLSv1_2) as c:
        assert c.tls_version == "TLSv1.2"
        assert c.call("whoami") == {"role": "social", "id": "0180"}


def test_no_client_certificate(env):
    assert_refused(env)
    assert_refused(env, max_version=ssl.TLSVersion.TLSv1_2)
    assert_serves(env)


def test_certificate_from_another_ca(env):
    rogue = env.pki.rogue
    assert_refused(env, rogue.crt, rogue.key)
    assert_refused(env, rogue.crt, rogue.key, max_version=ssl.TLSVersion.TLSv1_2)
    assert env.cli(cert=rogue)("whoami").exit == 3
    assert_serves(env)


def test_expired_certificate(env):
    exp = env.pki.expired
    assert_refused(env, exp.crt, exp.key)
    assert env.cli(cert=exp)("whoami").exit == 3
    assert_serves(env)


def test_revoked_certificate(env):
    rev = env.pki.revoked
    assert_refused(env, rev.crt, rev.key)
    assert env.cli(cert=rev)("whoami").exit == 3
    assert_serves(env)


def test_tls11_refused(env):
    cert = env.cert("admin", "ops-anna")
    try:
        fristad_proto.tls_context(cert.crt, cert.key, env.pki.ca,
                                  min_version=ssl.TLSVersion.TLSv1,
                                  max_version=ssl.TLSVersion.TLSv1_1,
                                  ciphers="DEFAULT:@SECLEVEL=0")
    except ssl.SSLError as e:
        pytest.skip(f"this Python/OpenSSL cannot offer TLS 1.1 at all: {e}")
    why = assert_refused(env, cert.crt, cert.key, min_version=ssl.TLSVersion.TLSv1,
                         max_version=ssl.TLSVersion.TLSv1_1, ciphers="DEFAULT:@SECLEVEL=0")
    # Refused by the server, not by our own side failing to offer anything.
    assert "NO_PROTOCOLS_AVAILABLE" not in why.upper(), why
    assert_serves(env)


def raw_tcp_until_closed(env, data, timeout=15):
    """Sends plain bytes; returns what came back before the server closed."""
    got = b""
    with socket.create_connection((env.daemon.host, env.daemon.port), timeout=timeout) as s:
        s.sendall(data)
        deadline = time.monotonic() + timeout
        while True:
            s.settimeout(max(deadline - time.monotonic(), 0.01))
            try:
                chunk = s.recv(4096)
            except ConnectionResetError:
                return got
            except socket.timeout:
                pytest.fail("the server kept a plaintext connection open")
            if not chunk:
                return got
            got += chunk


@pytest.mark.parametrize("payload", [
    fristad_proto.frame(fristad_proto.request_body("whoami", None, 1)),
    b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
    b"*1\r\n$4\r\nPING\r\n",
    bytes(range(256)),
], ids=["plain-frame", "http", "redis", "bytes"])
def test_plaintext_is_closed(env, payload):
    got = raw_tcp_until_closed(env, payload)
    # Nothing but possibly a TLS alert record (content type 21) comes back; never a reply.
    assert got == b"" or got[0] == 0x15, got[:32].hex()
    assert_serves(env)


@pytest.mark.daemon_config({"server": {"handshake_timeout": "1s"}})
def test_silent_connection_is_dropped_at_handshake_timeout(env):
    t0 = time.monotonic()
    with socket.create_connection((env.daemon.host, env.daemon.port), timeout=15) as s:
        s.settimeout(15)
        try:
            data = s.recv(4096)
        except ConnectionResetError:
            data = b""
        except socket.timeout:
            pytest.fail("a connection that never starts TLS was kept open")
    assert data == b"" or data[0] == 0x15
    assert time.monotonic() - t0 < 10
    assert_serves(env)


def test_client_checks_the_server(env):
    admin = env.cert("admin", "ops-anna")
    # The client must refuse a server whose certificate is not from the CA it was given.
    r = Cli(env, Cert("x", admin.crt, admin.key, env.pki.rogue_dir / "ca.crt"))("whoami")
    assert r.exit == 3, r.describe()
    # Our own client does the same: the server's name is checked too.
    with pytest.raises(ssl.SSLCertVerificationError):
        fristad_proto.Connection(env.daemon.host, env.daemon.port, admin.crt, admin.key,
                                 env.pki.ca, server_hostname="not-this-server.example")


def test_crl_reload_on_sighup(env):
    cert = env.pki.get("social", "2580", name="later-revoked-2580")
    with env.connect(cert=cert) as c:
        assert c.call("whoami") == {"role": "social", "id": "2580"}
    env.pki.revoke(cert)
    line = env.daemon.reload()
    assert "configuration reloaded" in line, line
    assert_refused(env, cert.crt, cert.key)
    assert env.cli(cert=cert)("whoami").exit == 3
    assert_serves(env)


def test_failed_reload_keeps_serving(env):
    good = dict(env.daemon.config["tls"])
    env.daemon.update_config({"tls": {"cert": str(env.workdir / "missing.crt")}})
    line = env.daemon.reload()
    assert "reload failed" in line, line
    # The old certificates stay in force.
    assert_serves(env)
    assert_refused(env, env.pki.rogue.crt, env.pki.rogue.key)
    env.daemon.update_config({"tls": good})
    assert "configuration reloaded" in env.daemon.reload()
    assert_serves(env)


# -- certificates end, CAs leave and roll over (issue 11, items 1 and 2) ----------------------


def utc_in(seconds):
    return time.strftime("%Y%m%d%H%M%SZ", time.gmtime(time.time() + seconds))


def still_served(conn):
    """True while the connection answers; False once the server has closed it."""
    try:
        ok, res = conn.request("whoami", timeout=5)
        return ok or res["code"] == "rate_limited"
    except REFUSED:
        return False


def test_connection_is_closed_when_its_certificate_expires(env):
    """A certificate whose notAfter passes must not keep working on a connection opened
    before; the attacker kept one alive with a request every few minutes."""
    lifetime = 6
    not_after = time.time() + lifetime
    cert = env.pki.get("admin", "ops-short", name=f"short-lived-{int(not_after)}",
                       not_after=utc_in(lifetime))
    busy = env.connect(cert=cert)
    quiet = env.connect(cert=cert)
    assert busy.call("whoami")["id"] == "ops-short" and quiet.call("whoami")
    bystander = env.connect("admin", "ops-anna")

    # Busy: a request every half second, up to and past the end of the validity.
    def closed():
        return None if still_served(busy) else time.time()

    closed_at = wait_for(closed, lifetime + 10, "the busy connection to be closed at notAfter",
                         interval=0.5)
    # Certificate times are whole seconds; the daemon closes at the second itself.
    assert closed_at >= int(not_after) - 1, f"closed {int(not_after) - closed_at:.1f} s early"
    assert closed_at <= not_after + 3, f"closed {closed_at - not_after:.1f} s after notAfter"
    # Quiet: it sent nothing since; it is gone too.
    try:
        quiet.wait_closed(timeout=5)
    except TimeoutError:
        pytest.fail("an idle connection outlived its certificate")
    assert "certificate has expired" in env.daemon.log_text()
    assert_refused(env, cert.crt, cert.key)
    assert bystander.call("whoami")["id"] == "ops-anna"


def concat(path, *sources):
    path.write_text("".join(p.read_text() for p in sources))
    return path


@pytest.fixture
def two_cas(env_unstarted):
    """The daemon trusts two CAs of the same name (the deployment's and a second one, as in a
    rollover): the CA file holds the second first, and the CRL file both lists."""
    env = env_unstarted
    pki = env.pki
    ca = concat(env.workdir / "cas.pem", pki.rogue_dir / "ca.crt", pki.ca)
    crl = concat(env.workdir / "crls.pem", pki.rogue_dir / "crl.pem", pki.crl)
    env.daemon.update_config({"tls": {"ca": str(ca), "crl": str(crl)}})
    env.ca_file, env.crl_file = ca, crl
    return env


def test_ca_rollover_with_the_same_name_starts_and_serves_both(two_cas):
    """With old and new CA of one name and both CRLs, start and reload used to refuse: each
    CRL was checked against the first CA of that name only."""
    env = two_cas
    env.start()
    old = env.pki.rogue  # issued by the second CA: social:0180
    with env.connect(cert=old) as c:
        assert c.call("whoami") == {"role": "social", "id": "0180"}
    assert_serves(env)
    # Both lists are in force: the deployment CA's revoked certificate stays out ...
    assert_refused(env, env.pki.revoked.crt, env.pki.revoked.key)
    # ... and a revocation by the second CA takes effect on reload, open connection included.
    victim = env.pki._issue(env.pki.rogue_dir, ["oncall", "jour-old", "--out", "rogue-oncall"],
                            "rogue-oncall")
    kept = env.connect(cert=victim)
    assert kept.call("whoami")["id"] == "jour-old"
    env.pki._tool("revoke", env.pki.rogue_dir, "rogue-oncall")
    concat(env.crl_file, env.pki.rogue_dir / "crl.pem", env.pki.crl)
    assert "configuration reloaded" in env.daemon.reload()
    try:
        kept.wait_closed(timeout=10)
    except TimeoutError:
        pytest.fail("a connection revoked by the second CA stayed open")
    assert_refused(env, victim.crt, victim.key)
    with env.connect(cert=old) as c:
        assert c.call("whoami")["id"] == "0180"


def test_connections_of_a_removed_ca_are_closed_on_reload(two_cas):
    env = two_cas
    env.start()
    old = env.connect(cert=env.pki.rogue)
    assert old.call("whoami")["id"] == "0180"
    bystander = env.connect("social", "0180")
    # The second CA leaves the CA file (and its list the CRL file).
    env.ca_file.write_text(env.pki.ca.read_text())
    env.crl_file.write_text(env.pki.crl.read_text())
    assert "configuration reloaded" in env.daemon.reload()
    try:
        old.wait_closed(timeout=10)
    except TimeoutError:
        pytest.fail("a connection authenticated by a CA removed from tls.ca kept working "
                    "after the reload")
    assert "no longer verifies" in env.daemon.log_text()
    assert_refused(env, env.pki.rogue.crt, env.pki.rogue.key)
    assert bystander.call("whoami")["id"] == "0180"
    assert_serves(env)
