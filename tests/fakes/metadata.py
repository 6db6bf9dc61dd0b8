"""Loopback metadata services that behave like the real ones, for tests.

This module serves; what each cloud answers is its own module beside it
(``ec2.py``, ``gce.py``, ``azure.py``, ``openstack.py``, ``cloudstack.py``:
its paths, its rules, its DMI strings), used by the busybox, datasource and
whole-VM tests alike. Each fake answers the paths the microboot stage asks for, enforces what the
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
from types import ModuleType
from typing import Callable
from urllib.parse import urlsplit

from tests.fakes import azure, cloudstack, ec2, gce, openstack
from tests.fakes.answers import NOT_FOUND, Reply

#: each cloud's fake, by provider name: a module with ``answer(routes,
#: method, path, headers)``, its ``DMI``, and ``VERSIONS`` if its tree has
#: dated versions besides ``latest``
FAKES = {"EC2": ec2, "GCE": gce, "Azure": azure, "OpenStack": openstack,
         "CloudStack": cloudstack}
#: what ``MetadataService`` serves: the clouds, and a service that never answers
PROVIDERS = (*FAKES, "silent")


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
    nics: list[ec2.Nic] = field(default_factory=lambda: [dict(n) for n in ec2.ONE_NIC])
    #: OpenStack: network_data.json (None: 404, as a cloud without Neutron's)
    network_data: dict | None = field(default_factory=lambda: openstack.ONE_PORT)
    #: OpenStack: vendor_data.json and vendor_data2.json as nova serves them
    #: (``{}`` where the cloud configures none; None: 404, as from a nova
    #: before Newton, which has no vendor_data2.json)
    vendor_data: bytes | None = b"{}"
    vendor_data2: bytes | None = b"{}"


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

class Routes:
    """One service's state, handed to its cloud's ``answer``: the user-data,
    the instance, and the options of the service."""

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
        """The cloud's answer to one request."""
        fake = FAKES[self.provider]
        # "a//b" is "a/b" to these services (amiconfig.sh asks for ".../2007-12-15//user-data")
        path = re.sub("//+", "/", path)
        if hasattr(fake, "VERSIONS"):
            path = self._versioned(fake, path)
            if path is None:
                return NOT_FOUND
        return fake.answer(self, method, path, headers)

    def _versioned(self, fake: ModuleType, path: str) -> str | None:
        """A dated version's path as its ``latest`` one (the same data here)."""
        m = re.match(r"^(/openstack)?/(\d{4}-\d{2}-\d{2})(/.*)?$", path)
        if m is None:
            return path
        versions = fake.VERSIONS
        if hasattr(fake, "EC2_TREE_VERSIONS") and not m.group(1):
            versions = fake.EC2_TREE_VERSIONS if self.complete else ()
        if m.group(2) not in versions:
            return None
        return f"{m.group(1) or ''}/latest{m.group(3) or ''}"

    def user_data_reply(self) -> Reply:
        """The user-data, or 404 where the instance has none."""
        return NOT_FOUND if self.user_data is None else (200, self.user_data)


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
        self._routes = Routes(provider, user_data, instance or Instance(),
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
