"""redis.mode = spawn, the embedded default: fristadd runs its own redis-server (AOF with
appendfsync always, unix socket in the data directory), restarts it if it dies, stops it on
exit, and nothing confirmed is lost across either restart."""

import os
import re
import signal
import stat

import pytest

from conftest import REDIS_SERVER, wait_for, LOW_RISK


def spawn_mode(env):
    env.daemon.update_config({"redis": {"mode": "spawn", "address": None,
                                        "server": REDIS_SERVER}})


def redis_child(env):
    """The pid of the redis-server the daemon started last."""
    pids = re.findall(r"redis-server started \(pid (\d+)", env.daemon.log_text())
    assert pids, "no redis-server start in the log"
    return int(pids[-1])


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def test_spawn_restart_and_persistence(env_unstarted):
    env = env_unstarted
    spawn_mode(env)
    env.daemon.start()
    env.add_shelter("frida-sthlm", "Kvinnojouren Frida", municipality="0180")
    env.add_unit("frida-sthlm", "r1", 2)
    frida = env.cli("shelter", "frida-sthlm")
    frida.ok("vacancy", "frida-sthlm", "r1", "free")
    social = env.cli("social", "0180")
    hold = social.ok("hold", "frida-sthlm", "r1", *LOW_RISK, "--ref", "KS-1")["hold"]
    placement = frida.ok("confirm", hold)["placement"]["placement"]
    assert (env.daemon.data_dir / "redis.sock").exists()

    # The embedded Redis dies: fristadd starts it again and service resumes, data intact.
    child = redis_child(env)
    os.kill(child, signal.SIGKILL)
    wait_for(lambda: re.findall(r"redis-server started \(pid (\d+)",
                                env.daemon.log_text())[-1] != str(child),
             15, "fristadd to restart redis-server")
    wait_for(lambda: social("placements").exit == 0, 20, "service after the restart")
    places = social.ok("placements")["placements"]
    assert [p["placement"] for p in places] == [placement]
    frida.ok("vacancy", "confirm", "frida-sthlm")  # writes work again

    # SIGTERM stops the daemon and its Redis; a new daemon finds everything.
    child = redis_child(env)
    env.daemon.stop()
    assert not alive(child), "redis-server outlived fristadd"
    env.daemon.start()
    assert env.show("frida-sthlm")["units"][0]["state"] == "occupied"
    assert [p["placement"] for p in social.ok("placements")["placements"]] == [placement]


def test_data_directory_is_locked(env_unstarted, tmp_path):
    env = env_unstarted
    spawn_mode(env)
    env.daemon.start()
    # A second daemon on the same data directory must refuse to start.
    conf = tmp_path / "second.conf"
    text = env.daemon.config_path.read_text()
    conf.write_text(text)
    import subprocess
    from conftest import FRISTADD
    r = subprocess.run([str(FRISTADD), "-c", str(conf)], capture_output=True, text=True,
                       timeout=20)
    assert r.returncode != 0
    assert "another fristadd is using this data directory" in r.stderr


def modes(root):
    """{path relative to root: mode} of root and everything below it, sockets aside."""
    out = {".": stat.S_IMODE(os.stat(root).st_mode)}
    for p in root.rglob("*"):
        if not p.is_socket():
            out[str(p.relative_to(root))] = stat.S_IMODE(p.lstat().st_mode)
    return out


def test_data_dir_and_its_files_are_private(env_unstarted):
    """Issue 11 item 7: a data directory that already existed with mode 0755 kept it, and the
    append-only file was world-readable. The directory is made 0700 and every file in it 0600,
    those Redis writes from then on too."""
    env = env_unstarted
    spawn_mode(env)
    data = env.daemon.data_dir
    os.chmod(data, 0o755)
    (data / "appendonlydir").mkdir(mode=0o755)
    os.chmod(data / "appendonlydir", 0o755)
    old = data / "left-over.log"
    old.write_text("from before\n")
    os.chmod(old, 0o644)
    env.daemon.start()
    env.add_shelter("frida-sthlm", "Kvinnojouren Frida", municipality="0180")
    env.add_unit("frida-sthlm", "r1", 2)
    env.cli("shelter", "frida-sthlm").ok("vacancy", "frida-sthlm", "r1", "free")
    found = modes(data)
    assert any(name.startswith("appendonlydir/") and ".aof" in name for name in found), found
    wrong = {name: oct(mode) for name, mode in found.items()
             if mode & 0o077 or (mode != 0o700 and (data / name).is_dir())}
    assert not wrong, f"readable by others in the data directory: {wrong}"
    assert found["."] == 0o700 and found["appendonlydir"] == 0o700, found
