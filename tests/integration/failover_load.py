"""The failover under load, shared by test_failover.py (short, in the default run) and
test_failover_long.py (the full run, -Dlong_tests=true).

A primary, two replicas and three Sentinels (sentinel_cluster.py); two fristadd instances in
sentinel mode with wait_replicas = 1; a few client threads holding, accepting, confirming, discharging,
releasing and changing vacancies through the real `fristad` client, which settles unknown
outcomes by itself. After `kill_at` seconds the primary is killed with SIGKILL; once the
Sentinels have named a new primary the old one is started again and must rejoin as a replica.

What is measured and checked:
  - every write the clients were told succeeded is on the new primary at the end (a hold
    exists, a confirmed hold is confirmed and has its placement, a release released, a
    discharge discharged): with wait_replicas = 1 none may be missing;
  - no unit was ever held or placed twice at once: as each hold was acknowledged (against what
    the clients had been told) and in the store's records at the end;
  - each daemon's own count of acknowledged writes it found missing after the switch is 0;
  - the seconds without a primary (from the kill until the Sentinels name another) and from the
    kill to the first acknowledged write are printed, with the counts.
"""

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import pytest

from conftest import ADMIN, Cli, wait_for, LOW_RISK
from referrals import SecondDaemon, run_threads
from sentinel_cluster import Cluster, record, require_sentinel, store_keys

SHELTERS = [("fo-sthlm", "0180"), ("fo-gbg", "1480"), ("fo-malmo", "1280"), ("fo-umea", "2480")]
UNITS_PER_SHELTER = 4
UNITS = [(sid, f"u{i}") for sid, _ in SHELTERS for i in range(UNITS_PER_SHELTER)]
CLIENTS = [("social", "0180"), ("social", "1480"), ("oncall", "fo-jour-1"), ("oncall", "fo-jour-2")]
REJOIN_WAIT = 60.0     # seconds for the restarted old primary to become a replica
RESUME_GRACE = 30.0    # extra seconds the load may run when no write has succeeded since the kill

FAILOVER_CONFIG = {
    "server": {"rate": 100000, "burst": 100000, "max_connections": 1000,
               "max_connections_per_person": 1000},
    # Nothing may expire or be purged while the run lasts: the checks read every record.
    "holds": {"ttl": "7d", "reference_retention": "7d"},
}


@dataclass
class Transition:
    """One step of a referral's life after its hold. Adding an op to the run is one row of
    TRANSITIONS."""
    op: str            # the fristad command
    start: str         # the referral's state it applies to
    end: str | None    # the state after it; None: the unit is free again
    who: str           # "client" (the one who held) or "shelter" (the unit's shelter)
    weight: int
    argv: object       # referral -> the command's arguments
    check: object      # (hold hash, placement hash) on the new primary -> it is there


TRANSITIONS = [
    Transition("accept", "held", "accepted", "shelter", 3, lambda r: ["accept", r.hold],
               lambda h, p: h.get("state") not in (None, "held")),
    Transition("confirm", "held", "placed", "shelter", 2, lambda r: ["confirm", r.hold],
               lambda h, p: h.get("state") == "confirmed" and bool(p)),
    Transition("release", "held", None, "client", 2, lambda r: ["release", r.hold],
               lambda h, p: h.get("state") == "released"),
    Transition("confirm", "accepted", "placed", "shelter", 3, lambda r: ["confirm", r.hold],
               lambda h, p: h.get("state") == "confirmed" and bool(p)),
    Transition("release", "accepted", None, "client", 1, lambda r: ["release", r.hold],
               lambda h, p: h.get("state") == "released"),
    Transition("discharge", "placed", None, "shelter", 2, lambda r: ["discharge", r.placement],
               lambda h, p: p.get("state") == "discharged"),
]


@dataclass
class Referral:
    unit: tuple
    hold: str
    state: str = "held"
    placement: str | None = None


@dataclass
class Ack:
    sent: float        # monotonic time the client was started
    t: float           # monotonic time of the acknowledgement
    op: str
    hold: str | None
    placement: str | None
    check: object      # (hold hash, placement hash) -> bool, or None when nothing is checked


