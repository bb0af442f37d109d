"""Real HTTP servers on 127.0.0.1 for the tests: a well-behaved one with many endpoints."""

from __future__ import annotations

import json
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class Handler(BaseHTTPRequestHandler):
    """Endpoints (all GET/HEAD/POST):

    /ok                 200 "ok"
    /status/N           status N
    /bytes/N            N bytes of body
    /delay/MS           200 after MS milliseconds
    /redirect/N         N hops of 302 ending at /ok
    /to?url=U&code=C    redirect (C, default 302) to U
    /loop               302 to itself
    /echo               200, JSON of method, path and request headers
    /request?id=K       200 (or ?code=C); method, header lines and body kept in `server.requests[K]`
    /headers?id=K       200; the request's header lines, in order, kept in `server.header_lines[K]`
                        as (name, value), the value as Latin-1 text: `.encode("latin-1")` gives its bytes
    /drip?ms=M          200 headers then one byte every M ms, forever
    /flaky?key=K&fail=N&code=C&after=A
                        answers C (503) with Retry-After A (if given) the first N times for key K, then 200
    """

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall
    server: TestServer

    def log_message(self, format: str, *args: object) -> None:
        return None

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.body = self.rfile.read(length) if length else b""
        self.do_GET()

    do_PUT = do_PATCH = do_DELETE = do_POST
    body = b""

    def do_GET(self) -> None:
        self.server.hits += 1
        self.server.seen.append((self.command, self.path, dict(self.headers.items())))
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        segments = parts.path.strip("/").split("/")
        name, arg = segments[0], (segments[1] if len(segments) > 1 else "")
        try:
            handler = getattr(self, f"ep_{name}")
        except AttributeError:
            return self.reply(404, b"not found\n")
        try:
            handler(arg, query)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def reply(self, code: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        for key, value in (headers or {"Content-Type": "text/plain"}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def ep_ok(self, arg: str, query: dict[str, str]) -> None:
        self.reply(200, b"ok\n")

    def ep_status(self, arg: str, query: dict[str, str]) -> None:
        self.reply(int(arg), b"status\n")

    def ep_bytes(self, arg: str, query: dict[str, str]) -> None:
        self.reply(200, b"x" * int(arg), {"Content-Type": "application/octet-stream"})

    def ep_delay(self, arg: str, query: dict[str, str]) -> None:
        time.sleep(int(arg) / 1000)
        self.reply(200, b"late\n")

    def ep_redirect(self, arg: str, query: dict[str, str]) -> None:
        hops = int(arg)
        self.reply(302, b"", {"Location": f"/redirect/{hops - 1}" if hops > 1 else "/ok"})

    def ep_to(self, arg: str, query: dict[str, str]) -> None:
        self.reply(int(query.get("code", 302)), b"", {"Location": query["url"]})

    def ep_loop(self, arg: str, query: dict[str, str]) -> None:
        self.reply(302, b"", {"Location": "/loop"})

    def ep_echo(self, arg: str, query: dict[str, str]) -> None:
        body = json.dumps({"method": self.command, "path": self.path, "headers": dict(self.headers.items())})
        self.reply(200, body.encode(), {"Content-Type": "application/json"})

    def ep_request(self, arg: str, query: dict[str, str]) -> None:
        """Keep method, header lines and body in `server.requests[id]`; answer 200."""
        seen = {"method": self.command, "headers": self.headers.items(), "body": self.body}
        self.server.requests[query.get("id", "")] = seen
        self.reply(int(query.get("code", 200)), b"ok\n")

    def ep_headers(self, arg: str, query: dict[str, str]) -> None:
        self.server.header_lines[query.get("id", "")] = self.headers.items()
        self.reply(200, b"ok\n")

    def ep_flaky(self, arg: str, query: dict[str, str]) -> None:
        key = query["key"]
        with self.server.lock:
            seen = self.server.counters.get(key, 0)
            self.server.counters[key] = seen + 1
        if seen < int(query.get("fail", 1)):
            headers = {"Retry-After": query["after"]} if "after" in query else {}
            return self.reply(int(query.get("code", 503)), b"busy\n", headers)
        self.reply(200, b"ok\n")

    def ep_conc(self, arg: str, query: dict[str, str]) -> None:
        """Hold the request `ms` milliseconds, recording per-Host concurrency and arrival times."""
        host = self.headers.get("Host", "")
        with self.server.lock:
            now = self.server.in_flight.get(host, 0) + 1
            self.server.in_flight[host] = now
            self.server.peak[host] = max(self.server.peak.get(host, 0), now)
            total = sum(self.server.in_flight.values())
            self.server.peak_total = max(self.server.peak_total, total)
            self.server.arrivals.setdefault(host, []).append(time.monotonic())
        time.sleep(int(query.get("ms", 100)) / 1000)
        with self.server.lock:
            self.server.in_flight[host] -= 1
        self.reply(200, b"ok\n")

    def ep_drip(self, arg: str, query: dict[str, str]) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "1000000")
        self.end_headers()
        pause = int(query.get("ms", 500)) / 1000
        for _ in range(100000):
            self.wfile.write(b"x")
            self.wfile.flush()
            if self.server.closing.wait(pause):
                return


class Workers:
    """Handler threads started before the test, so that accepting a connection never waits on a new thread.

    `Thread.start()` blocks until the new thread has run. In a process whose GIL is shared by 64
    client threads on a busy machine that costs tens of milliseconds, and the accept loop pays it
    once per connection: a burst of 64 connections then waits about a second for its last
    accept. Here a connection is handed to a thread already waiting on a queue; one more thread
    is started only when none is idle, so any number of held connections is still served.
    """

    def __init__(self, name: str, count: int = 96) -> None:
        self.name = name
        self._jobs: queue.SimpleQueue[tuple[Callable[..., object], tuple[object, ...]] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0
        self._threads = 0
        for _ in range(count):
            self._add()

    def _add(self) -> None:
        with self._lock:
            self._idle += 1
            self._threads += 1
        threading.Thread(target=self._run, name=f"{self.name}-{self._threads}", daemon=True).start()

    def submit(self, fn: Callable[..., object], *args: object) -> None:
        with self._lock:
            self._idle -= 1
            grow = self._idle < 0
        if grow:
            self._add()
        self._jobs.put((fn, args))

    def close(self) -> None:
        """Wake every idle thread so it ends; busy ones end with their connection."""
        for _ in range(self._threads):
            self._jobs.put(None)

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            fn, args = job
            try:
                fn(*args)
            finally:
                with self._lock:
                    self._idle += 1


class TestServer(ThreadingHTTPServer):
    __test__ = False  # a fixture, not a test class
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024

    def __init__(self, address: str = "127.0.0.1") -> None:
        super().__init__((address, 0), Handler)
        self.workers = Workers("testserver")
        self.hits = 0
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        self.header_lines: dict[str, list[tuple[str, str]]] = {}
        self.requests: dict[str, dict[str, object]] = {}
        self.closing = threading.Event()
        self.lock = threading.Lock()
        self.counters: dict[str, int] = {}
        self.in_flight: dict[str, int] = {}
        self.peak: dict[str, int] = {}
        self.peak_total = 0
        self.arrivals: dict[str, list[float]] = {}

    def handle_error(self, request: object, client_address: object) -> None:
        """Clients that hang up (deadlines, killed processes) are expected here."""
        return None

    def process_request(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
        self.workers.submit(self.process_request_thread, request, client_address)

    def server_close(self) -> None:
        super().server_close()
        self.workers.close()

    @property
    def base(self) -> str:
        return f"http://{self.server_address[0]}:{self.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base + path


@contextmanager
def running(server: ThreadingHTTPServer) -> Iterator[ThreadingHTTPServer]:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        getattr(server, "closing", threading.Event()).set()
        server.shutdown()
        server.server_close()
