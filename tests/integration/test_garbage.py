"""Hostile input on the wire: malformed frames get error replies with the right code, broken
framing closes only that connection, and the daemon keeps serving everyone else."""

import random
import struct
import threading
import msgpack
import pytest

from conftest import ADMIN, SOURCE_ROOT
from fristad_proto import ConnectionClosed, frame, packb

FRAMES_TSV = SOURCE_ROOT / "tests" / "hostile" / "frames.tsv"
VALID_TSV = SOURCE_ROOT / "tests" / "hostile" / "valid.tsv"

# Codes that say "the protocol layer refused this frame"; a frame that passes validation may
# still be refused for other reasons (forbidden, not_found, ...) depending on who sends it.
PROTOCOL_LEVEL = {"bad_frame", "too_large", "bad_request", "unknown_op", "personal_data"}

ANY_ID = object()


def req(rid, op, args=None, **extra):
    m = {"id": rid, "op": op}
    if args is not None:
        m["args"] = args
    m.update(extra)
    return packb(m)


def shelter_add(rid, **override):
    args = {"shelter": "garbage-test", "name": "Garbage test", "kind": "kvinnojour",
            "municipality": "0180", "protection": 1, "phone": "08-123 456 78"}
    args.update(override)
    return req(rid, "shelter.add", args)


def fixstr_raw(b):
    assert len(b) < 32
    return bytes([0xa0 | len(b)]) + b


def many_objects():
    """A request whose containers are each within limits but that holds > 4096 objects."""
    args = {f"a{i}": [0] * 255 for i in range(17)}
    return req(60, "free", args)


# name, body, expected code (or "ok"), expected reply id (None = nil, ANY_ID = nil or echoed)
OWN_TABLE = [
    ("nil-root", b"\xc0", "bad_frame", None),
    ("int-root", b"\x01", "bad_frame", None),
    ("array-root", packb([{"id": 1, "op": "whoami"}]), "bad_frame", None),
    ("string-root", packb("whoami"), "bad_frame", None),
    ("reserved-c1", b"\xc1", "bad_frame", None),
    ("reserved-c1-as-value", b"\x81\xa2id\xc1", "bad_frame", None),
    ("truncated-map", b"\x82\xa2id\x01", "bad_frame", None),
    ("trailing-byte", req(2, "whoami") + b"\x00", "bad_frame", ANY_ID),
    ("two-documents", req(3, "whoami") + req(4, "whoami"), "bad_frame", ANY_ID),
    ("ext-root", b"\xd4\x01\x00", "bad_frame", None),
    ("timestamp-ext", b"\xd6\xff\x00\x00\x00\x00", "bad_frame", None),
    ("ext-in-args", req(5, "free", {"county": msgpack.ExtType(1, b"01")}), "bad_frame", ANY_ID),
    ("depth-5", req(6, "free", {"x": [[[1]]]}), "bad_frame", ANY_ID),
    ("array-257", req(7, "free", {"x": list(range(257))}), "bad_frame", ANY_ID),
    ("map-257", req(8, "free", {f"k{i}": i for i in range(257)}), "bad_frame", ANY_ID),
    ("objects-over-4096", many_objects(), "bad_frame", ANY_ID),
    ("array32-count-4g", b"\xdd\xff\xff\xff\xff", "bad_frame", None),
    ("map32-count-4g", b"\xdf\xff\xff\xff\xff", "bad_frame", None),
    ("str32-key-4g", b"\x81\xdb\xff\xff\xff\xff", "bad_frame", None),
    ("bin32-value-4g", b"\x81\xa2id\xc6\xff\xff\xff\xff", "bad_frame", None),
    ("depth-4-is-fine", req(9, "search", {"children": [{"age": 3, "sex": "f"}]}),
     "bad_request", 9),
    ("array-256-is-fine", req(10, "free", {"x": [0] * 256}), "bad_request", 10),
    ("empty-map", b"\x80", "bad_request", None),
    ("missing-op", packb({"id": 11}), "bad_request", 11),
    ("missing-id", packb({"op": "whoami"}), "bad_request", None),
    ("negative-id", packb({"id": -1, "op": "whoami"}), "bad_request", None),
    ("string-id", packb({"id": "12", "op": "whoami"}), "bad_request", None),
    ("float-id", packb({"id": 13.0, "op": "whoami"}), "bad_request", None),
    ("unknown-op", req(14, "launch.missiles"), "unknown_op", 14),
    ("bin-op", packb({"id": 15, "op": b"whoami"}), "bad_request", 15),
    ("extra-top-key", req(16, "whoami", x=1), "bad_request", 16),
    ("int-key", packb({"id": 17, "op": "whoami", 1: 2}), "bad_request", ANY_ID),
    ("duplicate-op", b"\x83\xa2id\x12\xa2op" + fixstr_raw(b"whoami") + b"\xa2op"
     + fixstr_raw(b"whoami"), "bad_request", ANY_ID),
    ("args-array", req(19, "whoami", [1]), "bad_request", 19),
    ("unknown-field", req(20, "free", {"colour": "red"}), "bad_request", 20),
    ("county-99", req(21, "free", {"county": "99"}), "bad_request", 21),
    ("county-int", req(22, "free", {"county": 1}), "bad_request", 22),
    ("county-bin", req(23, "free", {"county": b"01"}), "bad_request", 23),
    ("municipality-0000", req(24, "shelter.list", {"municipality": "0000"}), "bad_request", 24),
    ("shelter-id-leading-dash", req(25, "shelter.show", {"shelter": "-frida"}),
     "bad_request", 25),
    ("shelter-id-33", req(26, "shelter.show", {"shelter": "a" * 33}), "bad_request", 26),
    ("shelter-show-no-args", req(27, "shelter.show"), "bad_request", 27),
    ("protection-float", shelter_add(28, protection=2.0), "bad_request", 28),
    ("protection-4", shelter_add(29, protection=4), "bad_request", 29),
    ("name-control-char", shelter_add(30, name="Jour\x01"), "bad_request", 30),
    ("name-blank", shelter_add(31, name="   "), "bad_request", 31),
    ("groups-duplicate", shelter_add(32, groups=["women", "women"]), "bad_request", 32),
    ("phone-letters", shelter_add(33, phone="ring oss"), "bad_request", 33),
    ("personal-number-in-id", req(34, "shelter.show", {"shelter": "19121212-1212"}),
     "personal_data", 34),
    ("address-in-name", shelter_add(35, name="Storgatan 12"), "personal_data", 35),
    ("id-uint64-max", req(2**64 - 1, "whoami"), "ok", 2**64 - 1),
    ("id-zero", req(0, "whoami"), "ok", 0),
]


