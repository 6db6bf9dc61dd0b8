"""CloudStack's virtual router (metadata on the DHCP server's address, port
80), as a fake answers it, and what a CloudStack machine shows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.fakes.answers import Reply, lookup

if TYPE_CHECKING:
    from tests.fakes.metadata import Routes

#: the router keeps ``latest`` only
VERSIONS: tuple[str, ...] = ()

#: a KVM guest's /sys/class/dmi/id
DMI = {
    "sys_vendor": "Apache Software Foundation",
    "product_name": "CloudStack KVM Hypervisor",
    "product_uuid": "7d1e2f3a-4b5c-4d6e-8f90-a1b2c3d4e5f6",
}


def answer(ask: Routes, method: str, path: str, headers: dict[str, str]) -> Reply:
    """The virtual router's answer to one request (PATH without a dated version)."""
    i = ask.inst
    items = {
        "/latest/user-data": ask.user_data_reply(),
        "/latest/meta-data/instance-id": (200, b"2f5e6b3c-4a5b-4c6d-8e9f-0a1b2c3d4e5f"),
        "/latest/meta-data/local-hostname": (200, i.hostname.split(".")[0].encode()),
        "/latest/meta-data/public-keys": (200, "\n".join(i.keys).encode()),
        "/latest/meta-data/availability-zone": (200, b"zone1"),
    }
    return lookup(items, path)
