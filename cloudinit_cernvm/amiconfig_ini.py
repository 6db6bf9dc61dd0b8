"""amiconfig's reading of its user-data, for ``validate`` and ``explain``.

CernVM's amiconfig (``rpath/amiconfig/userdata.py`` in ``cernvm/amiconfig``)
does not read its user-data as an ini file: it first keeps only the lines
that look like a section header or, once a header has been seen, like an
option, and hands those to Python 2's ``ConfigParser``. What a context
author writes and what amiconfig takes therefore differ; this module
reproduces amiconfig's reading (written from its rules, not its code), so
that the checks and ``cernvm-context explain`` show what amiconfig will
really see. The rules:

- the text is split on ``\\n`` only (a CR stays in the line, and is blank
  at the end of a value);
- a line is a header when ``[...]`` starts it at column 0 (anything may
  follow the ``]``); once one header has been seen, a line is an option
  when it matches ``name = value`` or ``name: value`` with the name at
  column 0; every other line is dropped (all text before the first header,
  indented lines: there are no continuation lines);
- ConfigParser then skips blank lines, ``#`` and ``;`` comments and the
  ``rem`` remarks (a line whose first word is ``rem``, starting with r/R);
- an option name is cut of trailing blanks and lower-cased (ASCII); its
  value is stripped; when the value's *first* ``;`` follows a blank, the
  value ends there; a value ``""`` is empty; a later option of the same
  name wins, and a repeated section merges with the first;
- ``[DEFAULT]`` holds defaults no plugin reads through ``getSection``;
- a plugin's section is looked up ignoring case, but then fetched by its
  exact lower-case name: ``[AMICONFIG]`` without ``[amiconfig]`` makes
  amiconfig fail before any plugin runs, ``[CernVM]`` makes the ``cernvm``
  plugin fail;
- the plugins run are the image's defaults (``[general] enabled_plugins``
  of ``/etc/amiconfig/default.cfg``), plus ``[amiconfig] plugins``, minus
  ``[amiconfig] disabled_plugins`` (whitespace-separated, lower-cased).

Standard library only, and cheap to import: ``userdata`` (boot path)
uses its names of sections.
"""

from __future__ import annotations

import re

#: Python 2's ``RawConfigParser.SECTCRE`` and ``OPTCRE``, byte-string
#: semantics (ASCII ``\\s``): the patterns amiconfig's filter applies.
SECTION = re.compile(r"\[(?P<header>[^]]+)\]", re.ASCII)
OPTION = re.compile(r"(?P<option>[^:=\s][^:=]*)\s*(?P<vi>[:=])\s*(?P<value>.*)$", re.ASCII)

#: Python 2's ``str.strip()`` on a byte string strips ASCII blanks only
_BLANKS = " \t\n\r\x0b\x0c"
DEFAULT_SECTION = "DEFAULT"

#: Plugins of the amiconfig CernVM ships (rPath's, CernVM's, HEPiX's, by
#: each plugin's ``name``) and those CernVM Online contexts enable
#: (``cernvm_appliance``, ``rapadminpassword``).
KNOWN_PLUGINS: frozenset[str] = frozenset(
    {
        # rPath amiconfig
        "conaryproxy", "disablesshpasswdauth", "dnsupdate", "hostname", "kernelmodules",
        "mountvol", "noip", "openvpn", "rapadminpassword", "rapcert", "raprsakey",
        "rmakenode", "rmakeplugin", "rmakeproxy", "rmakeserver", "rootsshkeys",
        "rpathplugin", "sfcb-client-setup", "sfcbclient", "storage", "vmwareguest",
        # CernVM
        "amildap", "appliance", "appliance-agent", "cernvm", "cernvm_appliance", "condor",
        "configscripts", "elastiq-setup", "ganglia", "ldap", "nss", "puppet", "squid",
        "tcpbuffers", "vaf-setup", "workqueue", "yp",
        # HEPiX
        "callback", "hepix",
    }
)

#: Sections some consumer reads: ``[amiconfig]`` (amiconfig itself), each
#: plugin's own, ``[rpath]`` (``rapadminpassword`` and ``appliance``), and
#: ``[general]`` (the section of the image's ``/etc/amiconfig/default.cfg``
#: that generators copy).
KNOWN_SECTIONS: frozenset[str] = KNOWN_PLUGINS | {"amiconfig", "rpath", "general"}

#: ``[cernvm]`` options the ``cernvm`` plugin reads (any release of
#: ``cernvm/amiconfig``), lower-cased as amiconfig hands them over.
CERNVM_OPTIONS: frozenset[str] = frozenset(
    {
        "auto_login", "config_url", "contextualization_command", "contextualization_key",
        "desktop_icons", "edition", "entitlement_key", "environment", "eos-readaheadsize",
        "eos-readcachesize", "eos-server", "eos-user", "eos-x509-cert", "extra_repositories",
        "griduiversion", "group_profile", "keyboard", "organisations", "proxy",
        "repositories", "screenres", "services", "shell", "startxdm", "swap_size", "users",
        "x509-cert", "x509-cert-file", "x509-user",
    }
)

#: ``[amiconfig]`` options amiconfig reads
AMICONFIG_OPTIONS: frozenset[str] = frozenset({"plugins", "disabled_plugins"})


