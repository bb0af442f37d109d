"""An in-process server on 127.0.0.1 with a realistic mix, so `fetchpool --demo` needs no network.

The mix: mostly fast pages, some slow ones, 404s, 500s, redirects and one URL that never
finishes within the deadline, so a first run shows every kind of outcome.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DEMO_TIMEOUT = 2.0
_PAGE = b"<!doctype html><title>demo</title>" + b"<p>fetchpool demo page</p>" * 40


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall

    def log_message(self, format: str, *args: object) -> None:
        return None

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        kind = self.path.strip("/").split("/")[0]
        if kind == "slow":
            time.sleep(random.uniform(0.2, 0.9))
        if kind == "hang":
            time.sleep(DEMO_TIMEOUT + 1)
        if kind == "redirect":
            return self._reply(301, b"", {"Location": "/page/moved"})
        code = {"missing": 404, "error": 500}.get(kind, 200)
        self._reply(code, _PAGE if code == 200 else b"nope\n", {"Content-Type": "text/html"})

    def _reply(self, code: int, body: bytes, headers: dict[str, str]) -> None:
        try:
            self.send_response(code)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        except OSError:
            pass  # the client gave up (deadline): nothing to do


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # the default 5 makes concurrent clients wait for SYN retries
    allow_reuse_address = True


@contextmanager
def serve() -> Iterator[str]:
    """Run the demo server for the duration of the block; yields its base URL."""
    server = _Server(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, name="fetchpool-demo", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def urls(base: str, count: int, seed: int = 7) -> Iterator[str]:
    """`count` demo URLs: one hang, then a weighted, reproducible mix."""
    rng = random.Random(seed)
    kinds = ["page"] * 70 + ["slow"] * 12 + ["missing"] * 8 + ["error"] * 4 + ["redirect"] * 6
    for i in range(count):
        kind = "hang" if i == count // 2 else rng.choice(kinds)
        yield f"{base}/{kind}/{i}"