@dataclass
class Run:
    env: object
    cluster: Cluster
    daemons: list
    seconds: float
    kill_at: float
    lock: threading.Lock = field(default_factory=threading.Lock)
    acks: list = field(default_factory=list)
    live: dict = field(default_factory=dict)      # unit -> hold id the clients were told of
    violations: list = field(default_factory=list)
    answers: Counter = field(default_factory=Counter)   # (op, code or "ok") -> count
    refs: object = field(default_factory=lambda: iter(range(10**9)))
    t0: float = 0.0
    end: float = 0.0
    t_kill: float | None = None
    t_named: float | None = None
    old_port: int = 0
    new_port: int | None = None
    t_rejoined: float | None = None
    problems: list = field(default_factory=list)

    def ack(self, sent, op, hold, placement, check):
        with self.lock:
            self.acks.append(Ack(sent, time.monotonic(), op, hold, placement, check))


class View:
    """What the clients need of one daemon: its address and the admin's client."""

    def __init__(self, env, daemon):
        self.env = env
        self.daemon = daemon

    @property
    def server(self):
        return f"{self.daemon.host}:{self.daemon.port}"

    @property
    def admin(self):
        return Cli(self.env, self.env.pki.get(*ADMIN), server=self.server)


def setup_shelters(env):
    with env.connect(*ADMIN) as adm:
        for sid, mun in SHELTERS:
            adm.call("shelter.add", {"shelter": sid, "name": f"Jour {sid}", "kind": "kvinnojour",
                                     "municipality": mun, "protection": 2,
                                     "phone": "08-123 456 78", "groups": ["women"],
                                     "max_children": 4, "boys_max_age": 17})
            for i in range(UNITS_PER_SHELTER):
                adm.call("unit.add", {"shelter": sid, "unit": f"u{i}", "beds": 2 + i})
    for sid, _ in SHELTERS:
        with env.connect("shelter", sid) as c:
            for i in range(UNITS_PER_SHELTER):
                c.call("vacancy.set", {"shelter": sid, "unit": f"u{i}", "state": "free"})


def answer_code(res):
    """ok, the error code, or the exit status when there was no JSON answer."""
    return res.error_code or ("ok" if res.exit == 0 else f"exit-{res.exit}")


def client(run, i):
    """One person's work on one of the daemons until the run ends."""
    daemon = run.daemons[i % len(run.daemons)]
    role, ident = CLIENTS[i % len(CLIENTS)]
    env = run.env
    me = Cli(env, env.pki.get(role, ident), server=daemon.server)
    shelters = {sid: Cli(env, env.pki.get("shelter", sid), server=daemon.server)
                for sid, _ in SHELTERS}
    rnd = random.Random(7000 + i)
    mine = []

    def answered(op, res):
        code = answer_code(res)
        with run.lock:
            run.answers[(op, code)] += 1
        return code

    def hold():
        busy = {r.unit for r in mine}
        unit = rnd.choice([u for u in UNITS if u not in busy])
        ref = f"FO-{i}-{next(run.refs):06d}"
        sent = time.monotonic()
        res = me("hold", unit[0], unit[1], *LOW_RISK, "--ref", ref)
        if answered("hold", res) != "ok":
            return
        hid = res.json["hold"]
        run.ack(sent, "hold", hid, None, lambda h, p: h.get("state") is not None)
        with run.lock:
            other = run.live.get(unit)
            if other is not None:
                run.violations.append(f"hold {hid} on {unit} acknowledged while {other} had it")
            run.live[unit] = hid
        mine.append(Referral(unit, hid))

    def step(ref):
        options = [t for t in TRANSITIONS if t.start == ref.state]
        t = rnd.choices(options, [o.weight for o in options])[0]
        if t.end is None:
            with run.lock:
                run.live.pop(ref.unit, None)  # from now on the unit may be someone else's
        who = me if t.who == "client" else shelters[ref.unit[0]]
        sent = time.monotonic()
        res = who(*t.argv(ref))
        code = answered(t.op, res)
        if code == "ok":
            pl = res.json.get("placement")
            if isinstance(pl, dict) and pl.get("placement"):
                ref.placement = pl["placement"]
            run.ack(sent, t.op, ref.hold, ref.placement, t.check)
            if t.end is None:
                mine.remove(ref)
            else:
                ref.state = t.end
        elif code == "unavailable":
            if t.end is None:
                with run.lock:
                    run.live[ref.unit] = ref.hold  # nothing was done
        else:
            # The outcome is not known to this client (or was refused after a repeat): it leaves
            # this referral alone; the unit stays registered while it may still be taken.
            mine.remove(ref)

    def vacancy():
        sid, uid = rnd.choice(UNITS)
        sent = time.monotonic()
        res = shelters[sid]("vacancy", sid, uid, "free")
        if answered("vacancy", res) == "ok":
            run.ack(sent, "vacancy", None, None, None)

    while time.monotonic() < run.end:
        r = rnd.random()
        movable = [m for m in mine if any(t.start == m.state for t in TRANSITIONS)]
        if movable and r < 0.6:
            step(rnd.choice(movable))
        elif r < 0.7:
            vacancy()
        elif len(mine) < 3:
            hold()
        elif movable:
            step(rnd.choice(movable))


