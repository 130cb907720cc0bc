"""wait_replicas: with replicas configured, a write is acknowledged only once a replica has
it; when no replica confirms in time the client hears outcome_unknown (the write did happen on
the primary), a retry with the same idempotency key returns the same hold, and a refusal is
still a refusal. The client settles an unknown outcome by itself: it sends the very same hold
again until a replica confirms it, and the person sees one hold."""

import socket
import subprocess
import time

import pytest

from conftest import CLI_WAIT, REDIS_SERVER, CliResult, redis_ping, wait_for, LOW_RISK, free_port


def start_redis(workdir, name, port, replicaof=None):
    d = workdir / name
    d.mkdir()
    args = [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(d),
            "--save", "", "--appendonly", "yes", "--appendfsync", "always",
            "--unixsocket", str(d / "r.sock"), "--logfile", str(d / "redis.log")]
    if replicaof:
        args += ["--replicaof", "127.0.0.1", str(replicaof)]
    p = subprocess.Popen(args, stdin=subprocess.DEVNULL)
    wait_for(lambda: redis_ping(str(d / "r.sock")), 10, f"{name} to answer")
    return p, d


def replicas_online(sock):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock)
    s.sendall(b"*2\r\n$4\r\nINFO\r\n$11\r\nreplication\r\n")
    data = b""
    while b"connected_slaves" not in data or not data.endswith(b"\r\n"):
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    return b"connected_slaves:1" in data and b"state=online" in data


@pytest.fixture
def replicated(env_unstarted):
    env = env_unstarted
    primary_port = free_port()
    primary, pdir = start_redis(env.workdir, "primary", primary_port)
    replica, _ = start_redis(env.workdir, "replica", free_port(), replicaof=primary_port)
    try:
        wait_for(lambda: replicas_online(str(pdir / "r.sock")), 20, "the replica to sync")
        env.daemon.update_config({"redis": {"mode": "connect",
                                            "address": f"127.0.0.1:{primary_port}",
                                            "wait_replicas": 1, "wait_timeout": "300ms"}})
        env.daemon.start()
        yield env, replica
    finally:
        for p in (replica, primary):
            try:
                p.send_signal(18)  # a stopped process must run to see SIGTERM
                p.terminate()
                p.wait(10)
            except Exception:
                p.kill()


def client_retries_for(env, duration):
    """Sets the client's [client] retry_for for this test (the harness's XDG config)."""
    conf = env.workdir / "xdg" / "fristad" / "client.conf"
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text(f"[client]\nretry_for = {duration}\n")


def daemon_errors(env, code):
    return env.admin.ok("stats")["server"]["errors"].get(code, 0)


def daemon_requests(env, op):
    return env.admin.ok("stats")["server"]["requests"].get(op, 0)


def test_writes_wait_for_a_replica(replicated):
    env, replica = replicated
    client_retries_for(env, "1s")  # the client's own retries are the next test's
    env.add_shelter("frida-sthlm", "Kvinnojouren Frida", municipality="0180")
    env.add_unit("frida-sthlm", "r1", 2)
    env.add_unit("frida-sthlm", "r2", 2)
    frida = env.cli("shelter", "frida-sthlm")
    frida.ok("vacancy", "frida-sthlm", "r1", "free")
    frida.ok("vacancy", "frida-sthlm", "r2", "free")
    social = env.cli("social", "0180")

    replica.send_signal(19)  # SIGSTOP: the replica stops acknowledging
    try:
        r = social("hold", "frida-sthlm", "r1", *LOW_RISK, "--ref", "KS-9", "--idempotency-key", "key-0001")
        r.refused("outcome_unknown")
        # The write did reach the primary: the unit is held, and a refusal stays a refusal.
        social("hold", "frida-sthlm", "r1", *LOW_RISK, "--ref", "KS-10").refused("conflict")
    finally:
        replica.send_signal(18)  # SIGCONT

    # With the replica back, the retry with the same key returns the one hold there is.
    def retried():
        r = social("hold", "frida-sthlm", "r1", *LOW_RISK, "--ref", "KS-9", "--idempotency-key", "key-0001")
        return r.json if r.exit == 0 else None
    first = wait_for(retried, 20, "the retry to be confirmed by the replica")
    holds = social.ok("holds")["holds"]
    assert [h["hold"] for h in holds] == [first["hold"]]
    assert holds[0]["unit"] == "r1" and holds[0]["state"] == "held"


