"""The table of image formats: each format's name, volume label and builder.

``make-iso`` and the tests find a format here and nowhere else, so that a
new format is one module (``LABEL`` and ``build(ctx) -> Tree``) and one line
in ``_TABLE``. The checks that tie options to formats (``--prolog`` goes
with hepix only...) are made here, before any builder runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cloudinit_cernvm.context_image import (
    cloudstack,
    configdrive,
    hepix,
    nocloud,
    opennebula,
    vsphere,
)
from cloudinit_cernvm.context_image.context import (
    Context,
    ContextMediaError,
    Tree,
    check_user_data_size,
)


@dataclass(frozen=True)
class ImageFormat:
    """One format: the volume label its cloud's readers look for, and its tree."""

    label: str
    build: Callable[[Context], Tree]


_TABLE: dict[str, ImageFormat] = {
    "hepix": ImageFormat(hepix.LABEL, hepix.build),
    "opennebula": ImageFormat(opennebula.LABEL, opennebula.build),
    "configdrive": ImageFormat(configdrive.LABEL, configdrive.build),
    "cloudstack": ImageFormat(cloudstack.LABEL, cloudstack.build),
    "nocloud": ImageFormat(nocloud.LABEL, nocloud.build),
    "vsphere": ImageFormat(vsphere.LABEL, vsphere.build),
}

FORMATS: tuple[str, ...] = tuple(_TABLE)

#: the volume label each cloud's readers look for
LABELS: dict[str, str] = {name: fmt.label for name, fmt in _TABLE.items()}


def build_tree(fmt: str, ctx: Context) -> Tree:
    """The file tree of ``fmt`` for ``ctx``, after the format's size check."""
    if fmt not in _TABLE:
        raise ContextMediaError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    check_user_data_size(fmt, ctx.user_data)
    if fmt != "hepix" and (ctx.prolog is not None or ctx.epilog is not None):
        raise ContextMediaError("--prolog and --epilog go with --format hepix only")
    if fmt != "hepix" and ctx.files:
        raise ContextMediaError("--file goes with --format hepix only")
    if fmt != "configdrive" and (ctx.vendor_data is not None or ctx.vendor_data2 is not None):
        raise ContextMediaError(
            "--vendor-data and --vendor-data2 go with --format configdrive only"
        )
    return _TABLE[fmt].build(ctx)
