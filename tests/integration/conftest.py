"""Integration harness: a real redis-server, the real fristadd and the real fristad client.

Environment (meson sets all of them; by hand the defaults fit a build in build/):
  FRISTADD             the daemon binary           (default build/daemon/fristadd)
  FRISTAD              the client binary           (default build/client/fristad)
  REDIS_SERVER         redis-server                (default: found on PATH)
  FRISTAD_SOURCE_ROOT  the repository root         (default: two levels above this file)
  FRISTAD_TEST_TMPDIR  where per-test directories go (default /tmp; unix socket paths are
                       limited to 107 bytes, so keep it short)
  FRISTAD_KEEP         1 keeps every test's directory, not only those of failed tests
  ASAN_OPTIONS, UBSAN_OPTIONS  passed to the daemon (defaults below when unset)

Every wait is bounded; meson's test timeout is the outer watchdog. A test that fails keeps its
directory (config, daemon and redis logs) and prints the log tails.

Run them with `meson test -C build --suite integration`, or by hand with Debian's pytest (the
pyenv python on PATH lacks msgpack): `cd tests/integration && pytest-3 -q test_tls.py`.
A sanitizer build: `meson setup build-asan -Db_sanitize=address,undefined && meson test -C
build-asan --suite integration`; any sanitizer report in the daemon's log fails the test.

Layout of one test: a temporary directory with redis/ (socket, AOF), data/, fristadd.conf,
fristadd.log and redis.log. One PKI (scripts/pki) serves the whole session.
"""

import atexit
import datetime
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

import fristad_proto

HERE = Path(__file__).resolve().parent
SOURCE_ROOT = Path(os.environ.get("FRISTAD_SOURCE_ROOT") or HERE.parent.parent).resolve()
UNDER_MESON = "FRISTADD" in os.environ
FRISTADD = Path(os.environ.get("FRISTADD") or SOURCE_ROOT / "build/daemon/fristadd")
FRISTAD = Path(os.environ.get("FRISTAD") or SOURCE_ROOT / "build/client/fristad")
REDIS_SERVER = os.environ.get("REDIS_SERVER") or shutil.which("redis-server") or "redis-server"
PKI_TOOL = SOURCE_ROOT / "scripts" / "pki"
TMP_BASE = os.environ.get("FRISTAD_TEST_TMPDIR", "/tmp")
os.makedirs(TMP_BASE, exist_ok=True)  # a directory named for a run need not exist yet

READY_WAIT = 20.0
STOP_WAIT = 15.0
CLI_WAIT = 30.0
POLL = 0.05

READY_RE = re.compile(r"ready: listening on (\[[^\]]+\]|[^\s\[\]]+):(\d+)")
METRICS_RE = re.compile(r"metrics: listening on (\[[^\]]+\]|[^\s\[\]]+):(\d+)")
SANITIZER_RE = re.compile(
    r"ERROR: AddressSanitizer|runtime error:|LeakSanitizer|ThreadSanitizer|"
    r"ERROR: MemorySanitizer")

ADMIN = ("admin", "ops-anna")

# Every county: an on-call agreement for the whole country.
ALL_COUNTIES = "01 03 04 05 06 07 08 09 10 12 13 14 17 18 19 20 21 22 23 24 25"

# The [oncall] section of every test daemon: the on-call ids the tests use, and whom each acts
# for. An id not listed acts for none; tests of the areas themselves set their own.
ONCALL_AREAS = {
    "jour-sthlm": "01",  # Stockholm county
    "jour-gbg": "14",    # Västra Götaland
    **{ident: ALL_COUNTIES for ident in (
        "socialjouren-sthlm", "socialjouren-gbg", "socialjour-sthlm", "jour", "jour-a", "jour-b",
        "jour-c", "jour-d", "jour-x", "jour-natt", "jour-idle", "jour-ok", "jour-old",
        "jour-revoked", "x", "greedy-0", "greedy-1", *(f"jour-{i}" for i in range(1, 6)),
        *(f"soak-jour-{i}" for i in range(1, 4)))},
}

