"""`meson install` into a staging directory (DESTDIR), and what an operator then has: the
installed daemon starts with a configuration of only [server] listen, [tls] and [redis] and
answers the installed client, because its reference data and policy are installed where it
looks by default; the systemd unit verifies and its exposure is 2.5 or better; the sysusers.d
and tmpfiles.d entries make the user and directories; the man pages render without warnings;
the bash completion completes; the protocol library builds a program through pkg-config.

systemd-analyze, systemd-sysusers, systemd-tmpfiles and man come from Debian's systemd and
man-db (scripts/install-deps --test); a part whose tool is missing is skipped, saying which.
"""

import os
import re
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import TMP_BASE, UNDER_MESON, wait_for

BUILD_ROOT = os.environ.get("FRISTAD_BUILD_ROOT")
PATHS = dict(line.split("=", 1) for line in
             os.environ.get("FRISTAD_INSTALL_PATHS", "").splitlines() if "=" in line)


def need(tool, package):
    path = shutil.which(tool)
    if not path:
        msg = f"{tool} is not installed (Debian package {package}): run scripts/install-deps --test"
        if UNDER_MESON:
            pytest.fail(msg)
        pytest.skip(msg)
    return path


def run(argv, **kw):
    r = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=120, **kw)
    return r


@pytest.fixture(scope="module")
def stage():
    """A staged installation of this build: its root, and its paths below it."""
    if not BUILD_ROOT or not PATHS:
        pytest.skip("run under meson test: FRISTAD_BUILD_ROOT and FRISTAD_INSTALL_PATHS are unset")
    meson = need("meson", "meson")
    root = Path(tempfile.mkdtemp(prefix="fristad-install-", dir=TMP_BASE))
    r = run([meson, "install", "-C", BUILD_ROOT, "--destdir", root, "--no-rebuild", "--quiet"])
    assert r.returncode == 0, f"meson install failed:\n{r.stdout}{r.stderr}"
    yield root, {k: root / v.lstrip("/") for k, v in PATHS.items() if v.startswith("/")}
    shutil.rmtree(root, ignore_errors=True)


def test_everything_an_operator_needs_is_installed(stage):
    root, p = stage
    expected = [
        p["sbindir"] / "fristadd", p["bindir"] / "fristad",
        p["datadir"] / "municipalities.csv", p["datadir"] / "adjacency.csv",
        p["datadir"] / "policy.conf", p["datadir"] / "README.md",
        p["docdir"] / "examples" / "fristadd.conf", p["docdir"] / "README.md",
        p["unitdir"] / "fristadd.service", p["sysusersdir"] / "fristad.conf",
        p["tmpfilesdir"] / "fristad.conf",
        p["mandir"] / "man1" / "fristad.1", p["mandir"] / "man5" / "fristadd.conf.5",
        p["mandir"] / "man8" / "fristadd.8", p["completionsdir"] / "fristad",
        p["includedir"] / "fristad" / "proto.h", p["libdir"] / "libfristad-proto.a",
        p["libdir"] / "pkgconfig" / "fristad-proto.pc",
    ]
    missing = [str(f.relative_to(root)) for f in expected if not f.is_file()]
    assert not missing, f"not installed: {missing}"
    for exe in (p["sbindir"] / "fristadd", p["bindir"] / "fristad"):
        assert os.access(exe, os.X_OK), exe
    # The unit's paths follow the prefix.
    unit = (p["unitdir"] / "fristadd.service").read_text()
    assert f"ExecStart={PATHS['sbindir']}/fristadd -c {PATHS['sysconfdir']}/fristad/fristadd.conf" \
        in unit, unit
    assert f"Type={'notify' if PATHS['notify'] == 'yes' else 'exec'}" in unit
    assert "@" not in unit.replace("@system-service", "").replace("@privileged", "") \
        .replace("@resources", ""), "a placeholder was left in the unit"


