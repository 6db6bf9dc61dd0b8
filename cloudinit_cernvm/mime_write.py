"""Parts written as one MIME multipart message, every text part as text.

:func:`write_mime` is the converter's output: a fresh random boundary, text
parts written ``7bit`` or quoted-printable (never base64, so that old
µCernVM images and people can still read them), parts kept encoded written
verbatim. Apart from the reader (:mod:`mime_read`): writing shares none of
its rules or failures, and only ``userdata.normalize`` writes.

Standard library only: this module is on the boot path.
"""

from __future__ import annotations

import quopri
import secrets

from cloudinit_cernvm.userdata_part import Part


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
