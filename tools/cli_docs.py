#!/usr/bin/env python3
"""The manual page cernvm-context(1) and its bash completion, from the parser.

Both are written from ``cloudinit_cernvm.cli.build_parser`` when the package
is built (the RPM's ``%build``), so that a verb or an option added to the
parser is in the manual and in the completion without anyone copying it.
The manual also takes the exit status from ``cli``'s docstring and the
version from ``cloudinit_cernvm.__version__``.

Usage: tools/cli_docs.py man|bash  (writes to stdout; run with the checkout
on PYTHONPATH, as the spec does)
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import shlex
import sys
from dataclasses import dataclass

from cloudinit_cernvm import DEFAULT_SEED_DIR, __version__, cli


@dataclass
class Option:
    """One option of a verb (or of the command itself)."""

    flags: list[str]
    metavar: str | None  # None: a switch, it takes no value
    choices: list[str] | None
    help: str


@dataclass
class Verb:
    """One verb, as its sub-parser declares it."""

    name: str
    summary: str
    usage: str
    description: str
    epilog: str
    options: list[Option]
    #: the positional arguments' metavars (``FILE``): the verb takes paths
    positionals: list[str]


def _help(action: argparse.Action) -> str:
    text = action.help or ""
    if "%" in text:
        text = text % {"default": action.default, "prog": cli.PROG}
    return text


def _option(action: argparse.Action) -> Option:
    takes_value = action.nargs != 0
    choices = [str(c) for c in action.choices] if action.choices else None
    metavar = None
    if takes_value:
        if action.metavar:
            metavar = str(action.metavar)
        elif choices:
            metavar = "{" + ",".join(choices) + "}"
        else:
            metavar = action.dest.upper()
    return Option(list(action.option_strings), metavar, choices, _help(action))


def _subparsers(parser: argparse.ArgumentParser) -> argparse._SubParsersAction:
    (found,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return found


def describe() -> tuple[argparse.ArgumentParser, list[Option], list[Verb]]:
    """The parser with every verb's options (``make-iso``'s too), read as data."""
    parser = cli.build_parser("make-iso")
    top = [_option(a) for a in parser._actions if a.option_strings]
    action = _subparsers(parser)
    summaries = {a.dest: a.help or "" for a in action._choices_actions}
    verbs = []
    for name, sub in action.choices.items():
        verbs.append(
            Verb(
                name=name,
                summary=summaries.get(name, ""),
                usage=" ".join(sub.format_usage().split(":", 1)[1].split()),
                description=sub.description or "",
                epilog=sub.epilog or "",
                options=[_option(a) for a in sub._actions if a.option_strings],
                positionals=[str(a.metavar or a.dest) for a in sub._actions
                             if not a.option_strings],
            )
        )
    return parser, top, verbs


# --- the manual page -----------------------------------------------------------


def _roff(text: str) -> str:
    """TEXT safe as roff input: backslashes, hyphens of options, control lines."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join("\\&" + line if line[:1] in (".", "'") else line
                     for line in text.split("\n"))


def _prose(text: str) -> str:
    """A hard-wrapped help paragraph as one roff paragraph (roff fills it)."""
    return _roff(" ".join(line.strip() for line in text.split("\n") if line.strip()))


def _options_block(options: list[Option]) -> list[str]:
    out = []
    for opt in options:
        flags = ", ".join(f"\\fB{_roff(f)}\\fR" for f in opt.flags)
        value = f" \\fI{_roff(opt.metavar)}\\fR" if opt.metavar else ""
        out += [".TP", flags + value, _prose(opt.help)]
    return out


def _exit_status() -> str:
    """The "Exit status:" paragraph of ``cli``'s docstring."""
    doc = cli.__doc__ or ""
    match = re.search(r"^Exit status: (.+?)(?:\n\n|\Z)", doc, re.S | re.M)
    return match.group(1) if match else ""