def hostile_check(conn, body, code, rid):
    """Sends one frame and returns a description of what was wrong with the reply, or None."""
    conn.send_frame(body)
    reply = conn.read_frame()
    got = "ok" if reply["ok"] else reply["error"]["code"]
    problems = []
    if code == "ok":
        if got in PROTOCOL_LEVEL:
            problems.append(f"refused at the protocol level with {got}: {reply}")
    elif got != code:
        problems.append(f"code {got}, expected {code}: {reply}")
    if rid is not ANY_ID and reply["id"] != rid:
        problems.append(f"id {reply['id']!r}, expected {rid!r}")
    if rid is ANY_ID and reply["id"] is not None and not isinstance(reply["id"], int):
        problems.append(f"id {reply['id']!r}")
    return "; ".join(problems) or None


def assert_alive(env):
    with env.connect(*ADMIN) as c:
        assert c.call("whoami") == {"role": "admin", "id": "ops-anna"}
    assert env.admin.ok("whoami")["id"] == "ops-anna"


def test_own_hostile_table(env):
    failures = []
    conn = env.connect(*ADMIN)
    for name, body, code, rid in OWN_TABLE:
        try:
            p = hostile_check(conn, body, code, rid)
            if p:
                failures.append(f"{name}: {p}")
            # The connection survives every row and a valid request resets the error budget.
            assert conn.call("whoami")["role"] == "admin"
        except (ConnectionClosed, TimeoutError) as e:
            failures.append(f"{name}: connection lost: {e}")
            conn = env.connect(*ADMIN)
    assert not failures, "\n".join(failures)
    assert_alive(env)


def read_tsv(path):
    rows = []
    header = None
    for line in path.read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        cols = line.split("\t")
        if header is None:
            header = cols
            continue
        cols += [""] * (len(header) - len(cols))
        rows.append(dict(zip(header, cols)))
    return rows


