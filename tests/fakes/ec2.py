"""EC2's instance metadata service (IMDS), as a fake answers it, and what an
EC2 machine shows: its DMI strings and its network interfaces' metadata.

IMDSv2 by default: a token from ``PUT /latest/api/token`` (with its TTL
header), then every ``GET`` carries it; ``imds_v1_only`` refuses the PUT
(405), ``imds_optional`` takes requests with and without one.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from tests.fakes.answers import Reply, lookup

if TYPE_CHECKING:
    from tests.fakes.metadata import Routes

TOKEN = "AQAEAFakeTokenForTests=="

#: the dated versions IMDS keeps besides ``latest`` (what cloud-init's own
#: readers ask for first); the same data as ``latest`` here
VERSIONS = ("2007-12-15", "2009-04-04", "2016-04-19", "2016-09-02", "2018-09-24", "2021-03-23")

#: a t3 (Nitro) instance's /sys/class/dmi/id
DMI = {
    "bios_vendor": "Amazon EC2",
    "sys_vendor": "Amazon EC2",
    "product_name": "t3.micro",
    "product_serial": "ec2e1916-9099-7caf-fd21-01234abcdef0",
    "product_uuid": "ec2e1916-9099-7caf-fd21-01234abcdef0",
    "chassis_asset_tag": "Amazon EC2",
}

#: EC2's per-interface metadata of one network interface, key -> answer, as
#: IMDS gives it under ``meta-data/network/interfaces/macs/<mac>/`` (several
#: values: one a line, no line end after the last)
Nic = dict[str, str]


def nic(mac: str, number: int, ipv4s: list[str], subnet: str, *, card: int | None = None,
            ipv6s: list[str] | None = None, subnet6: str | None = None) -> Nic:
    """One interface's tree as a VPC instance's IMDS has it (a key with no value
    is absent: ``ipv6s`` without IPv6, ``network-card`` on one-card types)."""
    tree = {"mac": mac, "device-number": str(number),
           "interface-id": f"eni-0{number}1a2b3c4d5e6f7a8b", "owner-id": "123456789012",
           "local-hostname": f"ip-{ipv4s[0].replace('.', '-')}.eu-west-1.compute.internal",
           "local-ipv4s": "\n".join(ipv4s), "subnet-id": f"subnet-0{number}a1b2c3d4e5f60718",
           "subnet-ipv4-cidr-block": subnet, "vpc-id": "vpc-0a1b2c3d4e5f60718",
           "vpc-ipv4-cidr-block": "172.31.0.0/16", "security-group-ids": "sg-0123456789abcdef0",
           "security-groups": "default"}
    if card is not None:
        tree["network-card"] = str(card)
    if ipv6s:
        tree["ipv6s"] = "\n".join(ipv6s)
    if subnet6:
        tree["subnet-ipv6-cidr-blocks"] = subnet6
    return tree


#: one interface, at qemu's default MAC (the whole-VM boots' NIC): what every
#: VPC instance has
ONE_NIC = [nic("52:54:00:12:34:56", 0, ["172.31.5.10"], "172.31.0.0/20")]
#: two interfaces on one card: the primary with a secondary IPv4 address and
#: IPv6, a second one (device 1) in another subnet
TWO_NICS = [
    nic("06:5f:3a:9b:10:01", 0, ["172.31.10.5", "172.31.10.6"], "172.31.0.0/20", card=0,
            ipv6s=["2a05:d018:1:200::5"], subnet6="2a05:d018:1:200::/64"),
    nic("06:5f:3a:9b:10:02", 1, ["172.31.20.7"], "172.31.16.0/20", card=0),
]


def answer(ask: Routes, method: str, path: str, headers: dict[str, str]) -> Reply:
    """IMDS's answer to one request (PATH without a dated version)."""
    i = ask.inst
    if path == "/latest/api/token":
        if ask.v1_only:
            return 405, b"Method Not Allowed"
        if method != "PUT" or "x-aws-ec2-metadata-token-ttl-seconds" not in headers:
            return 400, b"Bad Request"
        return 200, TOKEN.encode()
    if method != "GET":
        return 405, b"Method Not Allowed"
    token = headers.get("x-aws-ec2-metadata-token")
    if not (ask.v1_allowed and token is None) and not ask.v1_only and token != TOKEN:
        return 401, b"Unauthorized"
    doc = {"instanceId": i.instance_id, "availabilityZone": i.zone, "region": i.region,
           "accountId": "123456789012", "instanceType": "t3.micro"}
    items = {
        "/latest/user-data": ask.user_data_reply(),
        "/latest/dynamic/instance-identity/document":
            (200, json.dumps(doc, indent=2).replace('":', '" :').encode()),
        "/latest/meta-data/instance-id": (200, i.instance_id.encode()),
        "/latest/meta-data/local-hostname": (200, i.hostname.encode()),
        "/latest/meta-data/placement/availability-zone": (200, i.zone.encode()),
    }
    for n, key in enumerate(i.keys):
        items[f"/latest/meta-data/public-keys/{n}/openssh-key"] = (200, key.encode() + b"\n")
    for nic in i.nics:
        for name, value in nic.items():
            items[f"/latest/meta-data/network/interfaces/macs/{nic['mac']}/{name}"] = \
                (200, value.encode())
    if ask.complete:
        items.update(_rest())
    return lookup(items, path)


def _rest() -> dict[str, Reply]:
    """The rest of an instance's EC2 meta-data tree (``complete``): the
    keys amiconfig's getters read, with values as EC2 gives them."""
    meta = "/latest/meta-data/"
    items = {meta + k: (200, v.encode()) for k, v in {
        "ami-id": "ami-0a1b2c3d4e5f60718", "ami-launch-index": "0",
        "ami-manifest-path": "(unknown)", "instance-type": "t3.micro",
        "local-ipv4": "169.254.0.15", "public-hostname": "ec2-198-51-100-7.compute.example",
        "public-ipv4": "198.51.100.7", "reservation-id": "r-0123456789abcdef0",
        "security-groups": "default", "block-device-mapping/ami": "/dev/xvda",
        "block-device-mapping/root": "/dev/xvda"}.items()}
    return items

