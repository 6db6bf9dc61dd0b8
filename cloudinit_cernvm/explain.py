"""``cernvm-context explain``: what each consumer will read from a context.

A CernVM context is read by three consumers that each see something else
in the same text: the microboot stage (µCernVM's block, written as
``_UCONTEXT_`` lines into ``ucontext``), amiconfig (every section and
option from the first header on, by its own parser's rules, the parts
joined) and cloud-init (scripts, cloud-config). A context author sees only
the text; :func:`explain` shows each consumer's reading side by side,
offline, with what none of them reads. Secrets (values of options or
keys named like passwords) are never shown.
"""

from __future__ import annotations

import re
from typing import Any

from cloudinit_cernvm import amiconfig_ini, mime_read, redact, ucernvm, userdata, validate
from cloudinit_cernvm.content_types import CLOUD_CONFIG, SCRIPT, SCRIPT_BEFORE
from cloudinit_cernvm.old_syntax import MARKER, is_old_syntax, split_old_syntax
from cloudinit_cernvm.userdata_part import Part
from cloudinit_cernvm.validate.amiconfig import Joined, is_amiconfig
from cloudinit_cernvm.validate.mime import mime_placed
from cloudinit_cernvm.validate.problem import Place

#: the microboot stage writes at most this many settings (as its awk does)
MAX_SETTINGS = 256
_STAGE_KEY = re.compile(r"[A-Z0-9_]+")
_SAFE_VALUE = re.compile(r"[A-Za-z0-9_./:,@%+=-]*")

#: when each kind of script runs, on a CernVM machine with this project
WHEN = {
    SCRIPT_BEFORE: "before amiconfig: cloud-init's network stage (init), right "
    "before amiconfig runs",
    SCRIPT: "after amiconfig: cloud-init's final stage (modules --mode final, "
    "scripts_user)",
    "text/cloud-boothook": "cloud-init's network stage (init), as soon as the part is read, "
    "before amiconfig",
}


def shell_value(value: str) -> str:
    """``value`` as the right-hand side of an assignment that sh sources safely.

    Bare when it holds only characters the shell takes literally, else in
    single quotes (a ``'`` inside written ``'\\''``): sourcing yields the
    value and runs nothing.
    """
    if _SAFE_VALUE.fullmatch(value):
        return value
    return "'" + value.replace("'", "'\\''") + "'"


def unquoted(value: str) -> str:
    """A value wholly inside one pair of quotes, without them (µCernVM's sourcing dropped them)."""
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        inner = value[1:-1]
        if value[0] not in inner:
            return inner
    return value


