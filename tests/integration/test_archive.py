"""Archiving instead of deletion ([retention] mode = archive): a closed hold or placement whose
reference retention has passed is appended to the month's archive file (mode 0600, one JSON
object per line, chained by SHA-256) and only then deleted from Redis and, by the append-only
file rewrite, from the disk. `fristadd --verify-archive FILE` checks the chain and names the
first line that breaks it. Nothing is deleted before it is archived: while the archive cannot
be written the records stay, and a daemon in delete mode deletes nothing in a store that has
been archived into."""

import hashlib
import json
import os
import stat
import subprocess
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from conftest import FRISTADD, LOW_RISK, wait_for
from referrals import redis_command

FRIDA = "frida-sthlm"
SHORT = {"reference_retention": "1s", "sweep_interval": "100ms", "disk_purge_delay": "100ms"}


def archive_config(env):
    """Archive mode into <workdir>/archive, with a short retention."""
    cfg = {"holds": dict(SHORT),
           "retention": {"mode": "archive", "archive_dir": str(env.workdir / "archive")}}
    env.daemon.update_config(cfg)
    return env.workdir / "archive"


def month_files(directory):
    """The archive file of this month (Swedish local time, as the daemon names it), and of the
    next one in case the month turns during the test."""
    now = datetime.now(ZoneInfo("Europe/Stockholm"))
    nxt = datetime(now.year + (now.month == 12), now.month % 12 + 1, 1)
    return [Path(directory) / f"fristad-{d.year:04d}-{d.month:02d}.jsonl" for d in (now, nxt)]


def archive_lines(directory):
    lines = []
    for f in month_files(directory):
        if f.is_file():
            lines += f.read_text(encoding="utf-8").splitlines()
    return lines


def records(directory):
    return [json.loads(line)["record"] for line in archive_lines(directory)]


def exists(env, key):
    return redis_command(env.redis.sock, "EXISTS",
                         "{%s}:%s" % (env.daemon.namespace, key)) == ":1"


def disk(env):
    """Everything Redis keeps on disk: the append-only files."""
    return b"".join(p.read_bytes() for p in env.redis.dir.rglob("*") if p.is_file())


def verify(path):
    r = subprocess.run([str(FRISTADD), "--verify-archive", str(path)], capture_output=True,
                       text=True, timeout=30)
    return r.returncode, r.stdout + r.stderr


def chain_line(prev, record_text):
    """An archive line as the daemon writes it, for a record given as JSON text."""
    h = hashlib.sha256((prev + record_text).encode()).hexdigest()
    return '{"hash":"%s","prev":"%s","record":%s}' % (h, prev, record_text), h


def frida(env):
    env.add_shelter(FRIDA, "Kvinnojouren Frida", municipality="0180", competences=["hbv"])
    for u in ("r1", "r2", "r3"):
        env.add_unit(FRIDA, u, 4)
        env.cli("shelter", FRIDA).ok("vacancy", FRIDA, u, "free")