def test_installed_daemon_starts_with_a_minimal_configuration(stage, env_unstarted):
    root, p = stage
    env = env_unstarted
    env.redis.start()
    pki = env.pki
    config = {
        "server": {"listen": "127.0.0.1:0"},
        "tls": {"cert": pki.server_crt, "key": pki.server_key, "ca": pki.ca},
        "redis": {"mode": "connect", "address": env.redis.address,
                  "namespace": env.daemon.namespace},
    }
    # The metrics listener has a fixed default port; only if something else holds it does
    # this test move it, so that it can run beside a demo on the same machine.
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", 7421))
        except OSError:
            config["metrics"] = {"listen": "127.0.0.1:0"}
    env.daemon.config = config
    env.daemon.update_config({})
    text = env.daemon.config_path.read_text()
    assert "[data]" not in text and "data_dir" not in text, text
    env.daemon.wrapper = []
    import conftest
    conftest_fristadd = conftest.FRISTADD
    try:
        conftest.FRISTADD = p["sbindir"] / "fristadd"
        env.daemon.start()
    finally:
        conftest.FRISTADD = conftest_fristadd
    log = env.daemon.log_text()
    assert "cannot open" not in log, log

    def client(role, ident, *args):
        cert = pki.get(role, ident)
        return run([p["bindir"] / "fristad", "--server", f"127.0.0.1:{env.daemon.port}",
                    "--cert", cert.crt, "--key", cert.key, "--ca", cert.ca, *args],
                   env=env.cli_environ())

    r = client("admin", "ops-anna", "shelter", "add", "frida-sthlm", "--name", "Frida",
               "--kind", "kvinnojour", "--municipality", "Stockholm", "--protection", "2",
               "--phone", "08-555 010 10")
    assert r.returncode == 0, r
    assert client("admin", "ops-anna", "unit", "add", "frida-sthlm", "r1", "--beds", "2") \
        .returncode == 0
    assert client("shelter", "frida-sthlm", "vacancy", "frida-sthlm", "r1", "free") \
        .returncode == 0
    # The installed policy and geography decide: at high risk Stockholm's own shelter is out
    # for a household from Solna (a neighbour), and in for one from Göteborg.
    near = client("social", "0180", "--json", "search", "--from", "Solna", "--risk", "high")
    assert near.returncode == 0 and '"results":[]' in near.stdout, near
    far = client("social", "0180", "search", "--from", "Göteborg", "--risk", "high")
    assert far.returncode == 0 and "Stockholm (0180)" in far.stdout, far


def test_unit_verifies_and_is_hardened(stage):
    root, p = stage
    analyze = need("systemd-analyze", "systemd")
    unit = p["unitdir"] / "fristadd.service"
    # verify checks that the programs a unit runs exist: here they exist below the staging
    # root, so a copy with the root put in front of the prefix is verified, and man finds the
    # staged pages for Documentation=.
    staged = root / "verify" / "fristadd.service"
    staged.parent.mkdir()
    staged.write_text(unit.read_text().replace(PATHS["prefix"] + "/",
                                               str(root) + PATHS["prefix"] + "/"))
    env = {**os.environ, "MANPATH": str(p["mandir"]) + ":"}
    r = run([analyze, "verify", staged], env=env)
    assert r.returncode == 0 and not r.stderr.strip(), f"{r.stdout}{r.stderr}"
    r = run([analyze, "security", "--offline=true", unit])
    m = re.search(r"Overall exposure level for fristadd\.service: (\d+\.\d+)", r.stdout)
    assert m, f"{r.stdout}{r.stderr}"
    exposure = float(m.group(1))
    print(f"systemd-analyze security: exposure {exposure}")
    assert exposure <= 2.5, r.stdout