def ucontext_lines(
    texts: list[str], hide: bool = True, parts: bool = False
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The settings the microboot stage writes from the first µCernVM block in ``texts``.

    ``texts`` are the raw text, or the MIME parts in order (the stage looks
    into them; ``parts``: ``texts`` are MIME parts). Returns the settings
    (``where``: the line, in the part for MIME; ``key``,
    ``variable``, ``value``, ``ucontext``: the line written) and the lines
    of the block it skips (``where``, ``reason``). With ``hide``, values of
    secret keys and credentials in URLs are not shown.
    """
    settings: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    inside = False
    for index, text in enumerate(texts):
        for number, line in enumerate(text.split("\n"), start=1):
            line = line.rstrip("\r")
            if not inside:
                inside = line == ucernvm.BEGIN
                continue
            if line == ucernvm.END:
                return settings, skipped
            at = f"part {index + 1}, line {number}" if parts else f"line {number}"
            where = {"where": at}
            key, sep, value = line.partition("=")
            name = key.upper()
            if not sep or not key:
                if line.strip():
                    skipped.append({**where, "reason": "no '='"})
                continue
            if not _STAGE_KEY.fullmatch(name):
                skipped.append({**where, "reason": f"key '{key}' is not letters, digits and _"})
                continue
            if len(settings) == MAX_SETTINGS:
                skipped.append({**where, "reason": f"more than {MAX_SETTINGS} settings"})
                continue
            final = ucernvm.convert_value(unquoted(value))
            variable = ucernvm.PREFIX + name
            secret = hide and redact.is_secret_key(key)
            shown = "(secret, not shown)" if secret else _hidden(final, hide)
            settings.append(
                {
                    **where,
                    "key": key,
                    "variable": variable,
                    "value": shown,
                    "known": ucernvm.is_known(key),
                    # credentials in a proxy URL are hidden here only: the line is
                    # otherwise the stage's own
                    "ucontext": f"{variable}="
                    + ("..." if secret else _hidden(shell_value(final), hide)),
                }
            )
    return settings, skipped


def _hidden(text: str, hide: bool) -> str:
    return redact.redact_text(text) if hide else text


def stage_texts(raw: bytes) -> list[str]:
    """The texts the microboot stage scans for the µCernVM block: the text, or its MIME parts."""
    return _placed(raw)[2]


def _where(place: Place, line: int | None) -> str:
    return place.problem(line, "mime-malformed", "").where


#: options whose value is, or holds, a secret though their name does not say so
_SECRET_OPTIONS = frozenset(
    {"contextualization_key", "x509-cert", "eos-x509-cert", "condor_secret", "entitlement_key"}
)


def _shown(section: str, option: amiconfig_ini.Option) -> str:
    """An option's value for display: secrets reduced to whether they are set."""
    if (
        redact.is_secret_key(option.name)
        or redact.is_secret_key(section)
        or option.name in _SECRET_OPTIONS
    ):
        return "(set)" if option.value else "(empty)"
    if section == "cernvm" and option.name == "users":  # user:group:password,...
        return ",".join(_user_shown(user) for user in option.value.split(","))
    return redact.redact_text(option.value)


def _user_shown(user: str) -> str:
    fields = user.split(":")
    if len(fields) < 3:
        return user
    return ":".join([*fields[:2], "(password set)" if fields[2] else "(no password)"])


def _amiconfig(placed: list[tuple[Part, Place]]) -> dict[str, Any]:
    texts = [(p.text, place) for p, place in placed if is_amiconfig(p)]
    joined = Joined(texts)
    reading = amiconfig_ini.read(joined.text)
    report: dict[str, Any] = {"parts": len(texts), "sections": [], "plugins": None, "fails": None}
    try:
        report["plugins"] = reading.enabled_plugins()
    except KeyError as exc:
        report["fails"] = (
            f"[{exc.args[0]}] is found ignoring case but fetched as [amiconfig]: amiconfig "
            "fails before any plugin runs"
        )
    for name, options in reading.sections.items():
        line = next(at for at, header in reading.headers if header == name)
        if name in (ucernvm.BEGIN[1:-1], ucernvm.END[1:-1]):
            read_by = "nobody (a µCernVM marker amiconfig takes as a section)"
        elif name == "amiconfig":
            read_by = "amiconfig itself"
        elif name == "rpath":
            read_by = "the plugins rapadminpassword and appliance"
        elif name == "general":
            read_by = "nobody from user-data (the image's /etc/amiconfig/default.cfg has one)"
        elif name in amiconfig_ini.KNOWN_PLUGINS:
            read_by = f"the plugin {name}" + (
                "" if report["plugins"] is None or name in report["plugins"]
                else " (not enabled here: [amiconfig] plugins does not name it)"
            )
        else:
            read_by = "nobody: no plugin has this name"
        report["sections"].append(
            {
                "name": name,
                "where": joined.problem(line, "mime-malformed", "").where,
                "read_by": read_by,
                "options": [
                    {
                        "name": option.name,
                        "value": _shown(name, option),
                        "where": joined.problem(option.line, "mime-malformed", "").where,
                    }
                    for option in options.values()
                ],
            }
        )
    return report


def _script(part: Part, place: Place) -> dict[str, Any]:
    lines = part.text.split("\n")
    first = lines[0]
    ctype = part.content_type
    marker = MARKER.match(first)
    if marker and marker.group(3) == "before":
        ctype = SCRIPT_BEFORE
    return {
        "where": _where(place, None),
        "type": part.content_type,
        "interpreter": (marker.group(2) if marker else first[2:]).strip() or first,
        "lines": part.text.count("\n"),
        "runs": WHEN.get(ctype, WHEN[SCRIPT]),
    }


def _cloud_config(part: Part, place: Place) -> dict[str, Any]:
    keys: list[str] = []
    try:
        import yaml

        loaded = yaml.safe_load(part.text)
        if isinstance(loaded, dict):
            keys = [str(k) for k in loaded]
    except Exception:  # not YAML: validate says why
        keys = []
    return {"where": _where(place, None), "keys": keys}


def _placed(raw: bytes) -> tuple[str, list[tuple[Part, Place]], list[str]]:
    """The format, the parts with their places, and the texts the microboot stage scans."""
    data = userdata.decode_input(raw)
    if mime_read.looks_like_mime(data):
        parts = mime_read.parse_parts(data)
        texts = [p.text if p.encoded is None else "" for p in parts]  # one per part number
        return "mime", mime_placed(parts), texts
    text = userdata.decode_text(data) or data.decode("utf-8", "replace")
    if is_old_syntax(text):
        parts = split_old_syntax(text)
        placed = [(p, Place(None, p.content_type, p.line)) for p in parts]
        return "old-syntax", placed, [text]
    part = Part(headers=[("Content-Type", userdata.guess_type(data))], payload=data)
    return "cloud-init", [(part, Place(None, part.content_type, 1))], [text]


def explain(raw: bytes) -> dict[str, Any]:
    """What each consumer reads from ``raw`` (see the module docstring).

    Raises :class:`userdata_part.UserDataError` for data that cannot be read at
    all (gzip bomb, malformed MIME): ``validate`` says why.
    """
    kind, placed, texts = _placed(raw)
    settings, skipped = ucontext_lines(texts, parts=kind == "mime")
    report: dict[str, Any] = {
        "format": kind,
        "parts": [
            {"where": _where(place, None), "type": part.content_type} for part, place in placed
        ],
        "ucernvm": {"ucontext": [s["ucontext"] for s in settings], "settings": settings},
        "amiconfig": _amiconfig(placed),
        "scripts": [],
        "cloud_config": [],
        "unread": [],
    }
    for index, (part, place) in enumerate(placed):
        ctype = part.content_type
        if part.encoded is None and (ctype.startswith("text/x-shellscript")
                                     or ctype == "text/cloud-boothook"):
            script = _script(part, place)
            also = _sections_inside(part, [p for p, _ in placed[index + 1:]], kind)
            if also:
                script["also_runs"] = also
            report["scripts"].append(script)
        elif ctype == CLOUD_CONFIG:
            report["cloud_config"].append(_cloud_config(part, place))
    report["unread"] = _unread(raw, skipped)
    return report


def _sections_inside(script: Part, later: list[Part], kind: str) -> str:
    """Old syntax: the lines of a script without ``exit`` that are sections too."""
    if kind != "old-syntax" or not script.line:
        return ""
    end = script.line + script.text.count("\n") - 1
    inside = [p for p in later if p.line and p.line <= end]
    if not inside:
        return ""
    return (
        f"lines {inside[0].line}-{end}: no 'exit' before them, so the shell runs as commands "
        "the sections that amiconfig and µCernVM read there"
    )


#: the findings that name something no consumer reads
_UNREAD_CODES = frozenset(
    {
        "ucernvm-unknown-key",
        "ucernvm-no-equals",
        "amiconfig-unknown-section",
        "amiconfig-unknown-plugin",
        "amiconfig-unknown-option",
        "amiconfig-option-outside",
        "amiconfig-line-dropped",
        "amiconfig-option-repeated",
        "script-hides-section",
        "ucernvm-second-block",
        "ucernvm-end-first",
        "ucernvm-marker-inexact",
    }
)


def _unread(raw: bytes, skipped: list[dict[str, Any]]) -> list[str]:
    found = [f"{p.where}: {p.text()}" for p in validate.check(raw) if p.code in _UNREAD_CODES]
    for item in skipped:
        found.append(
            f"{item['where']}: the microboot stage skips this µCernVM line: {item['reason']}"
        )
    return found


def render(report: dict[str, Any]) -> str:
    """The report as text, one consumer after the other."""
    out = [f"format: {report['format']}, {len(report['parts'])} part(s)"]
    for part in report["parts"]:
        out.append(f"  {part['where']}: {part['type']}")
    out.append("")
    out.append("µCernVM (the microboot stage writes these lines to the seed's ucontext):")
    for setting in report["ucernvm"]["settings"]:
        note = "" if setting["known"] else "   (no boot script reads this key)"
        out.append(f"  {setting['ucontext']}{note}")
    if not report["ucernvm"]["settings"]:
        out.append("  (nothing: no µCernVM block)")
    out.append("")
    ami = report["amiconfig"]
    out.append(f"amiconfig (its parser's reading of the {ami['parts']} amiconfig part(s), joined):")
    if ami["fails"]:
        out.append(f"  FAILS: {ami['fails']}")
    elif ami["plugins"] is not None:
        named = " ".join(ami["plugins"]) or "none"
        out.append(f"  plugins run: the image's defaults (rootsshkeys...) and: {named}")
    for section in ami["sections"]:
        out.append(f"  [{section['name']}]  ({section['where']}; read by {section['read_by']})")
        for option in section["options"]:
            out.append(f"    {option['name']} = {option['value']}")
    if not ami["sections"]:
        out.append("  (no section: amiconfig runs its default plugins only)")
    out.append("")
    out.append("scripts:")
    for script in report["scripts"]:
        out.append(
            f"  {script['where']}: {script['interpreter']}, {script['lines']} lines; "
            f"runs {script['runs']}"
        )
        if "also_runs" in script:
            out.append(f"    and {script['also_runs']}")
    if not report["scripts"]:
        out.append("  (none)")
    out.append("")
    out.append("cloud-config (cloud-init's modules):")
    for config in report["cloud_config"]:
        out.append(f"  {config['where']}: {', '.join(config['keys']) or '(no keys)'}")
    if not report["cloud_config"]:
        out.append("  (none)")
    out.append("")
    out.append("read by no consumer:")
    out.extend(f"  {item}" for item in report["unread"])
    if not report["unread"]:
        out.append("  (nothing)")
    return "\n".join(out) + "\n"
