"""A NoCloud seed server on 127.0.0.1, for tests.

NoCloud's ``s=URL`` names a plain web directory: ``URL/user-data`` and
``URL/meta-data`` (cloud-init also asks for ``vendor-data`` and
``network-config``, which may be missing: 404). Any static web server is
one, so this fake is one too: files by path, 404 for the rest, every
request recorded so that a test can count them.

From pytest::

    with SeedServer({"/seed/user-data": b"...", "/seed/meta-data": b"..."}) as srv:
        cmdline = f"ds=nocloud;s={srv.url}/seed/"

From the shell (the whole-VM tests)::

    python -m tests.fakes.nocloud --dir SEED_DIR --prefix /seed/ --port 8080
"""

from __future__ import annotations

import argparse
import sys
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import urlsplit

from tests.fakes.metadata import Request, _Server


class SeedServer:
    """Static files by URL path; ``requests`` in order; a context manager."""

    def __init__(self, files: dict[str, bytes], *, host: str = "127.0.0.1",
                 port: int = 0, lifetime: float = 120.0) -> None:
        self.files = dict(files)
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._host, self._port, self.lifetime = host, port, lifetime
        self._server: _Server | None = None
        self._timer: threading.Timer | None = None
        self.url = ""

    def __enter__(self) -> SeedServer:
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = urlsplit(self.path).path
                body = service.files.get(path)
                status = 404 if body is None else 200
                body = b"Not Found" if body is None else body
                with service._lock:
                    service.requests.append(Request(self.command, self.path,
                                                    {k.lower(): v for k, v in self.headers.items()},
                                                    status))
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: object) -> None:
                """Quiet: tests read ``requests``."""

        self._server = _Server((self._host, self._port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                         daemon=True).start()
        self._timer = threading.Timer(self.lifetime, self._server.shutdown)
        self._timer.daemon = True
        self._timer.start()
        self.url = f"http://{self._host}:{self._server.server_address[1]}"
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def main(argv: list[str] | None = None) -> int:
    """Serve DIR's user-data and meta-data under PREFIX until the lifetime ends."""
    ap = argparse.ArgumentParser(prog="python -m tests.fakes.nocloud",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--dir", type=Path, required=True)
    ap.add_argument("--prefix", default="/")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--lifetime", type=float, default=600.0)
    args = ap.parse_args(argv)
    files = {args.prefix + p.name: p.read_bytes() for p in args.dir.iterdir() if p.is_file()}
    with SeedServer(files, port=args.port, lifetime=args.lifetime) as srv:
        print(f"serving NoCloud seed on {srv.url}{args.prefix}", flush=True)
        threading.Event().wait(args.lifetime)
    return 0


if __name__ == "__main__":
    sys.exit(main())
