"""CernVM user-data, old syntax or MIME, to normalised MIME multipart.

CernVM users write *old syntax*: one text that mixes a leading ``#!``
script ended by a line ``exit``, amiconfig ini sections, a µCernVM
``[ucernvm-begin]``...``[ucernvm-end]`` block and ``#cloud-config`` YAML.
Others wrote MIME with CernVM's ``amiconfig-mime`` tool, sometimes with
base64 parts. cloud-init understands neither on its own, so the datasource
hands it ``normalize(raw)`` instead of the raw data.

What :func:`normalize` returns:

- gzip input is decompressed first, layer after layer (at most
  :data:`gzip_input.MAX_DECOMPRESSED` bytes each; more is refused as a
  probable gzip bomb);
- data that is already in one of cloud-init's own formats and holds no
  CernVM section (``#cloud-config``, ``#include``, a ``## template: jinja``,
  a ``#!`` script with nothing after its ``exit`` line, or with no ``exit``
  line and no section another consumer reads, empty data,
  plain text) is returned unchanged: wrapping it would add nothing;
- anything else becomes MIME multipart with a fresh random boundary, every
  part written as text (``7bit`` or ``8bit``, never base64), CR LF line
  ends (and lone CRs, which MIME parsers read as line ends) turned into LF,
  and every text part ending with a newline.

Old syntax is split by :func:`old_syntax.split_old_syntax`, one part per
section, in document order (its module tells which section becomes which
part).

MIME input is normalised part by part, in order (nested multiparts are
flattened, preamble and epilogue dropped): text parts are decoded from
base64 or quoted-printable and written as text with their other headers
kept (``Content-Disposition``, ``Merge-Type``...); ``text/plain`` parts
holding old syntax are split as above; parts that are not text (gzip,
binary) are kept exactly as they came. ``text/amiconfig-user-data`` keeps
its type. Normalising normalised data changes nothing but the boundary.

The rooms it calls: :mod:`gzip_input` (gzip undone), :mod:`old_syntax`,
:mod:`mime_read` and :mod:`mime_write`; the part record they share is
:mod:`userdata_part`. This module keeps only the flow between them.

Standard library only: this module is on the boot path.
"""

from __future__ import annotations

from cloudinit_cernvm.content_types import CLOUD_CONFIG, SCRIPT, SCRIPT_BEFORE
from cloudinit_cernvm.gzip_input import gunzipped
from cloudinit_cernvm.mime_read import lf, looks_like_mime, parse_parts
from cloudinit_cernvm.mime_write import write_mime
from cloudinit_cernvm.old_syntax import MARKER, is_old_syntax, split_old_syntax
from cloudinit_cernvm.userdata_part import SCRIPT_HEADER, Part, UserDataError, text_part

_PLAIN_TYPES = frozenset({"text/plain", "text/x-not-multipart"})


def decode_input(raw: bytes) -> bytes:
    """Undo gzip (capped) and turn CR LF (and CR) into LF: what every reader here sees."""
    return lf(gunzipped(raw))


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
            marker = MARKER.match(first)
            if marker:
                space, interpreter, when, tail = marker.groups()
                body = f"#!{space}{interpreter}{tail}\n{rest}"
                extra = [
                    (k, v)
                    for k, v in part.headers
                    if k.lower() not in ("content-type", "mime-version")
                ]
                new = text_part(SCRIPT_BEFORE if when == "before" else SCRIPT, body, 0, extra)
                new.headers.append((SCRIPT_HEADER, when))
                out.append(new)
                continue
        out.append(part)
    return out


def parts_of(raw: bytes) -> tuple[str, list[Part]]:
    """Return the input's format and its parts, as :func:`normalize` sees them.

    The format is ``"mime"``, ``"old-syntax"`` or ``"cloud-init"`` (data
    passed through unchanged; then the list holds the whole data as one
    part, typed by its first line, for display).
    """
    data = decode_input(raw)
    if looks_like_mime(data):
        return "mime", _normal_parts(parse_parts(data))
    text = decode_text(data)
    if text is not None and is_old_syntax(text):
        return "old-syntax", split_old_syntax(text)
    return "cloud-init", [Part(headers=[("Content-Type", guess_type(data))], payload=data)]


def decode_text(data: bytes) -> str | None:
    """``data`` as text, without the byte-order mark some editors write; None if not UTF-8."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text[1:] if text.startswith("\ufeff") else text


def guess_type(data: bytes) -> str:
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
    corrupt or expands beyond :data:`gzip_input.MAX_DECOMPRESSED`, malformed
    MIME, bad base64 in a text part, and old syntax that is not UTF-8 (cloud-init
    reads MIME as UTF-8).
    """
    plain = gunzipped(raw)
    data = lf(plain)
    if looks_like_mime(data):
        return write_mime(_normal_parts(parse_parts(data)))
    text = decode_text(data)
    if text is None:
        if _is_old_syntax_bytes(data):
            raise UserDataError("old-syntax user-data is not UTF-8 text; save it as UTF-8")
        return plain
    if is_old_syntax(text):
        return write_mime(split_old_syntax(text))
    return plain


def _is_old_syntax_bytes(data: bytes) -> bool:
    return is_old_syntax(data.decode("utf-8", "replace"))