def test_shared_hostile_table(env):
    """Every row of tests/hostile/frames.tsv through a real connection."""
    if not FRAMES_TSV.exists():
        pytest.skip(f"{FRAMES_TSV} does not exist (the shared hostile-frame table)")
    rows = read_tsv(FRAMES_TSV)
    assert rows, "frames.tsv has no rows"
    failures = []
    conn = env.connect(*ADMIN)
    for row in rows:
        name, code = row["name"], row["code"]
        data = bytes.fromhex(row["hex"])
        if row["kind"] == "body":
            data = frame(data)
        else:
            assert row["kind"] == "stream", row
        rid = None if row["id"] == "nil" else int(row["id"])
        try:
            if row["survives"] == "yes":
                conn.send_raw(data)
                reply = conn.read_frame()
                got = "ok" if reply["ok"] else reply["error"]["code"]
                if code == "ok" and got in PROTOCOL_LEVEL:
                    failures.append(f"{name}: refused with {got}: {reply}")
                elif code != "ok" and got != code:
                    failures.append(f"{name}: code {got}, expected {code}: {reply}")
                if reply["id"] != rid:
                    failures.append(f"{name}: id {reply['id']!r}, expected {rid!r}")
                if not conn.is_open(timeout=5):
                    failures.append(f"{name}: connection closed, expected it to survive")
                    conn = env.connect(*ADMIN)
            else:
                with env.connect(*ADMIN) as c:
                    c.send_raw(data)
                    got = c.wait_closed(timeout=10)
                    codes = ["ok" if r["ok"] else r["error"]["code"] for r in got]
                    if codes[:1] != [code]:
                        failures.append(f"{name}: replies {codes}, expected {code} first")
                    elif len(codes) != 1:
                        failures.append(f"{name}: {len(codes)} replies before the close")
                    elif got[0]["id"] != rid:
                        failures.append(f"{name}: id {got[0]['id']!r}, expected {rid!r}")
        except TimeoutError as e:
            failures.append(f"{name}: {e}")
            conn.close()
            conn = env.connect(*ADMIN)
        except ConnectionClosed as e:
            failures.append(f"{name}: connection lost: {e}")
            conn = env.connect(*ADMIN)
    assert not failures, f"{len(failures)} of {len(rows)} rows failed:\n" + "\n".join(failures)
    assert_alive(env)


def test_valid_request_of_every_op(env):
    """Each op's fully filled-in request passes protocol validation, whoever sends it."""
    if not VALID_TSV.exists():
        pytest.skip(f"{VALID_TSV} does not exist")
    rows = read_tsv(VALID_TSV)
    failures = []
    for role, ident in (ADMIN, ("shelter", "frida-sthlm"), ("social", "0180")):
        with env.connect(role, ident) as conn:
            for row in rows:
                # A watch turns its connection into a stream: it gets one of its own.
                c = env.connect(role, ident) if row["op"] == "watch" else conn
                c.send_frame(bytes.fromhex(row["hex"]))
                reply = c.recv_reply(int(row["id"]))
                if not reply["ok"] and reply["error"]["code"] in PROTOCOL_LEVEL:
                    failures.append(f"{role}: {row['op']}: {reply['error']}")
    assert not failures, "\n".join(failures)
    assert_alive(env)


def test_random_garbage(env):
    rng = random.Random(20240401)
    conn = env.connect(*ADMIN)
    seen = set()
    for i in range(300):
        body = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 300)))
        conn.send_frame(body)
        reply = conn.read_frame()
        assert reply["ok"] is False, (body.hex(), reply)
        code = reply["error"]["code"]
        assert code in {"bad_frame", "bad_request", "unknown_op"}, (body.hex(), reply)
        seen.add(code)
        if i % 10 == 9:
            assert conn.call("whoami")["role"] == "admin"
    assert "bad_frame" in seen
    assert_alive(env)


def test_random_bytes_without_framing(env):
    """Bytes that are not frames at all (starting 0xff, so the length they imply is far above
    the maximum): one too_large reply with a nil id, then the connection is closed."""
    rng = random.Random(7)
    for _ in range(5):
        with env.connect(*ADMIN) as c:
            junk = bytes([0xff]) + bytes(rng.getrandbits(8) for _ in range(300))
            c.send_raw(junk)
            got = c.wait_closed(timeout=10)
            assert [r["error"]["code"] for r in got] == ["too_large"]
            assert got[0]["id"] is None
    assert_alive(env)


def test_zero_length_prefix_closes(env):
    with env.connect(*ADMIN) as c:
        assert c.call("whoami")
        c.send_raw(b"\x00\x00\x00\x00" + frame(req(1, "whoami")))
        got = c.wait_closed(timeout=10)
        assert len(got) == 1, got
        assert got[0]["ok"] is False and got[0]["error"]["code"] == "bad_frame"
        assert got[0]["id"] is None
    assert_alive(env)


