"""Real CernVM contexts (``tests/data/real/``, origins in SOURCES) through validate and convert.

Every context: ``validate`` finds no error; ``convert`` loses nothing (each
section, option, µCernVM block line and script line is read back from its
part, by the consumers' own rules: amiconfig's parser over the joined
amiconfig parts, µCernVM's over the block); converting the output again
gives the same parts. Real cloud-init's reading of the output is checked in
``tests/cloudinit/test_corpus.py``.
"""

from __future__ import annotations

import email
from pathlib import Path

import pytest

from cloudinit_cernvm import amiconfig_ini, cli, mime_read, old_syntax, ucernvm, userdata, validate
from cloudinit_cernvm.content_types import AMICONFIG, AMICONFIG_USER_DATA, UCERNVM
from cloudinit_cernvm.validate.problem import ERROR

REAL = Path(__file__).resolve().parents[1] / "data" / "real"
CORPUS = sorted(p for p in REAL.iterdir() if p.name != "SOURCES")
_MARKERS = {ucernvm.BEGIN[1:-1], ucernvm.END[1:-1]}


def user_data(path: Path) -> bytes:
    """The user-data as the CLI reads the file (a context.sh gives its EC2_USER_DATA)."""
    return cli.read_user_data(str(path))


def leaves(mime: bytes) -> list[tuple[str, str]]:
    """(type, text) of each part, read back with the standard library."""
    msg = email.message_from_bytes(mime)
    return [
        (p.get_content_type(), p.get_payload(decode=True).decode("utf-8"))
        for p in msg.walk()
        if not p.is_multipart()
    ]


def amiconfig_reading(texts: list[str]) -> dict[tuple[str, str], str]:
    """(section, option) -> value, as amiconfig reads ``texts`` joined; no µCernVM markers."""
    reading = amiconfig_ini.read(amiconfig_ini.join(texts))
    return {
        (section, name): option.value
        for section, options in reading.sections.items()
        if section.strip() not in _MARKERS and " " not in section
        for name, option in options.items()
    }


def input_texts(raw: bytes) -> tuple[str, list[tuple[str, str]]]:
    """The input's format and its (type, text) parts before conversion."""
    data = userdata.decode_input(raw)
    if mime_read.looks_like_mime(data):
        return "mime", [(p.content_type, p.text) for p in mime_read.parse_parts(data)]
    return "text", [("text/plain", data.decode("utf-8"))]


def test_the_corpus_holds_what_the_issue_names():
    names = {p.name for p in CORPUS}
    assert len(names) >= 22
    sources = (REAL / "SOURCES").read_text()
    for name in names:
        assert f"\n{name}\n" in sources, f"{name} has no SOURCES entry"


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_validate_finds_no_error(path):
    errors = [str(p) for p in validate.check(user_data(path)) if p.severity == ERROR]
    assert errors == []


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_convert_loses_nothing(path):
    raw = user_data(path)
    out = userdata.normalize(raw)
    kind, before = input_texts(raw)
    after = leaves(out) if mime_read.looks_like_mime(out) else [("text/plain", out.decode())]
    got_ami = [t for c, t in after if c in (AMICONFIG, AMICONFIG_USER_DATA)]
    got_block = "".join(t for c, t in after if c == UCERNVM)
    if kind == "mime":
        want_ami = [t for c, t in before if c in (AMICONFIG, AMICONFIG_USER_DATA)]
        want_block = "".join(t for _, t in before)
    else:
        want_ami = [t for _, t in before]  # amiconfig read the whole text
        want_block = before[0][1]
    # amiconfig: every section and option, with its value, as its parser reads them
    assert amiconfig_reading(got_ami) == amiconfig_reading(want_ami)
    # µCernVM: the same settings, and every line of the block in its part
    assert ucernvm.parse_block(got_block) == ucernvm.parse_block(want_block)
    for line in _block(want_block):
        assert line in got_block.split("\n"), line
    # every line of the input stands in some part (scripts whole, in order)
    out_lines = {line for _, text in after for line in text.split("\n")}
    for _, text in before:
        for line in text.split("\n"):
            bare = _unmarked(line)
            assert line in out_lines or bare in out_lines or not line.strip(), line
    for _, text in before:
        if kind == "text" and text.lstrip("\n").startswith("#!"):
            script = _leading_script(text)
            assert any(script == _unmarked_text(t) for c, t in after if "shellscript" in c)


def _block(text: str) -> list[str]:
    lines = text.split("\n")
    if ucernvm.BEGIN not in lines:
        return []
    start = lines.index(ucernvm.BEGIN)
    end = lines.index(ucernvm.END, start) if ucernvm.END in lines[start:] else len(lines) - 1
    return lines[start : end + 1]


def _unmarked(line: str) -> str:
    """A first line ``#!/bin/sh.before`` is written ``#!/bin/sh`` (marker in a header)."""
    match = old_syntax.MARKER.match(line)
    return f"#!{match.group(1)}{match.group(2)}{match.group(4)}" if match else line


def _unmarked_text(text: str) -> str:
    first, _, rest = text.partition("\n")
    return _unmarked(first) + "\n" + rest


def _leading_script(text: str) -> str:
    """The leading script as the shell runs it: to its line 'exit', or the whole text."""
    lines = text.lstrip("\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    end = next((k + 1 for k, s in enumerate(lines) if k and old_syntax.EXIT.match(s)), len(lines))
    return _unmarked_text("\n".join(lines[:end]) + "\n")


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_converting_twice_gives_the_same_parts(path):
    once = userdata.normalize(user_data(path))
    twice = userdata.normalize(once)
    if not mime_read.looks_like_mime(once):
        assert twice == once
        return
    assert leaves(twice) == leaves(once)
