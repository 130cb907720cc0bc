"""The service manager's view (Type=notify): READY=1 once the index is loaded, RELOADING=1 and
READY=1 around a SIGHUP, STOPPING=1 on SIGTERM, sent with sd_notify to the datagram socket that
NOTIFY_SOCKET names, as systemd would set it; here the test listens on that socket itself."""

import os
import socket
import time

import pytest

BUILT_WITH_NOTIFY = "notify=yes" in os.environ.get("FRISTAD_INSTALL_PATHS", "").splitlines()


class Notifications:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.seen = []

    def wait_for(self, field, timeout=20):
        """Every message up to and including the first with `field` (such as READY=1)."""
        got = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"no {field} from fristadd; it sent {self.seen}")
            self.sock.settimeout(left)
            try:
                msg = self.sock.recv(4096).decode()
            except socket.timeout:
                continue
            self.seen.append(msg)
            got.append(msg)
            if field in msg.split("\n"):
                return got


@pytest.mark.skipif(not BUILT_WITH_NOTIFY, reason="built without libsystemd: no sd_notify")
def test_ready_reloading_stopping(env_unstarted):
    env = env_unstarted
    notes = Notifications(env.workdir / "notify.sock")
    env.daemon.extra_env["NOTIFY_SOCKET"] = str(env.workdir / "notify.sock")
    env.redis.start()
    env.daemon.spawn()
    ready = notes.wait_for("READY=1")
    env.daemon.wait_ready()
    assert any(f"STATUS=ready: listening on 127.0.0.1:{env.daemon.port}" in m for m in ready)

    env.daemon.reload()
    reload_msgs = notes.wait_for("READY=1")
    assert "RELOADING=1" in reload_msgs[0].split("\n"), reload_msgs
    assert any(f.startswith("MONOTONIC_USEC=") for f in reload_msgs[0].split("\n"))

    env.daemon.stop()
    assert "STOPPING=1" in notes.wait_for("STOPPING=1")[-1].split("\n")
    notes.sock.close()
