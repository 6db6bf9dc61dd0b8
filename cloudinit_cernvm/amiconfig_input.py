"""What amiconfig reads, and what it said, by the real amiconfig's rules.

CernVM's ``amiconfig.sh user`` handed amiconfig the whole user-data, with
the site's ``/cernvm/extra-user-data`` appended. amiconfig (Python 2,
``rpath/amiconfig/userdata.py``) keeps only section headers (``[...]`` at
column 0) and, after the first header, option lines, and reads them with
ConfigParser. The part-handler gets the user-data cut into parts, so it
joins them again; this module makes the join read like the original:

- a part whose first lines are options with no header of their own would
  put them into the previous part's last section; in the original they
  stood after a µCernVM block and so went to the pseudo-section
  ``[ucernvm-end]`` (a quirk: no plugin reads it). The µCernVM block is
  given to amiconfig in its place, markers included, so that those options
  land in ``[ucernvm-end]`` as before; in any other place they are dropped,
  as amiconfig drops options before a text's first header;
- the extra user-data comes last, its own leading options dropped alike.

It also reads amiconfig's output into one outcome per plugin (``ami.py``
prints, for each installed plugin, an empty line when it ran, ``Plugin
disabled by configuration, not executing: NAME``, or a message when it
failed, without the plugin's name), and the enabled plugins, which name
the failed one.

Standard library only; the stand-in ``tests/fakes/amiconfig`` follows the
same facts independently and is the tests' oracle.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

#: ConfigParser's section header and option lines (matched at column 0)
SECTION_LINE = re.compile(r"\[(?P<header>[^]]+)\]")
OPTION_LINE = re.compile(r"(?P<option>[^:=\s][^:=]*)\s*(?P<vi>[:=])\s*(?P<value>.*)$")
#: where amiconfig reads its default plugins (``-c`` changes it)
DEFAULT_CONFIG = "/etc/amiconfig/default.cfg"

AMICONFIG = "amiconfig"
UCERNVM = "ucernvm"
EXTRA = "extra"

DISABLED_PREFIX = "Plugin disabled by configuration, not executing: "
#: the message of the ``cernvm`` plugin's last call (``['/sbin/service cernvm start']``,
#: one argument), which fails on every run where the plugin is enabled
KNOWN_CERNVM_BUG = "[Errno 2] No such file or directory"
FAILURE_PREFIXES = (
    "An error occured while atempting to retrieve EC2 AMI instance data:",
    "An unknown exception occured:",
)


class Piece:
    """One text of the payload: an amiconfig part, a µCernVM block, the extra user-data."""

    __slots__ = ("kind", "name", "text")

    def __init__(self, kind: str, name: str, text: str) -> None:
        self.kind = kind
        self.name = name
        self.text = text


def _from_first_header(text: str) -> str:
    """``text`` from its first section header on (everything if it has none: '')."""
    lines = text.split("\n")
    for index, line in enumerate(lines):
        if SECTION_LINE.match(line):
            return "\n".join(lines[index:])
    return ""


def payload_texts(pieces: Iterable[Piece]) -> list[str]:
    """The texts to join, in order, each read by amiconfig as in the original.

    Options before a piece's first header are kept only right after a
    µCernVM block (they went to ``[ucernvm-end]`` before); elsewhere they
    are dropped, as amiconfig drops options before a text's first header,
    instead of landing in the previous piece's last section.
    """
    texts: list[str] = []
    previous: str | None = None
    for piece in pieces:
        text = piece.text
        if previous not in (None, UCERNVM) and piece.kind != UCERNVM:
            # (the first text is given whole: amiconfig drops its head itself)
            text = _from_first_header(text)
        if text:
            texts.append(text)
        previous = piece.kind
    return texts


def read_sections(text: str) -> dict[str, dict[str, str]]:
    """Sections and options as amiconfig reads them (the ``[DEFAULT]`` rules aside).

    Section names keep their case (``getSection`` compares them lower-cased),
    option names are lower-cased, a later option wins.
    """
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in text.split("\n"):
        header = SECTION_LINE.match(line)
        if header:
            current = sections.setdefault(header.group("header"), {})
        option = OPTION_LINE.match(line)
        if current is None or header or not option or line[0] in "#;":
            continue
        if line.split(None, 1)[0].lower() == "rem" and line[0] in "rR":
            continue
        current[option.group("option").rstrip().lower()] = _value(option.group("value"))
    return sections


def _value(raw: str) -> str:
    cut = raw.find(";")
    if cut > 0 and raw[cut - 1].isspace():
        raw = raw[:cut]
    raw = raw.strip()
    return "" if raw == '""' else raw


def section(sections: dict[str, dict[str, str]], name: str) -> dict[str, str]:
    """A section by name, any case (without the real ``getSection``'s crash)."""
    for key, body in sections.items():
        if key.lower() == name.lower():
            return body
    return {}


def crashing_section(sections: dict[str, dict[str, str]]) -> str | None:
    """``[AMICONFIG]`` or another casing: the real amiconfig crashes on it (exit 1)."""
    for key in sections:
        if key.lower() == "amiconfig" and key != "amiconfig":
            return key
    return None


def default_plugins(config_text: str | None) -> tuple[list[str], list[str]]:
    """``[general] enabled_plugins`` and ``disabled_plugins`` of default.cfg (comma lists)."""
    general = section(read_sections(config_text or ""), "general")
    lists = []
    for key in ("enabled_plugins", "disabled_plugins"):
        value = general.get(key, "")
        lists.append([k.strip() for k in value.split(",")] if value else [])
    return lists[0], lists[1]


def config_file(argv: list[str]) -> str:
    """The ``-c``/``--config`` file of an amiconfig command line, else the default."""
    found = DEFAULT_CONFIG
    for index, arg in enumerate(argv):
        if arg in ("-c", "--config") and index + 1 < len(argv):
            found = argv[index + 1]
        elif arg.startswith("--config="):
            found = arg.split("=", 1)[1]
    return found


def enabled_plugins(defaults: tuple[list[str], list[str]],
                    sections: dict[str, dict[str, str]]) -> list[str]:
    """The plugins amiconfig enables: defaults + ``plugins`` - ``disabled_plugins``."""
    enabled_default, disabled_default = defaults
    plugins = set(enabled_default)
    config = section(sections, "amiconfig")
    plugins.update(p.lower() for p in config.get("plugins", "").split())
    plugins.difference_update(p.lower() for p in config.get("disabled_plugins", "").split())
    plugins.difference_update(p.lower() for p in disabled_default)
    return sorted(p for p in plugins if p)


class Outcome:
    """amiconfig's output read per plugin."""

    __slots__ = ("disabled", "failures", "succeeded")

    def __init__(self) -> None:
        self.disabled: list[str] = []  # installed, not enabled
        self.succeeded = 0  # plugins that ran to their end (the real one prints no name)
        self.failures: list[str] = []  # one message per failed plugin

    def named_failures(self, enabled: list[str]) -> list[dict]:
        """Each failure with its plugin where the output leaves one possibility.

        The real amiconfig prints no name with a failure; the name is the
        one enabled plugin that was not reported disabled, or the ``cernvm``
        plugin when its message is the one of its known bug.
        """
        ran = [p for p in enabled if p not in self.disabled]
        named = []
        for message in self.failures:
            plugin = None
            if len(ran) == 1:
                plugin = ran[0]
            elif "cernvm" in ran and message == KNOWN_CERNVM_BUG:
                plugin = "cernvm"
            named.append({"plugin": plugin, "message": message,
                          "candidates": [plugin] if plugin else ran,
                          "known_bug": plugin == "cernvm" and message == KNOWN_CERNVM_BUG})
        return named

    def record(self, enabled: list[str]) -> dict:
        """For ``amiconfig.json``."""
        return {
            "enabled": enabled,
            "disabled": sorted(self.disabled),
            "succeeded": self.succeeded,
            "failed": self.named_failures(enabled),
        }


def read_output(output: str) -> Outcome:
    """Split amiconfig's output into per-plugin results (other lines are ignored)."""
    outcome = Outcome()
    lines = output.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the file's last newline
    index = 0
    while index < len(lines):
        line = lines[index].rstrip("\r")
        index += 1
        if line == "":
            outcome.succeeded += 1
        elif line.startswith(DISABLED_PREFIX):
            outcome.disabled.append(line[len(DISABLED_PREFIX):].strip().lower())
        elif line.startswith(FAILURE_PREFIXES):
            message: list[str] = []
            while index < len(lines) and not _starts_entry(lines[index]):
                message.append(lines[index].rstrip("\r"))
                index += 1
            outcome.failures.append(" ".join(m for m in message if m) or line)
    return outcome


def _starts_entry(line: str) -> bool:
    return line.strip() == "" or line.startswith(DISABLED_PREFIX) or line.startswith(
        FAILURE_PREFIXES)


def is_chatter(line: str) -> bool:
    """A line of amiconfig's output kept out of cloud-init's log (it stays in amiconfig.log)."""
    return line.strip() == "" or line.startswith(DISABLED_PREFIX)
