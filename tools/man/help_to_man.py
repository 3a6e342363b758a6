#!/usr/bin/env python3
"""Turns a program's --help text into its man page, so the two cannot drift.

The man pages of xenchand(8), xenchanctl(1) and xenchan-agent(8) are built
(tools/man/BUILD.bazel) by running the freshly built binary with --help and
feeding the text here; nothing of the page is written by hand except its
one-line summary (when the help has none), FILES and SEE ALSO.

  help_to_man.py --name xenchand --section 8 [--summary TEXT]
                 [--file PATH:WHAT]... [--see-also PAGE(N)]... < help.txt > xenchand.8

Layout of the page, from the help text:
  NAME         "NAME - summary": the help's first line when it reads
               "NAME: summary.", else --summary;
  SYNOPSIS     the help's "Usage: ..." (or "usage: ...") line;
  DESCRIPTION  every other line, verbatim in no-fill mode (the help is
               already laid out for an 80-column terminal); a line that
               starts in column 0 and ends with ":" becomes a subsection.
Roff is escaped so that every help line renders back to itself with
`groff -man -Tascii` (tests/man/man_pages_test.sh checks exactly that).
"""

import argparse
import re
import sys


def escape(line):
    """Roff-escapes one line of text for no-fill mode."""
    line = line.replace("\\", "\\e").replace("-", "\\-")
    if line.startswith((".", "'")):
        line = "\\&" + line
    return line


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--name", required=True)
    p.add_argument("--section", required=True, choices=["1", "8"])
    p.add_argument("--summary", default="")
    p.add_argument("--file", action="append", default=[], metavar="PATH:WHAT")
    p.add_argument("--see-also", action="append", default=[], metavar="PAGE(N)")
    return p.parse_args(argv)


def build_page(args, help_text):
    lines = help_text.rstrip("\n").split("\n")
    if not lines or not lines[0].strip():
        raise ValueError("empty --help text")
    summary = args.summary
    first = re.match(r"^%s: (.+?)\.?$" % re.escape(args.name), lines[0])
    if first:
        summary = first.group(1)
        lines = lines[1:]
    if not summary:
        raise ValueError("%s --help has no 'NAME: summary' first line; pass --summary" % args.name)
    usage = None
    body = []
    for line in lines:
        m = re.match(r"^[Uu]sage: (.+)$", line)
        if m and usage is None:
            usage = m.group(1)
        else:
            body.append(line.rstrip())
    if usage is None:
        raise ValueError("%s --help has no 'Usage:' line" % args.name)
    while body and not body[0]:
        body.pop(0)

    manual = "System Administration" if args.section == "8" else "User Commands"
    out = [
        '.\\" Generated from `%s --help` by tools/man/help_to_man.py; do not edit.' % args.name,
        '.TH %s %s "" "xenchan" "%s"' % (args.name.upper(), args.section, manual),
        ".SH NAME",
        "%s \\- %s" % (escape(args.name), escape(summary)),
        ".SH SYNOPSIS",
        ".nf",
        escape(usage),
        ".fi",
        ".SH DESCRIPTION",
        ".nf",
    ]
    for line in body:
        if line and not line[0].isspace() and line.endswith(":"):
            out += [".fi", ".SS %s" % escape(line[:-1]), ".nf"]
        elif not line:
            out.append("")
        else:
            out.append(escape(line))
    out.append(".fi")
    if args.file:
        out.append(".SH FILES")
        for f in args.file:
            path, _, what = f.partition(":")
            out += [".TP", ".I %s" % escape(path), escape(what)]
    if args.see_also:
        refs = []
        for ref in args.see_also:
            m = re.match(r"^([A-Za-z0-9._-]+)\(([1-9])\)$", ref)
            if not m:
                raise ValueError("--see-also %r is not PAGE(N)" % ref)
            refs.append("\\fB%s\\fR(%s)" % (escape(m.group(1)), m.group(2)))
        out += [".SH SEE ALSO", ",\n".join(refs)]
    # Blank lines in no-fill mode are fine for groff but flagged by lintian's
    # man checks; an empty request keeps the gap.
    return "\n".join(l if l else ".sp" for l in out) + "\n"


def main(argv):
    args = parse_args(argv)
    try:
        sys.stdout.write(build_page(args, sys.stdin.read()))
    except ValueError as e:
        sys.stderr.write("help_to_man: %s\n" % e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
