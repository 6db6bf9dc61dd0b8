"""Loopback metadata services that behave like the real ones, for tests.

Each fake answers the paths the microboot stage asks for, enforces what the
real service enforces (EC2's IMDSv2 token, GCE's ``Metadata-Flavor``
header, Azure's ``Metadata: true``) and records every request, so a test
can count them. ``silent`` accepts connections and never answers. Every
server stops by itself after ``lifetime`` seconds, so a forgotten one never
outlives the test run.

From pytest::

    with MetadataService("EC2", user_data=b"hello") as svc:
        run(..., env={"CERNVM_METADATA_URL": svc.url})
        assert svc.count("GET", "/latest/user-data") == 1

From the shell (the whole-VM tests)::

    python -m tests.fakes.metadata --provider EC2 --user-data FILE --port 8080
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import signal
import socket
import socketserver
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

PROVIDERS = ("EC2", "GCE", "Azure", "OpenStack", "CloudStack", "silent")
TOKEN = "AQAEAFakeTokenForTests=="


@dataclass
class Request:
    """One request as the fake saw it."""

    method: str
    path: str
    headers: dict[str, str]
    status: int = 0
    #: the fault that answered it ('' none)
    fault: str = ""
    #: bytes of the answer's body
    size: int = 0


#: EC2's per-interface metadata of one network interface, key -> answer, as
#: IMDS gives it under ``meta-data/network/interfaces/macs/<mac>/`` (several
#: values: one a line, no line end after the last)
Nic = dict[str, str]


def ec2_nic(mac: str, number: int, ipv4s: list[str], subnet: str, *, card: int | None = None,
            ipv6s: list[str] | None = None, subnet6: str | None = None) -> Nic:
    """One interface's tree as a VPC instance's IMDS has it (a key with no value
    is absent: ``ipv6s`` without IPv6, ``network-card`` on one-card types)."""
    nic = {"mac": mac, "device-number": str(number),
           "interface-id": f"eni-0{number}1a2b3c4d5e6f7a8b", "owner-id": "123456789012",
           "local-hostname": f"ip-{ipv4s[0].replace('.', '-')}.eu-west-1.compute.internal",
           "local-ipv4s": "\n".join(ipv4s), "subnet-id": f"subnet-0{number}a1b2c3d4e5f60718",
           "subnet-ipv4-cidr-block": subnet, "vpc-id": "vpc-0a1b2c3d4e5f60718",
           "vpc-ipv4-cidr-block": "172.31.0.0/16", "security-group-ids": "sg-0123456789abcdef0",
           "security-groups": "default"}
    if card is not None:
        nic["network-card"] = str(card)
    if ipv6s:
        nic["ipv6s"] = "\n".join(ipv6s)
    if subnet6:
        nic["subnet-ipv6-cidr-blocks"] = subnet6
    return nic


#: one interface, at qemu's default MAC (the whole-VM boots' NIC): what every
#: VPC instance has
EC2_ONE_NIC = [ec2_nic("52:54:00:12:34:56", 0, ["172.31.5.10"], "172.31.0.0/20")]
#: two interfaces on one card: the primary with a secondary IPv4 address and
#: IPv6, a second one (device 1) in another subnet
EC2_TWO_NICS = [
    ec2_nic("06:5f:3a:9b:10:01", 0, ["172.31.10.5", "172.31.10.6"], "172.31.0.0/20", card=0,
            ipv6s=["2a05:d018:1:200::5"], subnet6="2a05:d018:1:200::/64"),
    ec2_nic("06:5f:3a:9b:10:02", 1, ["172.31.20.7"], "172.31.16.0/20", card=0),
]

#: an OpenStack network_data.json as Nova writes it (metadata service and
#: config drive): two ports, the first by DHCP, the second static with a
#: route and its own DNS server
OPENSTACK_NETWORK_DATA: dict = {
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
OPENSTACK_ONE_PORT: dict = {
    "links": [{"id": "tap52540012-34", "vif_id": "52540012-3456-4a7b-8c9d-0e1f2a3b4c5d",
               "type": "ovs", "mtu": 1500, "ethernet_mac_address": "52:54:00:12:34:56"}],
    "networks": [{"id": "network0", "type": "ipv4_dhcp", "link": "tap52540012-34",
                  "network_id": "4c1e6a2b-8f3d-4e5a-9b7c-1d2e3f4a5b6c"}],
    "services": [],
}


@dataclass
class Instance:
    """What the fake instance reports besides the user-data."""

    instance_id: str = "i-0123456789abcdef0"
    hostname: str = "vm1.example.org"
    keys: list[str] = field(default_factory=lambda: ["ssh-ed25519 AAAAC3Nza test@example"])
    zone: str = "eu-west-1a"
    region: str = "eu-west-1"
    #: GCE: further instance attributes (vcycle's cvm-user-data, ...)
    attributes: dict[str, str] = field(default_factory=dict)
    #: EC2: the network interfaces (``[]``: none listed, 404)
    nics: list[Nic] = field(default_factory=lambda: [dict(n) for n in EC2_ONE_NIC])
    #: OpenStack: network_data.json (None: 404, as a cloud without Neutron's)
    network_data: dict | None = field(default_factory=lambda: OPENSTACK_ONE_PORT)
    #: OpenStack: vendor_data.json and vendor_data2.json as nova serves them
    #: (``{}`` where the cloud configures none; None: 404, as from a nova
    #: before Newton, which has no vendor_data2.json)
    vendor_data: bytes | None = b"{}"
    vendor_data2: bytes | None = b"{}"


#: the dated versions each service keeps besides ``latest`` (what cloud-init's
#: own readers ask for first); the same data as ``latest`` here
VERSIONS: dict[str, tuple[str, ...]] = {
    "EC2": ("2007-12-15", "2009-04-04", "2016-04-19", "2016-09-02", "2018-09-24",
            "2021-03-23"),
    "OpenStack": ("2012-08-10", "2013-10-17"), "CloudStack": ()}
#: the EC2 versions Nova's metadata service keeps beside ``latest``
#: (``complete`` OpenStack only)
NOVA_EC2_VERSIONS = ("1.0", "2007-01-19", "2007-03-01", "2007-08-29", "2007-10-10",
                     "2007-12-15", "2008-02-01", "2008-09-01", "2009-04-04")

Reply = tuple[int, bytes]
NOT_FOUND: Reply = (404, b"Not Found")


@dataclass
class Broken:
    """A broken 200 answer for ``answers``, bounded in time and bytes so the
    fake never runs forever: ``short`` announces ``size`` bytes and closes
    after ``sent``; ``drip`` announces ``size`` and sends one byte a second;
    ``endless`` sends data without a length (``chunked``: in chunks), until
    ``limit`` bytes or ``seconds`` have gone or the client has hung up."""

    kind: str
    size: int = 1000
    sent: int = 10
    limit: int = 256 * 1024 * 1024
    seconds: float = 10.0

    def serve(self, handler: BaseHTTPRequestHandler) -> None:
        """Write the answer on HANDLER's connection, then close it."""
        out = handler.wfile
        handler.close_connection = True
        start = time.monotonic()
        try:
            handler.send_response(200)
            if self.kind in ("short", "drip"):
                handler.send_header("Content-Length", str(self.size))
            elif self.kind == "chunked":
                handler.send_header("Transfer-Encoding", "chunked")
            handler.end_headers()
            if self.kind == "short":
                out.write(b"x" * self.sent)
                return
            sent, block = 0, b"y" * 65536
            while sent < min(self.limit, self.size if self.kind == "drip" else self.limit) \
                    and time.monotonic() - start < self.seconds:
                if self.kind == "drip":
                    out.write(b"d")
                    out.flush()
                    sent += 1
                    time.sleep(1)
                elif self.kind == "chunked":
                    out.write(b"%x\r\n%s\r\n" % (len(block), block))
                    sent += len(block)
                else:
                    out.write(block)
                    sent += len(block)
        except OSError:
            pass  # the client hung up: what a capped client does


