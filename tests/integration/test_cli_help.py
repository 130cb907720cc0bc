"""The client's help and usage errors, without a daemon: the usage text lists every command,
each command's own help names exactly its options, and a mistyped command gets a did-you-mean
naming the right one (exit 2) while a word far from every command gets none.

COMMANDS is the interface people script against, written out here on purpose: a command word
or option that disappears from the client's table fails this test instead of going unnoticed.
"""

import json
import os
import re
import subprocess

import pytest

from conftest import FRISTAD, SANITIZER_RE

SHELTER_ADD = ["--name", "--kind", "--municipality", "--protection", "--phone", "--groups",
               "--max-children", "--boys-max-age", "--pets", "--substance", "--languages",
               "--intake-hours", "--competences", "--operator", "--ivo-permit", "--ivo-permit-date",
               "--ivo-registered"]
REFERRAL = ["--from", "--risk", "--adults", "--child", "--group", "--wheelchair", "--pets",
            "--substance", "--language", "--perpetrator-in", "--exclude", "--need"]
AREA = ["--county", "--municipality"]
# words -> (positional arguments, options)
COMMANDS = {
    "shelter add": (["frida"], SHELTER_ADD),
    "shelter update": (["frida"], SHELTER_ADD + ["--no-pets", "--no-substance",
                                                 "--no-ivo-permit", "--no-ivo-registered"]),
    "shelter retire": (["frida"], []),
    "shelter show": (["frida"], []),
    "shelter list": ([], AREA),
    "unit add": (["frida", "r1"], ["--beds", "--accessible"]),
    "unit update": (["frida", "r1"], ["--beds", "--accessible", "--not-accessible"]),
    "unit remove": (["frida", "r1"], []),
    "vacancy": (["frida", "r1", "free"], []),
    "vacancy confirm": (["frida"], []),
    "intake pause": (["frida"], []),
    "intake resume": (["frida"], []),
    "free": ([], AREA),
    "municipality": (["Uppsala"], []),
    "search": ([], REFERRAL + ["--arrival-at", "--limit"]),
    "hold": (["frida", "r1"], REFERRAL + ["--ref", "--callback", "--idempotency-key", "--for",
                                          "--child-basis"]),
    "accept": (["h1"], ["--arrival-by"]),
    "release": (["h1"], []),
    "confirm": (["h1"], ["--child-basis"]),
    "decline": (["h1"], ["--reason", "--note"]),
    "discharge": (["p1"], []),
    "holds": ([], []),
    "placements": ([], []),
    "audit": ([], ["--since", "--principal", "--person", "--shelter", "--limit"]),
    "stats": ([], []),
    "followup": ([], AREA + ["--from", "--to"]),
    "export hsds": ([], []),
    "whoami": ([], []),
    "standing add": ([], REFERRAL + ["--ref", "--for", "--hours"]),
    "standing list": ([], []),
    "standing cancel": (["s1"], []),
    "watch": ([], AREA + ["--since", "--type"]),
}
GLOBAL = ["--json", "--server", "--cert", "--key", "--p12", "--ca", "--config", "--servername",
          "--timeout", "--help", "--version", "--standing", "--csv"]
SECTIONS = ["Registry (admin):", "Vacancies (shelter staff):", "Listings (everyone):",
            "Referrals (social services):", "Administration:"]
WIDTH = 100
OPTION_LINE = re.compile(r"^  (--[a-z0-9-]+)", re.M)


class Run:
    def __init__(self, args, proc):
        self.args = args
        self.exit = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr

    def __repr__(self):
        return (f"$ fristad {' '.join(self.args)}\nexit {self.exit}\nstdout:\n{self.stdout}"
                f"\nstderr:\n{self.stderr}")


