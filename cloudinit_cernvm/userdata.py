"""CernVM user-data, old syntax or MIME, to normalised MIME multipart.

CernVM users write *old syntax*: one text that mixes a leading ``#!``
script ended by a line ``exit``, amiconfig ini sections, a µCernVM
``[ucernvm-begin]``...``[ucernvm-end]`` block and ``#cloud-config`` YAML.
Others wrote MIME with CernVM's ``amiconfig-mime`` tool, sometimes with
base64 parts. cloud-init understands neither on its own, so the datasource
hands it ``normalize(raw)`` instead of the raw data.

What :func:`normalize` returns:

- gzip input is decompressed first, layer after layer (at most
  :data:`MAX_DECOMPRESSED` bytes each; more is refused as a probable gzip
  bomb);
- data that is already in one of cloud-init's own formats and holds no
  CernVM section (``#cloud-config``, ``#include``, a ``## template: jinja``,
  a ``#!`` script with nothing after its ``exit`` line, or with no ``exit``
  line and no section another consumer reads, empty data,
  plain text) is returned unchanged: wrapping it would add nothing;
- anything else becomes MIME multipart with a fresh random boundary, every
  part written as text (``7bit`` or ``8bit``, never base64), CR LF line
  ends (and lone CRs, which MIME parsers read as line ends) turned into LF,
  and every text part ending with a newline.

Old syntax is split by :func:`split_old_syntax`, one part per section, in
document order, nothing dropped but blank lines before the first content:

==============================  ===========================================
section                         part
==============================  ===========================================
``#!/bin/sh.before`` script     ``text/x-shellscript-before-amiconfig``,
                                written with ``#!/bin/sh``, header
                                ``X-CernVM-Script: before`` (run once per
                                instance right before amiconfig)
``#!/bin/sh.after`` script      ``text/x-shellscript``, written with
                                ``#!/bin/sh``, ``X-CernVM-Script: after``
other ``#!`` script             ``text/x-shellscript`` (cloud-init runs it
                                once per instance, after amiconfig)
µCernVM block                   ``text/ucernvm``, marker lines kept
``#cloud-config`` YAML          ``text/cloud-config``
amiconfig ini text              ``text/amiconfig``: one part per contiguous
                                run of ini text (the runs that stand
                                before, between and after other sections
                                stay separate, so order is kept)
==============================  ===========================================

The leading script ends at the first line that starts with ``exit`` at
column 0 (``exit``, ``exit 0``...), which is kept. Without such a line the
whole text is the script, as the shell ran it before: nothing is ever cut
out of a script. Its sections still reach their parts, as amiconfig (every
section from the first header on) and µCernVM (its block anywhere) read
them: from the first whole-line header on, when the script holds a µCernVM
block or a section that amiconfig or a plugin reads (``[amiconfig]``,
``[cernvm]``, ``[rpath]``...), those lines are split as below too, so they
stand both in the script and in their parts; a ``#cloud-config`` line there
stays with the ini text (cloud-init never read it as YAML). A here-document
writing some other ini file (``[main]``) leaves the script alone. A
``#cloud-config`` section runs to the next ini section header or µCernVM
block.

MIME input is normalised part by part, in order (nested multiparts are
flattened, preamble and epilogue dropped): text parts are decoded from
base64 or quoted-printable and written as text with their other headers
kept (``Content-Disposition``, ``Merge-Type``...); ``text/plain`` parts
holding old syntax are split as above; parts that are not text (gzip,
binary) are kept exactly as they came. ``text/amiconfig-user-data`` keeps
its type. Normalising normalised data changes nothing but the boundary.

Standard library only: this module is on the boot path.
"""

from __future__ import annotations

import base64
import binascii
import email
import email.message
import quopri
import re
import secrets
import zlib

from cloudinit_cernvm import amiconfig_ini, ucernvm
from cloudinit_cernvm.content_types import (
    AMICONFIG,
    AMICONFIG_USER_DATA,
    CLOUD_CONFIG,
    SCRIPT,
    SCRIPT_BEFORE,
    UCERNVM,
)

#: Most bytes gzip user-data may expand to (cloud-init's own limit on
#: user-data is far lower; no real context comes close).
MAX_DECOMPRESSED = 16 * 1024 * 1024

