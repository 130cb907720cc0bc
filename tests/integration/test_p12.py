"""PKCS#12 beside PEM: the client takes its certificate, key and chain from a .p12 file made
with `openssl pkcs12 -export` from the test PKI, the passphrase from FRISTAD_P12_PASS or a
prompt on the terminal (without echo), and refuses a wrong one."""

import json
import os
import pty
import select
import subprocess
import time

import pytest

from conftest import FRISTAD

PASS = "korrekt hästbatteri"


def export(env, cert, path, passphrase, *extra):
    r = subprocess.run(["openssl", "pkcs12", "-export", "-in", cert.crt, "-inkey", cert.key,
                        "-certfile", cert.ca, "-passout", f"pass:{passphrase}", "-out", path,
                        *extra], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r
    return path


def client(env, p12, *args, extra_env=None, flags=True):
    argv = [str(FRISTAD), "--json", "--server", f"{env.daemon.host}:{env.daemon.port}",
            "--ca", str(env.pki.ca)]
    if flags:
        argv += ["--p12", str(p12)]
    proc = subprocess.run([*argv, *args], capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL,
                          env={**env.cli_environ(), **(extra_env or {})})
    return proc


def test_p12_with_passphrase_from_the_environment(env):
    cert = env.cert("social", "0180")
    p12 = export(env, cert, env.workdir / "anna.p12", PASS)
    r = client(env, p12, "whoami", extra_env={"FRISTAD_P12_PASS": PASS})
    assert r.returncode == 0 and json.loads(r.stdout) == {"role": "social", "id": "0180"}, r
    r = client(env, p12, "whoami", extra_env={"FRISTAD_P12_PASS": "wrong"})
    assert r.returncode == 3 and json.loads(r.stdout)["error"]["code"] == "tls", r
    assert "wrong passphrase" in r.stdout
    # No passphrase and no terminal to ask on: a usage error that says what to do.
    r = client(env, p12, "whoami")
    assert r.returncode == 2 and "FRISTAD_P12_PASS" in r.stdout, r
    # A file without a passphrase needs none; one from older tools (RC2, 3DES) works too.
    plain = export(env, cert, env.workdir / "plain.p12", "")
    assert client(env, plain, "whoami").returncode == 0
    legacy = export(env, cert, env.workdir / "legacy.p12", PASS, "-legacy")
    assert client(env, legacy, "whoami", extra_env={"FRISTAD_P12_PASS": PASS}).returncode == 0


def test_p12_from_the_config_file_and_environment(env):
    cert = env.cert("shelter", "frida-sthlm")
    p12 = export(env, cert, env.workdir / "frida.p12", PASS)
    conf = env.workdir / "client.conf"
    conf.write_text("[client]\np12 = frida.p12\n")  # relative to the file
    r = client(env, p12, "--config", conf, "whoami", flags=False,
               extra_env={"FRISTAD_P12_PASS": PASS})
    assert r.returncode == 0 and json.loads(r.stdout)["id"] == "frida-sthlm", r
    r = client(env, p12, "whoami", flags=False,
               extra_env={"FRISTAD_P12": str(p12), "FRISTAD_P12_PASS": PASS})
    assert r.returncode == 0, r
    # Both a p12 file and a PEM pair on the command line is a mistake.
    r = client(env, p12, "--cert", cert.crt, "--key", cert.key, "whoami",
               extra_env={"FRISTAD_P12_PASS": PASS})
    assert r.returncode == 2 and json.loads(r.stdout)["error"]["code"] == "usage", r
    # A PEM pair given as flags wins over a p12 file from the environment.
    r = client(env, p12, "--cert", cert.crt, "--key", cert.key, "whoami", flags=False,
               extra_env={"FRISTAD_P12": str(p12)})
    assert r.returncode == 0, r


def test_passphrase_prompt_on_the_terminal(env):
    cert = env.cert("oncall", "jour-1")
    p12 = export(env, cert, env.workdir / "jour.p12", PASS)
    argv = [str(FRISTAD), "--server", f"{env.daemon.host}:{env.daemon.port}", "--ca",
            str(env.pki.ca), "--p12", str(p12), "whoami"]
    environ = env.cli_environ()
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(argv[0], argv, environ)
    seen = b""
    deadline = time.monotonic() + 30

    def read_until(needle):
        nonlocal seen
        while needle not in seen:
            left = deadline - time.monotonic()
            assert left > 0, f"no {needle!r} from fristad: {seen!r}"
            r, _, _ = select.select([fd], [], [], left)
            if r:
                try:
                    chunk = os.read(fd, 1024)
                except OSError:
                    break
                if not chunk:
                    break
                seen += chunk

    read_until(b"Passphrase for ")
    os.write(fd, PASS.encode() + b"\n")
    read_until(b"oncall jour-1")
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0, seen
    assert PASS.encode() not in seen, "the passphrase was echoed"
