"""Start-up refuses what would make the daemon unsafe, with a message a person can act on:
missing or wrong reference data, an invalid safety policy, a bad configuration. `--check`
validates a configuration without starting anything."""

import shutil
import subprocess

import pytest

from conftest import FRISTADD, SOURCE_ROOT


def run(conf, *extra):
    return subprocess.run([str(FRISTADD), "-c", str(conf), *extra], capture_output=True,
                          text=True, timeout=30, stdin=subprocess.DEVNULL)


@pytest.fixture
def conf(env_unstarted, tmp_path):
    """A valid configuration whose data files are copies the test may break."""
    env = env_unstarted
    for f in ("municipalities.csv", "adjacency.csv", "policy.conf"):
        shutil.copy(SOURCE_ROOT / "conf" / f, tmp_path / f)
    env.daemon.update_config({"data": {"municipalities": str(tmp_path / "municipalities.csv"),
                                       "adjacency": str(tmp_path / "adjacency.csv"),
                                       "policy": str(tmp_path / "policy.conf")}})
    return env.daemon.config_path, tmp_path


def test_check_accepts_a_valid_configuration(conf):
    path, _ = conf
    r = run(path, "--check")
    assert r.returncode == 0, r.stderr
    assert "is valid" in r.stdout


def break_line(path, lineno, new):
    lines = path.read_text().splitlines(keepends=True)
    lines[lineno - 1] = new
    path.write_text("".join(lines))


@pytest.mark.parametrize("damage,expect", [
    (lambda d: (d / "municipalities.csv").unlink(), "municipalities.csv: cannot open"),
    (lambda d: break_line(d / "municipalities.csv", 2, "0114,Upplands Väsby,03,X,59.5,17.9,c\n"),
     "municipalities.csv:2: county code must be the first two digits"),
    (lambda d: break_line(d / "municipalities.csv", 3, ""), "289 municipalities, expected all 290"),
    (lambda d: break_line(d / "adjacency.csv", 5, "0114,A,9999,B,1,border,1,1,\n"),
     "adjacency.csv:5: a pair needs two different valid municipality codes"),
    (lambda d: (d / "policy.conf").write_text(
        (SOURCE_ROOT / "conf/policy.conf").read_text().replace("min_protection = 3",
                                                                "min_protection = 1")),
     "policy.conf: [severe] accepts a lower protection level than [high]"),
    (lambda d: (d / "policy.conf").write_text("[low]\nexclude = home\nmin_protection = 1\n"),
     "must exclude 'listed'"),
])
def test_unsafe_data_stops_the_start(conf, damage, expect):
    path, data = conf
    damage(data)
    for extra in ((), ("--check",)):
        r = run(path, *extra)
        assert r.returncode == 1, (extra, r.stdout, r.stderr)
        assert expect in r.stderr, r.stderr
        assert "ready" not in r.stderr


def test_bad_configuration_names_file_line_and_key(conf):
    path, _ = conf
    text = path.read_text()
    path.write_text(text.replace("[holds]", "[holds]\nttl = soon"))
    r = run(path)
    assert r.returncode == 1
    line = text[:text.index("[holds]")].count("\n") + 2
    assert f"{path}:{line}: [holds] ttl must be a duration" in r.stderr, r.stderr
