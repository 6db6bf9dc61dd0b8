"""Open files that someone else may have put in place, without trusting them.

The seed is written by an earlier boot stage from what a cloud answered, and
the records under cloud-init's instance directory sit where a process of the
machine may have left something else. ``open()`` on such a path blocks on a
FIFO, reads a device for ever, or follows a symbolic link out of the
directory. These helpers never block, never follow a final symbolic link
and read at most a given number of bytes; what they refuse, they refuse
with a short reason (``OSError``) that names what was found.

Standard library only, and cheap to import: the boot path uses it.
"""

from __future__ import annotations

import errno
import json
import os
import stat

_READ_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC


def kind_of(mode: int) -> str:
    """What a file of ``mode`` is, in words, for a message."""
    if stat.S_ISREG(mode):
        return "a regular file"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def _refuse(mode: int) -> OSError:
    return OSError(errno.EINVAL, f"{kind_of(mode)}, not a regular file")


def read_regular(path: str, limit: int) -> bytes:
    """The content of the regular file ``path``, at most ``limit`` bytes.

    Refused (``OSError`` with a short ``strerror``): a missing file, a
    symbolic link, a directory, FIFO, socket or device, and a file larger
    than ``limit``. The type is checked before the file is opened (opening a
    device may itself act) and again on the open descriptor (the entry may
    have been swapped in between); the open never blocks.
    """
    mode = os.lstat(path).st_mode
    if not stat.S_ISREG(mode):
        raise _refuse(mode)
    try:
        fd = os.open(path, _READ_FLAGS)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise _refuse(stat.S_IFLNK) from None
        raise
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise _refuse(mode)
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(limit + 1 - size, 1024 * 1024))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    if size > limit:
        raise OSError(errno.EFBIG, f"larger than {limit} bytes")
    return b"".join(chunks)


def read_json_record(path: str, limit: int = 1024 * 1024) -> dict | None:
    """The JSON object in the regular file ``path`` (a record this package
    wrote), or None when there is none, or it is no object: a record that
    cannot be read counts as absent, never as an error."""
    try:
        record = json.loads(read_regular(path, limit).decode("utf-8", "replace"))
    except (OSError, ValueError, RecursionError):
        return None
    return record if isinstance(record, dict) else None
