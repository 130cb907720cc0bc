"""Shared pieces of the referral tests (search, holds, concurrency, two daemons, persistence):
reference geography from conf/, personal identity numbers for the privacy checks, a second
daemon on the same Redis, and the state a refused request must leave untouched."""

import csv
import math
import signal
import socket
import subprocess
import threading
import time

import pytest

import fristad_proto
from conftest import SOURCE_ROOT, STOP_WAIT, Cli, Daemon, strip_volatile, tail

EARTH_RADIUS_KM = 6371.0088
REASONS = ("safety_policy", "protection_level", "beds", "children_limit", "boys_age",
           "target_group", "wheelchair", "pets", "substance", "language", "competence", "permit")
RESULT_KEYS = {"shelter", "unit", "name", "kind", "municipality", "county", "distance_km",
               "beds", "protection", "stale", "data_age_s", "receives_from", "operator",
               "ivo_permit", "ivo_permit_date", "ivo_registered"}
HOLD_REPLY_KEYS = {"hold", "shelter", "unit", "municipality", "state", "expires_at", "phone"}


def now_ms():
    return int(time.time() * 1000)


# -- reference geography ---------------------------------------------------------------------


class Geography:
    """conf/municipalities.csv and conf/adjacency.csv, read independently of the daemon."""

    def __init__(self, root=SOURCE_ROOT):
        self.places = {}
        with open(root / "conf/municipalities.csv", newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                self.places[row["kommunkod"]] = {
                    "name": row["name"], "county": row["county_code"],
                    "lat": float(row["lat"]), "lon": float(row["lon"])}
        self.borders = {code: set() for code in self.places}
        with open(root / "conf/adjacency.csv", newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                a, b = row["code_a"], row["code_b"]
                self.borders[a].add(b)
                self.borders[b].add(a)

    def county(self, code):
        return self.places[code]["county"]

    def distance(self, a, b):
        """Great-circle distance between two centroids in km (haversine, mean Earth radius)."""
        pa, pb = self.places[a], self.places[b]
        la1, la2 = math.radians(pa["lat"]), math.radians(pb["lat"])
        dla = la2 - la1
        dlo = math.radians(pb["lon"] - pa["lon"])
        h = math.sin(dla / 2) ** 2 + math.cos(la1) * math.cos(la2) * math.sin(dlo / 2) ** 2
        return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(min(h, 1.0)))

    def distance_km(self, a, b):
        """The distance as the protocol reports it: rounded to whole kilometres."""
        return int(math.floor(self.distance(a, b) + 0.5))


_geo = None


def geography():
    global _geo
    if _geo is None:
        _geo = Geography()
    return _geo


# -- personal identity numbers --------------------------------------------------------------


def luhn_digit(nine):
    """The check digit of a Swedish personal number for its first nine digits (YYMMDDNNN)."""
    total = 0
    for i, ch in enumerate(nine):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d // 10 + d % 10
    return str((10 - total % 10) % 10)


def personnummer(yyyymmdd, serial, sep="-"):
    """A valid personal number (or coordination number when the day is + 60) as text."""
    nine = yyyymmdd[2:] + serial
    return f"{yyyymmdd}{sep}{serial}{luhn_digit(nine)}"


# -- state that refusals must leave as it was ----------------------------------------------


def unit_states(show):
    return {u["id"]: (u["state"], u["held"]) for u in show["units"]}


def referral_state(env, shelters, cli=None):
    """Everything a hold, confirm, decline, release or discharge could change, as seen by an
    admin (shelters, free units) and by on-call services (every hold and placement)."""
    oncall = cli or env.cli("oncall", "socialjouren-sthlm")
    return strip_volatile({
        "shelters": {s: env.show(s) for s in shelters},
        "free": env.admin.ok("free"),
        "holds": oncall.ok("holds"),
        "placements": oncall.ok("placements"),
    })


def free_units(cli, **area):
    args = ["free"]
    for k, v in area.items():
        args += [f"--{k}", v]
    return [(f["shelter"], f["unit"]) for f in cli.ok(*args)["units"]]


def hits(search_result):
    return [(r["shelter"], r["unit"]) for r in search_result["results"]]


# -- Redis itself ----------------------------------------------------------------------------


def redis_command(sock_path, *args, timeout=5.0):
    """Sends one command to the redis-server on this unix socket; returns the first line of
    its reply (RESP), e.g. ':2' or '+OK'."""
    parts = [f"*{len(args)}\r\n".encode()]
    for a in args:
        b = str(a).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(b), b))
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(sock_path))
        s.sendall(b"".join(parts))
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    return data.split(b"\r\n", 1)[0].decode(errors="replace")


