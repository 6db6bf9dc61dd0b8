"""This project's own files: directories 0700, files 0600, never through a link.

The records under cloud-init's instance directory sit where a process of
the machine may have put a symbolic link, to make them land elsewhere: a
directory of ours found as a link is replaced, a file is written to a
temporary name and renamed into place (atomic, never readable by others
meanwhile), a file created in place removes what stood there first. Apart
from ``safefile.py``, which reads what others put in place and stays cheap
to import for the command line (this one needs ``logging`` and
``tempfile``).

Standard library only.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import tempfile
from collections.abc import Mapping

LOG = logging.getLogger(__name__)

_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def private_dir(path: str) -> str:
    """Create ``path`` and missing parents 0700 (the leaf made 0700 anyway).

    The leaf is this project's own directory: a symbolic link found there
    (put in place to make the records land elsewhere) is removed and a real
    directory made, never followed; the mode is set through a descriptor
    opened without following links. Existing parents are cloud-init's
    (``/var/lib/cloud/instance`` is itself a link) and are used as they are.
    """
    leaf = os.path.abspath(path)
    if os.path.islink(leaf):
        LOG.info("CernVM: %s was a symbolic link; replaced by a directory", leaf)
        os.unlink(leaf)
    missing = []
    here = leaf
    while not os.path.isdir(here):
        missing.append(here)
        here = os.path.dirname(here)
    for directory in reversed(missing):
        try:
            os.mkdir(directory, 0o700)
        except FileExistsError:
            pass
    fd = os.open(leaf, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        os.fchmod(fd, 0o700)
    finally:
        os.close(fd)
    return path


def write_private(path: str, data: bytes, mode: int = 0o600) -> None:
    """Write ``data`` atomically with ``mode``, never readable by others meanwhile."""
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_json(path: str, record: Mapping) -> None:
    """A record for ``cernvm-context show``: JSON, 0600."""
    write_private(path, (json.dumps(record, indent=2, sort_keys=True) + "\n").encode())


def create_private(path: str, mode: int = 0o600) -> int:
    """A new, empty file at ``path`` (``mode``), open for writing; its descriptor.

    Whatever stood at ``path`` (a stale record, a symbolic link pointing
    elsewhere, a FIFO) is removed first, never written through: the new file
    is created with ``O_EXCL|O_NOFOLLOW``, so that a link put back in the
    meantime makes the call fail rather than write outside. A directory in
    the way is an error.
    """
    try:
        if not stat.S_ISDIR(os.lstat(path).st_mode):
            os.unlink(path)
    except FileNotFoundError:
        pass
    fd = os.open(path, _CREATE_FLAGS, mode)
    try:
        os.fchmod(fd, mode)
    except BaseException:
        os.close(fd)
        raise
    return fd
