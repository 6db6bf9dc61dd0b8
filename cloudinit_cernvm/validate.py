"""Checks behind ``cernvm-context validate``: what each consumer will misread.

:func:`check` takes user-data as a user would give it to the cloud and
returns one :class:`Problem` per finding, each saying where it is (a line
of old-syntax text, or a MIME part and a line in it), how bad it is and
what to do. Nothing here changes the data.

Each finding has a severity and a stable code (:data:`CODES`, listed in
the README):

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
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from cloudinit_cernvm import amiconfig_ini, ucernvm, userdata
from cloudinit_cernvm.amiconfig_ini import KNOWN_PLUGINS, KNOWN_SECTIONS
from cloudinit_cernvm.userdata import Part, UserDataError

ERROR = "error"
WARNING = "warning"

#: every finding's code, its severity and what it means (the README's table)
CODES: dict[str, tuple[str, str]] = {
    "bad-gzip": (ERROR, "gzip that is corrupt, nested too deep or a probable bomb"),
    "not-utf8": (ERROR, "text that is not UTF-8: its consumer cannot read it"),
    "mime-malformed": (ERROR, "MIME whose boundaries do not match its header"),
    "mime-too-deep": (ERROR, "MIME multiparts nested too deep to convert"),
    "mime-unclosed": (WARNING, "MIME without its closing boundary line"),
    "yaml-invalid": (ERROR, "cloud-config that is not valid YAML"),
    "cloud-config-not-mapping": (ERROR, "cloud-config that is not a mapping"),
    "cloud-config-schema": (ERROR, "cloud-config that cloud-init's schema rejects"),
    "script-no-shebang": (ERROR, "a script part that does not start with '#!'"),
    "script-runs-sections": (
        WARNING,
        "a script without 'exit' followed by sections: the shell runs them too",
    ),
    "script-hides-section": (
        WARNING,
        "a section inside a MIME script part: no other consumer reads it",
    ),
    "ucernvm-key-blanks": (ERROR, "blanks around a µCernVM key: sourcing ucontext fails"),
    "ucernvm-switch-value": (ERROR, "a µCernVM on/off key with another value"),
    "ucernvm-end-first": (ERROR, "'[ucernvm-end]' before '[ucernvm-begin]': nothing is read"),
    "ucernvm-second-block": (ERROR, "a second µCernVM block: only the first is read"),
    "ucernvm-marker-inexact": (ERROR, "a µCernVM marker with blanks around it: not seen"),
    "ucernvm-unknown-key": (WARNING, "a µCernVM key no boot script reads"),
    "ucernvm-no-equals": (WARNING, "a line in the µCernVM block without '=': ignored"),
    "ucernvm-no-end": (WARNING, "a µCernVM block without '[ucernvm-end]'"),
    "ucernvm-crlf": (WARNING, "CR LF marker lines: older µCernVM images miss the block"),
    "ucernvm-base64": (WARNING, "a base64 µCernVM part: older µCernVM images miss it"),
    "amiconfig-section-case": (ERROR, "a section amiconfig's lookup fails on (case)"),
    "amiconfig-unknown-section": (WARNING, "a section no amiconfig plugin reads"),
    "amiconfig-unknown-plugin": (WARNING, "a plugin amiconfig does not have: ignored"),
    "amiconfig-unknown-option": (WARNING, "an [amiconfig] or [cernvm] option nobody reads"),
    "amiconfig-option-outside": (WARNING, "an option before any section: ignored"),
    "amiconfig-option-joined": (
        WARNING,
        "an option before its part's first section: the joined parts put it in the "
        "section before",
    ),
    "amiconfig-option-repeated": (WARNING, "an option given twice: the later one wins"),
    "amiconfig-line-dropped": (WARNING, "a line amiconfig drops (indented, or no '=')"),
}

#: µCernVM keys that take on/off
SWITCH_KEYS = frozenset({"RESIZE_ROOTFS", "USE_BOOTHD", "USEGLIDEINWMS", "CVM_CLUSTER_MASTER"})
_SWITCH_VALUES = frozenset({"1", "0", "YES", "NO", "ON", "OFF", "TRUE", "FALSE"})

# amiconfig's own patterns (``show`` names sections with them too)
_SECTION = amiconfig_ini.SECTION
_OPTION = amiconfig_ini.OPTION
_MARKER_NAMES = (ucernvm.BEGIN[1:-1], ucernvm.END[1:-1])


@dataclass(frozen=True)
class Problem:
    """One finding: where it is, its code and severity, and what to do (one line).

    ``part`` is the MIME part's number (None for old syntax), ``line`` the
    line in the whole text (old syntax) or in that part (None: the whole).
    """

    where: str
    message: str
    code: str = "mime-malformed"
    part: int | None = None
    line: int | None = None

    @property
    def severity(self) -> str:
        """``error`` or ``warning``, fixed by the code."""
        return CODES[self.code][0]

    def text(self) -> str:
        """The message, redacted and printable: the output lands in CI logs."""
        # credentials inside quoted values are hidden (no message needs them)
        from cloudinit_cernvm.redact import redact_text

        return redact_text(userdata.printable(self.message))

    def as_dict(self) -> dict:
        """The finding for ``--json``."""
        return {
            "line": self.line,
            "part": self.part,
            "severity": self.severity,
            "code": self.code,
            "message": self.text(),
        }

    def __str__(self) -> str:
        from cloudinit_cernvm.redact import redact_text

        prefix = "warning: " if self.severity == WARNING else ""
        where = redact_text(userdata.printable(self.where))
        return f"{prefix}{where}: {self.text()} [{self.code}]"


class _Place:
    """Turns a line inside a part into a place (text, part number, line)."""

    def __init__(self, part_index: int | None, ctype: str, first_line: int) -> None:
        self.part_index = part_index
        self.ctype = ctype
        self.first_line = first_line  # where the text starts, in the input or the part

    def problem(self, line: int | None, code: str, message: str) -> Problem:
        """A finding at ``line`` of this text (1-based; None: the whole text)."""
        at = None if line is None else self.first_line + line - 1
        if self.part_index is None:
            where = f"line {at if at is not None else self.first_line}"
            return Problem(where, message, code, None, at if at is not None else self.first_line)
        where = f"part {self.part_index} ({self.ctype})"
        if at is not None:
            where += f", line {at}"
        return Problem(where, message, code, self.part_index, at)


def _hint(word: str, known: frozenset[str] | list[str]) -> str:
    close = difflib.get_close_matches(word.lower(), sorted(known), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


# --- amiconfig: the parts joined, read as amiconfig reads them ---------------


class _Joined:
    """The amiconfig parts joined, and where each joined line comes from."""

    def __init__(self, texts: list[tuple[str, _Place]]) -> None:
        self.text = amiconfig_ini.join([t for t, _ in texts])
        self.lines = self.text.split("\n")
        self.origin: list[tuple[_Place, int]] = []
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


def check_amiconfig(texts: list[tuple[str, _Place]]) -> list[Problem]:
    """amiconfig's parts, joined: sections, plugins, options, dropped lines."""
    joined = _Joined(texts)
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


