"""Nova's metadata service, as a fake answers it, and what a Nova machine
shows: the OpenStack tree (``/openstack/latest/...``: user_data,
meta_data.json, network_data.json, vendor_data*.json) and, ``complete``,
its EC2-compatible tree beside it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from tests.fakes.answers import Reply, lookup

if TYPE_CHECKING:
    from tests.fakes.metadata import Routes

#: the dated versions of the OpenStack tree besides ``latest``
VERSIONS = ("2012-08-10", "2013-10-17")
#: the EC2 versions Nova keeps beside ``latest`` (``complete`` only)
EC2_TREE_VERSIONS = ("1.0", "2007-01-19", "2007-03-01", "2007-08-29", "2007-10-10",
                     "2007-12-15", "2008-02-01", "2008-09-01", "2009-04-04")

#: a KVM instance's /sys/class/dmi/id, as Nova sets it
DMI = {
    "sys_vendor": "OpenStack Foundation",
    "product_name": "OpenStack Nova",
    "product_uuid": "2f5c4a9e-3d7b-4e1a-9c6f-8b0d2e4f6a1c",
}

#: an OpenStack network_data.json as Nova writes it (metadata service and
#: config drive): two ports, the first by DHCP, the second static with a
#: route and its own DNS server
NETWORK_DATA: dict = {
    "links": [
        {"id": "tapd0a3b1c4-5e", "vif_id": "d0a3b1c4-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
         "type": "ovs", "mtu": 1450, "ethernet_mac_address": "fa:16:3e:2a:4b:01"},
        {"id": "tap7f8e9d0c-1b", "vif_id": "7f8e9d0c-1b2a-4c3d-9e8f-7a6b5c4d3e2f",
         "type": "ovs", "mtu": 1500, "ethernet_mac_address": "fa:16:3e:2a:4b:02"},
    ],
    "networks": [
        {"id": "network0", "type": "ipv4_dhcp", "link": "tapd0a3b1c4-5e",
         "network_id": "4c1e6a2b-8f3d-4e5a-9b7c-1d2e3f4a5b6c"},
        {"id": "network1", "type": "ipv4", "link": "tap7f8e9d0c-1b",
         "ip_address": "10.20.0.15", "netmask": "255.255.255.0",
         "routes": [{"network": "10.30.0.0", "netmask": "255.255.0.0",
                     "gateway": "10.20.0.1"}],
         "network_id": "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d",
         "services": [{"type": "dns", "address": "10.20.0.2"}]},
    ],
    "services": [{"type": "dns", "address": "10.0.0.2"}],
}

#: the network_data.json of an instance with one port, on a subnet with DHCP,
#: at qemu's default MAC (the whole-VM boots' NIC)
ONE_PORT: dict = {
    "links": [{"id": "tap52540012-34", "vif_id": "52540012-3456-4a7b-8c9d-0e1f2a3b4c5d",
               "type": "ovs", "mtu": 1500, "ethernet_mac_address": "52:54:00:12:34:56"}],
    "networks": [{"id": "network0", "type": "ipv4_dhcp", "link": "tap52540012-34",
                  "network_id": "4c1e6a2b-8f3d-4e5a-9b7c-1d2e3f4a5b6c"}],
    "services": [],
}


def answer(ask: Routes, method: str, path: str, headers: dict[str, str]) -> Reply:
    """Nova's answer to one request (PATH without a dated version)."""
    i = ask.inst
    meta = {"uuid": "d8e02d56-2648-49a3-bf97-6be8f1204f38", "hostname": i.hostname,
            "name": "vm1", "availability_zone": "nova", "launch_index": 0,
            "public_keys": {f"key{n}": k + "\n" for n, k in enumerate(i.keys)}}
    items = {
        "/openstack/latest/user_data": ask.user_data_reply(),
        "/openstack/latest/meta_data.json": (200, json.dumps(meta).encode()),
    }
    if i.network_data is not None:
        items["/openstack/latest/network_data.json"] = \
            (200, json.dumps(i.network_data).encode())
    for name, data in (("vendor_data.json", i.vendor_data),
                       ("vendor_data2.json", i.vendor_data2)):
        if data is not None:
            items[f"/openstack/latest/{name}"] = (200, data)
    if path.rstrip("/") == "/openstack":
        return 200, "\n".join([*VERSIONS, "latest"]).encode()
    if ask.complete:
        # Nova's EC2-compatible tree beside its own
        items.update({
            "/latest/user-data": ask.user_data_reply(),
            "/latest/meta-data/instance-id": (200, b"i-00000042"),
            "/latest/meta-data/local-hostname": (200, i.hostname.encode()),
            "/latest/meta-data/ami-id": (200, b"ami-00000007"),
            "/latest/meta-data/ami-launch-index": (200, b"0"),
            "/latest/meta-data/placement/availability-zone": (200, b"nova"),
            **{f"/latest/meta-data/public-keys/{n}/openssh-key": (200, k.encode() + b"\n")
               for n, k in enumerate(i.keys)},
        })
    return lookup(items, path)
