"""Failover on Redis Sentinel under load, the short run of the default test suite: 12 s of
load, the primary killed with SIGKILL after 4 s. failover_load.py says what is measured and
checked; test_failover_long.py is the full run."""

from failover_load import run_failover


def test_failover_under_load(env_unstarted, capsys):
    run_failover(env_unstarted, seconds=12, kill_at=4, capsys=capsys)