#: fault kinds of ``Fault``: see its doc
FAULTS = ("503", "429", "refuse", "silent", "drop", "slow")


@dataclass
class Fault:
    """A whole service's fault, as a cloud under load shows it: ``503`` or
    ``429`` (Service Unavailable, Too Many Requests, with ``Retry-After``) for
    every request; ``refuse``: nothing listens (connections refused);
    ``silent``: connections accepted, never answered; ``drop``: the body's
    length announced, half of it sent, the connection closed; ``slow``: the
    body sent one byte a second. For the first ``seconds`` after the first
    request (``refuse``: after the service started), then the service
    answers as usual; ``seconds`` None: for ever. ``parse("503:20")``."""

    kind: str
    seconds: float | None = None

    @classmethod
    def parse(cls, text: str) -> Fault:
        """``KIND`` or ``KIND:SECONDS``."""
        kind, _, secs = text.partition(":")
        if kind not in FAULTS:
            raise ValueError(f"unknown fault {kind!r}; one of {', '.join(FAULTS)}")
        return cls(kind, float(secs) if secs else None)

    def active(self, since: float) -> bool:
        """Whether the fault still holds SINCE seconds after its clock started."""
        return self.seconds is None or since < self.seconds

    def serve(self, handler: BaseHTTPRequestHandler, reply: Reply, stop: threading.Event) -> None:
        """Answer REPLY on HANDLER's connection the faulty way (not ``refuse``)."""
        handler.close_connection = True
        status, body = reply
        try:
            if self.kind in ("503", "429"):
                text = b"Service Unavailable" if self.kind == "503" else b"Too Many Requests"
                handler.send_response(int(self.kind))
                handler.send_header("Retry-After", "1")
                handler.send_header("Content-Length", str(len(text)))
                handler.end_headers()
                handler.wfile.write(text)
                return
            if self.kind == "silent":
                stop.wait(600)  # until the service stops; the client gives up first
                return
            handler.send_response(status)
            handler.send_header("Content-Type", "text/plain")
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            if self.kind == "drop":
                handler.wfile.write(body[: len(body) // 2])
                return
            for byte in body:  # slow
                handler.wfile.write(bytes([byte]))
                handler.wfile.flush()
                if stop.wait(1):
                    return
        except OSError:
            pass  # the client hung up

class _Routes:
    """The answers of one provider: ``answer(method, path, headers) -> Reply``."""

    def __init__(self, provider: str, user_data: bytes | None, inst: Instance,
                 imds_v1_only: bool = False, gce_encoding: str | None = None,
                 imds_optional: bool = False, complete: bool = False) -> None:
        self.provider = provider
        self.user_data = user_data
        self.inst = inst
        self.v1_only = imds_v1_only
        self.gce_encoding = gce_encoding
        self.v1_allowed = imds_v1_only or imds_optional
        self.complete = complete

    def answer(self, method: str, path: str, headers: dict[str, str]) -> Reply:
        handler: Callable[[str, str, dict[str, str]], Reply] = getattr(
            self, "_" + self.provider.lower())
        # "a//b" is "a/b" to these services (amiconfig.sh asks for ".../2007-12-15//user-data")
        path = re.sub("//+", "/", path)
        if self.provider in ("EC2", "OpenStack", "CloudStack"):
            path = self._versioned(path)
            if path is None:
                return NOT_FOUND
        return handler(method, path, headers)

    def _versioned(self, path: str) -> str | None:
        """A dated version's path as its ``latest`` one (the same data here)."""
        m = re.match(r"^(/openstack)?/(\d{4}-\d{2}-\d{2})(/.*)?$", path)
        if m is None:
            return path
        versions = VERSIONS[self.provider]
        if self.provider == "OpenStack" and not m.group(1):
            versions = NOVA_EC2_VERSIONS if self.complete else ()
        if m.group(2) not in versions:
            return None
        return f"{m.group(1) or ''}/latest{m.group(3) or ''}"

    @staticmethod
    def _lookup(items: dict[str, Reply], path: str) -> Reply:
        """An item, or a directory's listing (children a line, "/" after a directory)."""
        if path in items:
            return items[path]
        if not path.endswith("/"):
            path += "/"  # a directory's name lists it too
        children: list[str] = []
        for key in items:
            if key.startswith(path) and items[key][0] == 200:
                rest = key[len(path):]
                child = rest.split("/", 1)[0] + ("/" if "/" in rest else "")
                if child not in children:
                    children.append(child)
        return (200, "\n".join(children).encode()) if children else NOT_FOUND

    def _ud(self) -> Reply:
        return NOT_FOUND if self.user_data is None else (200, self.user_data)

    def _ec2(self, method: str, path: str, headers: dict[str, str]) -> Reply:
        i = self.inst
        if path == "/latest/api/token":
            if self.v1_only:
                return 405, b"Method Not Allowed"
            if method != "PUT" or "x-aws-ec2-metadata-token-ttl-seconds" not in headers:
                return 400, b"Bad Request"
            return 200, TOKEN.encode()
        if method != "GET":
            return 405, b"Method Not Allowed"
        token = headers.get("x-aws-ec2-metadata-token")
        if not (self.v1_allowed and token is None) and not self.v1_only and token != TOKEN:
            return 401, b"Unauthorized"
        doc = {"instanceId": i.instance_id, "availabilityZone": i.zone, "region": i.region,
               "accountId": "123456789012", "instanceType": "t3.micro"}
        items = {
            "/latest/user-data": self._ud(),
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
        if self.complete:
            items.update(self._ec2_rest())
        return self._lookup(items, path)

    def _ec2_rest(self) -> dict[str, Reply]:
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

    def _gce(self, method: str, path: str, headers: dict[str, str]) -> Reply:
        # the legacy header is still taken by the v1 tree
        if headers.get("metadata-flavor") != "Google" and \
                headers.get("x-google-metadata-request", "").lower() != "true":
            return 403, b"Missing Metadata-Flavor:Google header."
        i = self.inst
        base = "/computeMetadata/v1/instance"
        items = {
            f"{base}/attributes/user-data": self._ud(),
            f"{base}/id": (200, b"4520031799277581759"),
            f"{base}/hostname": (200, i.hostname.encode()),
            f"{base}/zone": (200, f"projects/123456/zones/{i.zone}".encode()),
            f"{base}/attributes/ssh-keys":
                (200, "".join(f"cernvm:{k}\n" for k in i.keys).encode()),
        }
        if self.gce_encoding:
            items[f"{base}/attributes/user-data-encoding"] = (200, self.gce_encoding.encode())
        for name, value in i.attributes.items():
            items[f"{base}/attributes/{name}"] = (200, value.encode())
        url = urlsplit(path)
        if "recursive=true" in url.query.lower():
            # A directory read whole, as JSON (what GCE gives for ?recursive=true).
            attrs = {k.rsplit("/", 1)[1]: v[1].decode("utf-8", "replace")
                     for k, v in items.items() if "/attributes/" in k and v[0] == 200}
            docs = {
                f"{base}/attributes": attrs,
                f"{base}": {"attributes": attrs, "hostname": i.hostname,
                            "id": 4520031799277581759,
                            "zone": f"projects/123456/zones/{i.zone}"},
                "/computeMetadata/v1/project/attributes": {},
            }
            doc = docs.get(url.path.rstrip("/"))
            return NOT_FOUND if doc is None else (200, json.dumps(doc, sort_keys=True).encode())
        return items.get(path, NOT_FOUND)

    def _azure(self, method: str, path: str, headers: dict[str, str]) -> Reply:
        if headers.get("metadata") != "true":
            return 400, b'{"error": "Bad request. Required metadata header not specified"}'
        i = self.inst
        url = urlsplit(path)
        if "api-version" not in url.query:
            return 400, b'{"error": "Bad request. api-version was not specified"}'
        base = "/metadata/instance/compute"
        ud = base64.b64encode(self.user_data or b"")
        items = {
            f"{base}/userData": (200, ud),
            f"{base}/vmId": (200, b"5c5b8e1a-3e0d-4d6b-9b9a-0123456789ab"),
            f"{base}/name": (200, i.hostname.split(".")[0].encode()),
            f"{base}/location": (200, i.region.encode()),
            f"{base}/zone": (200, b"1"),
        }
        return items.get(url.path, NOT_FOUND)

    def _openstack(self, method: str, path: str, headers: dict[str, str]) -> Reply:
        i = self.inst
        meta = {"uuid": "d8e02d56-2648-49a3-bf97-6be8f1204f38", "hostname": i.hostname,
                "name": "vm1", "availability_zone": "nova", "launch_index": 0,
                "public_keys": {f"key{n}": k + "\n" for n, k in enumerate(i.keys)}}
        items = {
            "/openstack/latest/user_data": self._ud(),
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
            return 200, "\n".join([*VERSIONS["OpenStack"], "latest"]).encode()
        if self.complete:
            # Nova's EC2-compatible tree beside its own
            items.update({
                "/latest/user-data": self._ud(),
                "/latest/meta-data/instance-id": (200, b"i-00000042"),
                "/latest/meta-data/local-hostname": (200, i.hostname.encode()),
                "/latest/meta-data/ami-id": (200, b"ami-00000007"),
                "/latest/meta-data/ami-launch-index": (200, b"0"),
                "/latest/meta-data/placement/availability-zone": (200, b"nova"),
                **{f"/latest/meta-data/public-keys/{n}/openssh-key": (200, k.encode() + b"\n")
                   for n, k in enumerate(i.keys)},
            })
        return self._lookup(items, path)

    def _cloudstack(self, method: str, path: str, headers: dict[str, str]) -> Reply:
        i = self.inst
        items = {
            "/latest/user-data": self._ud(),
            "/latest/meta-data/instance-id": (200, b"2f5e6b3c-4a5b-4c6d-8e9f-0a1b2c3d4e5f"),
            "/latest/meta-data/local-hostname": (200, i.hostname.split(".")[0].encode()),
            "/latest/meta-data/public-keys": (200, "\n".join(i.keys).encode()),
            "/latest/meta-data/availability-zone": (200, b"zone1"),
        }
        return self._lookup(items, path)


class _Server(ThreadingHTTPServer):
    """An HTTP server that never asks DNS for its own name (http.server does,
    and in a namespace whose DNS never answers that takes seconds)."""

    #: connections accepted (a probe connects and sends nothing)
    connections = 0

    def verify_request(self, request, client_address) -> bool:
        self.connections += 1
        return True

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)


class MetadataService:
    """A fake metadata service on 127.0.0.1, run in a thread.

    ``url`` is its base URL, ``requests`` what it was asked, in order.
    ``imds_optional``: EC2 takes requests with a token and without one (its
    ``HttpTokens: optional``), where the default takes only a token's and
    ``imds_v1_only`` none. ``complete``: the whole tree the real service has
    beside what the microboot stage reads (EC2: every meta-data key
    amiconfig's getters read; OpenStack: Nova's EC2-compatible tree).
    A context manager: the server starts on enter and stops on exit, or by
    itself after ``lifetime`` seconds, whichever comes first.
    """

    def __init__(self, provider: str, user_data: bytes | None = None, *,
                 instance: Instance | None = None, port: int = 0, host: str = "127.0.0.1",
                 lifetime: float = 120.0, imds_v1_only: bool = False,
                 gce_encoding: str | None = None,
                 answers: dict[str, Reply | Broken] | None = None,
                 fault: Fault | None = None, imds_optional: bool = False,
                 complete: bool = False) -> None:
        if provider not in PROVIDERS:
            raise ValueError(f"unknown provider {provider!r}; one of {', '.join(PROVIDERS)}")
        self.provider = provider
        self.requests: list[Request] = []
        self.lifetime = lifetime
        self._lock = threading.Lock()
        self._routes = _Routes(provider, user_data, instance or Instance(),
                               imds_v1_only, gce_encoding, imds_optional, complete)
        #: answers that replace the provider's own, by path with its query
        #: (hostile or broken services in tests): (status, body) or Broken
        self.answers = dict(answers or {})
        #: the service's fault (None: it works), its clock started by the
        #: first request (``refuse``: by the start)
        self.fault = fault
        self._fault_start: float | None = None
        self._port = port
        self._host = host
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._server: _Server | None = None
        self._serving = False
        self._sock: socket.socket | None = None
        self._connections_seen = 0
        self.url = ""

    # -- life cycle ------------------------------------------------------
    def start(self) -> MetadataService:
        """Listen and serve in the background; returns self."""
        if self.provider == "silent":
            self._sock = socket.create_server((self._host, self._port))
            self._sock.settimeout(0.2)
            port = self._sock.getsockname()[1]
            self._spawn(self._hold)
        else:
            refuse = self.fault is not None and self.fault.kind == "refuse"
            self._server = _Server((self._host, self._port), self._handler(),
                                   bind_and_activate=not refuse)
            self._server.daemon_threads = True
            if refuse:  # bound, not listening: connections refused
                self._server.server_bind()
                self._fault_start = time.monotonic()
            port = self._server.server_address[1]
            self._serving = not refuse  # shutdown() waits for a serve_forever
            self._spawn(self._serve_after_refusing if refuse else
                        lambda: self._server.serve_forever(poll_interval=0.1))
        self.url = f"http://{self._host}:{port}"
        self._spawn(self._expire)
        return self

    def stop(self) -> None:
        """Stop serving and close every connection."""
        self._stop.set()
        if self._server is not None:
            self._connections_seen = self._server.connections
            if self._serving:
                self._server.shutdown()
            self._server.server_close()
            self._server = None
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(timeout=5)

    def __enter__(self) -> MetadataService:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _spawn(self, target: Callable[[], None]) -> None:
        t = threading.Thread(target=target, daemon=True)
        t.start()
        self._threads.append(t)

    def _serve_after_refusing(self) -> None:
        """``refuse``: listen once the fault's time is over, then serve."""
        assert self.fault is not None and self._server is not None
        if self.fault.seconds is None or self._stop.wait(self.fault.seconds):
            return  # refusing for ever, or stopped before
        self._server.server_activate()
        self._serving = True
        self._server.serve_forever(poll_interval=0.1)

    def faulty(self) -> bool:
        """Whether the fault holds for a request now (its clock starts with the first)."""
        if self.fault is None or self.fault.kind == "refuse":
            return False
        with self._lock:
            if self._fault_start is None:
                self._fault_start = time.monotonic()
            return self.fault.active(time.monotonic() - self._fault_start)

    def _expire(self) -> None:
        if not self._stop.wait(self.lifetime) and self._server is not None and self._serving:
            self._server.shutdown()
        self._stop.set()

    def _hold(self) -> None:
        """``silent``: accept, record, keep the connection open, never answer."""
        held = []
        assert self._sock is not None
        with self._sock:
            while not self._stop.is_set():
                try:
                    conn, _ = self._sock.accept()
                except socket.timeout:
                    continue
                held.append(conn)
                self._record(Request("CONNECT", "", {}))
        for conn in held:
            conn.close()

    # -- requests --------------------------------------------------------
    def _record(self, req: Request) -> None:
        with self._lock:
            self.requests.append(req)

    @property
    def connections(self) -> int:
        """TCP connections accepted so far (``silent``: the CONNECT records)."""
        if self._server is not None:
            return self._server.connections
        return self._connections_seen

    def count(self, method: str | None = None, path: str | None = None) -> int:
        """How many requests matched METHOD and PATH (None: any)."""
        with self._lock:
            return sum(1 for r in self.requests
                       if (method is None or r.method == method)
                       and (path is None or urlsplit(r.path).path == path))

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        service = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                headers = {k.lower(): v for k, v in self.headers.items()}
                req = Request(self.command, self.path, headers)
                reply = service.answers.get(self.path)
                if isinstance(reply, Broken):
                    req.status = 200
                    service._record(req)
                    reply.serve(self)
                    return
                if reply is None:
                    reply = service._routes.answer(self.command, self.path, headers)
                if service.faulty():
                    assert service.fault is not None
                    kind = service.fault.kind
                    req.status = int(kind) if kind.isdigit() else reply[0]
                    req.fault = kind
                    service._record(req)
                    service.fault.serve(self, reply, service._stop)
                    return
                status, body = reply
                req.status = status
                req.size = len(body)
                service._record(req)
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_PUT = do_POST = _serve

            def log_message(self, *_args: object) -> None:
                """Quiet: tests read ``service.requests`` instead."""

        return Handler


def main(argv: list[str] | None = None) -> int:
    """Serve one fake on 127.0.0.1 until its lifetime ends or it is interrupted."""
    ap = argparse.ArgumentParser(prog="python -m tests.fakes.metadata",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--provider", required=True, choices=PROVIDERS)
    ap.add_argument("--user-data", type=Path, help="file served as the user-data (absent: 404)")
    ap.add_argument("--port", type=int, default=0, help="port (0: any free one)")
    ap.add_argument("--host", default="127.0.0.1",
                    help="address to listen on (default 127.0.0.1; another one only inside "
                         "a private network namespace)")
    ap.add_argument("--lifetime", type=float, default=600.0, help="seconds before it stops itself")
    ap.add_argument("--imds-v1-only", action="store_true", help="EC2: refuse the token PUT (405)")
    ap.add_argument("--gce-encoding", help="GCE: the user-data-encoding attribute (e.g. base64)")
    ap.add_argument("--vendor-data", type=Path,
                    help="OpenStack: file served as vendor_data.json (default {})")
    ap.add_argument("--vendor-data2", type=Path,
                    help="OpenStack: file served as vendor_data2.json (default {})")
    ap.add_argument("--imds-optional", action="store_true",
                    help="EC2: take requests with a token and without one")
    ap.add_argument("--complete", action="store_true",
                    help="the rest of the real service's tree (amiconfig's keys, Nova's EC2 tree)")
    ap.add_argument("--fault", type=Fault.parse,
                    help="KIND[:SECONDS]: " + ", ".join(FAULTS) + " (see Fault)")
    args = ap.parse_args(argv)
    data = args.user_data.read_bytes() if args.user_data else None
    inst = Instance()
    if args.vendor_data:
        inst.vendor_data = args.vendor_data.read_bytes()
    if args.vendor_data2:
        inst.vendor_data2 = args.vendor_data2.read_bytes()
    svc = MetadataService(args.provider, data, instance=inst, port=args.port, host=args.host,
                          lifetime=args.lifetime,
                          imds_v1_only=args.imds_v1_only, gce_encoding=args.gce_encoding,
                          fault=args.fault, imds_optional=args.imds_optional,
                          complete=args.complete)
    with svc:
        print(f"serving {args.provider} on {svc.url} for {args.lifetime:g} s", flush=True)
        seen = 0
        signal.signal(signal.SIGTERM, lambda *_: svc._stop.set())
        try:
            while not svc._stop.wait(0.2):
                for r in svc.requests[seen:]:
                    print(f"{r.method} {r.path} {r.status}{' ' + r.fault if r.fault else ''}",
                          flush=True)
                seen = len(svc.requests)
        except KeyboardInterrupt:
            pass
        for r in svc.requests[seen:]:
            print(f"{r.method} {r.path} {r.status}", flush=True)
    print(f"stopped after {len(svc.requests)} requests", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
