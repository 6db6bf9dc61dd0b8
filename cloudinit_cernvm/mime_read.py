"""MIME user-data read into decoded leaf parts.

:func:`parse_parts` parses a MIME message (nested multiparts flattened,
preamble and epilogue dropped) and decodes each leaf: text parts from
base64 or quoted-printable to text with LF line ends and a final newline,
parts that are not text (gzip, binary) kept exactly as they came. It
refuses malformed MIME (boundaries that do not match what the header
declares) and multiparts nested too deep, with one-line messages.

Apart from the writer (:mod:`mime_write`) and from old syntax: reading
MIME is its own set of rules and failures (``validate`` reads with it too,
to report them), and knows nothing of CernVM's sections.

Standard library only: this module is on the boot path.
"""

from __future__ import annotations

import base64
import binascii
import email
import email.message
import quopri

from cloudinit_cernvm.userdata_part import Part, UserDataError, printable

#: Deepest nesting of multiparts taken. cloud-init sets no limit, but its
#: parser and ours recurse per level and fail near Python's recursion limit
#: (a 64 KiB message can nest 980 deep); ``amiconfig-mime`` and cloud-init's
#: own tools write one level, hand-made archives two or three.
MAX_MIME_DEPTH = 20


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


def lf(data: bytes) -> bytes:
    """CR LF, and a CR alone, become LF: MIME parsers (cloud-init's too) end lines at both."""
    return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")


def _fix_text(payload: bytes) -> bytes:
    payload = lf(payload)
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
