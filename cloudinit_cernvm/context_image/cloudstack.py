"""The ``cloudstack`` format (label ``config-2``): CloudStack's config drive.

``cloudstack/userdata/user_data.txt``, ``cloudstack/metadata/<name>.txt``,
and the OpenStack-compatible tree CloudStack writes beside it
(``openstack/latest/`` only).
"""

from __future__ import annotations

import re

from cloudinit_cernvm.context_image.configdrive import openstack_keys
from cloudinit_cernvm.context_image.context import Context, Tree, json_file

LABEL = "config-2"

#: CloudStack's metadata file names that it mirrors into meta_data.json
CLOUDSTACK_TO_OPENSTACK: dict[str, str] = {
    "availability-zone": "availability_zone",
    "local-hostname": "hostname",
    "vm-id": "uuid",
    "public-hostname": "name",
    "cloud-domain": "cloud-domain",
    "cloud-domain-id": "cloud-domain-id",
    "cloud-name": "cloud-name",
    "hypervisor-host-name": "hypervisor-host-name",
}

_CLOUDSTACK_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,59}\Z")  # Joliet: 64 characters


def build(ctx: Context) -> Tree:
    """CloudStack's config drive: ``cloudstack/`` and its ``openstack/latest/``.

    As CloudStack writes it: one ``<name>.txt`` per metadata item (no
    newline added), ``user_data.txt`` raw, and ``meta_data.json`` derived from
    the metadata items, ``vendor_data.json`` empty. --meta-data items with
    CloudStack-style names and scalar values become ``.txt`` files too.
    """
    items: dict[str, str] = {}
    for name, value in ctx.meta_data.items():
        if (
            _CLOUDSTACK_NAME.match(name)
            and isinstance(value, (str, int, float))
            and not (isinstance(value, bool))
        ):
            items[name] = str(value)
    items["instance-id"] = ctx.instance_id
    items["vm-id"] = ctx.instance_id
    if ctx.hostname:
        items["local-hostname"] = ctx.hostname
    if ctx.ssh_keys:
        items["public-keys"] = "\n".join(ctx.ssh_keys)

    meta: dict[str, object] = {
        CLOUDSTACK_TO_OPENSTACK[name]: value
        for name, value in items.items()
        if name in CLOUDSTACK_TO_OPENSTACK
    }
    meta.update(ctx.meta_data)
    meta["uuid"] = ctx.instance_id
    if ctx.hostname:
        meta["hostname"] = ctx.hostname
    openstack_keys(meta, ctx.ssh_keys)

    tree: Tree = {f"cloudstack/metadata/{name}.txt": v.encode("utf-8") for name, v in items.items()}
    if ctx.user_data is not None:
        tree["cloudstack/userdata/user_data.txt"] = ctx.user_data
        tree["openstack/latest/user_data"] = ctx.user_data
    tree["openstack/latest/meta_data.json"] = json_file(meta)
    tree["openstack/latest/vendor_data.json"] = b"{}"
    return tree
