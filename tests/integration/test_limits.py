"""The limits of PROTOCOL.md section 7, each with a small configured value so it is reached
quickly: requests per second, connections per principal, connections in all, idle time."""

import socket
import time

import pytest

from conftest import ADMIN, wait_for
from fristad_proto import ConnectionClosed


def codes(replies):
    return ["ok" if r["ok"] else r["error"]["code"] for r in replies]


@pytest.mark.daemon_config({"server": {"rate": 5, "burst": 5}})
def test_rate_limit_per_principal(env):
    with env.connect("social", "0180") as c:
        got = codes(c.pipeline([("whoami", None)] * 25))
        assert set(got) <= {"ok", "rate_limited"}, got
        assert 1 <= got.count("ok") <= 12, got
        assert got.count("rate_limited") >= 10, got
        # Another principal has its own budget.
        with env.connect("social", "1480") as other:
            assert other.call("whoami")["id"] == "1480"
        # The connection is kept, and the budget refills.
        wait_for(lambda: c.request("whoami")[0], 10, "the rate limit to let requests through")
    # The limit is per principal, not per connection: a second connection of the same
    # principal shares the budget.
    with env.connect("oncall", "jour-a") as a, env.connect("oncall", "jour-a") as b:
        got = codes(a.pipeline([("whoami", None)] * 15)) + \
            codes(b.pipeline([("whoami", None)] * 15))
        assert got.count("rate_limited") >= 15, got


@pytest.mark.daemon_config({"server": {"max_connections_per_principal": 2}})
def test_connections_per_principal(env):
    a = env.connect("social", "0180")
    b = env.connect("social", "0180")
    assert a.call("whoami") and b.call("whoami")
    third = env.connect("social", "0180")
    try:
        third.send("whoami")
    except ConnectionClosed:
        pass
    got = third.wait_closed(timeout=10)
    # One refusal that says why, then the close; the request is never served.
    assert codes(got) == ["rate_limited"], got
    # The first two are untouched, and other principals are not limited by them.
    assert a.call("whoami") and b.call("whoami")
    with env.connect("social", "1480") as other:
        assert other.call("whoami")
    # Closing one makes room again.
    a.close()

    def room():
        c = env.connect("social", "0180")
        ok = c.is_open(timeout=5)
        c.close()
        return ok

    wait_for(room, 10, "a freed slot for the principal", interval=0.2)


@pytest.mark.daemon_config({"server": {"max_connections": 4}})
def test_max_connections_drops_the_oldest_handshake(env):
    raw = []
    for _ in range(2):
        s = socket.create_connection((env.daemon.host, env.daemon.port), timeout=10)
        raw.append(s)
    tls = [env.connect("social", "0180"), env.connect(*ADMIN)]
    for c in tls:
        assert c.call("whoami")
    # Full: a new connection makes the daemon drop the oldest one still in its handshake.
    fifth = env.connect("oncall", "jour-b")
    assert fifth.call("whoami")["id"] == "jour-b"
    raw[0].settimeout(10)
    try:
        assert raw[0].recv(1) == b"", "the oldest handshaking connection was not dropped"
    except ConnectionResetError:
        pass
    sixth = env.connect("oncall", "jour-c")
    assert sixth.call("whoami")["id"] == "jour-c"
    # Now nothing is in its handshake: the next connection is the one closed.
    try:
        seventh = env.connect("oncall", "jour-d")
        with pytest.raises((ConnectionClosed, TimeoutError)):
            seventh.request("whoami", timeout=10)
    except (ConnectionClosed, ConnectionResetError, OSError):
        pass
    for c in tls + [fifth, sixth]:
        assert c.call("whoami"), "an established connection was dropped"
    for s in raw:
        s.close()


@pytest.mark.daemon_config({"server": {"idle_timeout": "1s"}})
def test_idle_connection_is_closed(env):
    t0 = time.monotonic()
    with env.connect(*ADMIN) as c:
        assert c.call("whoami")
        c.wait_closed(timeout=10)
    assert time.monotonic() - t0 < 10
    # A busy connection is not idle.
    with env.connect(*ADMIN) as c:
        end = time.monotonic() + 2.5
        while time.monotonic() < end:
            assert c.call("whoami")["role"] == "admin"
            time.sleep(0.3)
