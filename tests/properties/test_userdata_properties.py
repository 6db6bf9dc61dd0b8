"""Properties of the conversion on generated old-syntax documents."""

from __future__ import annotations

import email
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloudinit_cernvm import userdata
from cloudinit_cernvm.userdata_part import SCRIPT_HEADER
from tests.properties.strategies import old_syntax, render

TYPES = {
    "ini": "text/amiconfig",
    "ucernvm": "text/ucernvm",
    "cloud-config": "text/cloud-config",
}
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def leaves(mime: bytes) -> list[email.message.Message]:
    msg = email.message_from_bytes(mime)
    return [p for p in msg.walk() if not p.is_multipart()]


def expected(sections: list[tuple[str, list[str]]]) -> list[tuple[str, list[str]]]:
    """The parts a document must give: one per section, ini runs joined, marker moved."""
    parts: list[tuple[str, list[str]]] = []
    for kind, lines in sections:
        if kind == "script":
            marker = re.match(r"#!(/bin/sh)\.(before|after)$", lines[0])
            if marker and marker.group(2) == "before":
                parts.append(("text/x-shellscript-before-amiconfig", ["#!/bin/sh", *lines[1:]]))
            else:
                first = "#!/bin/sh" if marker else lines[0]
                parts.append(("text/x-shellscript", [first, *lines[1:]]))
        elif kind == "ini" and parts and parts[-1][0] == TYPES["ini"]:
            parts[-1][1].extend(lines)
        else:
            parts.append((TYPES[kind], list(lines)))
    return parts


@PROPERTY
@given(old_syntax(), st.booleans(), st.booleans())
def test_every_line_of_every_section_is_kept_in_its_part(sections, crlf, final_newline):
    raw = render(sections, crlf=crlf, final_newline=final_newline).encode()
    out = userdata.normalize(raw)
    if [kind for kind, _ in sections] == ["cloud-config"]:
        assert out == raw  # cloud-init's own format: passed unchanged
        return
    got = [
        (p.get_content_type(), p.get_payload(decode=True).decode("utf-8").split("\n")[:-1])
        for p in leaves(out)
    ]
    want = expected(sections)
    if not final_newline and want[-1][1][-1] == "":
        want[-1][1].pop()  # "x\n" then no final newline reads as the line "x" alone
    assert got == want


@PROPERTY
@given(old_syntax(), st.booleans())
def test_converting_its_own_output_changes_only_the_boundary(sections, crlf):
    if [kind for kind, _ in sections] == ["cloud-config"]:
        sections = [("ini", ["[cernvm]"]), *sections]
    once = userdata.normalize(render(sections, crlf=crlf).encode())
    twice = userdata.normalize(once)
    b1 = re.search(rb'boundary="([^"]+)"', once).group(1)
    b2 = re.search(rb'boundary="([^"]+)"', twice).group(1)
    assert b1 != b2
    assert twice.replace(b2, b1) == once


@PROPERTY
@given(old_syntax())
def test_scripts_keep_their_marker_in_a_header(sections):
    out = userdata.normalize(render(sections).encode())
    for part, (kind, lines) in zip(leaves(out), sections):
        if kind != "script":
            break
        when = re.search(r"\.(before|after)$", lines[0])
        assert part.get(SCRIPT_HEADER) == (when.group(1) if when else None)