def test_closed_records_are_archived_then_deleted(env_unstarted):
    env = env_unstarted
    directory = archive_config(env)
    env.start()
    frida(env)
    social = env.cli("social", "0180")
    shelter = env.cli("shelter", FRIDA)
    declined = social.ok("hold", FRIDA, "r1", *LOW_RISK, "--ref", "KS-ARKIV-1",
                         "--callback", "070-555 12 34", "--child", "4f", "--need", "hbv")["hold"]
    shelter.ok("decline", declined, "--reason", "needs", "--note", "ingen tolk i natt")
    placed = social.ok("hold", FRIDA, "r2", *LOW_RISK, "--ref", "KS-ARKIV-2",
                       "--child", "9m", "--child", "15f")["hold"]
    placement = shelter.ok("confirm", placed, "--child-basis", "lvu", "--child-basis",
                           "sol")["placement"]["placement"]
    shelter.ok("discharge", placement)
    still_open = social.ok("hold", FRIDA, "r3", *LOW_RISK, "--ref", "KS-OPPEN")["hold"]

    gone = (f"hold:{declined}", f"hold:{placed}", f"pl:{placement}")
    wait_for(lambda: not any(exists(env, k) for k in gone), 20,
             "the closed records to be archived and deleted")
    # In the archive, whole: ids, times, states, municipality, shelter, unit, household,
    # reference, decline code and note; not the worker's callback number.
    by_id = {(r["record"], r[r["record"]]): r for r in records(directory)}
    assert set(by_id) == {("hold", declined), ("hold", placed), ("placement", placement)}, by_id
    d = by_id[("hold", declined)]
    assert (d["state"], d["reason"], d["note"], d["ref"]) == \
        ("declined", "needs", "ingen tolk i natt", "KS-ARKIV-1")
    assert (d["shelter"], d["unit"], d["municipality"], d["by"]) == \
        (FRIDA, "r1", "0180", "social:0180")
    assert d["children"] == [{"age": 4, "sex": "f"}] and d["need"] == ["hbv"]
    assert d["created_at"] <= d["closed_at"] <= d["archived_at"]
    assert "callback" not in d and "070-555 12 34" not in "\n".join(archive_lines(directory))
    p = by_id[("placement", placement)]
    assert (p["state"], p["hold"], p["ref"]) == ("discharged", placed, "KS-ARKIV-2")
    assert p["children"] == [{"age": 9, "sex": "m", "basis": "lvu"},
                             {"age": 15, "sex": "f", "basis": "sol"}]
    assert p["placed_at"] <= p["discharged_at"]
    assert by_id[("hold", placed)]["placement"] == placement
    # The open hold is neither archived nor deleted.
    assert exists(env, f"hold:{still_open}")
    assert env.admin.ok("stats")["archived"] == 3

    # The file: this month's, only for its owner, and its chain holds.
    path = next(f for f in month_files(directory) if f.is_file())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    code, out = verify(path)
    assert code == 0 and "3 lines, chain intact" in out, out
    # Gone from the disk too: the append-only file is rewritten without them.
    wait_for(lambda: b"KS-ARKIV-1" not in disk(env) and b"KS-ARKIV-2" not in disk(env), 20,
             "the references to leave the append-only file")
    assert b"KS-OPPEN" in disk(env)
    # The daemon's log names the file and the chain's head, never a reference.
    log = env.daemon.log_text()
    assert f"to {path}; chain head " in log
    assert "KS-ARKIV" not in log and "ingen tolk" not in log


def test_verification_names_the_line_that_was_altered_or_removed(env_unstarted, tmp_path):
    env = env_unstarted
    directory = archive_config(env)
    env.start()
    frida(env)
    social = env.cli("social", "0180")
    for i, u in enumerate(("r1", "r2", "r3")):
        hid = social.ok("hold", FRIDA, u, *LOW_RISK, "--ref", f"KS-{i}")["hold"]
        social.ok("release", hid)
        wait_for(lambda: not exists(env, f"hold:{hid}"), 20, "the released hold to be archived")
    lines = archive_lines(directory)
    assert len(lines) == 3, lines
    assert verify(next(f for f in month_files(directory) if f.is_file()))[0] == 0

    def check(name, new_lines, line_no):
        f = tmp_path / name
        f.write_text("".join(ln + "\n" for ln in new_lines), encoding="utf-8")
        code, out = verify(f)
        assert code == 1 and f"line {line_no}:" in out, (name, out)
        return out

    # A changed reference in line 2: that line's hash no longer matches.
    assert "KS-1" in lines[1]
    out = check("altered", [lines[0], lines[1].replace("KS-1", "KS-9"), lines[2]], 2)
    assert "changed" in out
    # Line 2 removed: the line now in its place does not follow line 1.
    check("removed", [lines[0], lines[2]], 2)
    # The first line removed: the file no longer starts the chain.
    check("first_removed", lines[1:], 1)
    # Line 2 rewritten with a fresh hash of its own: line 3 no longer follows it.
    prev = json.loads(lines[0])["hash"]
    forged, _ = chain_line(prev, lines[1][lines[1].index('"record":') + 9:-1]
                           .replace("KS-1", "KS-9"))
    check("rehashed", [lines[0], forged, lines[2]], 3)
    # Cut off in the middle of the last line.
    f = tmp_path / "cut"
    f.write_text(lines[0] + "\n" + lines[1][:40], encoding="utf-8")
    code, out = verify(f)
    assert code == 1 and "line 2:" in out, out

    # A record archived a second time (an interruption between writing it and deleting it
    # from the store) chains on like any line: reported, not a fault.
    head = json.loads(lines[2])["hash"]
    again, _ = chain_line(head, lines[0][lines[0].index('"record":') + 9:-1])
    f = tmp_path / "twice"
    f.write_text("".join(ln + "\n" for ln in lines + [again]), encoding="utf-8")
    code, out = verify(f)
    assert code == 0 and "line 4 archives the hold" in out and "of line 1 again" in out, out
    # An unreadable file is neither intact nor broken.
    assert verify(tmp_path / "missing")[0] == 2


