"""The ``vsphere`` format (label ``user-data``): µCernVM's CD of ``user-data.txt``.

CernVM images on vSphere (and on any hypervisor) took their context from a
CD holding ``user-data.txt`` alone; the instance id is the machine's DMI
UUID, and keys, hostname and the rest come inside the user-data. So the CD
holds that one file, and the options that would go elsewhere are refused
rather than dropped.
"""

from __future__ import annotations

from cloudinit_cernvm.context_image.context import Context, ContextMediaError, Tree

LABEL = "user-data"


def build(ctx: Context) -> Tree:
    """The CD's one file, ``user-data.txt`` (empty without --user-data)."""
    if ctx.ssh_keys or ctx.hostname or ctx.meta_data:
        raise ContextMediaError(
            "--ssh-key, --hostname and --meta-data do not go with --format vsphere: "
            "its CD holds user-data.txt only; put them in the user-data"
        )
    return {"user-data.txt": ctx.user_data or b""}
