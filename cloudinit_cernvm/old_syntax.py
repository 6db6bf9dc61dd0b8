"""CernVM's old syntax: recognised, and split into parts, one per section.

CernVM users write *old syntax*: one text that mixes a leading ``#!``
script ended by a line ``exit``, amiconfig ini sections, a µCernVM
``[ucernvm-begin]``...``[ucernvm-end]`` block and ``#cloud-config`` YAML.
This module tells such text from cloud-init's own formats
(:func:`is_old_syntax`) and cuts it into parts (:func:`split_old_syntax`);
the converter (:mod:`userdata`) decides what to do with them, and
``validate``/``explain`` read the same cut. It is apart from MIME because
it reads plain text by CernVM's rules, not MIME's.

Old syntax is split one part per section, in document order, nothing
dropped but blank lines before the first content:

==============================  ===========================================
section                         part
==============================  ===========================================
``#!/bin/sh.before`` script     ``text/x-shellscript-before-amiconfig``,
                                written with ``#!/bin/sh``, header
                                ``X-CernVM-Script: before`` (run once per
                                instance right before amiconfig)
``#!/bin/sh.after`` script      ``text/x-shellscript``, written with
                                ``#!/bin/sh``, ``X-CernVM-Script: after``
other ``#!`` script             ``text/x-shellscript`` (cloud-init runs it
                                once per instance, after amiconfig)
µCernVM block                   ``text/ucernvm``, marker lines kept
``#cloud-config`` YAML          ``text/cloud-config``
amiconfig ini text              ``text/amiconfig``: one part per contiguous
                                run of ini text (the runs that stand
                                before, between and after other sections
                                stay separate, so order is kept)
==============================  ===========================================

The leading script ends at the first line that starts with ``exit`` at
column 0 (``exit``, ``exit 0``...), which is kept. Without such a line the
whole text is the script, as the shell ran it before: nothing is ever cut
out of a script. Its sections still reach their parts, as amiconfig (every
section from the first header on) and µCernVM (its block anywhere) read
them: from the first whole-line header on, when the script holds a µCernVM
block or a section that amiconfig or a plugin reads (``[amiconfig]``,
``[cernvm]``, ``[rpath]``...), those lines are split as below too, so they
stand both in the script and in their parts; a ``#cloud-config`` line there
stays with the ini text (cloud-init never read it as YAML). A here-document
writing some other ini file (``[main]``) leaves the script alone. A
``#cloud-config`` section runs to the next ini section header or µCernVM
block.

Standard library only: this module is on the boot path.
"""

from __future__ import annotations

import re

from cloudinit_cernvm import amiconfig_ini, ucernvm
from cloudinit_cernvm.content_types import AMICONFIG, CLOUD_CONFIG, SCRIPT, SCRIPT_BEFORE, UCERNVM
from cloudinit_cernvm.userdata_part import SCRIPT_HEADER, Part, text_part

#: the line that ends the leading script (``exit``, ``exit 0``... at column 0)
EXIT = re.compile(r"exit(?:[ \t;].*)?$")
_HEADER = re.compile(r"\[([^\]\s]+)\][ \t]*$")
#: a ``#!/bin/sh.before`` or ``.after`` first line
MARKER = re.compile(r"#!(\s*)(\S+?)\.(before|after)(?=\s|$)(.*)$")
_CLOUD_CONFIG = "#cloud-config"
# First lines that mark one of cloud-init's own formats.
_CLOUDINIT_STARTS = (
    "#include",
    "## template:",
    "#cloud-boothook",
    "#part-handler",
    "#upstart-job",
    "#cloud-config-archive",
    "#cloud-config-jsonp",
)


def _lines(text: str) -> list[str]:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


class _Segment:
    __slots__ = ("kind", "lines", "start")

    def __init__(self, kind: str, start: int, lines: list[str]) -> None:
        self.kind = kind  # script, ucernvm, cloud-config, ini
        self.start = start  # 0-based index of the first line
        self.lines = lines