def test_sysusers_and_tmpfiles_make_the_user_and_directories(stage):
    root, p = stage
    sysusers = need("systemd-sysusers", "systemd")
    tmpfiles = need("systemd-tmpfiles", "systemd")
    if os.geteuid() != 0:
        pytest.skip("systemd-sysusers and systemd-tmpfiles --root need root to set owners")
    (root / "etc").mkdir(exist_ok=True)
    r = run([sysusers, f"--root={root}", p["sysusersdir"] / "fristad.conf"])
    assert r.returncode == 0, r
    passwd = (root / "etc" / "passwd").read_text()
    assert re.search(r"^fristad:x:\d+:\d+:[^:]*:/var/lib/fristad:", passwd, re.M), passwd
    r = run([tmpfiles, f"--root={root}", "--create", p["tmpfilesdir"] / "fristad.conf"])
    assert r.returncode == 0, r
    state = root / "var" / "lib" / "fristad"
    conf = root / PATHS["sysconfdir"].lstrip("/") / "fristad"
    assert state.is_dir() and (state.stat().st_mode & 0o777) == 0o700
    assert conf.is_dir() and (conf.stat().st_mode & 0o777) == 0o750


def test_man_pages_render_without_warnings(stage):
    root, p = stage
    man = need("man", "man-db")
    pages = {"man1/fristad.1": ["search", "--p12", "EXIT STATUS", "municipality"],
             "man5/fristadd.conf.5": ["[metrics]", "listen", "reference_retention",
                                      PATHS["datadir"]],
             "man8/fristadd.8": ["SIGHUP", "/readyz", "READY=1", PATHS["datadir"]]}
    for page, words in pages.items():
        r = run([man, "--warnings", "-l", p["mandir"] / page],
                env={**os.environ, "MANWIDTH": "100", "LC_ALL": "C.UTF-8", "MAN_KEEP_STDERR": "1"})
        assert r.returncode == 0, r
        assert r.stderr.strip() == "", f"{page}: {r.stderr}"
        text = re.sub(r".\x08", "", r.stdout).replace("\u2010", "-")
        for w in words:
            assert w in text, f"{page} lacks {w!r}"


def test_bash_completion_completes_commands_and_values(stage):
    root, p = stage
    bash = need("bash", "bash")
    script = p["completionsdir"] / "fristad"

    def complete(line):
        r = run([bash, "-c", 'source "$0"; read -ra COMP_WORDS <<< "$1"; '
                 '[[ "$1" == *" " ]] && COMP_WORDS+=(""); COMP_CWORD=$((${#COMP_WORDS[@]}-1)); '
                 '_fristad; echo "${COMPREPLY[*]}"', script, line])
        assert r.returncode == 0, r
        return r.stdout.split()

    assert complete("fristad sea") == ["search"]
    assert complete("fristad shelter ") == ["add", "update", "retire", "show", "list"]
    assert complete("fristad search --risk ") == ["low", "moderate", "high", "severe"]
    assert complete("fristad vacancy frida r1 ") == ["free", "occupied", "closed"]
    assert "--idempotency-key" in complete("fristad hold frida r1 --")


def test_protocol_library_builds_a_program_through_pkg_config(stage, tmp_path):
    root, p = stage
    pkg_config = need("pkg-config", "pkg-config")
    cc = need("cc", "gcc")
    env = {**os.environ, "PKG_CONFIG_PATH": str(p["libdir"] / "pkgconfig"),
           "PKG_CONFIG_SYSROOT_DIR": str(root)}
    r = run([pkg_config, "--cflags", "--libs", "fristad-proto"], env=env)
    assert r.returncode == 0, r
    flags = r.stdout.split()
    src = tmp_path / "client.c"
    src.write_text('#include <fristad/proto.h>\n#include <stdio.h>\n'
                   'int main(void) { printf("%s %d\\n", proto_err_code(PROTO_E_CONFLICT), '
                   'proto_municipality_index("0180", 4)); return 0; }\n')
    exe = tmp_path / "client"
    # A sanitizer build installs a sanitized library: the program must link the runtime too.
    sanitize = PATHS.get("sanitize", "none")
    extra = [f"-fsanitize={sanitize}"] if sanitize not in ("", "none") else []
    r = run([cc, src, "-o", exe, *extra, *flags])
    assert r.returncode == 0, r
    r = run([exe])
    assert r.returncode == 0 and r.stdout.split()[0] == "conflict", r
