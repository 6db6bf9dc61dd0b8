"""gzip user-data undone, layer after layer, with a cap on what it expands to.

Clouds and users gzip user-data; cloud-init undoes it, and so must every
reader here before it looks at the text. A room of its own because it is
the one place that decides how much decompression is too much (a probable
gzip bomb is refused with a :class:`UserDataError`).

Standard library only: this module is on the boot path.
"""

from __future__ import annotations

import zlib

from cloudinit_cernvm.userdata_part import UserDataError

#: Most bytes gzip user-data may expand to (cloud-init's own limit on
#: user-data is far lower; no real context comes close).
MAX_DECOMPRESSED = 16 * 1024 * 1024

_GZIP_MAGIC = b"\x1f\x8b"
_MAX_GZIP_LAYERS = 4


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


def gunzipped(raw: bytes) -> bytes:
    """``raw`` without its gzip layers (gzip of gzip too: the result is never gzip)."""
    data = raw
    for _ in range(_MAX_GZIP_LAYERS):
        if not data.startswith(_GZIP_MAGIC):
            return data
        data = gunzip(data)
    if data.startswith(_GZIP_MAGIC):
        raise UserDataError(f"gzip user-data nested more than {_MAX_GZIP_LAYERS} deep; refused")
    return data