def _segments(text: str) -> list[_Segment]:
    """Cut old-syntax text into sections (see the module docstring)."""
    lines = _lines(text)
    n = len(lines)
    i = 0
    while i < n and not lines[i].strip():
        i += 1
    segments: list[_Segment] = []
    cloud_config = True
    if i < n and lines[i].startswith("#!"):
        end = next((k + 1 for k in range(i + 1, n) if EXIT.match(lines[k])), n)
        segments.append(_Segment("script", i, lines[i:end]))
        if end == n:
            # no exit: the shell runs it all, and the other consumers still
            # read the sections in it (cloud-init never saw its YAML)
            i = _sections_in_script(lines, i + 1)
            cloud_config = False
        else:
            i = end
    while i < n:
        line = lines[i]
        if line == ucernvm.BEGIN:
            end = next((k + 1 for k in range(i + 1, n) if lines[k] == ucernvm.END), n)
            segments.append(_Segment("ucernvm", i, lines[i:end]))
        elif cloud_config and line.rstrip() == _CLOUD_CONFIG:
            end = next((k for k in range(i + 1, n) if _HEADER.match(lines[k])), n)
            segments.append(_Segment("cloud-config", i, lines[i:end]))
        else:
            end = next(
                (
                    k
                    for k in range(i + 1, n)
                    if lines[k] == ucernvm.BEGIN
                    or (cloud_config and lines[k].rstrip() == _CLOUD_CONFIG)
                ),
                n,
            )
            segments.append(_Segment("ini", i, lines[i:end]))
        i = end
    # Blank runs between sections carry nothing: keep them with the section
    # before, rather than make parts of blank lines.
    merged: list[_Segment] = []
    for seg in segments:
        if merged and seg.kind == "ini" and not any(s.strip() for s in seg.lines):
            merged[-1].lines.extend(seg.lines)
        else:
            merged.append(seg)
    return merged


def _sections_in_script(lines: list[str], start: int) -> int:
    """Where the sections of a script without ``exit`` start, or ``len(lines)``.

    amiconfig reads every section from the first header on, and µCernVM
    finds its block anywhere, even inside a script; they start at the first
    whole-line header (``[name]``, no blanks: ``[ -f x ]`` is shell) when
    the script holds a section some consumer reads (a µCernVM block,
    ``[amiconfig]`` or a plugin's section). A here-document that writes some
    other ini file (``[main]``) leaves the script alone.
    """
    first = None
    for k in range(start, len(lines)):
        header = _HEADER.match(lines[k])
        if header is None:
            continue
        if first is None:
            first = k
        if lines[k] == ucernvm.BEGIN or header.group(1) in amiconfig_ini.KNOWN_SECTIONS:
            return first
    return len(lines)


def _has_header(seg: _Segment) -> bool:
    return any(_HEADER.match(line) for line in seg.lines)


def is_old_syntax(text: str) -> bool:
    """Tell whether ``text`` holds CernVM sections that cloud-init alone misreads.

    True when it has an ini section, a µCernVM block, a ``.before``/
    ``.after`` script marker, a script preceded by blank lines (CernVM's
    tools skipped them, cloud-init does not), or a script followed by
    other sections (or, without ``exit``, holding sections other consumers
    read). Text that starts like one of cloud-init's own formats
    (``#include``, a jinja template...) is never old syntax.
    """
    first = text.lstrip("\n").split("\n", 1)[0]
    if first.startswith(_CLOUDINIT_STARTS):
        return False
    segments = _segments(text)
    meaningful = 0
    for seg in segments:
        if seg.kind == "ucernvm" or (seg.kind == "ini" and _has_header(seg)):
            return True
        if seg.kind == "script":
            if MARKER.match(seg.lines[0]) or seg.start > 0:
                return True
        if seg.kind in ("script", "cloud-config"):
            meaningful += 1
    return meaningful > 1


def split_old_syntax(text: str) -> list[Part]:
    """Split old-syntax text into parts, one per section, in order.

    ``text`` uses LF line ends. Each part's payload ends with a newline.
    Concatenating the payloads gives ``text`` back but for blank lines
    before the first content, the script marker (``#!/bin/sh.before``
    becomes ``#!/bin/sh`` plus an ``X-CernVM-Script`` header), a final
    newline, and the sections of a script without ``exit``, which stand
    twice: in the script and in their own parts.
    """
    parts: list[Part] = []
    for seg in _segments(text):
        body = "\n".join(seg.lines) + "\n"
        line = seg.start + 1
        if seg.kind == "script":
            marker = MARKER.match(seg.lines[0])
            if marker:
                space, interpreter, when, rest = marker.groups()
                first = f"#!{space}{interpreter}{rest}"
                body = "\n".join([first, *seg.lines[1:]]) + "\n"
                ctype = SCRIPT_BEFORE if when == "before" else SCRIPT
                parts.append(text_part(ctype, body, line, [(SCRIPT_HEADER, when)]))
            else:
                parts.append(text_part(SCRIPT, body, line))
        elif seg.kind == "ucernvm":
            parts.append(text_part(UCERNVM, body, line))
        elif seg.kind == "cloud-config":
            parts.append(text_part(CLOUD_CONFIG, body, line))
        else:
            parts.append(text_part(AMICONFIG, body, line))
    return parts
