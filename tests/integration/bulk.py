"""Large registries straight into Redis, for the load tests and the benchmark: a RESP client on
the unix socket (binary-safe, pipelined) and tests/bench/populate.lua, which writes shelters and
units in the store's layout a few thousand per call."""

import csv
import socket
import time
from pathlib import Path

import msgpack

SOURCE_ROOT = Path(__file__).resolve().parent.parent.parent
# The ten most populous municipalities get a third of the shelters (populate.lua).
BIG = ["0180", "1480", "1280", "0380", "0580", "1880", "1980", "0680", "0581", "2480"]


def _resp(args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class RespError(Exception):
    pass


def _read(f):
    line = f.readline()
    if not line:
        raise ConnectionError("redis closed the connection")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b":":
        return int(rest)
    if kind == b"-":
        return RespError(rest.decode(errors="replace"))
    if kind == b"$":
        n = int(rest)
        return None if n < 0 else f.read(n + 2)[:-2]
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [_read(f) for _ in range(n)]
    raise ConnectionError(f"unreadable reply {line!r}")


class Redis:
    """One connection to a redis-server's unix socket."""

    def __init__(self, sock_path, timeout=60.0):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(timeout)
        self.sock.connect(str(sock_path))
        self.f = self.sock.makefile("rb")

    def pipeline(self, commands):
        """Sends every command, then reads every reply; an error reply is returned as a
        RespError, not raised."""
        self.sock.sendall(b"".join(_resp(c) for c in commands))
        return [_read(self.f) for _ in commands]

    def call(self, *args):
        r = self.pipeline([args])[0]
        if isinstance(r, RespError):
            raise r
        return r

    def close(self):
        self.f.close()
        self.sock.close()


def codes():
    """Every municipality code, the ten largest first (populate.lua's weighting)."""
    with open(SOURCE_ROOT / "conf/municipalities.csv", newline="", encoding="utf-8") as f:
        rest = [r["kommunkod"] for r in csv.DictReader(f) if r["kommunkod"] not in BIG]
    return BIG + rest


def populate(sock_path, namespace, shelters, units=3, first=0, seed=1, batch=2000):
    """Writes shelters b<first>.. with `units` units each (a quarter free); returns seconds."""
    r = Redis(sock_path)
    try:
        r.call("FUNCTION", "LOAD", "REPLACE",
               (SOURCE_ROOT / "tests/bench/populate.lua").read_bytes())
        key = "{%s}:ver" % namespace
        all_codes = codes()
        t = time.monotonic()
        for start in range(first, first + shelters, batch):
            n = min(batch, first + shelters - start)
            r.call("FCALL", "bench_populate", 1, key, msgpack.packb({
                "first": start, "count": n, "units": units, "now": int(time.time() * 1000),
                "codes": all_codes, "seed": seed}))
        return time.monotonic() - t
    finally:
        r.close()


def drop_snapshots(sock_path, namespace):
    """Deletes every stored snapshot, as if another version of the library had stored them:
    the next daemon to load makes them anew."""
    r = Redis(sock_path)
    try:
        return r.call("EVAL", """
            local n = 0
            for _, sid in ipairs(redis.call('SMEMBERS', KEYS[1])) do
                n = n + redis.call('DEL', ARGV[1] .. sid)
            end
            return n""", 1, "{%s}:shelters" % namespace, "{%s}:snap:" % namespace)
    finally:
        r.close()