def _outside_options(joined: _Joined, reading: amiconfig_ini.Reading) -> list[Problem]:
    """Options before any header, or before their own part's first header."""
    problems = []
    for start, count, own_header in joined.spans:
        stop = own_header or start + count
        for number in range(start, stop):
            line = joined.lines[number - 1]
            option = _OPTION.match(line)
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


def _header_problems(joined: _Joined, reading: amiconfig_ini.Reading) -> list[Problem]:
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


def _option_problems(joined: _Joined, reading: amiconfig_ini.Reading) -> list[Problem]:
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


# --- µCernVM -----------------------------------------------------------------


def check_ucernvm(text: str, place: _Place) -> list[Problem]:
    """A µCernVM block: markers, keys, switch values, lines µCernVM ignores."""
    problems: list[Problem] = []
    inside = False
    ended = False
    for number, line in enumerate(text.split("\n"), start=1):
        if line == ucernvm.BEGIN:
            inside = True
            continue
        if line == ucernvm.END:
            ended = True
            break
        if not inside:
            continue
        if "=" not in line:
            if line.strip():
                problems.append(
                    place.problem(number, "ucernvm-no-equals", "µCernVM ignores this line: no '='")
                )
            continue
        problems += _ucernvm_setting(line, number, place)
    if inside and not ended:
        problems.append(
            place.problem(
                None,
                "ucernvm-no-end",
                f"the µCernVM block has no line '{ucernvm.END}': it runs to the end of the data",
            )
        )
    return problems


