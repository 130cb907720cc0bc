"""The wall clock steps (an NTP correction, a restored VM) while the daemon runs. Deadlines, rate
limits, the Redis watchdog and the shutdown drain run on the monotonic clock, so a step of ten
minutes either way changes nothing of them; only the data ages that are shown follow it.

The daemon runs under Debian's libfaketime with FAKETIME_DONT_FAKE_MONOTONIC, and the test moves
the wall clock by rewriting the offset in FAKETIME_TIMESTAMP_FILE, which libfaketime reads on
every call (FAKETIME_NO_CACHE). Redis runs on the real clock, as it would on another machine."""

import glob
import signal
import time

import pytest

from referrals import redis_command

LIBFAKETIME = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))

pytestmark = pytest.mark.skipif(not LIBFAKETIME, reason="libfaketime is not installed")


@pytest.fixture
def clock(env_unstarted):
    """(env, step): step("+10m") sets the daemon's wall clock ten minutes ahead of the real one."""
    env = env_unstarted
    offset = env.workdir / "faketime"
    offset.write_text("+0\n")
    env.daemon.wrapper = [
        "env", f"LD_PRELOAD={LIBFAKETIME[0]}", f"FAKETIME_TIMESTAMP_FILE={offset}",
        "FAKETIME_NO_CACHE=1", "FAKETIME_DONT_FAKE_MONOTONIC=1",
        # Under AddressSanitizer the preloaded library stands before the ASan runtime.
        "ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:verify_asan_link_order=0",
    ]
    env.start()

    def step(to):
        offset.write_text(to + "\n")

    return env, step


def codes(replies):
    return ["ok" if r["ok"] else r["error"]["code"] for r in replies]


@pytest.mark.daemon_config({"server": {"rate": 5, "burst": 5}})
def test_rate_limit_survives_a_step_back(clock):
    """Ten minutes back: a principal within its rate is still served (a bucket on the wall
    clock would refill only when the clock had caught up again, ten minutes later)."""
    env, step = clock
    with env.connect("social", "0180") as c:
        step("+10m")
        assert c.call("whoami")["id"] == "0180"
        step("+0")  # ten minutes back
        got = []
        deadline = time.monotonic() + 4.0
        while time.monotonic() < deadline:  # 4 requests a second against a rate of 5
            got.append(c.request("whoami")[0])
            time.sleep(0.25)
        assert len(got) >= 12 and all(got), got


@pytest.mark.daemon_config({"server": {"rate": 5, "burst": 5}})
def test_rate_limit_holds_across_a_step_forward(clock):
    """Ten minutes ahead gives no one ten minutes of requests at once: the burst stays the
    burst."""
    env, step = clock
    with env.connect("social", "0180") as c:
        assert c.call("whoami")
        step("+10m")
        got = codes(c.pipeline([("whoami", None)] * 20))
        assert got.count("rate_limited") >= 10, got


def test_redis_watchdog_ignores_a_step(clock):
    """A request waits for a Redis that is busy for two seconds (CLIENT PAUSE) while the wall
    clock jumps ten minutes ahead. The watchdog (5 s) measures the wait, not the jump: the link
    is kept and the request is answered."""
    env, step = clock
    env.add_shelter("frida-sthlm", "Kvinnojouren Frida", municipality="0180")
    env.add_unit("frida-sthlm", "r1", 2)
    before = env.admin.ok("stats")["server"]["store_reconnects"]
    with env.connect("shelter", "frida-sthlm") as c:
        assert redis_command(env.redis.sock, "CLIENT", "PAUSE", 2000, "ALL") == "+OK"
        rid = c.send("vacancy.set", {"shelter": "frida-sthlm", "unit": "r1", "state": "free"})
        time.sleep(0.3)  # the request reaches the store before the jump
        step("+10m")
        time.sleep(1.2)  # the watchdog ticks every second
        reply = c.recv_reply(rid, timeout=10)
        assert reply["ok"], reply
    assert env.admin.ok("stats")["server"]["store_reconnects"] == before
    assert "has not answered in time" not in env.daemon.log_text()


@pytest.mark.daemon_config({"server": {"idle_timeout": "3s", "frame_timeout": "2s"}})
def test_timeouts_ignore_a_step(clock):
    """Idle and frame deadlines: a jump ahead closes nothing early, a jump back keeps nothing
    open longer."""
    env, step = clock
    idle = env.connect("social", "0180")
    assert idle.call("whoami")
    half = env.connect("social", "1480")
    assert half.call("whoami")
    half.send_raw(b"\x00\x00\x00\x10")  # a frame that is started and never finished
    step("+10m")
    time.sleep(1.0)
    assert idle.is_open(), "a jump ahead closed an idle connection early"
    step("-10m")
    half.wait_closed(timeout=5)  # the frame deadline still ends it
    started = time.monotonic()
    idle.wait_closed(timeout=10)
    assert time.monotonic() - started < 6, "a jump back kept an idle connection open"


def test_drain_waits_for_the_store_across_a_step(clock):
    """SIGTERM with a write waiting for Redis, then a jump ahead: the drain still gives the
    write its time (a drain deadline on the wall clock would already have passed)."""
    env, step = clock
    env.add_shelter("frida-sthlm", "Kvinnojouren Frida", municipality="0180")
    env.add_unit("frida-sthlm", "r1", 2)
    with env.connect("shelter", "frida-sthlm") as c:
        assert redis_command(env.redis.sock, "CLIENT", "PAUSE", 1500, "ALL") == "+OK"
        rid = c.send("vacancy.set", {"shelter": "frida-sthlm", "unit": "r1", "state": "free"})
        time.sleep(0.2)
        env.daemon.proc.send_signal(signal.SIGTERM)
        step("+10m")
        reply = c.recv_reply(rid, timeout=10)
        assert reply["ok"], reply
    assert env.daemon.proc.wait(15) == 0
