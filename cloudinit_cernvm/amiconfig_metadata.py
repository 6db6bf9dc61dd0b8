"""amiconfig's local metadata tree: every key its getters read, and its files.

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

from cloudinit_cernvm import private_files

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
#: the metadata API version amiconfig.sh and amiconfig use
EC2_API_VERSION = "2007-12-15"


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


class InstanceMeta:
    """What amiconfig plugins may ask the metadata service for.

    ``meta_data`` is the provider's meta-data as the datasource read it;
    ``local_ipv4`` the machine's address, for a provider that gives none.
    """

    __slots__ = ("availability_zone", "instance_id", "local_hostname", "local_ipv4",
                 "meta_data", "public_keys")

    def __init__(self, instance_id: str | None = None, local_hostname: str | None = None,
                 public_keys: list[str] | None = None,
                 availability_zone: str | None = None,
                 meta_data: Mapping | None = None,
                 local_ipv4: str | None = None) -> None:
        self.instance_id = instance_id
        self.local_hostname = local_hostname
        self.public_keys = [] if public_keys is None else public_keys
        self.availability_zone = availability_zone
        self.meta_data = meta_data if isinstance(meta_data, Mapping) else {}
        self.local_ipv4 = local_ipv4


def write_metadata_tree(base: str, meta: InstanceMeta, user_data: bytes) -> str:
    """Lay out ``base/2007-12-15`` like the EC2 metadata tree; return its URL.

    amiconfig reads ``<url>/meta-data/<key>`` and ``<url>/user-data``; with a
    ``file:`` URL it never opens a socket. Every key its getters read is
    written (``tree_values``: the provider's value, the
    machine's, or a documented default), and the public keys.
    """
    root = os.path.join(private_files.private_dir(base), EC2_API_VERSION)
    private_files.private_dir(os.path.join(root, "meta-data"))
    values = tree_values(meta.meta_data, meta.instance_id,
                                            meta.local_hostname, meta.local_ipv4)
    files = {f"meta-data/{key}": value for key, value in values.items()}
    if meta.availability_zone:
        files["meta-data/placement/availability-zone"] = meta.availability_zone
    for index, key in enumerate(meta.public_keys):
        files[f"meta-data/public-keys/{index}/openssh-key"] = key.strip() + "\n"
    for name, text in files.items():
        path = os.path.join(root, name)
        private_files.private_dir(os.path.dirname(path))
        private_files.write_private(path, text.encode("utf-8"))
    private_files.write_private(os.path.join(root, "user-data"), user_data)
    return "file:" + root
