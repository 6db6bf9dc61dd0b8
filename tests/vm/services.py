"""A minimal loopback HTTP service for the VM plumbing checks.

The per-provider metadata services (EC2, GCE, OpenStack, CloudStack) are
``tests/fakes/metadata.py``; this one only answers fixed paths and logs the
requests, which is all the plumbing tests need. Same shape as the fakes (a
context manager with ``port`` and ``requests``), so a case can switch.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class Request:
    """One request as the service saw it."""

    method: str
    path: str
    headers: dict[str, str]


@dataclass
class Service:
    """A running service: its loopback port and the requests it got."""

    port: int
    requests: list[Request] = field(default_factory=list)


@contextmanager
def serve(routes: Mapping[str, bytes], lifetime: float = 300.0) -> Iterator[Service]:
    """Serve ``routes`` (path -> body; others 404) on 127.0.0.1 until exit.

    The server stops by itself after ``lifetime`` seconds whatever happens.
    """
    lock = threading.Lock()
    svc = Service(port=0)

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            with lock:
                svc.requests.append(Request(self.command, self.path, dict(self.headers)))
            body = routes.get(self.path)
            self.send_response(200 if body is not None else 404)
            body = body if body is not None else b"not found\n"
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_PUT = _answer

        def log_message(self, format: str, *args: object) -> None:
            """Requests are in ``requests``; nothing on stderr."""

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    svc.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    stopper = threading.Timer(lifetime, server.shutdown)
    stopper.daemon = True
    stopper.start()
    try:
        yield svc
    finally:
        stopper.cancel()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
