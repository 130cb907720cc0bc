"""The client settles a dropped write by itself: a hold whose connection breaks after it was
sent (here the daemon is killed while the hold waits at Redis, then started again) is sent
again, the very same request with the same idempotency key, until an answer comes, and the
person sees the one hold there is. The same with outcome_unknown is in test_replicas.py."""

import signal
import subprocess
import time

import pytest

from conftest import CLI_WAIT, CliResult, wait_for, LOW_RISK, free_port


def test_client_settles_a_dropped_hold(env_unstarted):
    env = env_unstarted
    # A fixed port, so that the daemon started again is where the client retries.
    # Debug logs each authenticated connection: how the test knows the client is in.
    env.daemon.update_config({"server": {"listen": f"127.0.0.1:{free_port()}"},
                              "log": {"level": "debug"}})
    env.start()
    env.add_shelter("frida-sthlm", "Kvinnojouren Frida", municipality="0180")
    env.add_unit("frida-sthlm", "r1", 2)
    env.cli("shelter", "frida-sthlm").ok("vacancy", "frida-sthlm", "r1", "free")
    social = env.cli("social", "0180")

    env.redis.proc.send_signal(signal.SIGSTOP)  # the hold waits at Redis
    argv = social.argv("hold", "frida-sthlm", "r1", *LOW_RISK, "--ref", "KS-55")
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL, env=env.cli_environ())
    try:
        wait_for(lambda: "social:0180: authenticated" in env.daemon.log_text(), 10,
                 "the client to connect")
        env.daemon.kill()  # the connection breaks after the request went out
    finally:
        env.redis.proc.send_signal(signal.SIGCONT)
    assert proc.poll() is None, "the client gave up instead of sending the hold again"
    env.daemon.start()
    try:
        out, err = proc.communicate(timeout=CLI_WAIT)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("the client did not finish after the daemon came back")
    res = CliResult(argv, subprocess.CompletedProcess(argv, proc.returncode, out, err),
                    time.monotonic() - t0)
    held = res.ok()
    holds = social.ok("holds")["holds"]
    assert [h["hold"] for h in holds] == [held["hold"]], res.describe()
    assert env.admin.ok("stats")["holds"]["made"] == 1