# The referral a hold carries where a test is about something else: at low risk the policy rules
# out only the municipalities a referral lists, so any open unit with a bed for one adult in a
# shelter for women is eligible.
LOW_RISK = ["--from", "0180", "--risk", "low"]
LOW_RISK_ARGS = {"home": "0180", "risk": "low"}

_live_processes = []


def _kill_leftovers():
    for p in _live_processes:
        if p.poll() is None:
            p.kill()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                pass


atexit.register(_kill_leftovers)


def free_port():
    """A TCP port of 127.0.0.1 that nothing listens on now (for a daemon that must come back
    on the same port)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(cond, timeout, what, interval=POLL, detail=None):
    """Polls cond() until it returns something true; returns that, or fails at the deadline.

    This is the one way the tests wait on a condition. cond may act as well as look (retry a
    write, send more); an exception from it ends the wait at once. The failure names `what`,
    and adds detail() when given (the last state seen, say)."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() >= deadline:
            msg = f"timed out after {timeout:g} s waiting for {what}"
            if detail is not None:
                msg += f"\n{detail()}"
            pytest.fail(msg)
        time.sleep(interval)


def tail(path, lines=40):
    try:
        text = Path(path).read_text(errors="replace")
    except OSError as e:
        return f"<cannot read {path}: {e}>"
    return "\n".join(text.splitlines()[-lines:])


ISO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d")


def iso_ms(text):
    """Milliseconds since 1970 of an ISO 8601 time with offset, as the client prints them."""
    return round(datetime.datetime.fromisoformat(text).timestamp() * 1000)


