"""MIME checked as a whole: malformed or unclosed boundaries, nesting too deep.

Parses the message with :mod:`mime_read`, as the converter does, and
reports what it refuses; where only the declared boundary is wrong it
repairs it, so that the parts can still be checked. :func:`mime_placed`
gives each leaf part its place (old syntax in a ``text/plain`` part split
as on boot). Apart: these are problems of the container, not of a part.
"""

from __future__ import annotations

import email

from cloudinit_cernvm import mime_read
from cloudinit_cernvm.old_syntax import is_old_syntax, split_old_syntax
from cloudinit_cernvm.userdata_part import Part, UserDataError
from cloudinit_cernvm.validate.problem import Place, Problem


def mime_problems(data: bytes) -> tuple[list[Problem], list[Part] | None]:
    """Parse MIME for checking: problems with its structure, and its parts if any."""
    problems: list[Problem] = []
    try:
        parts = mime_read.parse_parts(data)
    except mime_read.MimeTooDeep as exc:
        return [Problem("MIME", str(exc), "mime-too-deep")], None
    except UserDataError as exc:
        problems.append(Problem("MIME", str(exc), "mime-malformed"))
        repaired = _repair_boundary(data)
        if repaired is None:
            return problems, None
        try:
            parts = mime_read.parse_parts(repaired)
        except UserDataError:
            return problems, None
        data = repaired
    msg = email.message_from_bytes(data)
    for sub in msg.walk():
        if any(type(d).__name__ == "CloseBoundaryNotFoundDefect" for d in sub.defects):
            problems.append(
                Problem(
                    "MIME",
                    f"no closing line '--{sub.get_boundary()}--': the last part runs to the end",
                    "mime-unclosed",
                )
            )
    return problems, parts


def _repair_boundary(data: bytes) -> bytes | None:
    """Return ``data`` with the declared boundary replaced by the one the parts use."""
    msg = email.message_from_bytes(data)
    declared = msg.get_boundary()
    body = data.split(b"\n\n", 1)[-1]
    used = [
        line[2:].rstrip()
        for line in body.split(b"\n")
        if line.startswith(b"--") and len(line.rstrip()) > 2 and not line.rstrip().endswith(b"--")
    ]
    if declared is None or not used:
        return None
    head, sep, rest = data.partition(b"\n\n")
    fixed = head.replace(declared.encode("utf-8", "surrogateescape"), used[0], 1)
    return fixed + sep + rest if fixed != head else None


def mime_placed(parts: list[Part]) -> list[tuple[Part, Place]]:
    """Each leaf part with its place; old syntax in a text/plain part split as on boot."""
    placed = []
    for index, part in enumerate(parts, start=1):
        if part.encoded is None and part.content_type in (
            "text/plain",
            "text/x-not-multipart",
        ) and is_old_syntax(part.text):
            for sub in split_old_syntax(part.text):
                placed.append((sub, Place(index, part.content_type, sub.line)))
            continue
        placed.append((part, Place(index, part.content_type, 1)))
    return placed
