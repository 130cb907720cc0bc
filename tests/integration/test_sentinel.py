"""redis.mode = sentinel, apart from the failover under load (test_failover.py): a daemon
started while the Sentinels still name a primary that is down waits and comes up when the
failover completes; passwords come from files only the daemon may read, and a wrong one is
refused; acknowledged writes that the store has lost are logged and counted; the health port
says what a load balancer needs to know."""

import os
import re
import signal
import shutil
import socket
import socketserver
import subprocess
import threading
import time

import pytest

from conftest import ADMIN, FRISTADD, STOP_WAIT, wait_for, LOW_RISK
from sentinel_cluster import MASTER, Cluster, record, require_sentinel


@pytest.fixture
def cluster(env_unstarted):
    require_sentinel()
    c = Cluster(env_unstarted.workdir, down_after_ms=3000)
    try:
        c.start()
        yield c
    finally:
        c.stop()


def stats(env):
    return env.admin.ok("stats")["server"]


def stats_when_up(env):
    """The server's stats, or None while the store cannot answer (stats are read from it)."""
    r = env.admin("stats")
    if r.exit != 0:
        r.refused("unavailable")
        return None
    return r.json["server"]


def add_units(env, sid, n):
    env.add_shelter(sid, "Jour " + sid, municipality="0180")
    for i in range(n):
        env.add_unit(sid, f"u{i}", 2)
        env.cli("shelter", sid).ok("vacancy", sid, f"u{i}", "free")


def test_starts_while_the_named_primary_is_down(env_unstarted, cluster, capsys):
    """The Sentinels name a primary that has just died. The daemon keeps asking, does not
    become ready on a dead or demoted server, and comes up on the new primary once the
    failover is done; the Functions are there and writes work."""
    env = env_unstarted
    old = cluster.nodes[0]
    old.kill()
    assert cluster.named_primary() == old.port  # down-after is 3 s: not noticed yet
    env.daemon.update_config(cluster.daemon_config())
    env.daemon.spawn()
    wait_for(lambda: f"is 127.0.0.1:{old.port}" in env.daemon.log_text(), 10,
             "the daemon to hear the old primary from the Sentinels")
    assert env.daemon.ready_match() is None
    t0 = time.monotonic()
    env.daemon.wait_ready(timeout=60)
    waited = time.monotonic() - t0
    new_port = cluster.named_primary()
    assert new_port != old.port
    log = env.daemon.log_text()
    assert f"is now 127.0.0.1:{new_port}" in log, log[-3000:]
    assert f"connected to 127.0.0.1:{new_port}" in log
    with capsys.disabled():
        print(f"\nsentinel: the daemon came up {waited:.1f} s after it started, on the new "
              f"primary (port {new_port})")

    add_units(env, "frida-sthlm", 2)
    h = env.cli("social", "0180").ok("hold", "frida-sthlm", "u0", *LOW_RISK, "--ref", "KS-1")
    assert record(cluster, cluster.node_at(new_port), env.daemon.namespace, "hold",
                  h["hold"])["state"] == "held"
    s = stats(env)
    assert s["primary_switches"] == 1 and s["acked_missing"] == 0


def resp(items):
    """A RESP array of bulk strings."""
    out = [b"*%d\r\n" % len(items)]
    for it in items:
        b = it.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