def chaos(run):
    """Kills the primary at kill_at, waits for the Sentinels to name another, starts the old
    one again, and keeps the load running until a write has succeeded since the kill."""
    c = run.cluster
    old = c.node_at(c.named_primary())
    run.old_port = old.port
    while time.monotonic() < run.t0 + run.kill_at:
        time.sleep(0.05)
    old.kill()
    run.t_kill = time.monotonic()
    while time.monotonic() < run.t_kill + 120:
        port = c.named_primary()
        if port and port != old.port:
            run.t_named = time.monotonic()
            run.new_port = port
            break
        time.sleep(0.05)
    if run.new_port is None:
        run.problems.append("the Sentinels named no new primary within 120 s:\n" + c.describe())
        return
    # The old primary comes back once every Sentinel names the new one (the failover is over).
    while time.monotonic() < run.t_named + 60:
        named = [c.sentinel_names(s) for s in c.sentinels]
        if all(p == run.new_port for p in named):
            break
        time.sleep(0.1)
    old.start()
    # The load keeps going until it has seen the system take writes again (bounded).
    limit = run.end + RESUME_GRACE
    while time.monotonic() < limit:
        with run.lock:
            resumed = any(a.sent > run.t_kill for a in run.acks)
        if resumed and time.monotonic() > run.end - 2:
            run.end = max(run.end, time.monotonic() + 2)
            break
        if not resumed:
            run.end = max(run.end, min(time.monotonic() + 1, limit))
        time.sleep(0.1)


def final_checks(run):
    """Reads the new primary: returns (missing acknowledged writes, double-held units)."""
    c, ns = run.cluster, run.env.daemon.namespace
    primary = c.node_at(run.new_port)
    missing = []
    for a in run.acks:
        if a.check is None:
            continue
        h = record(c, primary, ns, "hold", a.hold) if a.hold else {}
        p = record(c, primary, ns, "pl", a.placement) if a.placement else {}
        if not a.check(h, p):
            missing.append(f"{a.op} of {a.hold or ''}{'/' + a.placement if a.placement else ''}"
                           f": the new primary has hold {h or 'none'}, placement {p or 'none'}")
    taken = Counter()
    for key in store_keys(c, primary, ns, "hold:*"):
        h = record(c, primary, ns, "hold", key.rsplit(":", 1)[1])
        if h.get("state") in ("held", "accepted"):
            taken[(h["shelter"], h["unit"])] += 1
    for key in store_keys(c, primary, ns, "pl:*"):
        p = record(c, primary, ns, "pl", key.rsplit(":", 1)[1])
        if p.get("state") == "active":
            taken[(p["shelter"], p["unit"])] += 1
    double = [u for u, n in taken.items() if n > 1]
    return missing, double


def daemon_stats(run):
    out = []
    for d in run.daemons:
        out.append(d.admin.ok("stats")["server"])
    return out


