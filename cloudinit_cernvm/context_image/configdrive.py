"""The ``configdrive`` format (label ``config-2``): OpenStack nova's config drive.

``openstack/latest/`` and the first dated version ``openstack/2012-08-10/``,
each with ``meta_data.json`` and ``user_data``; ``vendor_data.json`` in
``latest`` (``{}``, or the site's vendor-data from --vendor-data), and
``vendor_data2.json`` from --vendor-data2. nova's spelling of the keys in
meta_data.json is here too: CloudStack's drive writes the same beside its own.
"""

from __future__ import annotations

from cloudinit_cernvm.context_image.context import Context, Tree, json_file

LABEL = "config-2"

#: nova's first OpenStack metadata version (Folsom), which every reader knows
OPENSTACK_DATED_VERSION = "2012-08-10"


def _key_names(keys: list[str]) -> list[str]:
    """Names for public_keys: the key's comment (as CloudStack does), else key-N."""
    names: list[str] = []
    for number, key in enumerate(keys, 1):
        fields = key.split(None, 2)
        name = fields[2].split()[0] if len(fields) > 2 and fields[2].split() else ""
        if not name or name in names:
            name = f"key-{number}"
        names.append(name)
    return names


def openstack_keys(meta: dict[str, object], keys: list[str]) -> None:
    """Set nova's two spellings of the keys: ``public_keys`` and ``keys``."""
    if not keys:
        return
    names = _key_names(keys)
    meta["public_keys"] = {name: key + "\n" for name, key in zip(names, keys)}
    meta["keys"] = [{"name": n, "type": "ssh", "data": k + "\n"} for n, k in zip(names, keys)]


def build(ctx: Context) -> Tree:
    """OpenStack's config drive: ``openstack/{2012-08-10,latest}/``.

    ``network_data.json`` only from ``--network-data``: nova writes one for
    static networks, and an empty one would make cloud-init's ConfigDrive
    datasource (and the CernVM datasource) drop DHCP.
    """
    meta: dict[str, object] = {"launch_index": 0}
    meta.update(ctx.meta_data)
    meta["uuid"] = ctx.instance_id
    if ctx.hostname:
        meta["hostname"] = ctx.hostname
        meta.setdefault("name", ctx.hostname)
    openstack_keys(meta, ctx.ssh_keys)
    tree: Tree = {}
    for version in (OPENSTACK_DATED_VERSION, "latest"):
        tree[f"openstack/{version}/meta_data.json"] = json_file(meta)
        if ctx.user_data is not None:
            tree[f"openstack/{version}/user_data"] = ctx.user_data
        if ctx.network_data is not None:
            tree[f"openstack/{version}/network_data.json"] = ctx.network_data
    # vendor-data came with Havana (2013-10-17): in latest only, as nova writes it
    tree["openstack/latest/vendor_data.json"] = ctx.vendor_data or b"{}"
    if ctx.vendor_data2 is not None:
        tree["openstack/latest/vendor_data2.json"] = ctx.vendor_data2
    return tree