class FakeSentinel:
    """A Sentinel that says what the test wants: it names `primary` (a port on 127.0.0.1) and
    can announce a +switch-master to every subscriber. Speaks just enough RESP for fristadd."""

    def __init__(self, primary):
        self.primary = primary
        self.epoch = 0
        self.questions = 0
        self.subscribers = []
        self.lock = threading.Lock()
        self.srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), self._handler())
        self.srv.daemon_threads = True
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def _handler(self):
        fake = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                while True:
                    line = self.rfile.readline()
                    if not line.startswith(b"*"):
                        return
                    args = []
                    for _ in range(int(line[1:])):
                        n = int(self.rfile.readline()[1:])
                        args.append(self.rfile.read(n + 2)[:-2].decode())
                    cmd = args[0].upper()
                    if cmd == "AUTH":
                        self.wfile.write(b"+OK\r\n")
                    elif cmd == "SENTINEL" and args[1] == "get-master-addr-by-name":
                        fake.questions += 1
                        self.wfile.write(resp(["127.0.0.1", str(fake.primary)]))
                    elif cmd == "SENTINEL" and args[1] == "master":
                        self.wfile.write(resp(["name", MASTER, "ip", "127.0.0.1", "port",
                                               str(fake.primary), "config-epoch",
                                               str(fake.epoch)]))
                    elif cmd == "SUBSCRIBE":
                        self.wfile.write(b"*3\r\n$9\r\nsubscribe\r\n$14\r\n+switch-master"
                                         b"\r\n:1\r\n")
                        with fake.lock:
                            fake.subscribers.append(self.wfile)
                    else:
                        self.wfile.write(b"-ERR unknown command\r\n")

        return Handler

    def switch(self, new_port):
        old, self.primary = self.primary, new_port
        self.epoch += 1
        text = f"{MASTER} 127.0.0.1 {old} 127.0.0.1 {new_port}".encode()
        msg = (b"*3\r\n$7\r\nmessage\r\n$14\r\n+switch-master\r\n$%d\r\n%s\r\n" %
               (len(text), text))
        with self.lock:
            for w in self.subscribers:
                try:
                    w.write(msg)
                    w.flush()
                except OSError:
                    pass

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def test_a_replica_is_never_used_as_the_primary(env_unstarted, cluster):
    """A Sentinel's answer is confirmed with ROLE: a Sentinel that names a replica (a stale one,
    say) does not make the daemon use it. A +switch-master to the real primary moves the daemon
    there at once, without waiting for its next question; an answer from an older configuration
    does not move it back."""
    env = env_unstarted
    fake = FakeSentinel(cluster.nodes[1].port)  # a replica
    try:
        cfg = cluster.daemon_config()
        cfg["redis"]["sentinels"] = f"127.0.0.1:{fake.port}"
        env.daemon.update_config(cfg)
        env.daemon.spawn()
        wait_for(lambda: "is not a primary (its role is slave)" in env.daemon.log_text(), 15,
                 "the daemon to refuse the replica")
        wait_for(lambda: fake.subscribers, 10, "the daemon to listen for +switch-master")
        assert env.daemon.ready_match() is None
        fake.switch(cluster.nodes[0].port)
        env.daemon.wait_ready(timeout=20)
        log = env.daemon.log_text()
        assert "+switch-master from" in log, log[-3000:]
        assert f"connected to 127.0.0.1:{cluster.nodes[0].port}" in log

        # A Sentinel that has not heard of the failover yet names the old server with an older
        # configuration epoch: the daemon does not go back.
        fake.primary, fake.epoch = cluster.nodes[1].port, 0
        asked = fake.questions
        wait_for(lambda: fake.questions >= asked + 3, 10, "the daemon to ask three more times")
        assert stats(env)["primary_switches"] == 1
        assert f"is now 127.0.0.1:{cluster.nodes[1].port}" not in env.daemon.log_text()
    finally:
        fake.close()


def test_sentinels_that_are_down_or_silent_do_not_matter(env_unstarted, cluster):
    """Every Sentinel is asked on a link of its own: one that refuses connections and one that
    accepts and never answers do not keep the daemon from the primary the others name."""
    env = env_unstarted
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # accepts (in the kernel) and never answers
    try:
        cfg = cluster.daemon_config()
        cfg["redis"]["sentinels"] = ",".join(
            [f"127.0.0.1:{closed.getsockname()[1]}", f"127.0.0.1:{silent.getsockname()[1]}"] +
            [f"127.0.0.1:{x.port}" for x in cluster.sentinels[:1]])
        env.daemon.update_config(cfg)
        t0 = time.monotonic()
        env.daemon.start()
        assert time.monotonic() - t0 < 10
        add_units(env, "frida-sthlm", 1)
    finally:
        closed.close()
        silent.close()


def test_wrong_passwords_are_refused(env_unstarted, cluster):
    env = env_unstarted
    bad = env.workdir / "bad.password"
    bad.write_text("not-the-password\n")
    bad.chmod(0o600)
    cfg = cluster.daemon_config()
    cfg["redis"]["sentinel_password_file"] = str(bad)
    env.daemon.update_config(cfg)
    env.daemon.spawn()
    wait_for(lambda: "refused the password" in env.daemon.log_text(), 15,
             "the Sentinel's refusal of the password to be logged")
    assert env.daemon.ready_match() is None
    env.daemon.stop()

    cfg = cluster.daemon_config()
    cfg["redis"]["password_file"] = str(bad)
    env.daemon.update_config(cfg)
    env.daemon.spawn()
    wait_for(lambda: "refused the password" in env.daemon.log_text(
        env.daemon._offset), 15, "the primary's refusal of the password to be logged")
    assert env.daemon.ready_match() is None


