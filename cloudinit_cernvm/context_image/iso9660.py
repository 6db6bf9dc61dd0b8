"""The one ISO 9660 writer: a file tree onto a context image, atomically.

Every format hands its tree and volume label here; this module alone knows
ISO 9660, Joliet and Rock Ridge. pycdlib, the writer's library, is its
dependency alone and is imported only where an image is written.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
from collections.abc import Mapping
from typing import Any

from cloudinit_cernvm.context_image.context import ContextMediaError

#: files that keep the execute bit on the image (Rock Ridge mode)
EXECUTABLES = frozenset({"prolog.sh", "epilog.sh"})


def _iso9660_name(name: str, is_dir: bool, taken: set[str]) -> str:
    """An ISO 9660 (level 3) identifier for ``name``, unique within ``taken``.

    ISO 9660 allows only A-Z, 0-9 and ``_``; the real name travels in the
    Rock Ridge and Joliet records, which every reader here uses.
    """

    def clean(text: str) -> str:
        return re.sub(r"[^A-Z0-9_]", "_", text.upper())

    if is_dir:
        stem, ext, room = clean(name), "", 31
    else:
        base, dot, extension = name.rpartition(".")
        if not dot or not base:
            base, extension = name, ""
        ext = clean(extension)[:3]
        stem, room = clean(base), 30 - len(ext)

    def full(candidate: str) -> str:
        return candidate if is_dir else f"{candidate}.{ext}"

    candidate, counter = stem[:room], 0
    while full(candidate) in taken:
        counter += 1
        suffix = f"_{counter}"
        candidate = stem[: room - len(suffix)] + suffix
    taken.add(full(candidate))
    return full(candidate)


def write_iso(tree: Mapping[str, bytes], label: str, fp: io.BufferedIOBase) -> None:
    """Write ``tree`` as an ISO 9660 image with Joliet and Rock Ridge to ``fp``.

    ``label`` is the volume identifier (``CONTEXT``, ``config-2``): blkid and
    /dev/disk/by-label show it, and each cloud's readers look for it.
    """
    try:
        import pycdlib  # the package does not depend on it: make-iso alone does
    except ImportError:
        raise ContextMediaError(
            "make-iso needs pycdlib: pip install 'cloudinit-cernvm[iso]'"
        ) from None

    try:
        _master(pycdlib.PyCdlib(), tree, label, fp)
    except pycdlib.pycdlibexception.PyCdlibException as err:
        raise ContextMediaError(f"cannot build the image: {err}") from None


def _master(iso: Any, tree: Mapping[str, bytes], label: str, fp: io.BufferedIOBase) -> None:
    """Lay ``tree`` out on the new PyCdlib object ``iso`` and write it to ``fp``."""
    iso.new(
        interchange_level=3,
        vol_ident=label,
        app_ident_str="CERNVM-CONTEXT",
        joliet=3,
        rock_ridge="1.09",
    )
    iso_paths: dict[str, str] = {"": ""}
    taken: dict[str, set[str]] = {}

    def add_dir(path: str) -> str:
        if path in iso_paths:
            return iso_paths[path]
        parent, _, name = path.rpartition("/")
        parent_iso = add_dir(parent)
        iso_name = _iso9660_name(name, True, taken.setdefault(parent, set()))
        iso_paths[path] = f"{parent_iso}/{iso_name}"
        iso.add_directory(iso_paths[path], rr_name=name, joliet_path="/" + path, file_mode=0o40555)
        return iso_paths[path]

    for path in sorted(tree):
        data = tree[path]
        parent, _, name = path.rpartition("/")
        parent_iso = add_dir(parent)
        iso_name = _iso9660_name(name, False, taken.setdefault(parent, set()))
        mode = 0o100555 if name in EXECUTABLES else 0o100444
        iso.add_fp(
            io.BytesIO(data),
            len(data),
            f"{parent_iso}/{iso_name};1",
            rr_name=name,
            joliet_path="/" + path,
            file_mode=mode,
        )
    iso.write_fp(fp)
    iso.close()


def write_image(tree: Mapping[str, bytes], label: str, out: str, force: bool = False) -> None:
    """Write the image to ``out`` atomically: whole, or not at all.

    The image goes to a temporary file beside ``out`` (mode 0600: it holds
    the user-data), then takes its name in one step; without ``force`` an
    existing ``out`` is kept and the call fails. On any failure the
    temporary file is removed.
    """
    if not force and os.path.lexists(out):
        raise ContextMediaError(f"{out} exists; use --force to overwrite it")
    directory = os.path.dirname(os.path.abspath(out))
    try:
        handle, tmp = tempfile.mkstemp(
            dir=directory, prefix="." + os.path.basename(out) + ".", suffix=".tmp"
        )
    except OSError as err:
        raise ContextMediaError(f"cannot write in {directory}: {err.strerror}") from None
    try:
        with os.fdopen(handle, "wb") as fp:
            write_iso(tree, label, fp)
            fp.flush()
            os.fsync(fp.fileno())
        if force:
            os.replace(tmp, out)
        else:
            try:
                os.link(tmp, out)  # fails if out appeared meanwhile: never clobbers
            except FileExistsError:
                raise ContextMediaError(f"{out} exists; use --force to overwrite it") from None
            os.unlink(tmp)
    except OSError as err:
        raise ContextMediaError(f"cannot write {out}: {err.strerror or err}") from None
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)