# -- a second daemon on the same Redis ------------------------------------------------------


class SecondDaemon:
    """Another fristadd on the env's Redis and namespace, with its own config and log."""

    def __init__(self, env, name="second", overrides=None):
        self.env = env
        workdir = env.workdir / name
        workdir.mkdir(exist_ok=True)
        self.daemon = Daemon(workdir, env.pki, env.redis)
        # The same settings as the first daemon, except where this one keeps its own files.
        cfg = {sec: dict(keys) for sec, keys in env.daemon.config.items()}
        cfg["server"]["data_dir"] = str(self.daemon.data_dir)
        for sec, keys in (overrides or {}).items():
            cfg.setdefault(sec, {}).update(keys)
        self.daemon.namespace = env.daemon.namespace
        self.daemon.config = cfg
        self.daemon.update_config({})
        self._conns = []

    def start(self):
        self.daemon.start()
        return self

    @property
    def server(self):
        return f"{self.daemon.host}:{self.daemon.port}"

    def cli(self, role, ident):
        return Cli(self.env, self.env.pki.get(role, ident), server=self.server)

    @property
    def admin(self):
        return self.cli("admin", "ops-anna")

    def connect(self, role, ident, **kw):
        c = self.env.pki.get(role, ident)
        kw.setdefault("ca", c.ca)
        conn = fristad_proto.Connection(self.daemon.host, self.daemon.port, c.crt, c.key, **kw)
        self._conns.append(conn)
        return conn

    def close(self):
        """Stops the daemon (SIGTERM, clean exit expected); returns the problems seen."""
        for c in self._conns:
            c.close()
        problems = []
        d = self.daemon
        if d.proc is not None:
            if d.proc.poll() is not None:
                if d.proc.returncode != 0:
                    problems.append(f"second fristadd exited with {d.proc.returncode}")
            else:
                d.proc.send_signal(signal.SIGTERM)
                try:
                    rc = d.proc.wait(STOP_WAIT)
                    if rc != 0:
                        problems.append(f"second fristadd exited with {rc} after SIGTERM")
                except subprocess.TimeoutExpired:
                    d.kill()
                    problems.append("second fristadd did not exit after SIGTERM")
            reports = d.sanitizer_reports()
            if reports:
                problems.append("sanitizer reports in the second fristadd's log:\n  " +
                                "\n  ".join(reports[:20]))
        if problems:
            print(f"\n---- second fristadd.log (tail) ----\n{tail(d.log, 60)}")
        return problems


@pytest.fixture
def second(env):
    """A second daemon sharing the first one's Redis and namespace, started."""
    s = SecondDaemon(env)
    s.start()
    yield s
    problems = s.close()
    if problems:
        pytest.fail("\n".join(problems))


@pytest.fixture
def second_unstarted(env):
    s = SecondDaemon(env)
    yield s
    problems = s.close()
    if problems:
        pytest.fail("\n".join(problems))


# -- threads --------------------------------------------------------------------------------


def run_threads(targets, timeout):
    """Runs each callable in its own thread, all released at once; re-raises the first
    exception of any thread and fails when one is still running at the deadline."""
    barrier = threading.Barrier(len(targets))
    errors = []

    def wrap(fn):
        def run():
            try:
                barrier.wait(timeout)
                fn()
            except BaseException as e:  # noqa: BLE001 - reported to the main thread
                errors.append(e)
        return run

    threads = [threading.Thread(target=wrap(fn), daemon=True) for fn in targets]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(deadline - time.monotonic(), 0.01))
    if any(t.is_alive() for t in threads):
        pytest.fail(f"client threads still running after {timeout:g} s")
    if errors:
        raise errors[0]


__all__ = ["REASONS", "RESULT_KEYS", "HOLD_REPLY_KEYS", "Geography", "geography", "now_ms",
           "luhn_digit", "personnummer", "unit_states", "referral_state", "free_units", "hits",
           "SecondDaemon", "redis_command", "second", "second_unstarted", "run_threads"]