def fristad(*args, tmp_path):
    """Runs the client with no settings anywhere, so nothing but the command line counts."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRISTAD")}
    env["HOME"] = str(tmp_path)
    env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
    env.setdefault("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1")
    if not FRISTAD.exists():
        pytest.skip(f"fristad not found at {FRISTAD} (build it, or set FRISTAD)")
    proc = subprocess.run([str(FRISTAD), *args], capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL, env=env)
    run = Run(args, proc)
    assert not SANITIZER_RE.search(run.stderr), run
    return run


@pytest.fixture
def cli(tmp_path):
    return lambda *args: fristad(*args, tmp_path=tmp_path)


def assert_width(run):
    long = [ln for ln in run.stdout.splitlines() if len(ln) > WIDTH]
    assert not long, f"lines over {WIDTH} columns: {long}\n{run}"


def test_usage_lists_every_command(cli):
    usage = cli("--help")
    assert usage.exit == 0 and usage.stderr == "", usage
    assert usage.stdout.startswith("Usage: fristad "), usage
    for alias in (("help",), ("-h",), ("--json", "--help")):
        again = cli(*alias)
        assert again.exit == 0 and again.stdout == usage.stdout, again
    text = usage.stdout
    for words, (_, options) in COMMANDS.items():
        # Each command starts a line of its section; its options appear in its synopsis.
        assert re.search(rf"^  {re.escape(words)}( |$)", text, re.M), f"{words} missing:\n{text}"
    for section in SECTIONS:
        assert f"\n{section}\n" in text, section
    assert set(OPTION_LINE.findall(text)) == set(GLOBAL), text
    assert re.search(r"^  help \[COMMAND\]", text, re.M), text
    assert "Exit status: 0 success; 1 refused" in text
    assert "FRISTAD_SERVER" in text and "client.conf" in text
    assert_width(usage)


def test_usage_names_every_option_of_every_command(cli):
    text = cli("--help").stdout
    for words, (_, options) in COMMANDS.items():
        for opt in options:
            assert re.search(rf"{re.escape(opt)}\b", text), f"{opt} of {words} missing:\n{text}"


@pytest.mark.parametrize("words", list(COMMANDS))
def test_command_help(cli, words):
    args, options = COMMANDS[words]
    first = cli("help", *words.split())
    assert first.exit == 0 and first.stderr == "", first
    assert first.stdout.startswith(f"Usage: fristad {words}"), first
    # Exactly this command's options are described, each on a line of its own.
    assert sorted(OPTION_LINE.findall(first.stdout)) == sorted(options), first
    assert "The global options (--json" in first.stdout, first
    assert_width(first)
    # --help after the command or before it gives the same text.
    for argv in ([*words.split(), "--help"], ["--help", *words.split()], [*words.split(), "-h"]):
        again = cli(*argv)
        assert again.exit == 0 and again.stdout == first.stdout, again
    # After its arguments too, though `help vacancy` also describes `vacancy confirm`.
    with_args = cli(*words.split(), *args, "--help")
    assert with_args.exit == 0, with_args
    assert re.match(rf"Usage: fristad {re.escape(words)}( |\n)", with_args.stdout), with_args
    assert with_args.stdout.count("Usage: fristad") == 1, with_args
    assert sorted(OPTION_LINE.findall(with_args.stdout)) == sorted(options), with_args


def test_help_for_a_first_word_describes_all_its_commands(cli):
    shelter = cli("help", "shelter")
    assert shelter.exit == 0, shelter
    heads = re.findall(r"^Usage: fristad (shelter \w+)", shelter.stdout, re.M)
    assert sorted(heads) == sorted(w for w in COMMANDS if w.startswith("shelter ")), shelter
    vacancy = cli("vacancy", "--help")
    assert re.findall(r"^Usage: fristad (vacancy(?: confirm)?) ", vacancy.stdout, re.M) == \
        ["vacancy", "vacancy confirm"], vacancy


@pytest.mark.parametrize("argv,meant", [
    (["serch"], "search"),
    (["shelter", "ad", "frida"], "shelter add"),
    (["shelter", "ad"], "shelter add"),
    (["sheltr", "list"], "shelter list"),
    (["unit", "remvoe", "frida", "r1"], "unit remove"),
    (["intake", "pasue", "frida"], "intake pause"),
    (["vacancy", "confrim", "frida"], "vacancy confirm"),
    (["wohami"], "whoami"),
    (["plcements"], "placements"),
    (["discharg", "p1"], "discharge"),
    (["hlep"], "help"),
    (["help", "serch"], "search"),
    (["serch", "--help"], "search"),
    (["--json", "serch"], "search"),
])
def test_did_you_mean(cli, argv, meant):
    r = cli(*argv)
    assert r.exit == 2, r
    if "--json" in argv:
        err = json.loads(r.stdout)["error"]
        assert err["code"] == "usage", r
        message = err["message"]
    else:
        assert r.stdout == "", r
        message = r.stderr
    assert f"did you mean '{meant}'" in message, r


@pytest.mark.parametrize("argv", [
    ["frobnicate"], ["xyz"], ["q"], ["shelter", "zzzzzzzz"], ["help", "frobnicate"],
    ["frobnicate", "--help"], ["searchsearchsearch"],
])
def test_no_suggestion_far_from_every_command(cli, argv):
    r = cli(*argv)
    assert r.exit == 2 and r.stdout == "", r
    assert "did you mean" not in r.stderr, r
    assert f"'{argv[0] if argv[0] != 'help' else argv[1]}'" in r.stderr, r


@pytest.mark.parametrize("argv,message", [
    ([], "no command given"),
    (["shelter", "frobnicate"], "'shelter' needs one of: add, update, retire, show, list"),
    (["hold", "frida", "r1"], "'hold' needs --from: fristad hold SHELTER UNIT --from MUNICIPALITY "
                              "--risk low|moderate|high|severe --ref REF"),
    (["search", "--from", "0180"],
     "'search' needs --risk: fristad search --from MUNICIPALITY --risk low|moderate|high|severe"),
    (["shelter", "update", "frida"], "'shelter update' needs at least one option to change: "
     "fristad shelter update ID OPTION..."),
    (["shelter", "add", "frida"], "'shelter add' needs --name: fristad shelter add ID --name NAME "
     "--kind KIND --municipality MUNICIPALITY --protection 1|2|3 --phone PHONE"),
    (["vacancy", "frida"], "missing arguments for 'vacancy': fristad vacancy SHELTER UNIT "
     "free|occupied|closed"),
    (["holds", "extra"], "too many arguments for 'holds': fristad holds"),
    (["free", "--beds", "2"], "option --beds does not apply to 'free'"),
    (["unit", "update", "frida", "r1", "--accessible", "--not-accessible"],
     "--accessible and --not-accessible contradict each other"),
    (["shelter", "update", "frida", "--pets", "--no-pets"],
     "--pets and --no-pets contradict each other"),
    (["audit", "--limit"], "option --limit needs a value"),
    (["--timeout", "never", "whoami"], "--timeout wants a number of seconds, not 'never'"),
])
def test_usage_errors_as_before(cli, argv, message):
    r = cli(*argv)
    assert r.exit == 2 and r.stdout == "", r
    assert r.stderr == f"fristad: usage: {message}\n" \
        "Run 'fristad --help' for the commands and options.\n", r
