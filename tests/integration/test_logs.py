"""The daemon's log under journald and at its default level: a "<N>" priority on every line
and no time of its own when stderr is the journal's stream, nothing per connection at the
default level, and the spawned redis-server's log in the daemon's own."""

import os
import re

from conftest import REDIS_SERVER

JOURNAL_LINE = re.compile(r"^<([0-7])>(error|warning|notice|info|debug): ")
PRIORITY = {"error": 3, "warning": 4, "notice": 5, "info": 6, "debug": 7}
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d|\d\d? \w{3} \d{4} \d\d:\d\d:\d\d")


def as_journal_stream(env):
    """Makes the daemon's stderr (its log file) the stream JOURNAL_STREAM names, as systemd does
    for a service whose output goes to the journal."""
    env.daemon.log.touch()
    st = os.stat(env.daemon.log)
    env.daemon.extra_env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"


def test_journal_priorities_and_one_timestamp(env_unstarted):
    env = env_unstarted
    as_journal_stream(env)
    env.daemon.update_config({"redis": {"mode": "spawn", "address": None,
                                        "server": REDIS_SERVER}})
    env.daemon.start()
    env.admin.ok("whoami")
    # A warning: a key that needs a restart, changed and reloaded.
    env.daemon.update_config({"redis": {"namespace": "elsewhere"}})
    assert "configuration reloaded" in env.daemon.reload()
    lines = env.daemon.log_text().splitlines()
    assert lines
    for line in lines:
        m = JOURNAL_LINE.match(line)
        assert m, f"no journal priority: {line!r}"
        assert int(m.group(1)) == PRIORITY[m.group(2)], line
        assert not TIMESTAMP.search(line), f"a time of its own: {line!r}"
    assert any(ln.startswith("<5>notice: ready: listening on") for ln in lines), lines
    assert any(ln.startswith("<4>warning: [redis] namespace changed") for ln in lines), lines
    # The spawned redis-server's lines are in this log, at their own levels, without Redis's
    # own time, and no redis.log grows in the data directory.
    redis_lines = [ln for ln in lines if "redis-server: " in ln]
    assert any("ready to accept connections" in ln.lower() for ln in redis_lines), redis_lines
    assert any(ln.startswith("<5>notice: redis-server: Redis version=") for ln in redis_lines)
    assert not (env.daemon.data_dir / "redis.log").exists()


def test_nothing_per_connection_at_the_default_level(env):
    env.add_shelter("frida-sthlm", "Kvinnojouren Frida", municipality="0180")
    offset = env.daemon.log_size()
    social = env.cli("social", "0180")
    for _ in range(5):
        social.ok("free")
    social("shelter", "retire", "frida-sthlm").refused("forbidden")
    env.cli(cert=env.pki.revoked)("whoami")
    with env.connect("oncall", "jour-1") as c:
        c.call("whoami")
    env.admin.ok("whoami")  # the last request: every one before it has been handled
    text = env.daemon.log_text(offset)
    assert text == "", f"lines about single connections or requests:\n{text}"


def test_debug_level_tells_about_connections(env):
    env.daemon.update_config({"log": {"level": "debug"}})
    assert "configuration reloaded" in env.daemon.reload()
    offset = env.daemon.log_size()
    env.cli("social", "0180")("shelter", "retire", "nowhere").refused("forbidden")
    env.admin.ok("whoami")
    text = env.daemon.log_text(offset)
    assert re.search(r"conn \d+ social:0180: authenticated from", text), text
    assert "refused 'shelter.retire': forbidden" in text, text