#: header carrying the CernVM script marker (``before``/``after``)
SCRIPT_HEADER = "X-CernVM-Script"

#: Types whose base64 the issue requires decoded (all text is, in fact).
CERNVM_TYPES = frozenset({AMICONFIG, AMICONFIG_USER_DATA, UCERNVM})

#: Deepest nesting of multiparts taken. cloud-init sets no limit, but its
#: parser and ours recurse per level and fail near Python's recursion limit
#: (a 64 KiB message can nest 980 deep); ``amiconfig-mime`` and cloud-init's
#: own tools write one level, hand-made archives two or three.
MAX_MIME_DEPTH = 20

_GZIP_MAGIC = b"\x1f\x8b"
_MAX_GZIP_LAYERS = 4
_EXIT = re.compile(r"exit(?:[ \t;].*)?$")
_HEADER = re.compile(r"\[([^\]\s]+)\][ \t]*$")
_MARKER = re.compile(r"#!(\s*)(\S+?)\.(before|after)(?=\s|$)(.*)$")
_CLOUD_CONFIG = "#cloud-config"
# First lines that mark one of cloud-init's own formats.
_CLOUDINIT_STARTS = (
    "#include",
    "## template:",
    "#cloud-boothook",
    "#part-handler",
    "#upstart-job",
    "#cloud-config-archive",
    "#cloud-config-jsonp",
)
_PLAIN_TYPES = frozenset({"text/plain", "text/x-not-multipart"})


class UserDataError(ValueError):
    """User-data that cannot be normalised; the message is one line.

    The caller (the datasource) keeps the raw data when this is raised.
    """


class MimeTooDeep(UserDataError):
    """MIME whose multiparts nest beyond :data:`MAX_MIME_DEPTH`.

    A class of its own so that a checker does not parse the message again
    (``validate``'s boundary repair would recurse as deep), and so that the
    datasource can tell whether cloud-init could still read the raw data:
    ``depth`` is how deep it nests, None when too deep to be parsed at all.
    """

    def __init__(self, depth: int | None) -> None:
        self.depth = depth
        how = f"{depth} levels deep" if depth is not None else "too deep to be parsed"
        super().__init__(
            f"MIME multiparts nested {how} (at most {MAX_MIME_DEPTH}); not converted"
        )


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


def _text_part(
    ctype: str, text: str, line: int, extra: list[tuple[str, str]] | None = None
) -> Part:
    headers = [("Content-Type", f'{ctype}; charset="utf-8"'), ("MIME-Version", "1.0")]
    headers += extra or []
    return Part(headers=headers, payload=text.encode("utf-8", "surrogateescape"), line=line)


def _lines(text: str) -> list[str]:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


class _Segment:
    __slots__ = ("kind", "lines", "start")

    def __init__(self, kind: str, start: int, lines: list[str]) -> None:
        self.kind = kind  # script, ucernvm, cloud-config, ini
        self.start = start  # 0-based index of the first line
        self.lines = lines


def _segments(text: str) -> list[_Segment]:
    """Cut old-syntax text into sections (see the module docstring)."""
    lines = _lines(text)
    n = len(lines)
    i = 0
    while i < n and not lines[i].strip():
        i += 1
    segments: list[_Segment] = []
    cloud_config = True
    if i < n and lines[i].startswith("#!"):
        end = next((k + 1 for k in range(i + 1, n) if _EXIT.match(lines[k])), n)
        segments.append(_Segment("script", i, lines[i:end]))
        if end == n:
            # no exit: the shell runs it all, and the other consumers still
            # read the sections in it (cloud-init never saw its YAML)
            i = _sections_in_script(lines, i + 1)
            cloud_config = False
        else:
            i = end
    while i < n:
        line = lines[i]
        if line == ucernvm.BEGIN:
            end = next((k + 1 for k in range(i + 1, n) if lines[k] == ucernvm.END), n)
            segments.append(_Segment("ucernvm", i, lines[i:end]))
        elif cloud_config and line.rstrip() == _CLOUD_CONFIG:
            end = next((k for k in range(i + 1, n) if _HEADER.match(lines[k])), n)
            segments.append(_Segment("cloud-config", i, lines[i:end]))
        else:
            end = next(
                (
                    k
                    for k in range(i + 1, n)
                    if lines[k] == ucernvm.BEGIN
                    or (cloud_config and lines[k].rstrip() == _CLOUD_CONFIG)
                ),
                n,
            )
            segments.append(_Segment("ini", i, lines[i:end]))
        i = end
    # Blank runs between sections carry nothing: keep them with the section
    # before, rather than make parts of blank lines.
    merged: list[_Segment] = []
    for seg in segments:
        if merged and seg.kind == "ini" and not any(s.strip() for s in seg.lines):
            merged[-1].lines.extend(seg.lines)
        else:
            merged.append(seg)
    return merged


