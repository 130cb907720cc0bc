"""Transport: only TLS 1.2+ with a valid client certificate from the deployment's CA gets a
connection; everything else is refused, and the daemon goes on serving."""

import socket
import ssl
import time

import pytest

import fristad_proto
from conftest import Cert, Cli

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
