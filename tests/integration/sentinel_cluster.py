"""A Redis primary with replicas and three Sentinels on loopback, with passwords, for the tests
of redis.mode = sentinel; and fristadd instances configured to find the primary through them.

Every server listens on 127.0.0.1 only, on a free port, with its files in the test's directory;
every wait is bounded; `Cluster.stop()` stops every process it started.

Environment:
  REDIS_SENTINEL   the redis-sentinel binary (default: found on PATH; Debian package
                   redis-sentinel)
"""

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import REDIS_SERVER, tail, wait_for, free_port
from security import RedisRaw, RespError

REDIS_SENTINEL = os.environ.get("REDIS_SENTINEL") or shutil.which("redis-sentinel") or \
    "redis-sentinel"
MASTER = "fristad-primary"
REDIS_PASSWORD = "redis-secret-4e7a"
SENTINEL_PASSWORD = "sentinel-secret-91c2"
SETTLE_WAIT = 60.0  # seconds for replicas to sync and Sentinels to find each other


def require_sentinel():
    if not (Path(REDIS_SENTINEL).exists() or shutil.which(REDIS_SENTINEL)):
        pytest.fail(f"redis-sentinel not found ({REDIS_SENTINEL}): install the Debian package "
                    "redis-sentinel (scripts/install-deps --test)")


class RedisTcp(RedisRaw):
    """RedisRaw over TCP, authenticated when a password is given."""

    def __init__(self, port, password=None, timeout=5.0):  # noqa: super().__init__ not wanted
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        if password:
            self("AUTH", password)


def ask(port, *args, password=None, timeout=2.0):
    """One command to 127.0.0.1:port; None when the server cannot be reached."""
    try:
        with RedisTcp(port, password, timeout) as r:
            return r(*args)
    except (OSError, ConnectionError, RespError):
        return None