class Option:
    """One option as amiconfig keeps it: its name (lower-cased), value, line."""

    __slots__ = ("line", "name", "value", "written")

    def __init__(self, name: str, value: str, line: int, written: str) -> None:
        self.name = name
        self.value = value
        self.line = line  # 1-based line of the text read
        self.written = written  # the name as written (before lower-casing)


class Dropped:
    """A line amiconfig does not take, and why (for lines after the first header)."""

    __slots__ = ("line", "reason", "text")

    def __init__(self, line: int, text: str, reason: str) -> None:
        self.line = line
        self.text = text
        self.reason = reason


class Reading:
    """What amiconfig takes from a text.

    ``sections`` maps each section name (as written: names are
    case-sensitive) to its options by name, in first-seen order;
    ``headers`` lists every header line ``(line, name)``; ``overridden``
    the options a later one of the same name replaced; ``dropped`` the
    non-blank lines after the first header that amiconfig ignores;
    ``first_header`` the line of the first header (0: none, amiconfig
    then reads nothing at all).
    """

    __slots__ = ("dropped", "first_header", "headers", "overridden", "sections")

    def __init__(self) -> None:
        self.sections: dict[str, dict[str, Option]] = {}
        self.headers: list[tuple[int, str]] = []
        self.overridden: list[tuple[str, Option, Option]] = []
        self.dropped: list[Dropped] = []
        self.first_header = 0

    def section(self, name: str) -> dict[str, Option] | None:
        """The section a plugin called ``name`` gets, None when it has none.

        Raises :class:`KeyError` where amiconfig's own lookup fails (the
        section spelt in another case only).
        """
        for written in self.sections:
            if written != DEFAULT_SECTION and written.lower() == name.lower():
                if name.lower() not in self.sections:
                    raise KeyError(written)
                return self.sections[name.lower()]
        return None

    def crashing_sections(self) -> list[tuple[int, str]]:
        """Headers whose section a plugin cannot fetch: ``(line, name)``."""
        found = []
        for line, name in self.headers:
            lower = name.lower()
            if name not in (DEFAULT_SECTION, lower) and lower not in self.sections:
                found.append((line, name))
        return found

    def enabled_plugins(self, defaults: tuple[str, ...] = ()) -> list[str]:
        """The plugins amiconfig runs: ``defaults``, plus ``plugins``, minus ``disabled_plugins``.

        Raises :class:`KeyError` when the ``[amiconfig]`` lookup itself fails.
        """
        plugins = [p.lower() for p in defaults]
        config = self.section("amiconfig") or {}
        if "plugins" in config:
            for name in config["plugins"].value.split():
                if _ascii_lower(name) not in plugins:
                    plugins.append(_ascii_lower(name))
        if "disabled_plugins" in config:
            gone = {_ascii_lower(name) for name in config["disabled_plugins"].value.split()}
            plugins = [p for p in plugins if p not in gone]
        return plugins


def _ascii_lower(text: str) -> str:
    return "".join(c.lower() if c.isascii() else c for c in text)


def is_header(line: str) -> bool:
    """Tell whether amiconfig takes ``line`` as a section header."""
    return SECTION.match(line) is not None


def _is_skipped(line: str) -> bool:
    """Blank, comment or ``rem`` lines: ConfigParser passes over them."""
    if not line.strip(_BLANKS) or line[0] in "#;":
        return True
    words = line.split(None, 1)
    return line[0] in "rR" and bool(words) and words[0].lower() == "rem"


def _value(raw: str) -> str:
    value = raw
    cut = value.find(";")
    if cut != -1 and value[cut - 1] in _BLANKS:  # only the first ';' counts
        value = value[:cut]
    value = value.strip(_BLANKS)
    return "" if value == '""' else value


def read(text: str) -> Reading:
    """Read ``text`` as amiconfig does (see the module docstring)."""
    reading = Reading()
    current: dict[str, Option] | None = None
    for number, line in enumerate(text.split("\n"), start=1):
        header = SECTION.match(line)
        if header is None and not reading.first_header:
            continue
        if header is None and _is_skipped(line):
            continue
        if header is None and OPTION.match(line) is None:
            why = "indented" if line[:1] in _BLANKS else "not 'name = value'"
            reading.dropped.append(Dropped(number, line, why))
            continue
        if header is not None:
            name = header.group("header")
            reading.first_header = reading.first_header or number
            reading.headers.append((number, name))
            current = reading.sections.setdefault(name, {})
            continue
        option = OPTION.match(line)
        assert option is not None and current is not None
        written = option.group("option").rstrip(_BLANKS)
        name = _ascii_lower(written)
        new = Option(name, _value(option.group("value")), number, written)
        if name in current:
            reading.overridden.append((_section_of(reading, current), current[name], new))
        current[name] = new
    return reading


def _section_of(reading: Reading, options: dict[str, Option]) -> str:
    return next(name for name, opts in reading.sections.items() if opts is options)


def join(texts: list[str]) -> str:
    """The amiconfig parts one after the other, as the handler hands them over."""
    return "".join(t if t.endswith("\n") or not t else t + "\n" for t in texts)