def _sections_in_script(lines: list[str], start: int) -> int:
    """Where the sections of a script without ``exit`` start, or ``len(lines)``.

    amiconfig reads every section from the first header on, and µCernVM
    finds its block anywhere, even inside a script; they start at the first
    whole-line header (``[name]``, no blanks: ``[ -f x ]`` is shell) when
    the script holds a section some consumer reads (a µCernVM block,
    ``[amiconfig]`` or a plugin's section). A here-document that writes some
    other ini file (``[main]``) leaves the script alone.
    """
    first = None
    for k in range(start, len(lines)):
        header = _HEADER.match(lines[k])
        if header is None:
            continue
        if first is None:
            first = k
        if lines[k] == ucernvm.BEGIN or header.group(1) in amiconfig_ini.KNOWN_SECTIONS:
            return first
    return len(lines)


def _has_header(seg: _Segment) -> bool:
    return any(_HEADER.match(line) for line in seg.lines)


def is_old_syntax(text: str) -> bool:
    """Tell whether ``text`` holds CernVM sections that cloud-init alone misreads.

    True when it has an ini section, a µCernVM block, a ``.before``/
    ``.after`` script marker, a script preceded by blank lines (CernVM's
    tools skipped them, cloud-init does not), or a script followed by
    other sections (or, without ``exit``, holding sections other consumers
    read). Text that starts like one of cloud-init's own formats
    (``#include``, a jinja template...) is never old syntax.
    """
    first = text.lstrip("\n").split("\n", 1)[0]
    if first.startswith(_CLOUDINIT_STARTS):
        return False
    segments = _segments(text)
    meaningful = 0
    for seg in segments:
        if seg.kind == "ucernvm" or (seg.kind == "ini" and _has_header(seg)):
            return True
        if seg.kind == "script":
            if _MARKER.match(seg.lines[0]) or seg.start > 0:
                return True
        if seg.kind in ("script", "cloud-config"):
            meaningful += 1
    return meaningful > 1


def split_old_syntax(text: str) -> list[Part]:
    """Split old-syntax text into parts, one per section, in order.

    ``text`` uses LF line ends. Each part's payload ends with a newline.
    Concatenating the payloads gives ``text`` back but for blank lines
    before the first content, the script marker (``#!/bin/sh.before``
    becomes ``#!/bin/sh`` plus an ``X-CernVM-Script`` header), a final
    newline, and the sections of a script without ``exit``, which stand
    twice: in the script and in their own parts.
    """
    parts: list[Part] = []
    for seg in _segments(text):
        body = "\n".join(seg.lines) + "\n"
        line = seg.start + 1
        if seg.kind == "script":
            marker = _MARKER.match(seg.lines[0])
            if marker:
                space, interpreter, when, rest = marker.groups()
                first = f"#!{space}{interpreter}{rest}"
                body = "\n".join([first, *seg.lines[1:]]) + "\n"
                ctype = SCRIPT_BEFORE if when == "before" else SCRIPT
                parts.append(_text_part(ctype, body, line, [(SCRIPT_HEADER, when)]))
            else:
                parts.append(_text_part(SCRIPT, body, line))
        elif seg.kind == "ucernvm":
            parts.append(_text_part(UCERNVM, body, line))
        elif seg.kind == "cloud-config":
            parts.append(_text_part(CLOUD_CONFIG, body, line))
        else:
            parts.append(_text_part(AMICONFIG, body, line))
    return parts


