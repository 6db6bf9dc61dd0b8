"""Reading a file the user names on the command line (``-``: stdin), bounded.

Every verb of ``cernvm-context`` that reads an input (``convert``,
``validate``, ``explain``, each input of ``make-iso``) reads it here, so that
all of them stop at the same cap: /dev/zero or an endless pipe is one error,
not a MemoryError. Each verb words its own one-line error from what this
raises.
"""

from __future__ import annotations

import io
import sys

#: most bytes of input read: the seed's user-data cap (``seed.MAX_USER_DATA``)
MAX_INPUT = 16 * 1024 * 1024


class InputTooLarge(Exception):
    """The input holds more than the cap; nothing more of it was read."""

    def __init__(self, cap: int) -> None:
        super().__init__(f"larger than {cap} bytes")
        self.cap = cap


def read_input(
    path: str | None, cap: int = MAX_INPUT, stdin: io.BufferedIOBase | None = None
) -> bytes:
    """The bytes of ``path`` (``-`` or None: stdin), at most ``cap`` of them.

    Raises OSError as opening or reading the file raises it, and
    InputTooLarge when there is more than ``cap`` bytes.
    """
    if path in (None, "-"):
        data = (stdin or sys.stdin.buffer).read(cap + 1)
    else:
        with open(path, "rb") as fp:  # a FIFO too: '<(command)' is one
            data = fp.read(cap + 1)
    if len(data) > cap:
        raise InputTooLarge(cap)
    return data
