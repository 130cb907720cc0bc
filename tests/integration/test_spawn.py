"""redis.mode = spawn, the embedded default: fristadd runs its own redis-server (AOF with
appendfsync always, unix socket in the data directory), restarts it if it dies, stops it on
exit, and nothing confirmed is lost across either restart."""

import os
import re
import signal

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