def gunzip(data: bytes, limit: int = MAX_DECOMPRESSED) -> bytes:
    """Decompress gzip ``data`` (all members), refusing more than ``limit`` bytes."""
    out: list[bytes] = []
    size = 0
    rest = data
    while rest:
        engine = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            chunk = engine.decompress(rest, limit - size + 1)
        except zlib.error as exc:
            raise UserDataError(f"gzip user-data is corrupt: {exc}") from None
        size += len(chunk)
        if size > limit:
            raise UserDataError(
                f"gzip user-data expands beyond {limit // (1024 * 1024)} MiB; refused "
                "(a gzip bomb?)"
            )
        out.append(chunk)
        if not engine.eof:
            if engine.unconsumed_tail:
                raise UserDataError(
                    f"gzip user-data expands beyond {limit // (1024 * 1024)} MiB; refused "
                    "(a gzip bomb?)"
                )
            raise UserDataError("gzip user-data is truncated")
        rest = engine.unused_data
        if rest and not rest.startswith(_GZIP_MAGIC):
            break  # trailing bytes after the last member, as gzip(1) ignores them
    return b"".join(out)


def looks_like_mime(data: bytes) -> bool:
    """Tell whether ``data`` is a MIME message.

    As cloud-init decides (a ``MIME-Version:`` header in the first 4096
    bytes), and also when the first line is a ``Content-Type:`` header,
    which is how ``amiconfig-mime`` output and hand-written MIME start.
    """
    head = data[:4096].lower()
    if b"mime-version:" in head:
        return True
    first = head.lstrip(b"\n").split(b"\n", 1)[0]
    if first.startswith(b"from "):  # an mbox "From " line
        first = head.lstrip(b"\n").split(b"\n", 2)[1] if head.count(b"\n") > 1 else b""
    return first.startswith(b"content-type:")


