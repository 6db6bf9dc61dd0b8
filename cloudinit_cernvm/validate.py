"""Checks behind ``cernvm-context validate``: what each consumer will misread.

:func:`check` takes user-data as a user would give it to the cloud and
returns one :class:`Problem` per finding, each saying where it is (a line
of old-syntax text, or a MIME part and a line in it) and what to do.
Nothing here changes the data.

The checks: malformed MIME (boundaries that do not match the header; the
parts are still checked as the boundary actually used splits them),
µCernVM keys that µCernVM's scripts do not read (with the likely intended
key), µCernVM markers that µCernVM will not see, amiconfig sections and
plugins that do not exist, options outside any section, lines amiconfig
drops, a script without ``exit`` in front of ini text, cloud-config that is
not valid YAML or, where cloud-init is importable, not valid by its
schema.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from cloudinit_cernvm import ucernvm, userdata
from cloudinit_cernvm.userdata import Part, UserDataError

#: amiconfig plugins of the amiconfig CernVM ships: rPath's base plugins,
#: CernVM's and HEPiX's (from their sources).
KNOWN_PLUGINS: frozenset[str] = frozenset(
    {
        # rPath amiconfig
        "conaryproxy",
        "disablesshpasswdauth",
        "dnsupdate",
        "hostname",
        "kernelmodules",
        "mountvol",
        "noip",
        "openvpn",
        "rapadminpassword",
        "rapcert",
        "raprsakey",
        "rmakenode",
        "rmakeplugin",
        "rmakeproxy",
        "rmakeserver",
        "rootsshkeys",
        "rpathplugin",
        "sfcbclient",
        "storage",
        "vmwareguest",
        # CernVM
        "amildap",
        "appliance",
        "appliance-agent",
        "cernvm",
        "condor",
        "configscripts",
        "elastiq-setup",
        "ganglia",
        "ldap",
        "nss",
        "puppet",
        "squid",
        "tcpbuffers",
        "vaf-setup",
        "workqueue",
        "yp",
        # HEPiX
        "callback",
        "hepix",
    }
)

#: µCernVM keys that take on/off
SWITCH_KEYS = frozenset({"RESIZE_ROOTFS", "USE_BOOTHD", "USEGLIDEINWMS", "CVM_CLUSTER_MASTER"})
_SWITCH_VALUES = frozenset({"1", "0", "YES", "NO", "ON", "OFF", "TRUE", "FALSE"})

# amiconfig reads ini with Python's ConfigParser: these are its patterns.
_SECTION = re.compile(r"\[(?P<header>[^]]+)\]")
_OPTION = re.compile(r"(?P<option>[^:=\s][^:=]*)\s*(?P<vi>[:=])\s*(?P<value>.*)$")


@dataclass(frozen=True)
class Problem:
    """One finding: where it is, and what is wrong (one line each)."""

    where: str
    message: str

    def __str__(self) -> str:
        # the user's own file, but the output lands in CI logs: credentials
        # inside quoted values are hidden (no message needs them to be acted on)
        from cloudinit_cernvm.redact import redact_text

        return redact_text(userdata.printable(f"{self.where}: {self.message}"))


class _Place:
    """Turns a line inside a part into a human-readable place."""

    def __init__(self, part_index: int | None, ctype: str, first_line: int) -> None:
        self.part_index = part_index
        self.ctype = ctype
        self.first_line = first_line

    def at(self, line: int) -> str:
        if self.part_index is None:
            return f"line {self.first_line + line - 1}"
        return f"part {self.part_index} ({self.ctype}), line {line}"

    def whole(self) -> str:
        if self.part_index is None:
            return f"line {self.first_line}"
        return f"part {self.part_index} ({self.ctype})"


def _hint(word: str, known: frozenset[str] | list[str]) -> str:
    close = difflib.get_close_matches(word.lower(), sorted(known), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def check_ini(text: str, place: _Place) -> list[Problem]:
    """amiconfig ini text: sections, plugins, options outside sections, dropped lines."""
    problems: list[Problem] = []
    section: str | None = None
    for number, line in enumerate(text.split("\n"), start=1):
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            continue
        header = _SECTION.match(line)
        if header:
            section = header.group("header")
            if section != "amiconfig" and section not in KNOWN_PLUGINS:
                if section in (ucernvm.BEGIN[1:-1], ucernvm.END[1:-1]):
                    problems.append(
                        Problem(
                            place.at(number),
                            f"'{line}' is not an exact µCernVM marker line "
                            f"('{ucernvm.BEGIN}'/'{ucernvm.END}', nothing around it)",
                        )
                    )
                else:
                    problems.append(
                        Problem(
                            place.at(number),
                            f"section [{section}] is no amiconfig plugin"
                            + _hint(section, KNOWN_PLUGINS),
                        )
                    )
            continue
        option = _OPTION.match(line)
        if line[:1].isspace() or not option:
            problems.append(
                Problem(
                    place.at(number),
                    "amiconfig ignores this line: not 'name = value' "
                    "(continuation lines are not supported either)",
                )
            )
            continue
        name = option.group("option").strip()
        if section is None:
            problems.append(
                Problem(
                    place.at(number),
                    f"option '{name}' is outside any section: amiconfig ignores it",
                )
            )
            continue
        if section == "amiconfig" and name in ("plugins", "disabled_plugins"):
            for plugin in option.group("value").split():
                if plugin not in KNOWN_PLUGINS:
                    problems.append(
                        Problem(
                            place.at(number),
                            f"amiconfig plugin '{plugin}' does not exist"
                            + _hint(plugin, KNOWN_PLUGINS),
                        )
                    )
    return problems


def check_ucernvm(text: str, place: _Place) -> list[Problem]:
    """A µCernVM block: markers, keys, switch values, lines µCernVM ignores."""
    problems: list[Problem] = []
    lines = text.split("\n")
    inside = False
    ended = False
    for number, line in enumerate(lines, start=1):
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
                problems.append(Problem(place.at(number), "µCernVM ignores this line: no '='"))
            continue
        key, value = line.split("=", 1)
        if key != key.strip():
            problems.append(
                Problem(
                    place.at(number),
                    f"blanks around the key '{key.strip()}': µCernVM keeps them and the key "
                    "then names nothing; write key=value",
                )
            )
        if not ucernvm.is_known(key.strip()):
            guess = ucernvm.suggest(key)
            hint = f" (did you mean '{guess}'?)" if guess else ""
            problems.append(Problem(place.at(number), f"unknown µCernVM key '{key.strip()}'{hint}"))
        elif key.strip().upper() in SWITCH_KEYS and value.strip().upper() not in _SWITCH_VALUES:
            problems.append(
                Problem(
                    place.at(number), f"µCernVM key '{key.strip()}' takes on or off, not '{value}'"
                )
            )
    if inside and not ended:
        problems.append(Problem(place.whole(), f"the µCernVM block has no line '{ucernvm.END}'"))
    return problems


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
        where = place.at(mark.line + 1) if mark is not None else place.whole()
        return [Problem(where, f"cloud-config is not valid YAML: {problem}")]
    if config is None:
        return []
    if not isinstance(config, dict):
        return [Problem(place.whole(), "cloud-config must be a mapping of module settings")]
    return [Problem(place.whole(), message) for message in cloud_init_schema_errors(config)]


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


def check_script(part: Part, place: _Place) -> list[Problem]:
    """A script: starts with ``#!``; no CernVM section buried in it for want of ``exit``."""
    lines = part.text.split("\n")
    if not lines[0].startswith("#!"):
        return [Problem(place.whole(), "a script must start with a '#!' line")]
    problems: list[Problem] = []
    for number, line in enumerate(lines[1:], start=2):
        if userdata._EXIT.match(line):
            break
        header = _SECTION.fullmatch(line.rstrip())
        buried = (
            line == ucernvm.BEGIN
            or line.rstrip() == "#cloud-config"
            or (header is not None and header.group("header") in KNOWN_PLUGINS | {"amiconfig"})
        )
        if buried:
            problems.append(
                Problem(
                    place.at(number),
                    f"'{line.rstrip()}' is inside the script, which has no line 'exit' before it: "
                    "it runs as shell and reaches no other consumer; end the script with 'exit'",
                )
            )
            break
    return problems


