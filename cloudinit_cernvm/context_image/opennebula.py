"""The ``opennebula`` format (label ``CONTEXT``): OpenNebula's context CD.

``context.sh`` alone, with ``USER_DATA`` (base64),
``USERDATA_ENCODING=base64``, ``SSH_PUBLIC_KEY``, ``SET_HOSTNAME`` (and
``HOSTNAME``, which cloud-init 20.4 reads instead).
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


def build(ctx: Context) -> Tree:
    """OpenNebula's context CD: context.sh alone."""
    variables = context_variables(ctx.meta_data)
    variables["VMID"] = ctx.instance_id
    if ctx.user_data is not None:
        variables["USER_DATA"] = b64(ctx.user_data)
        variables["USERDATA_ENCODING"] = "base64"
    if ctx.hostname:
        set_hostname(variables, ctx.hostname)
    if ctx.ssh_keys:
        variables["SSH_PUBLIC_KEY"] = "\n".join(ctx.ssh_keys)
    return {"context.sh": render_context_sh(variables)}
