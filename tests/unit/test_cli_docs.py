"""The manual page and the bash completion that tools/cli_docs.py writes.

Both come from the command's parser; these tests read the parser on their
own and check that the page describes, and the completion offers, every
verb and option it has, so a verb added to the parser that either misses
fails here. The completion runs in a real bash, as bash-completion calls it.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cloudinit_cernvm import __version__, cli

TOP = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("cli_docs", TOP / "tools" / "cli_docs.py")
cli_docs = importlib.util.module_from_spec(_spec)
sys.modules["cli_docs"] = cli_docs  # dataclasses look their module up
_spec.loader.exec_module(cli_docs)


def _parser_verbs() -> dict[str, argparse.ArgumentParser]:
    parser = cli.build_parser("make-iso")
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def _flags(parser: argparse.ArgumentParser) -> set[str]:
    return {flag for a in parser._actions for flag in a.option_strings}


VERBS = _parser_verbs()


def complete(*words: str, cwd: Path | None = None) -> list[str]:
    """What the generated completion offers for the command line WORDS (the
    last one is the word being completed)."""
    if shutil.which("bash") is None:
        pytest.fail("bash is needed to run the completion")
    line = " ".join(f"'{w}'" for w in ("cernvm-context", *words))
    script = (
        f"{cli_docs.completion()}\n"
        f"COMP_WORDS=({line}); COMP_CWORD={len(words)}; _cernvm_context\n"
        "printf '%s\\n' \"${COMPREPLY[@]}\"\n"
    )
    done = subprocess.run(["bash", "--norc", "--noprofile", "-c", script], cwd=cwd,
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    return [w for w in done.stdout.split("\n") if w]


def test_completion_offers_every_verb_and_the_commands_own_options():
    assert complete("") == list(VERBS)
    assert complete("ex") == ["explain"]
    assert set(complete("-")) == _flags(cli.build_parser(None)) == {"-h", "--help", "--version"}
    assert "--version" in complete("--")


@pytest.mark.parametrize("verb", list(VERBS))
def test_completion_offers_every_option_of_each_verb(verb):
    assert set(complete(verb, "-")) == _flags(VERBS[verb])
    # after the verb's other options too
    assert set(complete(verb, "--help", "--")) == {f for f in _flags(VERBS[verb])
                                                     if f.startswith("--")}


def test_completion_offers_option_choices_and_paths(tmp_path):
    for verb, sub in VERBS.items():
        for action in sub._actions:
            if action.option_strings and action.choices:
                for flag in action.option_strings:
                    assert complete(verb, flag, "") == [str(c) for c in action.choices]
    (tmp_path / "legacy.txt").write_text("[cernvm]\n")
    (tmp_path / "seed").mkdir()
    assert complete("convert", "le", cwd=tmp_path) == ["legacy.txt"]
    assert complete("validate", "--strict", "le", cwd=tmp_path) == ["legacy.txt"]
    assert complete("make-iso", "--user-data", "le", cwd=tmp_path) == ["legacy.txt"]
    assert complete("show", "--seed-dir", "", cwd=tmp_path) == ["seed"]
    # free text (a host name) and verbs without a FILE offer no paths
    assert complete("make-iso", "--hostname", "", cwd=tmp_path) == []
    assert set(complete("detect", "", cwd=tmp_path)) == _flags(VERBS["detect"])
    assert complete("frobnicate", "") == []


def test_manual_page_has_every_verb_and_option():
    page = cli_docs.manpage()
    assert page.startswith(".TH CERNVM-CONTEXT 1 ")
    assert f'"cloudinit-cernvm {__version__}"' in page
    roff = lambda text: text.replace("-", "\\-")  # noqa: E731
    assert re.findall(r"^\.SS (\S+)$", page, re.M) == [roff(v) for v in VERBS]
    sections = re.split(r"^\.SS ", page, flags=re.M)[1:]
    for verb, section in zip(VERBS, sections):
        for flag in _flags(VERBS[verb]) - {"-h", "--help"}:
            assert f"\\fB{roff(flag)}\\fR" in section, (verb, flag)
        assert "example:" in section
    for flag in _flags(cli.build_parser(None)):
        assert f"\\fB{roff(flag)}\\fR" in page
    for heading in ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "VERBS", "EXIT STATUS"):
        assert f"\n.SH {heading}\n" in page
    # the exit status of cli's docstring, and no line that roff would take
    # for a request
    assert "70 an internal error" in page
    body = [ln for ln in page.split("\n") if ln and not ln.startswith((".", "\\&"))]
    assert not [ln for ln in body if ln.startswith("'")]


def test_manual_page_date_follows_source_date_epoch(monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1795000000")
    assert '.TH CERNVM-CONTEXT 1 "2026-11-18" ' in cli_docs.manpage()


def test_generator_usage(capsys):
    assert cli_docs.main(["man"]) == 0
    assert capsys.readouterr().out == cli_docs.manpage()
    assert cli_docs.main(["bash"]) == 0
    assert capsys.readouterr().out == cli_docs.completion()
    assert cli_docs.main([]) == 2
