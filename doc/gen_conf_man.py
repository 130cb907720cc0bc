#!/usr/bin/env python3
"""Writes fristadd.conf(5) from conf/fristadd.conf.example.

The example documents every key with its default and whether SIGHUP reloads it, and unit.config
checks it against the daemon's key table; this page is made from it, so the three agree.

    gen_conf_man.py EXAMPLE OUTPUT VERSION DATADIR SYSCONFDIR
"""
import re
import sys

KEY = re.compile(r"^;?([a-z_]+) = ?(.*)$")
# [oncall] names on-call ids, not keys of the table: an example of one.
ONCALL_ID = re.compile(r"^;?([A-Za-z0-9][A-Za-z0-9._-]*) = ?(.*)$")


def roff(text):
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\\&" + text if text[:1] in (".", "'") else text


def sentences(comment):
    """The comment with its closing reload word turned into a sentence."""
    text = " ".join(comment)
    if text.endswith("no reload"):
        return text[:-len("no reload")].rstrip() + " A change needs a restart."
    if text.endswith("reload"):
        return text[:-len("reload")].rstrip() + " SIGHUP applies a change."
    return text


def main(src, dst, version, datadir, sysconfdir):
    preamble, sections = [], []
    comment, keys = [], []

    def flush():
        if keys:
            sections[-1][1].append((list(keys), sentences(comment)))
            keys.clear()
            comment.clear()

    with open(src, encoding="utf-8") as f:
        for raw in f:
            line = raw.rstrip("\n")
            m = re.match(r"^\[([a-z]+)\]$", line)
            if m:
                flush()
                comment.clear()
                sections.append((m.group(1), []))
                continue
            if line.startswith("; "):
                if keys:
                    flush()
                (comment if sections else preamble).append(line[2:])
                continue
            m = (ONCALL_ID if sections and sections[-1][0] == "oncall" else KEY).match(line)
            if m and sections:
                keys.append((m.group(1), m.group(2), line.startswith(";")))
    flush()

    out = [
        ".\\\" Generated from conf/fristadd.conf.example by doc/gen_conf_man.py.",
        f'.TH FRISTADD.CONF 5 "" "Fristad {version}" "File Formats"',
        ".SH NAME",
        "fristadd.conf \\- configuration of the Fristad daemon",
        ".SH SYNOPSIS",
        f".I {roff(sysconfdir)}/fristad/fristadd.conf",
        ".SH DESCRIPTION",
        "\\fBfristadd\\fR(8) reads one file.",
        roff(" ".join(preamble).removeprefix("fristadd configuration. ")),
        ".PP",
        "A key that is left out has its default, shown below; a key shown commented out is",
        "documented there with its default and is usually best left out.",
        f"The reference data and the default policy are installed in {roff(datadir)}.",
        "\\fBfristadd \\-\\-check \\-c\\fR \\fIFILE\\fR checks a file without starting.",
    ]
    for name, entries in sections:
        out.append(f'.SS "[{name}]"')
        for ks, text in entries:
            heads = [f"\\fB{k}\\fR = \\fI{roff(v)}\\fR" if v else f"\\fB{k}\\fR =" for k, v, _ in ks]
            out += [".TP", ", ".join(heads), roff(text)]
    out += [
        ".SH FILES",
        f".TP\n.I {roff(sysconfdir)}/fristad/fristadd.conf\nThe configuration.",
        f".TP\n.I {roff(datadir)}\nMunicipalities, their borders and the default safety policy.",
        ".SH SEE ALSO",
        "\\fBfristadd\\fR(8), \\fBfristad\\fR(1)",
    ]
    with open(dst, "w", encoding="utf-8") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:])