def test_redis_error_during_a_replicated_write(replicated):
    """A Redis error reply to a write that waits for a replica (here: the function library was
    deleted behind the daemon's back) is answered `unavailable`, the daemon loads the library
    again, and the next write succeeds."""
    from referrals import redis_command
    env, _ = replicated
    env.add_shelter("frida-sthlm", "Kvinnojouren Frida", municipality="0180")
    primary_sock = env.workdir / "primary" / "r.sock"
    assert redis_command(primary_sock, "FUNCTION", "DELETE", "fristad") == "+OK"
    env.admin("unit", "add", "frida-sthlm", "r1", "--beds", 2).refused("unavailable")
    wait_for(lambda: env.admin("unit", "add", "frida-sthlm", "r1", "--beds", 2).exit == 0, 15,
             "the function library to be loaded again")
    assert [u["id"] for u in env.show("frida-sthlm")["units"]] == ["r1"]


def test_script_error_during_a_replicated_write(replicated):
    """A write whose function fails inside Redis (here: the audit stream's key was overwritten
    with a string behind the daemon's back) is answered `internal` and the daemon goes on."""
    from referrals import redis_command
    env, _ = replicated
    env.add_shelter("frida-sthlm", "Kvinnojouren Frida", municipality="0180")
    primary_sock = env.workdir / "primary" / "r.sock"
    audit = f"{{{env.daemon.namespace}}}:audit"
    assert redis_command(primary_sock, "DEL", audit).startswith(":")
    assert redis_command(primary_sock, "SET", audit, "not-a-stream") == "+OK"
    env.admin("unit", "add", "frida-sthlm", "r1", "--beds", 2).refused("internal")
    assert redis_command(primary_sock, "DEL", audit) == ":1"
    env.add_unit("frida-sthlm", "r2", 2)
    assert env.admin.ok("whoami")["role"] == "admin"


def test_client_settles_an_unknown_outcome(replicated):
    """A hold without --idempotency-key, while the replica does not acknowledge: the daemon
    answers outcome_unknown, the client sends the same hold again (with the key it made up)
    until the replica is back, and prints the one hold there is."""
    env, replica = replicated
    env.add_shelter("frida-sthlm", "Kvinnojouren Frida", municipality="0180")
    env.add_unit("frida-sthlm", "r1", 2)
    env.cli("shelter", "frida-sthlm").ok("vacancy", "frida-sthlm", "r1", "free")
    social = env.cli("social", "0180")
    holds_before = daemon_requests(env, "hold")

    replica.send_signal(19)  # SIGSTOP
    argv = social.argv("hold", "frida-sthlm", "r1", *LOW_RISK, "--ref", "KS-77")
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL, env=env.cli_environ())
    try:
        # The first answers are outcome_unknown: the hold is on the primary only.
        wait_for(lambda: daemon_errors(env, "outcome_unknown") >= 2 or proc.poll() is not None,
                 15, "the daemon to answer outcome_unknown twice")
        assert proc.poll() is None, "the client gave up instead of asking again"
    finally:
        replica.send_signal(18)  # SIGCONT
    try:
        out, err = proc.communicate(timeout=CLI_WAIT)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("the client did not finish after the replica came back")
    res = CliResult(argv, subprocess.CompletedProcess(argv, proc.returncode, out, err),
                    time.monotonic() - t0)
    held = res.ok()
    attempts = daemon_requests(env, "hold") - holds_before
    assert attempts >= 3, f"the client sent the hold {attempts} times:\n{res.describe()}"
    # One hold: every repeat carried the same idempotency key.
    holds = social.ok("holds")["holds"]
    assert [h["hold"] for h in holds] == [held["hold"]]
    assert holds[0]["state"] == "held"


def test_client_reports_an_outcome_it_could_not_settle(replicated):
    """When the replica stays away for longer than the client's retry time, the client says
    once that the outcome is unknown, and how to repeat the hold safely."""
    env, replica = replicated
    client_retries_for(env, "1500ms")
    env.add_shelter("frida-sthlm", "Kvinnojouren Frida", municipality="0180")
    env.add_unit("frida-sthlm", "r1", 2)
    env.cli("shelter", "frida-sthlm").ok("vacancy", "frida-sthlm", "r1", "free")
    social = env.cli("social", "0180")
    replica.send_signal(19)
    try:
        err = social("hold", "frida-sthlm", "r1", *LOW_RISK, "--ref", "KS-78").refused("outcome_unknown")
        attempts = daemon_requests(env, "hold")
    finally:
        replica.send_signal(18)
    assert attempts >= 2, err
    key = err["message"].split("--idempotency-key ", 1)[1].split(":", 1)[0]
    assert key.isalpha() and len(key) == 20, err["message"]
    # Repeating it with that key gives the hold that was made, not a second one.
    wait_for(lambda: social("hold", "frida-sthlm", "r1", *LOW_RISK, "--ref", "KS-78",
                            "--idempotency-key", key).exit == 0,
             20, "the repeat with the key to be confirmed")
    assert len(social.ok("holds")["holds"]) == 1
