"""Scripts checked: a ``#!`` line, and no CernVM section hidden inside.

A MIME script part that holds a section another consumer would read (it
only runs as shell), and an old-syntax script without ``exit`` whose
sections the shell also runs. Apart: it reads scripts by the old syntax's
``exit`` rule (:data:`old_syntax.EXIT`), not by any section's.
"""

from __future__ import annotations

import re

from cloudinit_cernvm import ucernvm
from cloudinit_cernvm.amiconfig_ini import KNOWN_SECTIONS
from cloudinit_cernvm.content_types import SCRIPT, SCRIPT_BEFORE
from cloudinit_cernvm.old_syntax import EXIT
from cloudinit_cernvm.userdata_part import Part
from cloudinit_cernvm.validate.problem import Place, Problem


def _section_line(line: str) -> bool:
    """A line another consumer would read as the start of a section."""
    header = re.fullmatch(r"\[([^\]\s]+)\]", line.rstrip())
    return (
        line == ucernvm.BEGIN
        or line.rstrip() == "#cloud-config"
        or (header is not None and header.group(1) in KNOWN_SECTIONS)
    )


def check_script(part: Part, place: Place) -> list[Problem]:
    """A MIME script part: starts with ``#!``; no CernVM section hidden in it."""
    lines = part.text.split("\n")
    if not lines[0].startswith("#!"):
        return [place.problem(None, "script-no-shebang", "a script must start with a '#!' line")]
    for number, line in enumerate(lines[1:], start=2):
        if EXIT.match(line):
            break
        if _section_line(line):
            return [
                place.problem(
                    number,
                    "script-hides-section",
                    f"'{line.rstrip()}' is inside the script, which has no line 'exit' before "
                    "it: it runs as shell and reaches no other consumer; put it in a part "
                    "of its own",
                )
            ]
    return []


def script_runs_sections(parts: list[Part], place_of) -> list[Problem]:
    """Old syntax: a leading script without ``exit`` whose sections were split out too."""
    if not parts or parts[0].content_type not in (SCRIPT, SCRIPT_BEFORE):
        return []
    script = parts[0]
    end = script.line + script.text.count("\n") - 1
    inside = [p for p in parts[1:] if p.line <= end]
    if not inside:
        return []
    first = inside[0]
    line = first.text.split("\n", 1)[0]
    return [
        place_of(script).problem(
            first.line - script.line + 1,
            "script-runs-sections",
            f"the script has no line 'exit' before '{line}': amiconfig and µCernVM read this "
            "section and the lines after it, and the shell also runs them as commands; "
            "end the script with a line 'exit' above it",
        )
    ]