def test_connect_mode_with_a_password(env_unstarted, cluster):
    """The password file serves connect mode too: a Redis with requirepass, no Sentinels."""
    env = env_unstarted
    env.daemon.update_config({"redis": {
        "mode": "connect", "address": f"127.0.0.1:{cluster.nodes[0].port}",
        "password_file": str(cluster.redis_password_file), "wait_replicas": 1}})
    env.daemon.start()
    add_units(env, "frida-sthlm", 1)
    h = env.cli("social", "0180").ok("hold", "frida-sthlm", "u0", *LOW_RISK, "--ref", "KS-1")
    assert record(cluster, cluster.nodes[0], env.daemon.namespace, "hold",
                  h["hold"])["state"] == "held"


def test_password_file_must_be_private(env_unstarted, cluster):
    env = env_unstarted
    env.daemon.update_config(cluster.daemon_config())
    os.chmod(cluster.redis_password_file, 0o640)
    r = subprocess.run([str(FRISTADD), "--check", "-c", str(env.daemon.config_path)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert "readable by nobody else" in r.stderr, r.stderr
    os.chmod(cluster.redis_password_file, 0o600)
    r = subprocess.run([str(FRISTADD), "--check", "-c", str(env.daemon.config_path)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr


def test_lost_acknowledged_writes_are_counted(env):
    """A Redis that comes back without its data (here: its append-only file deleted while it
    was down) has lost writes the daemon acknowledged. After reconnecting, the daemon looks up
    what it acknowledged, logs every missing hold and placement, and counts them."""
    add_units(env, "frida-sthlm", 3)
    social, frida = env.cli("social", "0180"), env.cli("shelter", "frida-sthlm")
    h1 = social.ok("hold", "frida-sthlm", "u0", *LOW_RISK, "--ref", "KS-1")["hold"]
    h2 = social.ok("hold", "frida-sthlm", "u1", *LOW_RISK, "--ref", "KS-2")["hold"]
    pid = frida.ok("confirm", h2)["placement"]["placement"]
    assert stats(env)["acked_missing"] == 0

    env.redis.stop(kill=True)
    shutil.rmtree(env.redis.dir / "appendonlydir")
    env.redis.start()
    wait_for(lambda: (stats_when_up(env) or {}).get("acked_checked", 0) >= 3, 20,
             "the daemon to look up what it acknowledged")
    s = stats(env)
    assert s["acked_missing"] == 3, s  # h1, h2 and the placement
    log = env.daemon.log_text()
    for rid in (h1, h2, pid):
        assert f"{rid} was acknowledged by this daemon" in log
    # Reported once: another reconnect does not count them again.
    env.redis.restart()
    wait_for(lambda: stats_when_up(env), 20, "the store to be back")
    assert stats(env)["acked_missing"] == 3


def health(port):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        data = b""
        while True:
            chunk = s.recv(100)
            if not chunk:
                return data.decode()
            data += chunk


@pytest.mark.daemon_config({"server": {"health_listen": "127.0.0.1:0"}})
def test_health_port(env):
    m = wait_for(lambda: re.search(r"health checks on 127\.0\.0\.1:(\d+)",
                                   env.daemon.log_text()), 5, "the health port")
    port = int(m.group(1))
    assert health(port) == "ready store=up\n"
    env.redis.stop()
    wait_for(lambda: health(port) == "ready store=down\n", 10, "the health port to see it")
    env.redis.start()
    wait_for(lambda: health(port) == "ready store=up\n", 20, "the store to be back")
    # SIGTERM: a load balancer must stop sending new connections while requests finish. A
    # request waits on a Redis that does not answer (stopped), so the daemon keeps draining.
    conn = env.connect(*ADMIN)
    env.redis.proc.send_signal(signal.SIGSTOP)
    try:
        rid = conn.send("stats")
        conn.call("whoami")  # answered from memory, after `stats` has gone to the store
        env.daemon.proc.send_signal(signal.SIGTERM)
        wait_for(lambda: health(port) == "stopping\n", 5, "the health port to say stopping")
    finally:
        env.redis.proc.send_signal(signal.SIGCONT)
    conn.recv_reply(rid)
    env.daemon.proc.wait(STOP_WAIT)
