"""A finding of ``cernvm-context validate``, and the table of every finding's code.

:class:`Problem` is what every check returns (where, code, severity, what
to do), :class:`Place` turns a line inside a part into where it is, and
:data:`CODES` fixes each code's severity (the README's table). Below all
the checks, so that each check and ``explain`` share them without
importing ``validate`` itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from cloudinit_cernvm.userdata_part import printable

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

        return redact_text(printable(self.message))

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
        where = redact_text(printable(self.where))
        return f"{prefix}{where}: {self.text()} [{self.code}]"


class Place:
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
