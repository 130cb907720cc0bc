"""Times across the night the clocks go back, with the client in TZ=Europe/Stockholm: JSON shows
ISO 8601 local time with its offset, tables show the zone, and --since without an offset is read
in the same local time, refusing a time that happens twice or never.

Redis stamps audit entries with its own clock. Two entries of the last autumn night (the most
recent one before today, so that audit retention keeps them) are written into the trail as Redis
would have: one twenty seconds before the clocks went back from 03:00 CEST to 02:00 CET, one
three seconds after."""

import datetime
import json
import re
import subprocess
import zoneinfo

import pytest

from referrals import redis_command

STOCKHOLM = "Europe/Stockholm"
UTC = datetime.timezone.utc


def last_autumn_change():
    """The last moment, before now, when Stockholm's clocks went back (UTC)."""
    zone = zoneinfo.ZoneInfo(STOCKHOLM)
    year = datetime.datetime.now(UTC).year
    for y in (year, year - 1):
        t = datetime.datetime(y, 10, 31, 1, 0, tzinfo=UTC)
        while t.weekday() != 6:  # the last Sunday of October, 01:00 UTC
            t -= datetime.timedelta(days=1)
        before, after = (t - datetime.timedelta(seconds=1)).astimezone(zone), t.astimezone(zone)
        assert before.utcoffset() == datetime.timedelta(hours=2), before
        assert after.utcoffset() == datetime.timedelta(hours=1), after
        if t < datetime.datetime.now(UTC) - datetime.timedelta(minutes=1):
            return t
    pytest.fail("no autumn change found")


def in_stockholm(env, cli, *args, json_out=True):
    argv = cli.argv(*args)
    if not json_out:
        del argv[1]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30,
                          env={**env.cli_environ(), "TZ": STOCKHOLM})


@pytest.fixture
def autumn_night(env):
    """The two entries, written before any other: a stream takes IDs in order."""
    change = last_autumn_change()
    ms = int(change.timestamp() * 1000)
    key = "{" + env.daemon.namespace + "}:audit"
    for at, op in ((ms - 20000, "vacancy.confirm"), (ms + 3000, "intake.pause")):
        reply = redis_command(env.redis.sock, "XADD", key, f"{at}-0", "principal",
                              "shelter:frida-sthlm", "op", op, "result", "ok", "shelter",
                              "frida-sthlm")
        assert reply.startswith("$"), reply
    return env, change


def test_json_and_tables_across_the_change(autumn_night):
    env, change = autumn_night
    day = change.date().isoformat()
    r = in_stockholm(env, env.admin, "audit")
    assert r.returncode == 0, r
    entries = json.loads(r.stdout)["entries"]
    assert [e["op"] for e in entries] == ["intake.pause", "vacancy.confirm"]  # newest first
    # The later one reads earlier on the wall clock; the offset tells them apart.
    assert entries[0]["at"] == f"{day}T02:00:03.000+01:00", entries
    assert entries[1]["at"] == f"{day}T02:59:40.000+02:00", entries
    table = in_stockholm(env, env.admin, "audit", json_out=False).stdout
    assert f"{day} 02:00:03 CET " in table and f"{day} 02:59:40 CEST " in table, table
    assert table.index("02:00:03 CET") < table.index("02:59:40 CEST"), table


def test_since_in_local_time_across_the_change(autumn_night):
    env, change = autumn_night
    day = change.date().isoformat()
    before = (change - datetime.timedelta(days=1)).date().isoformat()

    def ops(since):
        r = in_stockholm(env, env.admin, "audit", "--since", since)
        assert r.returncode == 0, r
        return [e["op"] for e in json.loads(r.stdout)["entries"]]

    assert ops(day) == ["intake.pause", "vacancy.confirm"]  # local midnight
    assert ops(f"{day}T02:59:40+02:00") == ["intake.pause", "vacancy.confirm"]
    assert ops(f"{day}T02:59:41+02:00") == ["intake.pause"]
    assert ops(f"{day}T02:00:03+01:00") == ["intake.pause"]
    assert ops(f"{day}T02:00:04+01:00") == []
    assert ops(f"{day}T01:59") == ["intake.pause", "vacancy.confirm"]  # CEST: 23:59 UTC before
    assert ops(f"{day}T03:00") == []  # CET: 02:00 UTC, after both
    assert ops(f"{before}T23:00Z") == ["intake.pause", "vacancy.confirm"]
    # 02:30 happened twice that night; the client will not guess which.
    r = in_stockholm(env, env.admin, "audit", "--since", f"{day}T02:30")
    assert r.returncode == 2, r
    err = json.loads(r.stdout)["error"]
    assert err["code"] == "usage", err
    assert "--since" in err["message"] and f"{day}T02:30+02:00" in err["message"] and \
        f"{day}T02:30+01:00" in err["message"], err


def test_since_refuses_a_time_the_clocks_skip(env):
    year = datetime.datetime.now(UTC).year
    spring = datetime.date(year, 3, 31)
    while spring.weekday() != 6:  # the last Sunday of March: 02:00 CET becomes 03:00 CEST
        spring -= datetime.timedelta(days=1)
    r = in_stockholm(env, env.admin, "audit", "--since", f"{spring}T02:30")
    assert r.returncode == 2, r
    err = json.loads(r.stdout)["error"]
    assert err["code"] == "usage" and "does not exist in local time" in err["message"], err
    # The same time in UTC, or an hour later in local time, is fine.
    assert in_stockholm(env, env.admin, "audit", "--since", f"{spring}T02:30Z").returncode == 0
    assert in_stockholm(env, env.admin, "audit", "--since", f"{spring}T03:30").returncode == 0


def test_json_times_carry_the_offset_of_their_day(env):
    env.add_shelter("frida-sthlm", "Kvinnojouren Frida", municipality="0180")
    r = in_stockholm(env, env.admin, "shelter", "show", "frida-sthlm")
    shelter = json.loads(r.stdout)["shelter"]
    at = datetime.datetime.fromisoformat(shelter["updated_at"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d",
                        shelter["updated_at"]), shelter
    assert at.utcoffset() == at.astimezone(zoneinfo.ZoneInfo(STOCKHOLM)).utcoffset()
    assert abs(at.timestamp() - datetime.datetime.now(UTC).timestamp()) < 600