def _ucernvm_setting(line: str, number: int, place: _Place) -> list[Problem]:
    key, value = line.split("=", 1)
    name = key.strip()
    if key != name:
        return [
            place.problem(
                number,
                "ucernvm-key-blanks",
                f"blanks around the key '{name}': µCernVM keeps them and the key then names "
                "nothing; write key=value",
            )
        ]
    if not ucernvm.is_known(name):
        guess = ucernvm.suggest(key)
        hint = f" (did you mean '{guess}'?)" if guess else ""
        return [
            place.problem(
                number,
                "ucernvm-unknown-key",
                f"unknown µCernVM key '{name}': it only becomes the variable "
                f"{ucernvm.PREFIX}{name.upper()}{hint}",
            )
        ]
    if name.upper() in SWITCH_KEYS and _unquoted(value).upper() not in _SWITCH_VALUES:
        return [
            place.problem(
                number,
                "ucernvm-switch-value",
                f"µCernVM key '{name}' takes on or off, not '{value}'",
            )
        ]
    return []


def _unquoted(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


# --- cloud-config and scripts ------------------------------------------------


def check_cloud_config(text: str, place: _Place) -> list[Problem]:
    """cloud-config: valid YAML, a mapping and, where cloud-init is importable, its schema."""
    try:
        import yaml
    except ImportError:  # PyYAML missing: nothing to check with
        return []
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        line = mark.line + 1 if mark is not None else None
        return [place.problem(line, "yaml-invalid", f"cloud-config is not valid YAML: {problem}")]
    if config is None:
        return []
    if not isinstance(config, dict):
        return [
            place.problem(
                None,
                "cloud-config-not-mapping",
                "cloud-config must be a mapping of module settings",
            )
        ]
    return [
        place.problem(None, "cloud-config-schema", message)
        for message in cloud_init_schema_errors(config)
    ]


def cloud_init_schema_errors(config: dict) -> list[str]:
    """Errors of ``config`` by cloud-init's schema, if cloud-init is importable.

    The schema API differs between releases (20.4 takes the schema as the
    second positional argument, 25.1 has ``schema_type`` there): the schema
    is passed by keyword, and any failure of the check itself is ignored.
    """
    try:
        from cloudinit.config import schema as ci_schema
    except Exception:  # no cloud-init here, or a broken one: no schema check
        return []
    try:
        full = ci_schema.get_schema()
        ci_schema.validate_cloudconfig_schema(config, schema=full, strict=True)
    except ci_schema.SchemaValidationError as exc:
        found = []
        for item in getattr(exc, "schema_errors", ()) or ():
            path, message = (item[0], item[1]) if isinstance(item, tuple) else (item, "")
            found.append(f"cloud-config {path}: {message}" if message else f"cloud-config: {path}")
        return found or [f"cloud-config: {str(exc).splitlines()[0]}"]
    except Exception:  # the check itself failed on this release: say nothing
        return []
    return []


def _section_line(line: str) -> bool:
    """A line another consumer would read as the start of a section."""
    header = re.fullmatch(r"\[([^\]\s]+)\]", line.rstrip())
    return (
        line == ucernvm.BEGIN
        or line.rstrip() == "#cloud-config"
        or (header is not None and header.group(1) in KNOWN_SECTIONS)
    )


def check_script(part: Part, place: _Place) -> list[Problem]:
    """A MIME script part: starts with ``#!``; no CernVM section hidden in it."""
    lines = part.text.split("\n")
    if not lines[0].startswith("#!"):
        return [place.problem(None, "script-no-shebang", "a script must start with a '#!' line")]
    for number, line in enumerate(lines[1:], start=2):
        if userdata._EXIT.match(line):
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


def _script_runs_sections(parts: list[Part], place_of) -> list[Problem]:
    """Old syntax: a leading script without ``exit`` whose sections were split out too."""
    if not parts or parts[0].content_type not in (userdata.SCRIPT, userdata.SCRIPT_BEFORE):
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


# --- the parts ---------------------------------------------------------------


def _check_part(part: Part, place: _Place) -> list[Problem]:
    """Checks of one part alone (amiconfig's are made on the parts joined)."""
    ctype = part.content_type
    if part.encoded is not None:
        if ctype in userdata.CERNVM_TYPES or ctype.startswith("text/"):
            return [place.problem(None, "not-utf8", "not UTF-8 text: its consumer cannot read it")]
        return []
    if ctype == userdata.UCERNVM:
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
    if ctype == userdata.CLOUD_CONFIG:
        return check_cloud_config(part.text, place)
    if ctype in (userdata.SCRIPT, userdata.SCRIPT_BEFORE):
        return check_script(part, place)
    return []


def _is_amiconfig(part: Part) -> bool:
    return part.encoded is None and part.content_type in (
        userdata.AMICONFIG,
        userdata.AMICONFIG_USER_DATA,
    )


def _raw_markers(text: str) -> list[Problem]:
    """What µCernVM, reading the raw text, will make of its markers."""
    problems: list[Problem] = []
    lines = text.split("\n")
    begins = [i for i, line in enumerate(lines, start=1) if line.rstrip("\r") == ucernvm.BEGIN]
    ends = [i for i, line in enumerate(lines, start=1) if line.rstrip("\r") == ucernvm.END]
    crs = [i for i in sorted(begins + ends) if lines[i - 1].endswith("\r")]
    if crs:
        problems.append(
            Problem(
                f"line {crs[0]}",
                "CR LF line ends: this project reads the µCernVM block, but older µCernVM "
                "images do not recognise its markers with a CR; save the file with LF line ends",
                "ucernvm-crlf",
                None,
                crs[0],
            )
        )
    if ends and (not begins or ends[0] < begins[0]):
        problems.append(
            Problem(
                f"line {ends[0]}",
                f"'{ucernvm.END}' before any '{ucernvm.BEGIN}': µCernVM stops reading here",
                "ucernvm-end-first",
                None,
                ends[0],
            )
        )
    if len(begins) > 1:
        problems.append(
            Problem(
                f"line {begins[1]}",
                "a second µCernVM block: µCernVM reads only the first",
                "ucernvm-second-block",
                None,
                begins[1],
            )
        )
    return problems


def _mime_problems(data: bytes) -> tuple[list[Problem], list[Part] | None]:
    """Parse MIME for checking: problems with its structure, and its parts if any."""
    import email

    problems: list[Problem] = []
    try:
        parts = userdata.parse_parts(data)
    except userdata.MimeTooDeep as exc:
        return [Problem("MIME", str(exc), "mime-too-deep")], None
    except UserDataError as exc:
        problems.append(Problem("MIME", str(exc), "mime-malformed"))
        repaired = _repair_boundary(data)
        if repaired is None:
            return problems, None
        try:
            parts = userdata.parse_parts(repaired)
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
    import email

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


def _check_parts(placed: list[tuple[Part, _Place]]) -> list[Problem]:
    problems: list[Problem] = []
    for part, place in placed:
        problems += _check_part(part, place)
    amiconfig = [(part.text, place) for part, place in placed if _is_amiconfig(part)]
    if amiconfig:
        problems += check_amiconfig(amiconfig)
    return problems


def _mime_placed(parts: list[Part]) -> list[tuple[Part, _Place]]:
    """Each leaf part with its place; old syntax in a text/plain part split as on boot."""
    placed = []
    for index, part in enumerate(parts, start=1):
        if part.encoded is None and part.content_type in (
            "text/plain",
            "text/x-not-multipart",
        ) and userdata.is_old_syntax(part.text):
            for sub in userdata.split_old_syntax(part.text):
                placed.append((sub, _Place(index, part.content_type, sub.line)))
            continue
        placed.append((part, _Place(index, part.content_type, 1)))
    return placed


def _ordered(problems: list[Problem]) -> list[Problem]:
    """Document order: the whole data first, then by part and line."""
    return sorted(problems, key=lambda p: (p.part or 0, p.line or 0))


def check(raw: bytes) -> list[Problem]:
    """Check user-data; return the findings, in document order."""
    try:
        data = userdata.decode_input(raw)
    except UserDataError as exc:
        return [Problem("user-data", str(exc), "bad-gzip")]
    problems = _raw_markers(userdata._gunzipped(raw).decode("utf-8", "surrogateescape"))
    if userdata.looks_like_mime(data):
        structure, parts = _mime_problems(data)
        problems = structure + problems + _check_parts(_mime_placed(parts or []))
        return _ordered(problems)
    text = userdata._decode_text(data)
    if text is None:
        return [*problems, Problem("user-data", "not UTF-8 text", "not-utf8")]
    if userdata.is_old_syntax(text):
        parts = userdata.split_old_syntax(text)
        placed = [(part, _Place(None, part.content_type, part.line)) for part in parts]
        found = _check_parts(placed)
        runs = _script_runs_sections(parts, lambda p: _Place(None, p.content_type, p.line))
        if runs:  # the sections were split out: they reach their consumers
            found = [p for p in found if p.code != "script-hides-section"]
        problems += found + runs
        return _ordered(problems)
    kind = userdata._guess_type(data)
    if kind == userdata.CLOUD_CONFIG:
        problems += check_cloud_config(text, _Place(None, kind, 1))
    elif kind == userdata.SCRIPT:
        problems += check_script(Part(headers=[], payload=data), _Place(None, kind, 1))
    return _ordered(problems)


def has_errors(problems: list[Problem], strict: bool = False) -> bool:
    """Whether ``validate`` fails: any error, or with ``strict`` any finding."""
    return any(strict or p.severity == ERROR for p in problems)
