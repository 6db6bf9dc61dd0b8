"""amiconfig's parts checked as amiconfig reads them: joined, by its own parser's rules.

Sections, plugins and options no consumer reads, the section-case
lookups amiconfig fails on, options outside sections and lines it drops
(:mod:`cloudinit_cernvm.amiconfig_ini` reads them). A room of its own:
amiconfig is checked on all its parts at once, not part by part.
"""

from __future__ import annotations

import difflib

from cloudinit_cernvm import amiconfig_ini, ucernvm
from cloudinit_cernvm.amiconfig_ini import KNOWN_PLUGINS, KNOWN_SECTIONS
from cloudinit_cernvm.content_types import AMICONFIG, AMICONFIG_USER_DATA
from cloudinit_cernvm.userdata_part import Part
from cloudinit_cernvm.validate.problem import Place, Problem

_MARKER_NAMES = (ucernvm.BEGIN[1:-1], ucernvm.END[1:-1])


def _hint(word: str, known: frozenset[str] | list[str]) -> str:
    close = difflib.get_close_matches(word.lower(), sorted(known), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


class Joined:
    """The amiconfig parts joined, and where each joined line comes from."""

    def __init__(self, texts: list[tuple[str, Place]]) -> None:
        self.text = amiconfig_ini.join([t for t, _ in texts])
        self.lines = self.text.split("\n")
        self.origin: list[tuple[Place, int]] = []
        #: per part: its first joined line, its number of lines, its first header's joined line
        self.spans: list[tuple[int, int, int]] = []
        for text, place in texts:
            start = len(self.origin) + 1
            count = text.count("\n") + (0 if text.endswith("\n") or not text else 1)
            local = text.split("\n")[:count]
            first = next((n for n, s in enumerate(local, 1) if amiconfig_ini.is_header(s)), 0)
            self.spans.append((start, count, start + first - 1 if first else 0))
            self.origin.extend((place, n) for n in range(1, count + 1))

    def problem(self, joined_line: int, code: str, message: str) -> Problem:
        place, line = self.origin[joined_line - 1]
        return place.problem(line, code, message)


def check_amiconfig(texts: list[tuple[str, Place]]) -> list[Problem]:
    """amiconfig's parts, joined: sections, plugins, options, dropped lines."""
    joined = Joined(texts)
    reading = amiconfig_ini.read(joined.text)
    problems = _outside_options(joined, reading)
    problems += _header_problems(joined, reading)
    problems += _option_problems(joined, reading)
    for dropped in reading.dropped:
        problems.append(
            joined.problem(
                dropped.line,
                "amiconfig-line-dropped",
                f"amiconfig ignores this line ({dropped.reason}; continuation lines are not "
                "supported either)",
            )
        )
    return problems


def _outside_options(joined: Joined, reading: amiconfig_ini.Reading) -> list[Problem]:
    """Options before any header, or before their own part's first header."""
    problems = []
    for start, count, own_header in joined.spans:
        stop = own_header or start + count
        for number in range(start, stop):
            line = joined.lines[number - 1]
            option = amiconfig_ini.OPTION.match(line)
            if option is None or line[:1] in "#;":
                continue
            name = option.group("option").strip()
            if not reading.first_header or number < reading.first_header:
                problems.append(
                    joined.problem(
                        number,
                        "amiconfig-option-outside",
                        f"option '{name}' is outside any section: amiconfig ignores it",
                    )
                )
                continue
            problems.append(
                joined.problem(
                    number,
                    "amiconfig-option-joined",
                    f"option '{name}' stands before any section of its part: amiconfig reads "
                    f"the parts joined and takes it into [{_section_before(reading, number)}]",
                )
            )
    return problems


def _section_before(reading: amiconfig_ini.Reading, line: int) -> str:
    return [name for at, name in reading.headers if at < line][-1]


def _header_problems(joined: Joined, reading: amiconfig_ini.Reading) -> list[Problem]:
    problems = []
    crashing = dict(reading.crashing_sections())
    for line, name in reading.headers:
        if name.strip() in _MARKER_NAMES:
            if joined.lines[line - 1] not in (ucernvm.BEGIN, ucernvm.END):
                problems.append(
                    joined.problem(
                        line,
                        "ucernvm-marker-inexact",
                        f"'{joined.lines[line - 1]}' is not an exact µCernVM "
                        f"marker line ('{ucernvm.BEGIN}'/'{ucernvm.END}', nothing around it)",
                    )
                )
            continue
        if line in crashing:
            fails = "amiconfig fails" if name.lower() == "amiconfig" else (
                f"the plugin '{name.lower()}' fails")
            problems.append(
                joined.problem(
                    line,
                    "amiconfig-section-case",
                    f"section [{name}]: amiconfig finds it ignoring case but fetches "
                    f"[{name.lower()}], which is not there, and {fails}; write [{name.lower()}]",
                )
            )
        elif name not in KNOWN_SECTIONS:
            problems.append(
                joined.problem(
                    line,
                    "amiconfig-unknown-section",
                    f"section [{name}] is read by no amiconfig plugin"
                    + _hint(name, KNOWN_SECTIONS),
                )
            )
    return problems


def _option_problems(joined: Joined, reading: amiconfig_ini.Reading) -> list[Problem]:
    problems = []
    known = {"amiconfig": amiconfig_ini.AMICONFIG_OPTIONS, "cernvm": amiconfig_ini.CERNVM_OPTIONS}
    for section, names in known.items():
        for option in reading.sections.get(section, {}).values():
            if option.name not in names:
                problems.append(
                    joined.problem(
                        option.line,
                        "amiconfig-unknown-option",
                        f"[{section}] option '{option.written}' is read by no plugin"
                        + _hint(option.name, names),
                    )
                )
    config = reading.sections.get("amiconfig", {})
    for key in ("plugins", "disabled_plugins"):
        if key not in config:
            continue
        for plugin in config[key].value.split():
            if plugin.lower() not in KNOWN_PLUGINS:
                problems.append(
                    joined.problem(
                        config[key].line,
                        "amiconfig-unknown-plugin",
                        f"amiconfig plugin '{plugin}' does not exist: amiconfig ignores it"
                        + _hint(plugin, KNOWN_PLUGINS),
                    )
                )
    for section, old, new in reading.overridden:
        problems.append(
            joined.problem(
                old.line,
                "amiconfig-option-repeated",
                f"[{section}] option '{old.written}' is given again later (joined line "
                f"{new.line} of the amiconfig parts): amiconfig takes the later one",
            )
        )
    return problems


def is_amiconfig(part: Part) -> bool:
    """Whether amiconfig reads ``part`` (a text part of one of its types)."""
    return part.encoded is None and part.content_type in (
        AMICONFIG,
        AMICONFIG_USER_DATA,
    )
