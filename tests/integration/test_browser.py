"""The page in a real browser: Debian's chromium driven by playwright-core (tests/browser), with
each person's client certificate imported into an NSS database of their own (pk12util) and
picked by Chromium's AutoSelectCertificateForUrls policy (scripts/install-deps --test puts it in
/etc/chromium/policies/managed). tests/browser/scenario.mjs is the scenario: a social worker
searches and holds, the shelter's page shows the hold appear without a reload and accepts, and
the social worker's page shows it accepted; a browser without a certificate gets no page; every
role's page is screenshotted and checked with axe-core.

Screenshots are kept as test artefacts in meson-logs/browser/ of the build (or the test's
directory when run by hand)."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import SOURCE_ROOT, UNDER_MESON
from webclient import WEB_CONFIG, web_address

BROWSER_DIR = SOURCE_ROOT / "tests" / "browser"
CHROMIUM = os.environ.get("FRISTAD_CHROMIUM", "/usr/lib/chromium/chromium")
POLICY = Path("/etc/chromium/policies/managed/fristad-tests.json")
NODE = shutil.which("node") or "node"
ROLES = {
    "social": ("social", "0180"),
    "shelter": ("shelter", "frida-uppsala"),
    "admin": ("admin", "ops-anna"),
    "oncall": ("oncall", "socialjouren"),
}

pytestmark = pytest.mark.daemon_config(WEB_CONFIG)


def missing():
    need = []
    if not Path(CHROMIUM).exists():
        need.append(f"chromium ({CHROMIUM})")
    for tool in ("pk12util", "certutil", "node"):
        if not shutil.which(tool):
            need.append(tool)
    if not (BROWSER_DIR / "node_modules" / "playwright-core").exists():
        need.append("the npm packages of tests/browser (npm ci)")
    if not POLICY.exists():
        need.append(f"the certificate policy {POLICY}")
    return need


def nss_home(root, name, cert, ca):
    """A HOME whose NSS database trusts the CA and, with a certificate, holds the person's key."""
    home = root / ("home-" + name)
    db = home / ".pki" / "nssdb"
    db.mkdir(parents=True)

    def run(*argv):
        r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, f"{' '.join(map(str, argv))}:\n{r.stdout}{r.stderr}"

    run("certutil", "-d", f"sql:{db}", "-N", "--empty-password")
    run("certutil", "-d", f"sql:{db}", "-A", "-t", "C,,", "-n", "fristad-ca", "-i", str(ca))
    if cert:
        p12 = root / f"{name}.p12"
        run("openssl", "pkcs12", "-export", "-in", str(cert.crt), "-inkey", str(cert.key),
            "-out", str(p12), "-passout", "pass:browser-test")
        run("pk12util", "-d", f"sql:{db}", "-i", str(p12), "-W", "browser-test")
    return home


def artefacts(workdir):
    build = os.environ.get("FRISTAD_BUILD_ROOT")
    d = Path(build) / "meson-logs" / "browser" if build else Path(workdir) / "shots"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    return d


def test_browser_scenario(env, workdir):
    need = missing()
    if need:
        msg = "the browser test needs " + ", ".join(need) + ": run scripts/install-deps --test"
        if UNDER_MESON:
            pytest.fail(msg)
        pytest.skip(msg)
    env.add_shelter("frida-uppsala", "Frida i Uppsala", municipality="0380", protection=2,
                    phone="018-555 01 01")
    env.add_shelter("lila-malmo", "Lila huset", municipality="1280", protection=3,
                    phone="040-555 02 02")
    for sid, unit in (("frida-uppsala", "r1"), ("frida-uppsala", "r2"), ("lila-malmo", "a1")):
        env.add_unit(sid, unit, 3)
    for sid, unit in (("frida-uppsala", "r1"), ("lila-malmo", "a1")):
        env.cli("shelter", sid).ok("vacancy", sid, unit, "free")

    homes = {name: str(nss_home(workdir, name, env.cert(*who), env.pki.ca))
             for name, who in ROLES.items()}
    homes["nocert"] = str(nss_home(workdir, "nocert", None, env.pki.ca))
    host, port = web_address(env.daemon)
    shots = artefacts(workdir)
    run_env = dict(os.environ, FRISTAD_URL=f"https://{host}:{port}/",
                   FRISTAD_HOMES=json.dumps(homes), FRISTAD_SHOTS=str(shots),
                   FRISTAD_CHROMIUM=CHROMIUM)
    try:
        r = subprocess.run([NODE, str(BROWSER_DIR / "scenario.mjs")], cwd=BROWSER_DIR,
                           env=run_env, capture_output=True, text=True, timeout=240)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"the browser scenario did not finish in 240 s:\n{e.stdout}\n{e.stderr}")
    print(r.stdout)
    print(f"screenshots: {shots}")
    assert r.returncode == 0, f"the browser scenario failed:\n{r.stdout}\n{r.stderr[-3000:]}"
    added = env.show("skydd-gavle")
    assert (added["kind"], added["operator"], added["ivo_permit"], added["ivo_permit_date"],
            sorted(added["competences"])) == (
        "skyddat_boende", "ideell", "3.5.1-12345/2025", "2025-03-14", ["deaf", "hbv"]), added
    for name in ("social-search", "social-accepted", "shelter-incoming", "shelter-phone", "admin",
                 "oncall"):
        assert (shots / f"{name}.png").stat().st_size > 1000, name
