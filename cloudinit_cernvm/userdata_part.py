"""One decoded part of user-data, and the error for data that cannot be read.

The record every room of the converter shares: the old-syntax reader
(:mod:`old_syntax`) and the MIME reader (:mod:`mime_read`) make parts,
the MIME writer (:mod:`mime_write`) writes them, and ``validate`` and
``explain`` look at them. It stands apart, below all of them, so that none
of them has to import another (or the converter, :mod:`userdata`) for it.

Standard library only: this module is on the boot path.
"""

from __future__ import annotations

#: header carrying the CernVM script marker (``before``/``after``)
SCRIPT_HEADER = "X-CernVM-Script"


class UserDataError(ValueError):
    """User-data that cannot be normalised; the message is one line.

    The caller (the datasource) keeps the raw data when this is raised.
    """


class Part:
    """One MIME part, decoded.

    ``headers`` are the part's headers in order (``Content-Type`` first
    for parts made here); ``Content-Transfer-Encoding`` is set on writing.
    ``payload`` is the decoded body. ``encoded`` is set for parts kept as
    they came (not text): the body to write verbatim with its own
    ``Content-Transfer-Encoding`` header. ``line`` is where the part
    starts in old-syntax input (1-based), 0 for MIME input.

    A plain class, not a dataclass: see ``seed.Seed``.
    """

    __slots__ = ("encoded", "headers", "line", "payload")

    def __init__(self, headers: list[tuple[str, str]], payload: bytes,
                 encoded: bytes | None = None, line: int = 0) -> None:
        self.headers = headers
        self.payload = payload
        self.encoded = encoded
        self.line = line

    @property
    def content_type(self) -> str:
        """The part's MIME type, lower case, without parameters."""
        value = self.header("Content-Type") or "text/plain"
        return value.split(";", 1)[0].strip().lower()

    def header(self, name: str) -> str | None:
        """Return the first header called ``name`` (case ignored), or None."""
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    @property
    def text(self) -> str:
        """The payload as text (undecodable bytes escaped, never lost)."""
        return self.payload.decode("utf-8", "surrogateescape")


def text_part(
    ctype: str, text: str, line: int, extra: list[tuple[str, str]] | None = None
) -> Part:
    """A text part of type ``ctype`` made here (UTF-8), with ``extra`` headers after its own."""
    headers = [("Content-Type", f'{ctype}; charset="utf-8"'), ("MIME-Version", "1.0")]
    headers += extra or []
    return Part(headers=headers, payload=text.encode("utf-8", "surrogateescape"), line=line)


def printable(text: str) -> str:
    """``text`` with control characters escaped, for one-line messages."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