def times_as_ms(obj):
    """The client's JSON with its times ("at", "*_at") back in milliseconds since 1970, as the
    daemon stores and sends them, so that tests compare them with the clock."""
    if isinstance(obj, dict):
        return {k: iso_ms(v) if (k == "at" or k.endswith("_at")) and isinstance(v, str)
                and ISO_TIME.fullmatch(v) else times_as_ms(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [times_as_ms(v) for v in obj]
    return obj


def strip_volatile(obj):
    """Drops fields that change with the clock alone (data_age_s), recursively."""
    if isinstance(obj, dict):
        return {k: strip_volatile(v) for k, v in obj.items() if k != "data_age_s"}
    if isinstance(obj, list):
        return [strip_volatile(v) for v in obj]
    return obj


# -- pytest plumbing ------------------------------------------------------------------------


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def _failed(request):
    node = request.node
    return getattr(node, "fristad_keep", False) or any(
        getattr(getattr(node, "rep_" + w, None), "failed", False) for w in ("setup", "call"))


# -- PKI ------------------------------------------------------------------------------------


class Cert:
    def __init__(self, name, crt, key, ca):
        self.name = name
        self.crt = Path(crt)
        self.key = Path(key)
        self.ca = Path(ca)

    def __repr__(self):
        return f"Cert({self.name})"


class Pki:
    """One development PKI (scripts/pki) per session, client certificates issued on demand."""

    def __init__(self, root):
        self.root = Path(root)
        self.dir = self.root / "pki"
        self.rogue_dir = self.root / "rogue"
        self._certs = {}
        self._tool("init", self.dir)
        self._tool("init", self.rogue_dir)
        self.ca = self.dir / "ca.crt"
        self.crl = self.dir / "crl.pem"
        self.server_crt = self.dir / "server.crt"
        self.server_key = self.dir / "server.key"
        # Made before any daemon starts, so each daemon reads a CRL that already lists it.
        self.revoked = self.get("social", "1480", name="revoked-social-1480")
        self._tool("revoke", self.dir, "revoked-social-1480")
        self.expired = self.get("social", "1280", name="expired-social-1280", expired=True)
        self.rogue = self._issue(self.rogue_dir, ["social", "0180", "--out", "rogue-social-0180"],
                                 "rogue-social-0180")

    def _tool(self, *args):
        r = subprocess.run(["bash", str(PKI_TOOL), *map(str, args)], capture_output=True,
                           text=True, timeout=60)
        if r.returncode != 0:
            pytest.fail(f"scripts/pki {' '.join(map(str, args))} failed:\n{r.stdout}{r.stderr}")
        return r.stdout

    def _issue(self, d, args, name):
        self._tool("client", d, *args)
        # The certificate names the deployment's CA file, so a rogue cert still verifies the
        # server correctly and only its own certificate is wrong.
        return Cert(name, d / f"{name}.crt", d / f"{name}.key", self.ca)

    def get(self, role, ident, person=None, *, name=None, expired=False, subject=None, days=None,
            not_after=None):
        """The client certificate for ROLE/ID, naming PERSON when given (issued on first use).
        not_after: a UTC time YYYYMMDDHHMMSSZ when its validity ends."""
        name = name or (f"{role}-{ident}" + (f"-{person}" if person else ""))
        if name not in self._certs:
            args = [role, ident] + ([person] if person else []) + ["--out", name]
            if role not in fristad_proto.ROLES:
                args.append("--any-role")
            if expired:
                args.append("--expired")
            if subject:
                args += ["--subject", subject]
            if days:
                args += ["--days", str(days)]
            if not_after:
                args += ["--not-after", not_after]
            self._certs[name] = self._issue(self.dir, args, name)
        return self._certs[name]

    def custom(self, name, subject):
        """A certificate from the deployment's CA with any subject."""
        return self.get("custom", name, name=name, subject=subject)

    def revoke(self, cert):
        self._tool("revoke", self.dir, cert.name)


@pytest.fixture(scope="session")
def pki(request):
    if not PKI_TOOL.exists():
        pytest.fail(f"{PKI_TOOL} is missing")
    root = Path(tempfile.mkdtemp(prefix="fristad-pki-", dir=TMP_BASE))
    p = Pki(root)
    yield p
    if request.session.testsfailed or os.environ.get("FRISTAD_KEEP"):
        print(f"\nPKI kept in {root}")
    else:
        shutil.rmtree(root, ignore_errors=True)


# -- redis-server ---------------------------------------------------------------------------


def redis_ping(sock_path, timeout=1.0):
    """True when the server on this unix socket answers PING with PONG (not LOADING)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(str(sock_path))
            s.sendall(b"*1\r\n$4\r\nPING\r\n")
            data = b""
            while b"\r\n" not in data:
                chunk = s.recv(256)
                if not chunk:
                    return False
                data += chunk
            return data.startswith(b"+PONG")
    except OSError:
        return False


class Redis:
    """A private redis-server: unix socket only, AOF with fsync on every write."""

    def __init__(self, workdir):
        self.dir = Path(workdir) / "redis"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.sock = self.dir / "redis.sock"
        self.log = Path(workdir) / "redis.log"
        self.proc = None
        self.starts = 0
        self.wrapper = []  # a command line to run redis-server under, e.g. libfaketime

    @property
    def address(self):
        return f"unix:{self.sock}"

    def start(self):
        assert self.proc is None or self.proc.poll() is not None, "redis-server already runs"
        self.starts += 1
        logf = open(self.log, "ab")
        logf.write(f"==== start {self.starts} ====\n".encode())
        logf.flush()
        cmd = [*self.wrapper, REDIS_SERVER, "--port", "0", "--unixsocket", str(self.sock),
               "--unixsocketperm", "700", "--dir", str(self.dir), "--save", "",
               "--appendonly", "yes", "--appendfsync", "always", "--daemonize", "no"]
        self.proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        logf.close()
        _live_processes.append(self.proc)

        def up():
            if self.proc.poll() is not None:
                pytest.fail(f"redis-server exited with {self.proc.returncode}:\n"
                            f"{tail(self.log)}")
            return redis_ping(self.sock)

        wait_for(up, READY_WAIT, "redis-server to answer PING")

    def stop(self, kill=False):
        """SIGTERM (or SIGKILL) and wait for the exit."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            self.proc.wait(STOP_WAIT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            pytest.fail("redis-server did not stop on SIGTERM")
        wait_for(lambda: not redis_ping(self.sock, 0.2), 5, "the redis socket to go quiet")

    def restart(self, kill=False):
        self.stop(kill=kill)
        self.start()

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None


# -- fristadd -------------------------------------------------------------------------------


def _ini(sections):
    out = []
    for sec, keys in sections.items():
        out.append(f"[{sec}]")
        for k, v in keys.items():
            if v is None:
                continue
            if isinstance(v, bool):
                v = "true" if v else "false"
            out.append(f"{k} = {v}")
        out.append("")
    return "\n".join(out)


class Daemon:
    """fristadd with a per-test config; stderr goes to a log file that the harness polls."""

    def __init__(self, workdir, pki, redis, overrides=None):
        self.workdir = Path(workdir)
        self.pki = pki
        self.redis = redis
        self.config_path = self.workdir / "fristadd.conf"
        self.log = self.workdir / "fristadd.log"
        self.data_dir = self.workdir / "data"
        self.data_dir.mkdir(exist_ok=True)
        self.namespace = "t" + secrets.token_hex(6)
        self.proc = None
        self.host = None
        self.port = None
        self.starts = 0
        self._offset = 0
        self.wrapper = []  # a command line to run the daemon under, e.g. valgrind
        self.extra_env = {}  # added to the daemon's environment
        self.config = {
            "server": {
                "listen": "127.0.0.1:0",
                "data_dir": str(self.data_dir),
                # Generous limits: tests run many requests of one principal quickly; tests of
                # the limits themselves set their own.
                "rate": 1000,
                "burst": 2000,
            },
            "tls": {
                "cert": str(pki.server_crt),
                "key": str(pki.server_key),
                "ca": str(pki.ca),
                "crl": str(pki.crl),
            },
            "redis": {
                "mode": "connect",
                "address": redis.address,
                "namespace": self.namespace,
            },
            "log": {"level": "info"},
            # Tests run side by side: each daemon's metrics listener takes a free port.
            "metrics": {"listen": "127.0.0.1:0"},
            "data": {
                "municipalities": str(SOURCE_ROOT / "conf/municipalities.csv"),
                "adjacency": str(SOURCE_ROOT / "conf/adjacency.csv"),
                "policy": str(SOURCE_ROOT / "conf/policy.conf"),
            },
            "holds": {"ttl": "60m"},
            "oncall": dict(ONCALL_AREAS),
        }
        self.update_config(overrides or {})

    def update_config(self, overrides):
        for sec, keys in overrides.items():
            self.config.setdefault(sec, {}).update(keys)
        self.config_path.write_text(_ini(self.config))

    def _env(self):
        env = dict(os.environ)
        env.update(self.extra_env)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
        env.setdefault("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1")
        return env

    def log_size(self):
        try:
            return self.log.stat().st_size
        except FileNotFoundError:
            return 0

    def log_text(self, since=0):
        try:
            with open(self.log, "rb") as f:
                f.seek(since)
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def spawn(self):
        """Starts the process without waiting for readiness."""
        assert not self.running, "fristadd already runs"
        self.starts += 1
        self._offset = self.log_size()
        logf = open(self.log, "ab")
        argv = [*self.wrapper, str(FRISTADD), "-c", str(self.config_path)]
        self.proc = subprocess.Popen(argv, stdout=logf, stderr=logf, stdin=subprocess.DEVNULL,
                                     env=self._env())
        logf.close()
        _live_processes.append(self.proc)
        return self

    def ready_match(self):
        """The readiness line of the current run, if it has been logged."""
        return READY_RE.search(self.log_text(self._offset))

    def wait_ready(self, timeout=READY_WAIT):
        def ready():
            m = self.ready_match()
            if m:
                return m
            if self.proc.poll() is not None:
                pytest.fail(f"fristadd exited with {self.proc.returncode} before it was ready:"
                            f"\n{tail(self.log)}")
            return None

        m = wait_for(ready, timeout, "fristadd to log 'ready: listening on'")
        self.host = m.group(1).strip("[]")
        self.port = int(m.group(2))
        return self

    def start(self):
        return self.spawn().wait_ready()

    @property
    def metrics_url(self):
        """http://HOST:PORT of the metrics listener of the current run."""
        m = METRICS_RE.search(self.log_text(self._offset))
        assert m, "the daemon has not logged its metrics listener"
        return f"http://{m.group(1)}:{m.group(2)}"

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM):
        """Sends SIGTERM and asserts a clean exit (status 0) within the bound."""
        if self.proc is None:
            return
        if self.proc.poll() is not None:
            pytest.fail(f"fristadd had exited on its own with {self.proc.returncode}:\n"
                        f"{tail(self.log)}")
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(STOP_WAIT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            pytest.fail(f"fristadd did not exit within {STOP_WAIT:g} s of SIGTERM:\n"
                        f"{tail(self.log)}")
        if rc != 0:
            pytest.fail(f"fristadd exited with {rc} after SIGTERM:\n{tail(self.log)}")

    def restart(self):
        self.stop()
        return self.start()

    def reload(self, timeout=10):
        """SIGHUP; returns the log line that answers it (reloaded or reload failed)."""
        offset = self.log_size()
        self.proc.send_signal(signal.SIGHUP)
        pat = re.compile(r"^.*(configuration reloaded|reload failed: .*)$", re.M)
        m = wait_for(lambda: pat.search(self.log_text(offset)), timeout,
                     "fristadd to answer SIGHUP")
        return m.group(0)

    def sanitizer_reports(self):
        text = self.log_text()
        return [ln for ln in text.splitlines() if SANITIZER_RE.search(ln)]

    def kill(self):
        if self.running:
            self.proc.kill()
            self.proc.wait(5)


# -- the fristad client ---------------------------------------------------------------------


class CliResult:
    def __init__(self, argv, proc, elapsed):
        self.argv = argv
        self.exit = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.elapsed = elapsed
        self.json = None
        self.raw_json = None  # as printed; .json has its times in milliseconds (times_as_ms)
        self.parse_error = None
        self.daemon_note = None
        try:
            self.raw_json = json.loads(self.stdout) if self.stdout.strip() else None
            self.json = times_as_ms(self.raw_json)
        except ValueError as e:
            self.parse_error = str(e)

    def describe(self):
        text = (f"$ {shlex.join(map(str, self.argv))}\nexit {self.exit} after "
                f"{self.elapsed:.2f} s\nstdout: {self.stdout.strip()[:2000]}\n"
                f"stderr: {self.stderr.strip()[:2000]}")
        if self.daemon_note:
            text += "\n" + self.daemon_note
        return text

    @property
    def error_code(self):
        if isinstance(self.json, dict) and isinstance(self.json.get("error"), dict):
            return self.json["error"].get("code")
        return None

    def ok(self):
        """Asserts exit 0 and one JSON document on stdout; returns it."""
        assert self.exit == 0, "expected success:\n" + self.describe()
        assert self.parse_error is None and self.json is not None, \
            "stdout is not one JSON document:\n" + self.describe()
        assert not (isinstance(self.json, dict) and "error" in self.json), self.describe()
        return self.json

    def usage(self, flag):
        """Asserts a usage error (exit 2, {"error": {"code": "usage"}}) that names the flag
        the person typed; returns the message."""
        assert self.parse_error is None, "stdout is not one JSON document:\n" + self.describe()
        assert self.exit == 2 and self.error_code == "usage", \
            "expected a usage error with exit 2:\n" + self.describe()
        message = self.json["error"]["message"]
        assert flag in message, f"the message does not name {flag}:\n" + self.describe()
        return message

    def refused(self, code):
        """Asserts a server refusal: exit 1 and {"error": {"code": code, ...}}."""
        assert self.parse_error is None, "stdout is not one JSON document:\n" + self.describe()
        assert self.exit == 1 and self.error_code == code, \
            f"expected refusal '{code}' with exit 1:\n" + self.describe()
        assert isinstance(self.json["error"].get("message"), str), self.describe()
        return self.json["error"]


class Cli:
    """Runs the real `fristad --json` as one principal against the running daemon."""

    def __init__(self, env, cert, server=None):
        self.env = env
        self.cert = cert
        self.server = server

    def argv(self, *args):
        d = self.env.daemon
        server = self.server or f"{d.host}:{d.port}"
        return [str(FRISTAD), "--json", "--server", server, "--cert", str(self.cert.crt),
                "--key", str(self.cert.key), "--ca", str(self.cert.ca), *map(str, args)]

    def __call__(self, *args, timeout=CLI_WAIT):
        argv = self.argv(*args)
        t0 = time.monotonic()
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                                  stdin=subprocess.DEVNULL, env=self.env.cli_environ())
        except subprocess.TimeoutExpired:
            pytest.fail(f"fristad did not finish within {timeout} s: {' '.join(argv)}")
        res = CliResult(argv, proc, time.monotonic() - t0)
        d = self.env.daemon
        if d.proc is not None and d.proc.poll() is not None:
            res.daemon_note = (f"fristadd is not running (exit status {d.proc.returncode}); "
                               f"its log ends:\n{tail(d.log, 15)}")
        self.env.cli_log.append(res)
        if SANITIZER_RE.search(res.stderr):
            pytest.fail("sanitizer report from fristad:\n" + res.describe())
        return res

    def ok(self, *args):
        return self(*args).ok()


def shelter_args(sid, name, kind="kvinnojour", municipality="0180", protection=1,
                 phone="08-123 456 78", groups=None, max_children=None, boys_max_age=None,
                 pets=False, substance=False, languages=None, intake_hours=None,
                 competences=None, operator=None, ivo_permit=None, ivo_permit_date=None,
                 ivo_registered=None):
    args = [sid, "--name", name, "--kind", kind, "--municipality", municipality,
            "--protection", protection, "--phone", phone]
    if groups:
        args += ["--groups", ",".join(groups)]
    if max_children is not None:
        args += ["--max-children", max_children]
    if boys_max_age is not None:
        args += ["--boys-max-age", boys_max_age]
    if pets:
        args.append("--pets")
    if substance:
        args.append("--substance")
    if languages:
        args += ["--languages", ",".join(languages)]
    if intake_hours:
        args += ["--intake-hours", intake_hours]
    if competences is not None:
        args += ["--competences", ",".join(competences)]
    if operator:
        args += ["--operator", operator]
    if ivo_permit:
        args += ["--ivo-permit", ivo_permit, "--ivo-permit-date", ivo_permit_date or "2024-04-01"]
    if ivo_registered:
        args.append("--ivo-registered")
    return args


class Env:
    """Everything one test needs: redis, daemon, certificates, clients."""

    def __init__(self, workdir, pki, overrides):
        self.workdir = Path(workdir)
        self.pki = pki
        self.redis = Redis(workdir)
        self.daemon = Daemon(workdir, pki, self.redis, overrides)
        self.cli_log = []
        self._conns = []

    def start(self):
        self.redis.start()
        self.daemon.start()
        return self

    def cli_environ(self):
        """The client's environment: only the flags choose server and certificates, so no
        FRISTAD_* variable or user config file of the person running the tests leaks in."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("FRISTAD")}
        env["XDG_CONFIG_HOME"] = str(self.workdir / "xdg")
        env["HOME"] = str(self.workdir)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
        env.setdefault("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1")
        return env

    # certificates and clients
    def cert(self, role, ident):
        return self.pki.get(role, ident)

    def cli(self, role=None, ident=None, cert=None, server=None):
        return Cli(self, cert or self.pki.get(role, ident), server)

    @property
    def admin(self):
        return self.cli(*ADMIN)

    def connect(self, role=None, ident=None, cert=None, **kw):
        """A protocol connection (fristad_proto) as this principal; closed at teardown."""
        c = cert or self.pki.get(role, ident)
        kw.setdefault("ca", c.ca)
        conn = fristad_proto.Connection(self.daemon.host, self.daemon.port, c.crt, c.key, **kw)
        self._conns.append(conn)
        return conn

    # registry shortcuts through the real client
    def add_shelter(self, sid, name, **kw):
        res = self.admin.ok("shelter", "add", *shelter_args(sid, name, **kw))
        assert res["shelter"]["id"] == sid, res
        return res["shelter"]

    def add_unit(self, sid, unit, beds, accessible=False):
        args = ["unit", "add", sid, unit, "--beds", beds]
        if accessible:
            args.append("--accessible")
        return self.admin.ok(*args)["shelter"]

    def show(self, sid, who=None):
        return (who or self.admin).ok("shelter", "show", sid)["shelter"]

    def snapshot(self, shelters):
        """What the admin sees: every named shelter, the full list and the free units."""
        return strip_volatile({
            "shelters": {s: self.show(s) for s in shelters},
            "list": self.admin.ok("shelter", "list"),
            "free": self.admin.ok("free"),
        })

    def close(self):
        for c in self._conns:
            c.close()


@pytest.fixture
def workdir(request):
    d = Path(tempfile.mkdtemp(prefix="fristad-it-", dir=TMP_BASE))
    yield d
    if _failed(request) or os.environ.get("FRISTAD_KEEP"):
        print(f"\ntest directory kept: {d}")
    else:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def env_unstarted(request, workdir, pki):
    """An Env whose processes have not been started (for tests that start them themselves)."""
    for what, path in (("fristadd", FRISTADD), ("fristad", FRISTAD)):
        if not Path(path).exists():
            msg = f"{what} binary not found at {path}"
            if UNDER_MESON:
                pytest.fail(msg)
            pytest.skip(msg + " (build it, or set FRISTADD / FRISTAD)")
    if not shutil.which(REDIS_SERVER) and not Path(REDIS_SERVER).exists():
        pytest.skip(f"redis-server not found ({REDIS_SERVER})")
    overrides = {}
    for m in reversed(list(request.node.iter_markers("daemon_config"))):
        for sec, keys in m.args[0].items():
            overrides.setdefault(sec, {}).update(keys)
    e = Env(workdir, pki, overrides)
    yield e
    e.close()
    problems = []
    try:
        if e.daemon.proc is not None:
            if e.daemon.proc.poll() is not None and e.daemon.proc.returncode != 0:
                problems.append(f"fristadd exited with status {e.daemon.proc.returncode}")
            elif e.daemon.running:
                e.daemon.proc.send_signal(signal.SIGTERM)
                try:
                    rc = e.daemon.proc.wait(STOP_WAIT)
                    if rc != 0:
                        problems.append(f"fristadd exited with {rc} after SIGTERM")
                except subprocess.TimeoutExpired:
                    e.daemon.kill()
                    problems.append(f"fristadd did not exit within {STOP_WAIT:g} s of SIGTERM")
        reports = e.daemon.sanitizer_reports()
        if reports:
            problems.append("sanitizer reports in the fristadd log:\n  " +
                            "\n  ".join(reports[:20]))
    finally:
        e.daemon.kill()
        if e.redis.running:
            e.redis.stop(kill=True)
    if problems:
        request.node.fristad_keep = True
    if problems or _failed(request):
        print(f"\n---- fristadd.log (tail) ----\n{tail(e.daemon.log, 60)}")
        print(f"---- redis.log (tail) ----\n{tail(e.redis.log, 20)}")
        for r in e.cli_log[-5:]:
            print("---- client call ----\n" + r.describe())
    if problems:
        pytest.fail("\n".join(problems))


@pytest.fixture
def env(env_unstarted):
    """Redis and fristadd running with the default test config (plus daemon_config marks)."""
    return env_unstarted.start()
