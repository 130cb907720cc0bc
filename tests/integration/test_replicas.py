"""wait_replicas: with replicas configured, a write is acknowledged only once a replica has
it; when no replica confirms in time the client hears outcome_unknown (the write did happen on
the primary), a retry with the same idempotency key returns the same hold, and a refusal is
still a refusal."""

import socket
import subprocess
import time

import pytest

from conftest import REDIS_SERVER, redis_ping, wait_for, LOW_RISK


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


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


def test_writes_wait_for_a_replica(replicated):
    env, replica = replicated
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