def test_nothing_is_deleted_before_it_is_archived(env_unstarted):
    """While the month's file cannot be written, closed records stay in Redis; a daemon in
    delete mode on a store that has been archived into keeps them too; once the archive can be
    written they are archived, once, and deleted."""
    env = env_unstarted
    directory = archive_config(env)
    directory.mkdir(mode=0o700)
    blockers = month_files(directory)
    for b in blockers:  # a directory where the file should be: no one can write it, not root
        b.mkdir()
    env.start()
    frida(env)
    social = env.cli("social", "0180")
    hid = social.ok("hold", FRIDA, "r1", *LOW_RISK, "--ref", "KS-BEHALL")["hold"]
    social.ok("release", hid)
    wait_for(lambda: "archiving 1 records failed" in env.daemon.log_text(), 20,
             "the daemon to fail to write the archive")
    assert exists(env, f"hold:{hid}")
    assert b"KS-BEHALL" in disk(env)

    # A daemon in delete mode on this store deletes nothing that was not archived.
    env.daemon.stop()
    env.daemon.update_config({"retention": {"mode": "delete"}})
    offset = env.daemon.log_size()
    env.daemon.start()
    wait_for(lambda: "records past their retention are kept" in env.daemon.log_text(offset),
             20, "the daemon in delete mode to keep the record")
    assert exists(env, f"hold:{hid}")

    # Archive mode again, and the file can be written: archived once, then deleted.
    env.daemon.stop()
    for b in blockers:
        b.rmdir()
    env.daemon.update_config({"retention": {"mode": "archive"}})
    env.daemon.start()
    wait_for(lambda: not exists(env, f"hold:{hid}"), 30, "the hold to be archived and deleted")
    archived = [r for r in records(directory) if r.get("hold") == hid]
    assert len(archived) == 1 and archived[0]["ref"] == "KS-BEHALL", archived


@pytest.mark.daemon_config({"holds": {"reference_retention": "1s", "sweep_interval": "100ms"}})
def test_delete_mode_writes_no_archive(env):
    """Today's behaviour stays the default: closed records are deleted, nothing is written."""
    frida(env)
    social = env.cli("social", "0180")
    hid = social.ok("hold", FRIDA, "r1", *LOW_RISK, "--ref", "KS-RADERA")["hold"]
    social.ok("release", hid)
    wait_for(lambda: not exists(env, f"hold:{hid}"), 20, "the released hold to be deleted")
    assert env.admin.ok("stats")["archived"] == 0
    assert not any(p.name.startswith("fristad-") for p in env.workdir.rglob("*.jsonl"))
