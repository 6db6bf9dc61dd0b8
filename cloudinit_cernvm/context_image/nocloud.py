"""The ``nocloud`` format (label ``cidata``): cloud-init's NoCloud seed.

As ``cloud-localds`` writes it: ``user-data`` (always there, maybe empty:
cloud-init needs both files) and ``meta-data`` with ``instance-id``,
``local-hostname``, ``public-keys`` and the --meta-data items, written as
JSON (which is YAML, so every NoCloud reader takes it, and the microboot
stage reads it without a YAML parser).
"""

from __future__ import annotations

from cloudinit_cernvm.context_image.context import Context, Tree, json_file

LABEL = "cidata"


def build(ctx: Context) -> Tree:
    """cloud-init's NoCloud seed disk: ``user-data`` and ``meta-data``."""
    meta: dict[str, object] = dict(ctx.meta_data)
    meta["instance-id"] = ctx.instance_id
    if ctx.hostname:
        meta["local-hostname"] = ctx.hostname
    if ctx.ssh_keys:
        meta["public-keys"] = list(ctx.ssh_keys)
    return {"user-data": ctx.user_data or b"", "meta-data": json_file(meta)}