def _check_part(part: Part, place: _Place) -> list[Problem]:
    ctype = part.content_type
    if part.encoded is not None:
        if ctype in userdata.CERNVM_TYPES or ctype.startswith("text/"):
            return [Problem(place.whole(), "not UTF-8 text: its consumer cannot read it")]
        return []
    if ctype in (userdata.AMICONFIG, userdata.AMICONFIG_USER_DATA):
        return check_ini(part.text, place)
    if ctype == userdata.UCERNVM:
        found = check_ucernvm(part.text, place)
        cte = (part.header("Content-Transfer-Encoding") or "").strip().lower()
        if cte == "base64":
            found.insert(
                0,
                Problem(
                    place.whole(),
                    "base64-encoded: µCernVM reads the raw user-data and will not see this "
                    "block; write it as text ('cernvm-context convert' does)",
                ),
            )
        return found
    if ctype == userdata.CLOUD_CONFIG:
        return check_cloud_config(part.text, place)
    if ctype in (userdata.SCRIPT, userdata.SCRIPT_BEFORE):
        return check_script(part, place)
    return []


def _raw_markers(text: str) -> list[Problem]:
    """What µCernVM, reading the raw text, will make of its markers."""
    problems: list[Problem] = []
    lines = text.split("\n")
    begins = [i for i, line in enumerate(lines, start=1) if line.rstrip("\r") == ucernvm.BEGIN]
    ends = [i for i, line in enumerate(lines, start=1) if line.rstrip("\r") == ucernvm.END]
    if any(lines[i - 1].endswith("\r") for i in begins + ends):
        problems.append(
            Problem(
                f"line {(begins + ends)[0]}",
                "CR LF line ends: µCernVM does not recognise its markers with a CR; "
                "save the file with LF line ends",
            )
        )
    if ends and (not begins or ends[0] < begins[0]):
        problems.append(
            Problem(
                f"line {ends[0]}",
                f"'{ucernvm.END}' before any '{ucernvm.BEGIN}': µCernVM stops reading here",
            )
        )
    if len(begins) > 1:
        problems.append(
            Problem(f"line {begins[1]}", "a second µCernVM block: µCernVM reads only the first")
        )
    return problems