@pytest.mark.parametrize("length", [65537, 1 << 20, 0xFFFFFFFF])
def test_oversized_length_prefix_closes(env, length):
    with env.connect(*ADMIN) as c:
        c.send_raw(struct.pack(">I", length) + b"\x80" * 16)
        got = c.wait_closed(timeout=10)
        assert len(got) == 1, got
        assert got[0]["ok"] is False and got[0]["error"]["code"] == "too_large"
        assert got[0]["id"] is None
    assert_alive(env)


def test_frame_of_exactly_the_maximum_size(env):
    """65,536 bytes is allowed: the frame is read and refused for its content only."""
    base = len(req(1, "free", {"x": ""}))
    n = 65536 - base - 2
    body = req(1, "free", {"x": "a" * n})
    while len(body) > 65536:
        n -= 1
        body = req(1, "free", {"x": "a" * n})
    body = req(1, "free", {"x": "a" * (n + 65536 - len(body))})
    assert len(body) == 65536
    with env.connect(*ADMIN) as c:
        c.send_frame(body)
        reply = c.read_frame()
        assert reply["id"] == 1 and reply["error"]["code"] == "bad_request", reply
        assert c.call("whoami")["role"] == "admin"


def test_error_budget_closes_a_connection_that_only_sends_garbage(env):
    with env.connect(*ADMIN) as c:
        for _ in range(15):
            c.send_frame(b"\x01")
            assert c.read_frame()["error"]["code"] == "bad_frame"
        # A valid request in between resets the count.
        assert c.call("whoami")["role"] == "admin"
        for _ in range(15):
            c.send_frame(b"\x01")
            assert c.read_frame()["error"]["code"] == "bad_frame"
        assert c.call("whoami")["role"] == "admin"
        # Sixteen in a row: each is answered, and the connection is closed after the
        # sixteenth reply; the four frames behind it are never answered.
        c.send_raw(frame(b"\x01") * 20)
        got = c.wait_closed(timeout=10)
        assert all(r["error"]["code"] == "bad_frame" for r in got)
        assert len(got) == 16, f"{len(got)} refused frames answered before the close"
    assert_alive(env)


@pytest.mark.daemon_config({"server": {"frame_timeout": "1s"}})
def test_incomplete_frame_times_out(env):
    with env.connect(*ADMIN) as c:
        c.send_raw(struct.pack(">I", 100) + b"\x83\xa2")
        c.wait_closed(timeout=10)
    with env.connect(*ADMIN) as c:
        c.send_raw(b"\x00\x00")
        c.wait_closed(timeout=10)
    assert_alive(env)


def test_pipelined_requests_are_all_answered(env):
    """More requests than the 32 in flight: the server stops reading, then answers all."""
    with env.connect(*ADMIN) as c:
        ops = []
        for i in range(150):
            ops.append(("whoami", None) if i % 3 else ("shelter.list", None))
        ops.append(("free", {"county": "99"}))
        replies = c.pipeline(ops, timeout=30)
        assert all(r["ok"] for r in replies[:-1])
        assert replies[-1]["error"]["code"] == "bad_request"
        assert replies[0]["result"] == {"shelters": []}
        assert replies[1]["result"] == {"role": "admin", "id": "ops-anna"}


def test_garbage_on_one_connection_does_not_disturb_others(env):
    errors = []

    def well_behaved():
        try:
            with env.connect("social", "0180") as c:
                for _ in range(30):
                    if c.call("whoami") != {"role": "social", "id": "0180"}:
                        errors.append("wrong whoami")
        except Exception as e:  # collected and asserted below
            errors.append(repr(e))

    def hostile():
        rng = random.Random(99)
        try:
            for _ in range(10):
                with env.connect(*ADMIN) as c:
                    c.send_raw(frame(bytes(rng.getrandbits(8) for _ in range(64))) * 20)
                    c.send_raw(b"\x00\x00\x00\x00")
                    c.wait_closed(timeout=10)
        except Exception as e:
            errors.append("hostile: " + repr(e))

    threads = [threading.Thread(target=well_behaved) for _ in range(8)]
    threads.append(threading.Thread(target=hostile))
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
        assert not t.is_alive(), "a client thread hung"
    assert not errors, errors
    assert_alive(env)
