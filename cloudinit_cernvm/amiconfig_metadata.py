"""The values of amiconfig's local metadata tree: every key its getters read.

amiconfig's ``instancedata.py`` reads ``<AMICONFIG_CONTEXT_URL>/meta-data/
<key>``; plugins fail when a key is missing (``noip`` and ``dnsupdate``
need ``ami-launch-index``, ``dnsupdate`` ``public-ipv4``). Each key comes
from the seed's meta-data where the provider gave it (EC2 and OpenStack
spell them differently), else from the machine (the address of the default
route's interface for ``local-ipv4``), else a default written here and in
the README. Nothing here opens a socket to anyone.

Directories cannot be read through a ``file:`` URL, so ``public-keys/``
(the key list) and ``block-device-mapping/`` stay unreadable as before;
``public-keys/<n>/openssh-key`` is written for each key.

Standard library only.
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Mapping

#: what a key is when neither the provider nor the machine tells
DEFAULTS = {
    "ami-id": "ami-00000000",
    "ami-launch-index": "0",
    "ami-manifest-path": "(unknown)",
    "instance-type": "unknown",
    "reservation-id": "r-00000000",
    "security-groups": "default",
}
#: the meta-data names each key has with the providers (EC2's first)
ALIASES = {
    "ami-id": ("ami-id", "image-id", "image_id"),
    "ami-launch-index": ("ami-launch-index", "launch-index", "launch_index"),
    "ami-manifest-path": ("ami-manifest-path",),
    "instance-type": ("instance-type", "instance_type", "machine-type", "flavor"),
    "local-hostname": ("local-hostname", "hostname", "local_hostname"),
    "local-ipv4": ("local-ipv4", "local_ipv4", "private-ipv4", "local-ip"),
    "public-hostname": ("public-hostname", "public_hostname"),
    "public-ipv4": ("public-ipv4", "public_ipv4", "public-ip"),
    "reservation-id": ("reservation-id", "reservation_id"),
    "security-groups": ("security-groups", "security_groups"),
}
SIOCGIFADDR = 0x8915


def _text(value: object) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return "\n".join(v.strip() for v in value)
    return None


def from_meta_data(meta_data: Mapping, key: str) -> str | None:
    """A key's value in the provider's meta-data, under any of its names."""
    for name in ALIASES.get(key, (key,)):
        value = _text(meta_data.get(name))
        if value is not None:
            return value
    return None


def default_route_interface(proc_root: str = "/proc") -> str | None:
    """The interface of the IPv4 default route (``/proc/net/route``), if any."""
    try:
        with open(os.path.join(proc_root, "net", "route"), encoding="ascii") as f:
            lines = f.read().splitlines()[1:]
    except (OSError, UnicodeDecodeError):
        return None
    for line in lines:
        fields = line.split()
        if len(fields) > 7 and fields[1] == "00000000" and fields[7] == "00000000":
            return fields[0]
    return None


def interface_address(name: str) -> str | None:
    """The IPv4 address of interface ``name`` (an ioctl: no packet is sent)."""
    import fcntl

    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            request = struct.pack("256s", name.encode("ascii", "replace")[:15])
            reply = fcntl.ioctl(sock.fileno(), SIOCGIFADDR, request)
    except (OSError, ValueError):
        return None
    return socket.inet_ntoa(reply[20:24])


def local_ipv4(proc_root: str = "/proc") -> str | None:
    """The address of the default route's interface: what EC2 calls local-ipv4."""
    name = default_route_interface(proc_root)
    return interface_address(name) if name else None


def tree_values(meta_data: Mapping, instance_id: str | None, hostname: str | None,
                machine_ipv4: str | None) -> dict[str, str]:
    """Every ``meta-data/<key>`` amiconfig's getters read, with where none came from."""
    values: dict[str, str] = {}
    for key in ALIASES:
        value = from_meta_data(meta_data, key)
        if value is not None:
            values[key] = value
    if instance_id:
        values["instance-id"] = instance_id
    if hostname:
        values.setdefault("local-hostname", hostname)
    if machine_ipv4:
        values.setdefault("local-ipv4", machine_ipv4)
    if "local-ipv4" in values:
        values.setdefault("public-ipv4", values["local-ipv4"])
    if "local-hostname" in values:
        values.setdefault("public-hostname", values["local-hostname"])
        values.setdefault("hostname", values["local-hostname"])
    for key, value in DEFAULTS.items():
        values.setdefault(key, value)
    return values