def _mime_problems(data: bytes) -> tuple[list[Problem], list[Part] | None]:
    """Parse MIME for checking: problems with its structure, and its parts if any."""
    import email

    problems: list[Problem] = []
    try:
        parts = userdata.parse_parts(data)
    except userdata.MimeTooDeep as exc:
        return [Problem("MIME", str(exc))], None
    except UserDataError as exc:
        problems.append(Problem("MIME", str(exc)))
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


def check(raw: bytes) -> list[Problem]:
    """Check user-data; return the problems found, in document order."""
    try:
        data = userdata.decode_input(raw)
    except UserDataError as exc:
        return [Problem("user-data", str(exc))]
    text = data.decode("utf-8", "surrogateescape")
    problems = _raw_markers(userdata._gunzipped(raw).decode("utf-8", "surrogateescape"))
    if userdata.looks_like_mime(data):
        structure, parts = _mime_problems(data)
        problems = structure + problems
        for index, part in enumerate(parts or [], start=1):
            if part.content_type in (
                "text/plain",
                "text/x-not-multipart",
            ) and userdata.is_old_syntax(part.text):
                problems.append(
                    Problem(
                        f"part {index} ({part.content_type})",
                        "holds old-syntax user-data; it is split into parts on boot",
                    )
                )
                for sub in userdata.split_old_syntax(part.text):
                    problems += _check_part(sub, _Place(index, part.content_type, sub.line))
                continue
            problems += _check_part(part, _Place(index, part.content_type, 1))
        return problems
    decoded = userdata._decode_text(data)
    if decoded is None:
        return [*problems, Problem("user-data", "not UTF-8 text")]
    text = decoded
    if userdata.is_old_syntax(text):
        for part in userdata.split_old_syntax(text):
            problems += _check_part(part, _Place(None, part.content_type, part.line))
        return problems
    kind = userdata._guess_type(data)
    if kind == userdata.CLOUD_CONFIG:
        problems += check_cloud_config(text, _Place(None, kind, 1))
    elif kind == userdata.SCRIPT:
        problems += check_script(Part(headers=[], payload=data), _Place(None, kind, 1))
    return problems