def answers(port, timeout=1.0):
    """True when something on 127.0.0.1:port answers PING in RESP (even with NOAUTH)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"*1\r\n$4\r\nPING\r\n")
            data = s.recv(64)
            return data[:1] in (b"+", b"-")
    except OSError:
        return False


def as_text(v):
    return v.decode() if isinstance(v, bytes) else v


def pairs(flat):
    return {as_text(k): as_text(v) for k, v in zip(flat[::2], flat[1::2])}


class Server:
    """One redis-server or redis-sentinel process with its own config file and log."""

    def __init__(self, workdir, name, binary, lines):
        self.name = name
        self.binary = binary
        self.dir = Path(workdir) / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.conf = self.dir / ("sentinel.conf" if "sentinel" in name else "redis.conf")
        self.log = self.dir / "server.log"
        base = [f"port {self.port}", "bind 127.0.0.1", f'dir "{self.dir}"',
                f'logfile "{self.log}"', "daemonize no"]
        self.conf.write_text("\n".join(base + lines) + "\n")
        self.proc = None

    def start(self):
        assert not self.running, f"{self.name} already runs"
        self.proc = subprocess.Popen([self.binary, str(self.conf)], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

        def up():
            if self.proc.poll() is not None:
                pytest.fail(f"{self.name} exited with {self.proc.returncode}:\n{tail(self.log)}")
            return answers(self.port)

        wait_for(up, 20, f"{self.name} to answer on port {self.port}")
        return self

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        """kill -9."""
        if self.running:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGCONT)
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


class Cluster:
    """A primary, `replicas` replicas and `sentinels` Sentinels monitoring them as MASTER.

    Redis nodes: AOF, requirepass and masterauth, min-replicas-to-write 1 (the README's
    advice). Sentinels: requirepass, auth-pass for the nodes, quorum 2 and a short
    down-after-milliseconds so that a failover takes seconds."""

    def __init__(self, workdir, replicas=2, sentinels=3, down_after_ms=1000):
        self.workdir = Path(workdir)
        self.down_after_ms = down_after_ms
        node = ["save \"\"", "appendonly yes", "appendfsync everysec",
                f"requirepass {REDIS_PASSWORD}", f"masterauth {REDIS_PASSWORD}",
                "min-replicas-to-write 1", "min-replicas-max-lag 5",
                "repl-diskless-sync-delay 0", "repl-ping-replica-period 1"]
        self.nodes = [Server(workdir, "redis-0", REDIS_SERVER, node)]
        primary_port = self.nodes[0].port
        for i in range(1, replicas + 1):
            self.nodes.append(Server(workdir, f"redis-{i}", REDIS_SERVER,
                                     node + [f"replicaof 127.0.0.1 {primary_port}"]))
        self.sentinels = [
            Server(workdir, f"sentinel-{i}", REDIS_SENTINEL,
                   [f"sentinel monitor {MASTER} 127.0.0.1 {primary_port} 2",
                    f"sentinel down-after-milliseconds {MASTER} {down_after_ms}",
                    f"sentinel failover-timeout {MASTER} 10000",
                    f"sentinel parallel-syncs {MASTER} 2",
                    f"sentinel auth-pass {MASTER} {REDIS_PASSWORD}",
                    f"requirepass {SENTINEL_PASSWORD}"])
            for i in range(sentinels)]
        self.redis_password_file = self._secret("redis.password", REDIS_PASSWORD)
        self.sentinel_password_file = self._secret("sentinel.password", SENTINEL_PASSWORD)

    def _secret(self, name, value):
        p = self.workdir / name
        p.write_text(value + "\n")
        p.chmod(0o600)
        return p

    # -- asking the servers ---------------------------------------------------------------

    def node_at(self, port):
        return next((n for n in self.nodes if n.port == port), None)

    def redis(self, node, *args):
        return ask(node.port, *args, password=REDIS_PASSWORD)

    def role(self, node):
        r = self.redis(node, "ROLE")
        return as_text(r[0]) if r else None

    def replication(self, node):
        text = self.redis(node, "INFO", "replication")
        if not text:
            return {}
        return dict(ln.split(":", 1) for ln in as_text(text).splitlines() if ":" in ln)

    def sentinel_names(self, sentinel):
        """The port this Sentinel names as the primary, or None."""
        if not sentinel.running:
            return None
        r = ask(sentinel.port, "SENTINEL", "get-master-addr-by-name", MASTER,
                password=SENTINEL_PASSWORD, timeout=0.5)
        return int(r[1]) if r else None

    def named_primary(self):
        """The port the first Sentinel that answers names as the primary, or None."""
        for s in self.sentinels:
            port = self.sentinel_names(s)
            if port:
                return port
        return None

    def settled(self):
        """True when the primary has every live replica online and every running Sentinel
        sees the primary, the replicas and the other Sentinels."""
        primary = self.node_at(self.named_primary() or -1)
        if primary is None or self.role(primary) != "master":
            return False
        live = [n for n in self.nodes if n.running and n is not primary]
        info = self.replication(primary)
        online = sum(1 for k, v in info.items() if k.startswith("slave") and "state=online" in v)
        if online < len(live):
            return False
        running = [s for s in self.sentinels if s.running]
        for s in running:
            m = ask(s.port, "SENTINEL", "master", MASTER, password=SENTINEL_PASSWORD)
            if not m:
                return False
            m = pairs(m)
            if (int(m.get("num-slaves", 0)) < len(live) or
                    int(m.get("num-other-sentinels", 0)) < len(running) - 1 or
                    m.get("flags") != "master"):
                return False
            reps = ask(s.port, "SENTINEL", "replicas", MASTER, password=SENTINEL_PASSWORD) or []
            up = [r for r in map(pairs, reps) if r.get("flags") == "slave" and
                  r.get("master-link-status") == "ok"]
            if len(up) < len(live):
                return False
        return True

    def wait_settled(self, timeout=SETTLE_WAIT):
        wait_for(self.settled, timeout, "the replicas to sync and the Sentinels to see them all",
                 interval=0.2, detail=self.describe)

    def describe(self):
        lines = []
        for n in self.nodes:
            info = self.replication(n)
            lines.append(f"{n.name} port {n.port} running={n.running} role={info.get('role')} "
                         f"master_port={info.get('master_port')} "
                         f"link={info.get('master_link_status')}")
        lines.append("Sentinels name ports " +
                     str([self.sentinel_names(s) for s in self.sentinels]))
        for s in self.sentinels:
            lines.append(f"---- {s.name} log ----\n{tail(s.log, 20)}")
        for n in self.nodes:
            lines.append(f"---- {n.name} log ----\n{tail(n.log, 12)}")
        return "\n".join(lines)

    # -- life cycle -----------------------------------------------------------------------

    def start(self):
        self.nodes[0].start()
        for n in self.nodes[1:]:
            n.start()
        for s in self.sentinels:
            s.start()
        self.wait_settled()
        return self

    def stop(self):
        for p in self.sentinels + self.nodes:
            p.stop()

    def daemon_config(self, wait_replicas=1):
        """The [redis] keys of a fristadd that finds the primary through these Sentinels."""
        return {"redis": {
            "mode": "sentinel",
            "address": None,
            "sentinels": ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels),
            "master_name": MASTER,
            "password_file": str(self.redis_password_file),
            "sentinel_password_file": str(self.sentinel_password_file),
            "wait_replicas": wait_replicas,
            "wait_timeout": "2s",
        }}


def store_keys(cluster, node, namespace, pattern):
    """Keys of one namespace on one node (SCAN)."""
    prefix = "{%s}:" % namespace
    with RedisTcp(node.port, REDIS_PASSWORD) as r:
        return [k.decode() for k in r.keys(prefix + pattern)]


def record(cluster, node, namespace, kind, rid):
    """The hash of hold:<id> or pl:<id> on one node, as a dict of text ({} when missing)."""
    with RedisTcp(node.port, REDIS_PASSWORD) as r:
        return pairs(r("HGETALL", "{%s}:%s:%s" % (namespace, kind, rid)))


def wait_gone(proc, timeout=10):
    t0 = time.monotonic()
    while proc.poll() is None and time.monotonic() - t0 < timeout:
        time.sleep(0.05)
