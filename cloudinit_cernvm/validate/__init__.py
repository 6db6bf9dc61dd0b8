"""Checks behind ``cernvm-context validate``: what each consumer will misread.

:func:`check` takes user-data as a user would give it to the cloud and
returns one :class:`Problem` per finding, each saying where it is (a line
of old-syntax text, or a MIME part and a line in it), how bad it is and
what to do. Nothing here changes the data.

Each finding has a severity and a stable code (:data:`validate.problem.CODES`,
listed in the README):

- an *error*: the context will not do what it says with this project
  (malformed MIME, cloud-config that is not YAML, a µCernVM line the
  shell that sources ``ucontext`` chokes on, a section amiconfig fails
  on...): ``validate`` exits 1;
- a *warning*: it works here, but fails with an older µCernVM or
  amiconfig (CR LF markers, a base64 µCernVM part), or it is probably a
  typo (a key, section or plugin no consumer reads, with the likely
  intended one), or it does something the author may not expect (section
  lines a script without ``exit`` also runs as shell): exit 0, unless
  ``--strict``.

amiconfig's parts are checked as amiconfig reads them: joined, by its own
parser's rules (:mod:`cloudinit_cernvm.amiconfig_ini`).

This module is the entry and the flow: it reads the input as the
converter does and hands each part to the check of what it is, each in a
room of its own (:mod:`validate.mime`, :mod:`validate.amiconfig`,
:mod:`validate.ucernvm`, :mod:`validate.cloud_config`,
:mod:`validate.script`), which all return :class:`validate.problem.Problem`.
Only the CLI imports it: it is not on the boot path.
"""

from __future__ import annotations

from cloudinit_cernvm import gzip_input, mime_read, userdata
from cloudinit_cernvm.content_types import (
    AMICONFIG,
    AMICONFIG_USER_DATA,
    CLOUD_CONFIG,
    SCRIPT,
    SCRIPT_BEFORE,
    UCERNVM,
)
from cloudinit_cernvm.old_syntax import is_old_syntax, split_old_syntax
from cloudinit_cernvm.userdata_part import Part, UserDataError
from cloudinit_cernvm.validate.amiconfig import check_amiconfig, is_amiconfig
from cloudinit_cernvm.validate.cloud_config import check_cloud_config
from cloudinit_cernvm.validate.mime import mime_placed, mime_problems
from cloudinit_cernvm.validate.problem import ERROR, Place, Problem
from cloudinit_cernvm.validate.script import check_script, script_runs_sections
from cloudinit_cernvm.validate.ucernvm import check_ucernvm, raw_markers

#: Types whose base64 the issue requires decoded (all text is, in fact).
CERNVM_TYPES = frozenset({AMICONFIG, AMICONFIG_USER_DATA, UCERNVM})


def _check_part(part: Part, place: Place) -> list[Problem]:
    """Checks of one part alone (amiconfig's are made on the parts joined)."""
    ctype = part.content_type
    if part.encoded is not None:
        if ctype in CERNVM_TYPES or ctype.startswith("text/"):
            return [place.problem(None, "not-utf8", "not UTF-8 text: its consumer cannot read it")]
        return []
    if ctype == UCERNVM:
        found = check_ucernvm(part.text, place)
        cte = (part.header("Content-Transfer-Encoding") or "").strip().lower()
        if cte == "base64":
            found.insert(
                0,
                place.problem(
                    None,
                    "ucernvm-base64",
                    "base64-encoded: this project's microboot stage decodes it, but older "
                    "µCernVM images scan the raw user-data and miss this block; write it as "
                    "text ('cernvm-context convert' does)",
                ),
            )
        return found
    if ctype == CLOUD_CONFIG:
        return check_cloud_config(part.text, place)
    if ctype in (SCRIPT, SCRIPT_BEFORE):
        return check_script(part, place)
    return []


def _check_parts(placed: list[tuple[Part, Place]]) -> list[Problem]:
    problems: list[Problem] = []
    for part, place in placed:
        problems += _check_part(part, place)
    amiconfig = [(part.text, place) for part, place in placed if is_amiconfig(part)]
    if amiconfig:
        problems += check_amiconfig(amiconfig)
    return problems


def _ordered(problems: list[Problem]) -> list[Problem]:
    """Document order: the whole data first, then by part and line."""
    return sorted(problems, key=lambda p: (p.part or 0, p.line or 0))


def check(raw: bytes) -> list[Problem]:
    """Check user-data; return the findings, in document order."""
    try:
        data = userdata.decode_input(raw)
    except UserDataError as exc:
        return [Problem("user-data", str(exc), "bad-gzip")]
    problems = raw_markers(gzip_input.gunzipped(raw).decode("utf-8", "surrogateescape"))
    if mime_read.looks_like_mime(data):
        structure, parts = mime_problems(data)
        problems = structure + problems + _check_parts(mime_placed(parts or []))
        return _ordered(problems)
    text = userdata.decode_text(data)
    if text is None:
        return [*problems, Problem("user-data", "not UTF-8 text", "not-utf8")]
    if is_old_syntax(text):
        parts = split_old_syntax(text)
        placed = [(part, Place(None, part.content_type, part.line)) for part in parts]
        found = _check_parts(placed)
        runs = script_runs_sections(parts, lambda p: Place(None, p.content_type, p.line))
        if runs:  # the sections were split out: they reach their consumers
            found = [p for p in found if p.code != "script-hides-section"]
        problems += found + runs
        return _ordered(problems)
    kind = userdata.guess_type(data)
    if kind == CLOUD_CONFIG:
        problems += check_cloud_config(text, Place(None, kind, 1))
    elif kind == SCRIPT:
        problems += check_script(Part(headers=[], payload=data), Place(None, kind, 1))
    return _ordered(problems)


def has_errors(problems: list[Problem], strict: bool = False) -> bool:
    """Whether ``validate`` fails: any error, or with ``strict`` any finding."""
    return any(strict or p.severity == ERROR for p in problems)