def run_failover(env, seconds, kill_at, capsys):
    """The run; its figures are printed through capsys, also when the test passes."""
    require_sentinel()
    cluster = Cluster(env.workdir, down_after_ms=1000)
    second = None
    try:
        cluster.start()
        env.daemon.update_config(cluster.daemon_config(wait_replicas=1))
        env.daemon.update_config(FAILOVER_CONFIG)
        env.daemon.start()
        second = SecondDaemon(env)
        second.start()
        first = View(env, env.daemon)
        setup_shelters(env)
        for who in CLIENTS + [("shelter", sid) for sid, _ in SHELTERS] + [ADMIN]:
            env.pki.get(*who)  # issued here: the PKI tool is not for threads
        run = Run(env, cluster, [first, View(env, second.daemon)], seconds, kill_at)
        run.t0 = time.monotonic()
        run.end = run.t0 + seconds
        run_threads([lambda i=i: client(run, i) for i in range(len(CLIENTS))] +
                    [lambda: chaos(run)], timeout=seconds + RESUME_GRACE + 180)
        if run.problems:
            pytest.fail("\n".join(run.problems))

        old = cluster.node_at(run.old_port)

        def rejoined():
            # A replica of whichever server is the primary now: under a heavy load the
            # Sentinels may have moved on once more, which is theirs to decide.
            info = cluster.replication(old)
            return (info.get("role") == "slave" and
                    info.get("master_port") == str(cluster.named_primary()) and
                    info.get("master_link_status") == "up")

        wait_for(rejoined, REJOIN_WAIT, "the old primary to rejoin as a replica of the new one",
                 interval=0.2, detail=cluster.describe)
        rejoin_s = time.monotonic() - run.t_kill
        missing, double = final_checks(run)
        stats = daemon_stats(run)
        with capsys.disabled():
            report(run, missing, double, stats, rejoin_s)

        assert not run.violations, "\n".join(run.violations[:20])
        assert not double, f"units held or placed twice on the new primary: {double}"
        assert not missing, f"{len(missing)} acknowledged writes missing:\n" + \
            "\n".join(missing[:20])
        assert [s["acked_missing"] for s in stats] == [0, 0], stats
        for i, s in enumerate(stats):
            assert s["primary_switches"] >= 1, f"daemon {i} did not follow the switch: {s}"
        before = sum(1 for a in run.acks if a.sent < run.t_kill)
        after = sum(1 for a in run.acks if a.sent > run.t_kill)
        assert before > 0 and after > 0, (before, after)
        for d in (env.daemon, second.daemon):
            errors = [ln for ln in d.log_text().splitlines() if " error: " in ln]
            assert not errors, f"{d.log}:\n" + "\n".join(errors[:20])
        # Both daemons answer from an index reloaded from the new primary, and agree.
        wait_for(lambda: run.daemons[0].admin.ok("free") == run.daemons[1].admin.ok("free"), 10,
                 "both daemons to answer alike after the switch")
    finally:
        problems = second.close() if second else []
        if env.daemon.running:
            env.daemon.stop()
        cluster.stop()
    if problems:
        pytest.fail("\n".join(problems))


def report(run, missing, double, stats, rejoin_s):
    acks = run.acks
    # The first write sent after the kill that was acknowledged (one sent before and answered
    # after was done by the old primary).
    first_after = min((a.t for a in acks if a.sent > run.t_kill), default=None)
    by_op = Counter(a.op for a in acks)
    refusals = {f"{op}:{code}": n for (op, code), n in sorted(run.answers.items())
                if code != "ok"}
    lines = [
        "",
        f"failover: {run.end - run.t0:.1f} s of load by {len(CLIENTS)} clients on 2 daemons, "
        f"primary (port {run.old_port}) killed with SIGKILL after {run.kill_at:g} s",
        f"  writes acknowledged: {len(acks)} ({sum(1 for a in acks if a.sent < run.t_kill)} "
        f"sent before the kill, {sum(1 for a in acks if a.sent > run.t_kill)} after); "
        f"by op: {dict(sorted(by_op.items()))}",
        f"  other answers: {refusals}",
        f"  acknowledged writes missing on the new primary: {len(missing)}",
        f"  units double-held: {len(run.violations) + len(double)}",
        f"  seconds without a primary: {run.t_named - run.t_kill:.2f} "
        f"(until the Sentinels named port {run.new_port})",
        f"  seconds from the kill to the first acknowledged write: "
        + (f"{first_after - run.t_kill:.2f}" if first_after else "none"),
        f"  old primary rejoined as a replica: yes, {rejoin_s:.1f} s after the kill",
        "  daemons: primary_switches " + str([s["primary_switches"] for s in stats]) +
        ", acked_checked " + str([s["acked_checked"] for s in stats]) +
        ", acked_missing " + str([s["acked_missing"] for s in stats]) +
        ", outcome_unknown answers " +
        str([s["errors"].get("outcome_unknown", 0) for s in stats]) +
        ", unavailable answers " + str([s["errors"].get("unavailable", 0) for s in stats]),
    ]
    print("\n".join(lines))
