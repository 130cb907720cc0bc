"""Failover on Redis Sentinel under load, the full run (-Dlong_tests=true): 30 s of load, the
primary killed with SIGKILL after 10 s. failover_load.py says what is measured and checked."""

from failover_load import run_failover


def test_failover_under_load_full(env_unstarted, capsys):
    run_failover(env_unstarted, seconds=30, kill_at=10, capsys=capsys)