def printable(text: str) -> str:
    """``text`` with control characters escaped, for one-line messages."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _boundary_problem(msg: email.message.Message, body: bytes) -> str:
    declared = msg.get_boundary()
    if declared is None:
        return "malformed MIME: multipart without a boundary parameter"
    declared = printable(declared)
    used = sorted(
        {
            printable(line[2:].rstrip().removesuffix(b"--").decode("utf-8", "replace"))
            for line in body.split(b"\n")
            if line.startswith(b"--") and len(line.rstrip()) > 2
        }
    )
    if used:
        # the line may be no boundary at all but a body's "--password=..."
        from cloudinit_cernvm.redact import redact_text  # deferred: an error path

        return (
            f"malformed MIME: the header declares boundary '{declared}' but the parts "
            f"are separated by '{redact_text('--' + used[0])}'; make the two agree"
        )
    return f"malformed MIME: no part starts with the declared boundary '--{declared}'"


def _raw_body(part: email.message.Message) -> bytes:
    """The part's body as it stands in the message, before any decoding.

    The parser keeps it in ``_payload``, bytes escaped as surrogates;
    ``get_payload()`` would re-decode it by the part's charset, lossily.
    """
    raw = getattr(part, "_payload", "")
    if not isinstance(raw, str):
        return b""
    return raw.encode("utf-8", "surrogateescape")


def _decode_body(part: email.message.Message, index: int, ctype: str) -> bytes:
    body = _raw_body(part)
    cte = str(part.get("Content-Transfer-Encoding") or "7bit").strip().lower()
    if cte == "base64":
        try:
            return base64.b64decode(b"".join(body.split()), validate=True)
        except (binascii.Error, ValueError):
            raise UserDataError(f"part {index} ({printable(ctype)}): bad base64") from None
    if cte == "quoted-printable":
        return quopri.decodestring(body)
    return body


def _is_text(payload: bytes) -> bool:
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return b"\x00" not in payload


def _lf(data: bytes) -> bytes:
    """CR LF, and a CR alone, become LF: MIME parsers (cloud-init's too) end lines at both."""
    return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")


def _fix_text(payload: bytes) -> bytes:
    payload = _lf(payload)
    if payload and not payload.endswith(b"\n"):
        payload += b"\n"
    return payload


def parse_parts(data: bytes) -> list[Part]:
    """Parse MIME ``data`` (LF line ends) into decoded leaf parts, in order.

    Raises :class:`UserDataError` for malformed MIME (boundaries that do
    not match what the header declares, a header without a body) and for
    bad base64 in a text part.
    """
    msg = _parse_message(data)
    for defect in msg.defects:
        name = type(defect).__name__
        if name in ("StartBoundaryNotFoundDefect", "NoBoundaryInMultipartDefect"):
            raise UserDataError(_boundary_problem(msg, data.split(b"\n\n", 1)[-1]))
    if msg.is_multipart() and not msg.get_payload():
        raise UserDataError("malformed MIME: a multipart message with no parts")
    leaves = [p for p in msg.walk() if not p.is_multipart()]
    parts: list[Part] = []
    for index, leaf in enumerate(leaves, start=1):
        for defect in leaf.defects:
            if type(defect).__name__ in (
                "StartBoundaryNotFoundDefect",
                "NoBoundaryInMultipartDefect",
            ):
                raise UserDataError(_boundary_problem(leaf, data))
        ctype = leaf.get_content_type()
        headers = [(k, str(v)) for k, v in leaf.raw_items()]  # as written, bytes kept
        if leaf is msg:  # a single, non-multipart MIME message: keep its part headers
            headers = [(k, v) for k, v in headers if k.lower().startswith("content-")]
            headers.insert(1, ("MIME-Version", "1.0"))
        payload = _decode_body(leaf, index, ctype)
        if leaf.get_content_maintype() == "text" and _is_text(payload):
            parts.append(Part(headers=headers, payload=_fix_text(payload)))
        else:
            parts.append(Part(headers=headers, payload=payload, encoded=_raw_body(leaf)))
    return parts


def _parse_message(data: bytes) -> email.message.Message:
    """``data`` parsed as MIME, refused when its multiparts nest too deep.

    The depth is measured without recursion, before anything walks the
    message (``walk()`` recurses); a message too deep for the parser itself
    is refused the same way.
    """
    try:
        msg = email.message_from_bytes(data)
    except RecursionError:
        raise MimeTooDeep(None) from None
    deepest = 0
    stack = [(msg, 1)]
    while stack:
        part, depth = stack.pop()
        payload = part.get_payload() if part.is_multipart() else None
        if isinstance(payload, list):
            deepest = max(deepest, depth)
            stack.extend((sub, depth + 1) for sub in payload
                         if isinstance(sub, email.message.Message))
    if deepest > MAX_MIME_DEPTH:
        raise MimeTooDeep(deepest)
    return msg


def _normal_parts(parts: list[Part]) -> list[Part]:
    """Apply the CernVM rules to parsed MIME parts (old syntax in text/plain, markers)."""
    out: list[Part] = []
    for part in parts:
        if part.encoded is not None:
            out.append(part)
            continue
        ctype = part.content_type
        if ctype in _PLAIN_TYPES and is_old_syntax(part.text):
            out.extend(split_old_syntax(part.text))
            continue
        if ctype == SCRIPT and part.header(SCRIPT_HEADER) is None:
            first, _, rest = part.text.partition("\n")
            marker = _MARKER.match(first)
            if marker:
                space, interpreter, when, tail = marker.groups()
                body = f"#!{space}{interpreter}{tail}\n{rest}"
                extra = [
                    (k, v)
                    for k, v in part.headers
                    if k.lower() not in ("content-type", "mime-version")
                ]
                new = _text_part(SCRIPT_BEFORE if when == "before" else SCRIPT, body, 0, extra)
                new.headers.append((SCRIPT_HEADER, when))
                out.append(new)
                continue
        out.append(part)
    return out


def _transfer_encoding(payload: bytes) -> tuple[str, bytes]:
    """The transfer encoding of a text part and its body written in it.

    ASCII text is written as it is (``7bit``). Text with other bytes is
    written quoted-printable: cloud-init reads MIME as a string, and Python's
    email parser turns non-ASCII characters of an ``8bit`` part into escape
    sequences (``€`` arrives as ``\\u20ac``), so ``8bit`` would damage what
    the consumers receive. Quoted-printable keeps the text readable and is
    decoded byte for byte; it is never base64.
    """
    if payload.isascii():
        return "7bit", payload
    return "quoted-printable", quopri.encodestring(payload)


def write_mime(parts: list[Part]) -> bytes:
    """Write ``parts`` as MIME multipart with a fresh random boundary.

    Text parts are written as text (``7bit``, or quoted-printable where they
    hold non-ASCII bytes); parts kept encoded are written verbatim.
    """
    written: list[tuple[list[tuple[str, str]], bytes]] = []
    for part in parts:
        headers = list(part.headers)
        if part.encoded is not None:
            written.append((headers, part.encoded))
            continue
        cte, body = _transfer_encoding(part.payload)
        names = [k.lower() for k, _ in headers]
        if "content-transfer-encoding" in names:
            at = names.index("content-transfer-encoding")
            headers[at] = (headers[at][0], cte)
        else:
            headers.append(("Content-Transfer-Encoding", cte))
        written.append((headers, body))
    while True:
        boundary = "===============" + secrets.token_hex(12) + "=="
        mark = b"--" + boundary.encode()
        if not any(mark in body for _, body in written):
            break
    out = [
        f'Content-Type: multipart/mixed; boundary="{boundary}"\n'.encode(),
        b"MIME-Version: 1.0\n",
        b"\n",
    ]
    for headers, body in written:
        out.append(mark + b"\n")
        for key, value in headers:
            out.append(f"{key}: {value}\n".encode("utf-8", "surrogateescape"))
        out.append(b"\n")
        out.append(body)
        out.append(b"\n")
    out.append(mark + b"--\n")
    return b"".join(out)


def _gunzipped(raw: bytes) -> bytes:
    """``raw`` without its gzip layers (gzip of gzip too: the result is never gzip)."""
    data = raw
    for _ in range(_MAX_GZIP_LAYERS):
        if not data.startswith(_GZIP_MAGIC):
            return data
        data = gunzip(data)
    if data.startswith(_GZIP_MAGIC):
        raise UserDataError(f"gzip user-data nested more than {_MAX_GZIP_LAYERS} deep; refused")
    return data


def decode_input(raw: bytes) -> bytes:
    """Undo gzip (capped) and turn CR LF (and CR) into LF: what every reader here sees."""
    return _lf(_gunzipped(raw))


def parts_of(raw: bytes) -> tuple[str, list[Part]]:
    """Return the input's format and its parts, as :func:`normalize` sees them.

    The format is ``"mime"``, ``"old-syntax"`` or ``"cloud-init"`` (data
    passed through unchanged; then the list holds the whole data as one
    part, typed by its first line, for display).
    """
    data = decode_input(raw)
    if looks_like_mime(data):
        return "mime", _normal_parts(parse_parts(data))
    text = _decode_text(data)
    if text is not None and is_old_syntax(text):
        return "old-syntax", split_old_syntax(text)
    return "cloud-init", [Part(headers=[("Content-Type", _guess_type(data))], payload=data)]


def _decode_text(data: bytes) -> str | None:
    """``data`` as text, without the byte-order mark some editors write; None if not UTF-8."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text[1:] if text.startswith("\ufeff") else text


def _guess_type(data: bytes) -> str:
    """cloud-init's own guess from the first line (for display only)."""
    starts = [
        (b"#cloud-config-archive", "text/cloud-config-archive"),
        (b"#cloud-config", CLOUD_CONFIG),
        (b"#include-once", "text/x-include-once-url"),
        (b"#include", "text/x-include-url"),
        (b"## template: jinja", "text/jinja2"),
        (b"#cloud-boothook", "text/cloud-boothook"),
        (b"#part-handler", "text/part-handler"),
        (b"#upstart-job", "text/upstart-job"),
        (b"#!", SCRIPT),
    ]
    for prefix, ctype in starts:
        if data.startswith(prefix):
            return ctype
    return "text/plain" if data else "text/x-empty"


def normalize(raw: bytes) -> bytes:
    """Return ``raw`` user-data as normalised MIME (or unchanged; see module doc).

    Raises :class:`UserDataError` (one-line message) for gzip that is
    corrupt or expands beyond :data:`MAX_DECOMPRESSED`, malformed MIME, bad
    base64 in a text part, and old syntax that is not UTF-8 (cloud-init
    reads MIME as UTF-8).
    """
    plain = _gunzipped(raw)
    data = _lf(plain)
    if looks_like_mime(data):
        return write_mime(_normal_parts(parse_parts(data)))
    text = _decode_text(data)
    if text is None:
        if _is_old_syntax_bytes(data):
            raise UserDataError("old-syntax user-data is not UTF-8 text; save it as UTF-8")
        return plain
    if is_old_syntax(text):
        return write_mime(split_old_syntax(text))
    return plain


def _is_old_syntax_bytes(data: bytes) -> bool:
    return is_old_syntax(data.decode("utf-8", "replace"))
