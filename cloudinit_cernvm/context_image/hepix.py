"""The ``hepix`` format (label ``CONTEXT``): the HEPiX context CD.

``context.sh`` with ``EC2_USER_DATA`` (base64) and ``ROOT_PUBKEY`` naming
the key file ``root.pub`` on the same disk, plus ``prolog.sh`` and
``epilog.sh`` (the site contextualization) and the ``--file`` files, at the
top under their names and listed in ``FILES``, when given.
"""

from __future__ import annotations

from cloudinit_cernvm.context_image.context import Context, Tree
from cloudinit_cernvm.context_image.contextsh_writer import (
    b64,
    context_variables,
    render_context_sh,
    set_hostname,
)

LABEL = "CONTEXT"

#: names the hepix CD holds already, never a --file's
HEPIX_OWN_NAMES = frozenset({"context.sh", "prolog.sh", "epilog.sh", "root.pub"})


def build(ctx: Context) -> Tree:
    """The HEPiX context CD: context.sh, root.pub, prolog.sh, epilog.sh."""
    variables = context_variables(ctx.meta_data)
    variables["VMID"] = ctx.instance_id
    tree: Tree = {}
    if ctx.user_data is not None:
        variables["EC2_USER_DATA"] = b64(ctx.user_data)
    if ctx.hostname:
        set_hostname(variables, ctx.hostname)
    if ctx.ssh_keys:
        variables["ROOT_PUBKEY"] = "root.pub"
        tree["root.pub"] = ("\n".join(ctx.ssh_keys) + "\n").encode("utf-8")
    if ctx.prolog is not None:
        tree["prolog.sh"] = ctx.prolog
    if ctx.epilog is not None:
        tree["epilog.sh"] = ctx.epilog
    if ctx.files:
        variables["FILES"] = " ".join(sorted(ctx.files))
        tree.update(ctx.files)
    tree["context.sh"] = render_context_sh(variables)
    return tree