def _date() -> str:
    """The page's date: SOURCE_DATE_EPOCH's (reproducible builds), else today."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    when = (datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc)
            if epoch and epoch.isdigit() else datetime.datetime.now(datetime.timezone.utc))
    return when.strftime("%Y-%m-%d")


def manpage() -> str:
    """cernvm-context(1) in the ``man`` macros."""
    parser, top, verbs = describe()
    name = cli.PROG
    summary = (parser.description or "").rstrip(".")
    lines = [
        f'.TH {name.upper()} 1 "{_date()}" "cloudinit-cernvm {__version__}" "User Commands"',
        ".SH NAME",
        f"{name} \\- {_roff(summary[:1].lower() + summary[1:])}",
        ".SH SYNOPSIS",
        ".nh",
        ".ad l",
    ]
    for verb in verbs:
        rest = verb.usage.split(" ", 2)[2] if verb.usage.count(" ") >= 2 else ""
        lines += [f".B {name} {verb.name}", _roff(rest), ".br"]
    lines += [f".B {name}", "[\\fB\\-\\-version\\fR] [\\fB\\-h\\fR]", ".ad b", ".hy"]
    lines += [
        ".SH DESCRIPTION",
        _prose(parser.description or ""),
        "Each verb prints its options and an example with",
        f"\\fB{name} \\fIVERB\\fB \\-\\-help\\fR.",
        "A \\fIFILE\\fR that is absent or \\fB\\-\\fR is standard input; a HEPiX or",
        "OpenNebula \\fBcontext.sh\\fR is read as the user\\-data it carries.",
        "Every error is one line on standard error.",
        ".SH OPTIONS",
        *_options_block(top),
        ".SH VERBS",
    ]
    for verb in verbs:
        lines += [f".SS {_roff(verb.name)}", _prose(verb.summary) + ".", ".PP",
                  _prose(verb.description)]
        # every verb has -h/--help: said once, in DESCRIPTION
        lines += _options_block([o for o in verb.options if "--help" not in o.flags])
        if verb.epilog:
            lines += [".PP", ".nf", ".RS 4", _roff(verb.epilog), ".RE", ".fi"]
    lines += [
        ".SH EXIT STATUS",
        re.sub(r"``(.+?)``", lambda m: f"\\fB{m.group(1)}\\fR", _prose(_exit_status())),
        ".SH ENVIRONMENT",
        ".TP",
        "\\fBCERNVM_SYSROOT\\fR",
        "The root holding \\fI/sys\\fR and \\fI/proc/cmdline\\fR that \\fBdetect\\fR reads.",
        ".TP",
        "\\fBCERNVM_MEDIA_DIR\\fR",
        "A directory whose sub\\-directories, each named by a filesystem label,",
        "stand for disks with that label (\\fBdetect\\fR).",
        ".SH FILES",
        ".TP",
        f"\\fI{_roff(DEFAULT_SEED_DIR)}\\fR",
        "The seed the microboot stage wrote: the provider, user\\-data and meta\\-data",
        "that \\fBshow\\fR reports.",
        ".TP",
        f"\\fI{_roff(cli.DEFAULT_CLOUD_DIR)}/instance/cernvm/\\fR",
        "What the part\\-handlers recorded (\\fBshow\\fR).",
        ".SH SEE ALSO",
        ".BR cloud\\-init (1)",
    ]
    return "\n".join(lines) + "\n"


# --- bash completion -------------------------------------------------------------


def _words(items: list[str]) -> str:
    return shlex.quote(" ".join(items))


def _value_kind(opt: Option) -> str:
    """What an option's value is: "words" (choices), "dir", "file" or "text"."""
    if opt.choices:
        return "words"
    long = opt.flags[-1]
    if long.endswith(("-dir", "root")):
        return "dir"
    if opt.metavar in ("FILE", "PATH") or "." in (opt.metavar or ""):
        return "file"
    return "text"


def completion() -> str:
    """A bash completion for every verb, option and option value the parser knows."""
    _, top, verbs = describe()
    func = "_" + re.sub(r"\W", "_", cli.PROG)
    out = [
        f"# bash completion for {cli.PROG}(1). Generated from the command's parser",
        "# by tools/cli_docs.py when the package is built: edit the parser, not this.",
        "# shellcheck shell=bash",
        "",
        f"{func}() {{",
        '    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}',
        "    local verb='' i opts='' files=''",
        "    for ((i = 1; i < COMP_CWORD; i++)); do",
        '        case ${COMP_WORDS[i]} in',
        "            -*) ;;",
        '            *) verb=${COMP_WORDS[i]}; break ;;',
        "        esac",
        "    done",
        "    COMPREPLY=()",
        '    case $verb in',
        f"        '') opts={_words([f for o in top for f in o.flags])} ;;",
    ]
    for verb in verbs:
        opts = _words([f for o in verb.options for f in o.flags])
        files = "; files=1" if verb.positionals else ""
        out.append(f"        {shlex.quote(verb.name)}) opts={opts}{files} ;;")
    out += ["        *) return 0 ;;", "    esac"]
    # the value of an option that takes one: its choices, a directory, a
    # file, or free text (nothing to offer)
    actions: dict[str, list[str]] = {}
    for verb in verbs:
        for opt in verb.options:
            if opt.metavar is None:
                continue
            kind = _value_kind(opt)
            if kind == "words":
                action = f"mapfile -t COMPREPLY < <(compgen -W {_words(opt.choices or [])}" \
                         ' -- "$cur")'
            elif kind in ("dir", "file"):
                action = "compopt -o filenames 2>/dev/null; " \
                         f"mapfile -t COMPREPLY < <(compgen -{kind[0]} -- \"$cur\")"
            else:
                action = ""
            actions.setdefault(action, []).extend(f"{verb.name}:{flag}" for flag in opt.flags)
    if actions:
        out.append("    case $verb:$prev in")
        for action, keys in actions.items():
            out.append(f"        {'|'.join(shlex.quote(k) for k in keys)})")
            out.append(f"            {action + '; ' if action else ''}return 0 ;;")
        out.append("    esac")
    verb_names = _words([v.name for v in verbs])
    out += [
        '    if [[ -z $verb && $cur != -* ]]; then',
        f"        mapfile -t COMPREPLY < <(compgen -W {verb_names} -- \"$cur\")",
        '    elif [[ $cur == -* || -z $files ]]; then',
        '        mapfile -t COMPREPLY < <(compgen -W "$opts" -- "$cur")',
        "    else",
        "        compopt -o filenames 2>/dev/null",
        '        mapfile -t COMPREPLY < <(compgen -f -- "$cur")',
        "    fi",
        "    return 0",
        "}",
        f"complete -F {func} {cli.PROG}",
    ]
    return "\n".join(out) + "\n"


def main(argv: list[str]) -> int:
    """Write the manual page (``man``) or the completion (``bash``) to stdout."""
    if argv not in (["man"], ["bash"]):
        print("usage: tools/cli_docs.py man|bash", file=sys.stderr)
        return 2
    sys.stdout.write(manpage() if argv == ["man"] else completion())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
