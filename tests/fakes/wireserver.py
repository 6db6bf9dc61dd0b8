"""A fake Azure wireserver that records the health report, for tests.

It answers what the real one does for provisioning: ``GET
/machine/?comp=goalstate`` gives the goal state XML (incarnation, container
id, role instance id), ``POST /machine?comp=health`` takes a ``<Health>``
document (200). Both need
``x-ms-version`` (400 without it, as the real service); the report needs a
``text/xml`` body. Every request is recorded; ``reports`` holds the bodies
of the health posts, ``parsed()`` their fields.

From pytest::

    with Wireserver() as ws:
        azure_ready.report_ready(ws.endpoint)
        assert ws.parsed()[0]["State"] == "Ready"

From the shell (inside a network namespace of the test's own, for the real
address; each report is also written to DIR/report-N.xml)::

    python -m tests.fakes.wireserver --host 168.63.129.16 --port 80 --record DIR
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import urlsplit

from tests.fakes.metadata import Request, _Server

CONTAINER_ID = "a1b2c3d4-0000-4e5f-8a9b-0123456789ab"
INSTANCE_ID = "5c5b8e1a-3e0d-4d6b-9b9a-0123456789ab.cernvm-vm1"
INCARNATION = "1"

GOAL_STATE = f"""\
<?xml version="1.0" encoding="utf-8"?>
<GoalState xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" \
xsi:noNamespaceSchemaLocation="goalstate10.xsd">
  <Version>2012-11-30</Version>
  <Incarnation>{INCARNATION}</Incarnation>
  <Machine>
    <ExpectedState>Started</ExpectedState>
    <StopRolesDeadlineHint>300000</StopRolesDeadlineHint>
    <LBProbePorts>
      <Port>16001</Port>
    </LBProbePorts>
    <ExpectHealthReport>FALSE</ExpectHealthReport>
  </Machine>
  <Container>
    <ContainerId>{CONTAINER_ID}</ContainerId>
    <RoleInstanceList>
      <RoleInstance>
        <InstanceId>{INSTANCE_ID}</InstanceId>
        <State>Started</State>
        <Configuration>
          <HostingEnvironmentConfig>http://168.63.129.16:80/machine/{CONTAINER_ID}/\
{INSTANCE_ID}?comp=config&amp;type=hostingEnvironmentConfig&amp;incarnation=1\
</HostingEnvironmentConfig>
          <SharedConfig>http://168.63.129.16:80/machine/{CONTAINER_ID}/{INSTANCE_ID}\
?comp=config&amp;type=sharedConfig&amp;incarnation=1</SharedConfig>
          <Certificates>http://168.63.129.16:80/machine/{CONTAINER_ID}/{INSTANCE_ID}\
?comp=certificates&amp;incarnation=1</Certificates>
          <ConfigName>{INSTANCE_ID}.0.{INSTANCE_ID}.0.cernvm-vm1.1.xml</ConfigName>
        </Configuration>
      </RoleInstance>
    </RoleInstanceList>
  </Container>
</GoalState>
""".encode()


class Wireserver:
    """The fake on HOST:PORT (127.0.0.1, any free port by default)."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, lifetime: float = 120.0,
                 goal_state: bytes = GOAL_STATE, health_status: int = 200,
                 delay: float = 0.0, record: Path | None = None) -> None:
        self.goal_state = goal_state
        self.health_status = health_status
        self.delay = delay
        self.record = record
        self.requests: list[Request] = []
        self.reports: list[bytes] = []
        self._lock = threading.Lock()
        self._host, self._port, self.lifetime = host, port, lifetime
        self._server: _Server | None = None
        self.endpoint = ""

    def _answer(self, method: str, path: str, headers: dict[str, str],
                body: bytes) -> tuple[int, bytes]:
        if headers.get("x-ms-version") != "2012-11-30":
            return 400, b"Missing or unsupported x-ms-version header"
        url = urlsplit(path)
        if method == "GET" and url.path in ("/machine/", "/machine") \
                and url.query == "comp=goalstate":
            return 200, self.goal_state
        if method == "POST" and url.path == "/machine" and url.query == "comp=health":
            if not headers.get("content-type", "").startswith("text/xml"):
                return 415, b"Unsupported Media Type"
            with self._lock:
                self.reports.append(body)
                if self.record is not None:
                    (self.record / f"report-{len(self.reports)}.xml").write_bytes(body)
            return self.health_status, b""
        return 404, b"Not Found"

    def __enter__(self) -> Wireserver:
        service = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                headers = {k.lower(): v for k, v in self.headers.items()}
                length = int(headers.get("content-length") or 0)
                body = self.rfile.read(min(length, 1 << 20)) if length else b""
                if service.delay:
                    time.sleep(service.delay)
                status, answer = service._answer(self.command, self.path, headers, body)
                with service._lock:
                    service.requests.append(Request(self.command, self.path, headers, status))
                self.send_response(status)
                self.send_header("Content-Type", "text/xml; charset=utf-8")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            do_GET = do_POST = _serve

            def log_message(self, *_args: object) -> None:
                """Quiet: tests read ``requests``."""

        self._server = _Server((self._host, self._port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                         daemon=True).start()
        timer = threading.Timer(self.lifetime, self._server.shutdown)
        timer.daemon = True
        timer.start()
        self.endpoint = f"{self._host}:{self._server.server_address[1]}"
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def parsed(self) -> list[dict[str, str]]:
        """Each report's GoalStateIncarnation, ContainerId, InstanceId, State."""
        return [parse_report(r) for r in self.reports]


def parse_report(body: bytes) -> dict[str, str]:
    """The fields of one health report (an error if it is not the real shape)."""
    root = ET.fromstring(body)
    assert root.tag == "Health", root.tag
    role = "./Container/RoleInstanceList/Role"
    return {
        "GoalStateIncarnation": root.findtext("./GoalStateIncarnation") or "",
        "ContainerId": root.findtext("./Container/ContainerId") or "",
        "InstanceId": root.findtext(f"{role}/InstanceId") or "",
        "State": root.findtext(f"{role}/Health/State") or "",
    }


def main(argv: list[str] | None = None) -> int:
    """Serve until the lifetime ends; reports go to --record DIR."""
    ap = argparse.ArgumentParser(prog="python -m tests.fakes.wireserver",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1",
                    help="address (another than 127.0.0.1 only inside a private network "
                         "namespace)")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--record", type=Path, required=True, help="directory for the reports")
    ap.add_argument("--lifetime", type=float, default=300.0)
    args = ap.parse_args(argv)
    args.record.mkdir(parents=True, exist_ok=True)
    with Wireserver(host=args.host, port=args.port, lifetime=args.lifetime,
                    record=args.record) as ws:
        (args.record / "ready").write_text(ws.endpoint + "\n")
        print(f"serving the wireserver on {ws.endpoint}", flush=True)
        threading.Event().wait(args.lifetime)
    return 0


if __name__ == "__main__":
    sys.exit(main())
