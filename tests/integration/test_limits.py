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


@pytest.mark.daemon_config({"server": {"max_connections_per_person": 2}})
def test_connections_per_person(env):
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
    # The first two are untouched, and other principals are not limited by them, nor is
    # another person of the same municipality.
    assert a.call("whoami") and b.call("whoami")
    with env.connect("social", "1480") as other:
        assert other.call("whoami")
    with env.connect(cert=env.pki.get("social", "0180", "SE2321000016-0002")) as colleague:
        assert colleague.call("whoami")["id"] == "0180"
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


INSIDERS = {"server": {"max_connections": 24, "max_connections_per_person": 4,
                       "role_reserve_percent": 17, "idle_connections_per_person": 2,
                       "extra_idle_timeout": "300s", "idle_timeout": "300s"}}


def hold_open(env, cert, n):
    """Opens up to n connections with this certificate; returns those the daemon kept."""
    kept = []
    for _ in range(n):
        c = env.connect(cert=cert)
        ok = False
        try:
            ok, _ = c.request("whoami", timeout=10)
        except (ConnectionClosed, OSError):
            pass
        if ok:
            kept.append(c)
        else:
            c.close()
    return kept


@pytest.mark.daemon_config(INSIDERS)
def test_insiders_cannot_exhaust_the_connection_table(env):
    """Issue 11 item 6. One holder of social:0180 opening connection after connection locked
    out all of Stockholm; eight certificates of one role holding idle connections locked
    everyone out. Now a person holds a few, a role at most what leaves the others their
    reserve (17 % of 24: 4 each), and a person's idle connections beyond the first two close
    after extra_idle_timeout (long while the table fills, so that nothing closes by itself
    meanwhile; short after a reload)."""
    anna = env.pki.get("social", "0180", "SE2321000016-A001")
    mine = hold_open(env, anna, 10)
    assert len(mine) == 4, len(mine)
    # Another person of Stockholm's social services is served.
    bo = env.pki.get("social", "0180", "SE2321000016-B002")
    with env.connect(cert=bo) as c:
        assert c.call("whoami")["id"] == "0180"

    # Seven more people of the social role hold all they may: the role stops at 24 - 3 * 4.
    crowd = list(mine)
    for i in range(7):
        crowd += hold_open(env, env.pki.get("social", f"{1480 + i}" if i < 2 else "0180",
                                            f"SE2321000016-C{i:03d}"), 4)
    assert len(crowd) == 24 - 3 * 4, len(crowd)
    # Every other role still gets in, up to its reserve, all at once: the table is full.
    others = []
    for who in (("shelter", "frida-sthlm"), ("oncall", "jour-a"), ADMIN):
        for k in range(4):
            c = env.connect(cert=env.pki.get(who[0], who[1], f"SE2321000016-{who[0]}{k}"))
            assert c.call("whoami")["role"] == who[0], (who, k)
            others.append(c)

    # The connections a person holds beyond two, left idle, go after extra_idle_timeout; the
    # first two stay (idle_timeout is 300 s).
    env.daemon.update_config({"server": {"extra_idle_timeout": "1s"}})
    assert "configuration reloaded" in env.daemon.reload()
    for c in mine[2:]:
        try:
            c.wait_closed(timeout=10)
        except TimeoutError:
            pytest.fail("a person's extra idle connection was kept past extra_idle_timeout")
    assert all(c.call("whoami") for c in mine[:2] + others)
    # Room again for Stockholm.
    with env.connect(cert=env.pki.get("social", "0180", "SE2321000016-D004")) as c:
        assert c.call("whoami")["id"] == "0180"
    for c in crowd + others:
        c.close()
