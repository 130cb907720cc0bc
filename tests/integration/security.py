"""Helpers shared by the security tests: a raw Redis client for looking at what the daemon
stored, keyspace snapshots of one namespace, Swedish personal identity numbers with a valid
check digit, and small waits on sockets."""

import socket
import ssl
import time

import pytest

import fristad_proto
from referrals import luhn_digit

# -- Redis, spoken directly -----------------------------------------------------------------


class RespError(Exception):
    pass


class RedisRaw:
    """A minimal RESP2 client over the test's unix socket: enough to read every key."""

    def __init__(self, sock_path, timeout=10.0):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(str(sock_path))
        self.buf = b""

    def close(self):
        self.s.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.s.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def _reply(self):
        line = self._line()
        t, rest = line[:1], line[1:]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            raise RespError(rest.decode(errors="replace"))
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise RespError(f"unexpected RESP type {line[:20]!r}")

    def __call__(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            if not isinstance(a, bytes):
                a = str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.s.sendall(b"".join(out))
        return self._reply()

    def keys(self, pattern):
        cursor, found = b"0", set()
        while True:
            cursor, batch = self("SCAN", cursor, "MATCH", pattern, "COUNT", 1000)
            found.update(batch)
            if cursor == b"0":
                return sorted(found)

    def value(self, key):
        """(type, content) of one key, in a form that compares equal when nothing changed."""
        t = self("TYPE", key)
        if t == "string":
            v = self("GET", key)
        elif t == "hash":
            flat = self("HGETALL", key)
            v = sorted(zip(flat[::2], flat[1::2]))
        elif t == "set":
            v = sorted(self("SMEMBERS", key))
        elif t == "zset":
            flat = self("ZRANGE", key, 0, -1, "WITHSCORES")
            v = sorted(zip(flat[::2], flat[1::2]))
        elif t == "list":
            v = self("LRANGE", key, 0, -1)
        elif t == "stream":
            v = [(eid, tuple(fields)) for eid, fields in self("XRANGE", key, "-", "+")]
        elif t == "none":
            v = None
        else:
            v = self("DUMP", key)
        # A key with a time to live stays "the same" while the clock runs; only whether it
        # has one is compared.
        ttl = self("PTTL", key)
        return (t, v, ttl >= 0)


def ns_prefix(env):
    return "{%s}:" % env.daemon.namespace


def redis(env):
    return RedisRaw(env.redis.sock)


# Counters the daemon adds to on its own time: the follow-up's, which the searches of a test
# reach at the next sweep (fu:MONTH, fu:MONTH:MUNICIPALITY, searchbatch:RUN).
COUNTER_PREFIXES = ("fu:", "searchbatch:")


def keyspace(env, exclude=("audit", "stats")):
    """Every key of the test's namespace with its value, except the named ones (the audit
    stream and the counters, which a refusal is allowed to touch) and the follow-up counters."""
    prefix = ns_prefix(env)
    skip = {(prefix + k).encode() for k in exclude}
    counters = tuple((prefix + c).encode() for c in COUNTER_PREFIXES)
    with redis(env) as r:
        return {k: r.value(k) for k in r.keys(prefix + "*")
                if k not in skip and not k.startswith(counters)}


def keyspace_diff(before, after):
    lines = []
    for k in sorted(set(before) | set(after)):
        if before.get(k) != after.get(k):
            lines.append(f"  {k!r}:\n    before {before.get(k)!r}\n    after  {after.get(k)!r}")
    return "\n".join(lines)


def dump_namespace(env):
    """Every key name and every value of the namespace, streams included, as one byte string
    (for looking for data that must not be there)."""
    prefix = ns_prefix(env)
    parts = []
    with redis(env) as r:
        for k in r.keys(prefix + "*"):
            parts.append(k)
            parts.append(repr(r.value(k)).encode())
            raw = r("DUMP", k)
            if raw:
                parts.append(raw)
    return b"\n".join(parts)


def audit_entries(env):
    """The raw audit stream: [(id, {field: value})]."""
    with redis(env) as r:
        out = []
        for eid, flat in r("XRANGE", ns_prefix(env) + "audit", "-", "+"):
            out.append((eid.decode(), {flat[i].decode(): flat[i + 1].decode()
                                       for i in range(0, len(flat), 2)}))
        return out


# -- personal identity numbers --------------------------------------------------------------


def pin10(yymmdd, nnn):
    """A Luhn-valid 10-digit personal number YYMMDDNNNC."""
    nine = f"{yymmdd}{nnn}"
    assert len(nine) == 9
    return nine + luhn_digit(nine)


def pin_forms(century, yymmdd, nnn):
    """Every written form of one number: 10 and 12 digits, with '-', '+' or nothing."""
    d = pin10(yymmdd, nnn)
    return {
        "10": d,
        "10-dash": f"{d[:6]}-{d[6:]}",
        "10-plus": f"{d[:6]}+{d[6:]}",
        "12": f"{century}{d}",
        "12-dash": f"{century}{d[:6]}-{d[6:]}",
        "12-plus": f"{century}{d[:6]}+{d[6:]}",
    }


# -- sockets --------------------------------------------------------------------------------


def closed_by_peer(sock, timeout):
    """Waits until the peer closes a plain socket; returns the seconds it took, or None when
    it is still open at the deadline. Anything received is ignored (a TLS alert, say)."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        sock.settimeout(left)
        try:
            data = sock.recv(65536)
        except socket.timeout:
            return None
        except (ConnectionResetError, BrokenPipeError):
            return time.monotonic() - t0
        if not data:
            return time.monotonic() - t0


def client_hello(server_hostname="localhost", max_version=None):
    """The bytes of a TLS ClientHello (and the SSLObject that made it)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if max_version:
        ctx.maximum_version = max_version
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=server_hostname)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read(), obj


def served(env, who=("admin", "ops-anna"), timeout=10):
    """One whoami over a fresh connection; returns the principal map."""
    with env.connect(*who, timeout=timeout) as c:
        return c.call("whoami", timeout=timeout)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc status")


def wait_closed_conn(conn, timeout):
    """For a fristad_proto.Connection: waits for the server's close; returns the replies."""
    try:
        return conn.wait_closed(timeout=timeout)
    except TimeoutError:
        pytest.fail(f"the server kept the connection open for {timeout} s")


__all__ = ["RedisRaw", "RespError", "keyspace", "keyspace_diff", "dump_namespace",
           "audit_entries", "ns_prefix", "redis", "pin10", "pin_forms", "luhn_digit",
           "closed_by_peer", "client_hello", "served", "rss_kib", "wait_closed_conn",
           "fristad_proto"]
