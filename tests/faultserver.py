"""A misbehaving server on 127.0.0.1 for the fault tests: one raw-socket behaviour per path.

`servers.TestServer` is a polite `http.server`; it cannot reset a connection, send garbage or lie
about a Content-Length. This one reads the request head from a raw socket and then does exactly
what the path says, byte by byte. Every endless behaviour stops as soon as the client goes away
(a write fails or the client's FIN arrives) or the server is closed, so no thread outlives a test.

Paths (any query string is ignored):

    /ok                 200, Content-Length 3, "ok\\n", then the connection is closed
    /drip-body          200 headers (Content-Length 1000000) then one byte every 0.5 s, forever
    /drip-headers       the status line and one header, one byte every 0.1 s, never finished
    /silent             reads the request and never answers
    /close              reads the request and closes (FIN) before answering
    /reset              reads the request and resets (RST) before answering
    /reset-body         200, Content-Length 100000, 1000 body bytes, then RST (SO_LINGER 0)
    /short-body         200, Content-Length 1000, 10 body bytes, then a clean close
    /garbage            non-HTTP bytes, then close
    /bad-status         "HTTP/1.1 abc OK": a status line whose code is not a number
    /long-header        one header line of 100 KB
    /many-headers       200 headers (http.client takes at most 100)
    /two-lengths        two different Content-Length headers
    /http09             a body with no status line at all
    /empty-status       an empty status line
    /cut-header         a status line and half a header line, then a close
    /cut-head           a status line and a whole header line, no blank line, then a close
    /cut-status         half a status line (no line end), then a close
    /cut-redirect       a 302 status line and its Location, no blank line, then a close
    /bad-chunk          chunked body whose first chunk size is not hex
    /chunk-cut          chunked body announcing 1000 bytes, then 10 and a close
    /chunked-forever    chunked body, 64 KiB chunks, forever
    /huge-length        Content-Length 2147483648, then 64 KiB blocks forever
    /bad-length         Content-Length: abc (clients read until close)
    /http10             HTTP/1.0 without a length, body until close
    /header-junk        header lines without a colon, and control bytes
    /continue           100 Continue, then the real 200
    /gzip-bomb          20 MiB of zeros, gzipped (~20 KB), Content-Encoding: gzip
    /loop               302 to itself
    /redirect-drip      302 whose body drips one byte every 0.5 s
    /drip-close         200 without a length (the body ends at close), one byte every 0.1 s, forever
    /drip-fast          200, Content-Length 40, one byte every 1 ms: done in ~40 ms, no gap a read times out on
    /drip-chunked       200 chunked, a one-byte chunk every 0.1 s, forever
    /half-headers       the status line, then a header line one byte every 0.1 s, never finished
    /half-redirect      a 302 status line and Location: /ok, then a header dripped likewise
    /busy?after=S       503 (with Retry-After S if given), then the connection is closed
    /redirect-drip-close  302 without a length (its body ends at close), dripping one byte every 0.1 s
    /keepalive-fin      200 without Connection: close, then the connection is closed at once
    /keepalive-close    200 kept alive; a second request on the connection is read, then closed (FIN)
    /keepalive-reset    the same, but the second request is answered with a reset (RST)
    /keepalive-partial  the same, but the second request gets half a status line, then a close
    /to?url=U           302 to U (U percent-decoded)
    anything else       404

`FaultServer(tls=ctx)` speaks the same over TLS. `FaultServer(on_accept=NAME)` instead runs one
behaviour right after accept, before any request: `slam` (close unread), `stall` (say nothing,
not even a TLS ServerHello), `tls-drip` (a handshake record dripped a byte at a time), `tls-alert`,
`drip-answer` (read a request head, then drip an endless header: a proxy dripping its CONNECT answer).

`seen` lists every request head read, as (path name, time.monotonic()), kept-alive ones too.

Plus, on the server object: `refused_port()` (a port nothing listens on, nor will), and `backlog_port`
(a socket that listens but never accepts: the kernel completes the handshake, nobody answers).
`loopback_getaddrinfo` stands in for `socket.getaddrinfo` so no test can look a name up.
"""

from __future__ import annotations

import gzip
import ipaddress
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from fetchpool.client import Client, fetch_one
from fetchpool.options import Options
from fetchpool.result import Result

from servers import Workers

# Deadlines for the fault tests, chosen so that no load on the machine can fail a test, only a bug:
T = 1.0  # the -t of faults that only the deadline ends (short: every such test waits it out)
BOUND = T + 2.0  # they end at T plus what a busy machine adds; without a working deadline they never end
SPARE = 10.0  # the -t of fetches that end by themselves: no load reaches it, only waiting on the deadline does
FAST = SPARE / 2  # ... so they end well before it

BLOCK = b"x" * 65536
CHUNK_FRAME = b"%x\r\n" % len(BLOCK) + BLOCK + b"\r\n"
HEAD_LIMIT = 64 * 1024


_HELD: list[socket.socket] = []  # the sockets that keep refused ports taken


class ClientGone(Exception):
    """The client closed or reset the connection; the behaviour just stops."""


class FaultServer:
    """Threaded raw TCP server on 127.0.0.1:0; `tls` wraps each accepted socket in its thread."""

    def __init__(self, tls: ssl.SSLContext | None = None, on_accept: str | None = None) -> None:
        self.tls = tls
        self.on_accept = on_accept
        self.closing = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=1024)
        self.port = self.listener.getsockname()[1]
        self.backlog = socket.create_server(("127.0.0.1", 0), backlog=1024)
        self.backlog_port = self.backlog.getsockname()[1]
        self.hits: dict[str, int] = {}
        self.seen: list[tuple[str, float]] = []
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._thread = threading.Thread(target=self._accept, name="faultserver", daemon=True)
        self._workers = Workers("faultserver")

    # -- addresses -------------------------------------------------------------------------

    @property
    def base(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base + path

    @staticmethod
    def refused_port() -> int:
        """A loopback port with nothing listening: bound, never listening, and kept bound until
        the process ends, so that no server of this or another test process (pytest-xdist
        workers, a Ray) takes it in the meantime. A connection to it is refused at once."""
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        _HELD.append(s)
        return s.getsockname()[1]

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> FaultServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self.closing.set()
        for sock in (self.listener, self.backlog):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(5)
        self._workers.close()

    def _accept(self) -> None:
        while not self.closing.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self._workers.submit(self._serve, conn)

    def _serve(self, conn: socket.socket) -> None:
        with self._lock:
            self._conns.add(conn)
        try:
            # No Nagle: a write must be on the wire before a reset (SO_LINGER 0) can discard it.
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.on_accept is not None:
                getattr(self, "a_" + self.on_accept.replace("-", "_"))(conn)
                return
            if self.tls is not None:
                conn.settimeout(5)
                conn = self.tls.wrap_socket(conn, server_side=True)
            conn.settimeout(None)
            path = self._read_head(conn)
            if path is None:
                return
            name = self._count(path)
            behaviour: Callable[[socket.socket, str], None] | None = getattr(self, "b_" + name.replace("-", "_"), None)
            if behaviour is None:
                conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            else:
                behaviour(conn, path)
        except (ClientGone, OSError, ssl.SSLError):
            pass
        finally:
            with self._lock:
                self._conns.discard(conn)
            try:
                conn.close()
            except OSError:
                pass

    def _count(self, path: str) -> str:
        name = urlsplit(path).path.strip("/") or "ok"
        with self._lock:
            self.hits[name] = self.hits.get(name, 0) + 1
            self.seen.append((name, time.monotonic()))
        return name

    def _read_head(self, conn: socket.socket) -> str | None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(4096)
            if not chunk or len(data) > HEAD_LIMIT:
                return None
            data += chunk
        parts = data.split(b"\r\n", 1)[0].split()
        return parts[1].decode("latin-1") if len(parts) >= 2 else "/"

    # -- helpers for behaviours -------------------------------------------------------------

    def _send(self, conn: socket.socket, data: bytes) -> None:
        if self.closing.is_set():
            raise ClientGone
        try:
            conn.sendall(data)
        except OSError as exc:
            raise ClientGone from exc

    def _drip(self, conn: socket.socket, data: bytes, pause: float) -> None:
        """Send `data` one byte at a time, `pause` seconds apart (stops if the client leaves)."""
        for i in range(len(data)):
            self._send(conn, data[i : i + 1])
            if self._client_left(conn, pause):
                raise ClientGone

    def _client_left(self, conn: socket.socket, wait: float) -> bool:
        """Wait up to `wait` s; True as soon as the client closes, resets, or we shut down."""
        deadline = time.monotonic() + wait
        while not self.closing.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            conn.settimeout(min(left, 0.1))
            try:
                if conn.recv(4096) == b"":
                    return True
            except TimeoutError:
                continue
            except OSError:
                return True
            finally:
                conn.settimeout(None)
        return True

    @staticmethod
    def _reset(conn: socket.socket) -> None:
        """Close with SO_LINGER 0: the kernel sends RST instead of FIN."""
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()

    # -- behaviours right after accept, before any request is read (FaultServer(on_accept=...)) --

    def a_slam(self, conn: socket.socket) -> None:
        """Close at once, without reading the request."""
        conn.shutdown(socket.SHUT_RDWR)

    def a_stall(self, conn: socket.socket) -> None:
        """Say nothing, not even a TLS ServerHello, until the client gives up."""
        while not self._client_left(conn, 3600):
            pass

    def a_tls_drip(self, conn: socket.socket) -> None:
        """A TLS handshake record header announcing 16 KiB, then its body one byte every 0.2 s."""
        self._send(conn, b"\x16\x03\x03\x40\x00")
        self._drip(conn, b"\x02" * 16384, 0.2)

    def a_tls_alert(self, conn: socket.socket) -> None:
        """A fatal TLS alert (handshake_failure) instead of a ServerHello."""
        self._send(conn, b"\x15\x03\x03\x00\x02\x02\x28")
        conn.shutdown(socket.SHUT_RDWR)

    def a_drip_answer(self, conn: socket.socket) -> None:
        """Read one request head (a proxy's CONNECT, say), then answer one byte every 0.1 s, forever."""
        if self._read_head(conn) is None:
            raise ClientGone
        self._send(conn, b"HTTP/1.1 200 Connection established\r\nX-Slow: ")
        while True:
            self._drip(conn, b"y", 0.1)

    # -- behaviours ---------------------------------------------------------------------------

    def b_ok(self, conn: socket.socket, path: str) -> None:
        self._send(
            conn, b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n"
        )

    def b_drip_body(self, conn: socket.socket, path: str) -> None:
        self._send(conn, b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n")
        self._drip(conn, b"x" * 1000000, 0.5)

    def b_drip_headers(self, conn: socket.socket, path: str) -> None:
        self._drip(conn, b"HTTP/1.1 200 OK\r\nX-Slow: " + b"y" * 100000, 0.1)

    def b_silent(self, conn: socket.socket, path: str) -> None:
        while not self._client_left(conn, 3600):
            pass

    def b_close(self, conn: socket.socket, path: str) -> None:
        conn.shutdown(socket.SHUT_RDWR)

    def b_reset(self, conn: socket.socket, path: str) -> None:
        self._reset(conn)

    def b_reset_body(self, conn: socket.socket, path: str) -> None:
        self._send(conn, b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 1000)
        self._reset(conn)

    def b_short_body(self, conn: socket.socket, path: str) -> None:
        self._send(conn, b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10)
        conn.shutdown(socket.SHUT_RDWR)

    def b_garbage(self, conn: socket.socket, path: str) -> None:
        self._send(conn, b"\x00\xffSSH-2.0-definitely not http\r\n\x1b[31m\r\n\r\n")
        conn.shutdown(socket.SHUT_RDWR)

    def b_bad_status(self, conn: socket.socket, path: str) -> None:
        self._send(conn, b"HTTP/1.1 abc OK\r\nContent-Length: 0\r\n\r\n")
        conn.shutdown(socket.SHUT_RDWR)

    def b_long_header(self, conn: socket.socket, path: str) -> None:
        self._send(conn, b"HTTP/1.1 200 OK\r\nX-Long: " + b"z" * 100000 + b"\r\nContent-Length: 0\r\n\r\n")
        conn.shutdown(socket.SHUT_RDWR)

    def b_many_headers(self, conn: socket.socket, path: str) -> None:
        headers = b"".join(b"X-H%d: v\r\n" % i for i in range(200))
        self._send(conn, b"HTTP/1.1 200 OK\r\n" + headers + b"Content-Length: 0\r\n\r\n")
        conn.shutdown(socket.SHUT_RDWR)

    def b_bad_chunk(self, conn: socket.socket, path: str) -> None:
        self._send(conn, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz-not-hex\r\nabc\r\n")
        conn.shutdown(socket.SHUT_RDWR)

    def b_chunk_cut(self, conn: socket.socket, path: str) -> None:
        self._send(conn, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3e8\r\n" + b"x" * 10)
        conn.shutdown(socket.SHUT_RDWR)

    def b_bad_length(self, conn: socket.socket, path: str) -> None:
        self._send(conn, b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\nbody")
        conn.shutdown(socket.SHUT_RDWR)

    def b_two_lengths(self, conn: socket.socket, path: str) -> None:
        self._send(conn, b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nContent-Length: 10\r\n\r\nbody")
        conn.shutdown(socket.SHUT_RDWR)

    def b_http10(self, conn: socket.socket, path: str) -> None:
        self._send(conn, b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n" + b"y" * 5000)
        conn.shutdown(socket.SHUT_RDWR)

    def b_header_junk(self, conn: socket.socket, path: str) -> None:
        self._send(conn, b"HTTP/1.1 200 OK\r\nthis line has no colon\r\n\x00\x01\r\nContent-Length: 2\r\n\r\nok")
        conn.shutdown(socket.SHUT_RDWR)

    def b_continue(self, conn: socket.socket, path: str) -> None:
        self._send(conn, b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        conn.shutdown(socket.SHUT_RDWR)

    def b_http09(self, conn: socket.socket, path: str) -> None:
        self._send(conn, b"<html>no status line at all</html>\n")
        conn.shutdown(socket.SHUT_RDWR)

    def b_cut_header(self, conn: socket.socket, path: str) -> None:
        self._send(conn, b"HTTP/1.1 200 OK\r\nX-A: partial")
        conn.shutdown(socket.SHUT_RDWR)

    def b_cut_head(self, conn: socket.socket, path: str) -> None:
        self._send(conn, b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n")
        conn.shutdown(socket.SHUT_RDWR)

    def b_cut_status(self, conn: socket.socket, path: str) -> None:
        self._send(conn, b"HTTP/1.1 200 OK")
        conn.shutdown(socket.SHUT_RDWR)

    def b_cut_redirect(self, conn: socket.socket, path: str) -> None:
        self._send(conn, b"HTTP/1.1 302 Found\r\nLocation: /ok\r\n")
        conn.shutdown(socket.SHUT_RDWR)

    def b_empty_status(self, conn: socket.socket, path: str) -> None:
        self._send(conn, b"\r\n\r\n")
        conn.shutdown(socket.SHUT_RDWR)

    def b_gzip_bomb(self, conn: socket.socket, path: str) -> None:
        body = gzip.compress(b"\0" * (20 * 1024 * 1024))
        self._send(conn, b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        conn.shutdown(socket.SHUT_RDWR)

    def b_redirect_drip(self, conn: socket.socket, path: str) -> None:
        self._send(conn, b"HTTP/1.1 302 Found\r\nLocation: /ok\r\nContent-Length: 1000000\r\n\r\n")
        self._drip(conn, b"x" * 1000000, 0.5)

    def b_drip_close(self, conn: socket.socket, path: str) -> None:
        self._send(conn, b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n")
        while True:
            self._drip(conn, b"x", 0.1)

    def b_drip_fast(self, conn: socket.socket, path: str) -> None:
        self._send(conn, b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\nConnection: close\r\n\r\n")
        self._drip(conn, b"x" * 40, 0.001)

    def b_drip_chunked(self, conn: socket.socket, path: str) -> None:
        self._send(conn, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        while True:
            self._send(conn, b"1\r\nx\r\n")
            if self._client_left(conn, 0.1):
                raise ClientGone

    def b_half_headers(self, conn: socket.socket, path: str) -> None:
        self._send(conn, b"HTTP/1.1 200 OK\r\nX-Slow: ")
        self._drip(conn, b"y" * 100000, 0.1)

    def b_half_redirect(self, conn: socket.socket, path: str) -> None:
        self._send(conn, b"HTTP/1.1 302 Found\r\nLocation: /ok\r\nX-Slow: ")
        self._drip(conn, b"y" * 100000, 0.1)

    def b_busy(self, conn: socket.socket, path: str) -> None:
        after = urlsplit(path).query.partition("after=")[2].partition("&")[0]
        extra = b"Retry-After: " + after.encode() + b"\r\n" if after else b""
        self._send(conn, b"HTTP/1.1 503 Busy\r\nContent-Length: 5\r\nConnection: close\r\n" + extra + b"\r\nbusy\n")

    def _kept_alive(self, conn: socket.socket) -> None:
        """Answer 200 keeping the connection open, then read (and count) the next request on it."""
        self._send(conn, b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
        path = self._read_head(conn)
        if path is None:
            raise ClientGone
        self._count(path)

    def b_keepalive_fin(self, conn: socket.socket, path: str) -> None:
        self._send(conn, b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
        conn.shutdown(socket.SHUT_RDWR)

    def b_redirect_drip_close(self, conn: socket.socket, path: str) -> None:
        self._send(conn, b"HTTP/1.1 302 Found\r\nLocation: /ok\r\nConnection: close\r\n\r\n")
        while True:
            self._drip(conn, b"x", 0.1)

    def b_keepalive_close(self, conn: socket.socket, path: str) -> None:
        self._kept_alive(conn)
        conn.shutdown(socket.SHUT_RDWR)

    def b_keepalive_reset(self, conn: socket.socket, path: str) -> None:
        self._kept_alive(conn)
        self._reset(conn)

    def b_keepalive_partial(self, conn: socket.socket, path: str) -> None:
        self._kept_alive(conn)
        self._send(conn, b"HTTP/1.1 2")
        conn.shutdown(socket.SHUT_RDWR)

    def b_chunked_forever(self, conn: socket.socket, path: str) -> None:
        self._send(
            conn, b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        while True:
            self._send(conn, CHUNK_FRAME)

    def b_huge_length(self, conn: socket.socket, path: str) -> None:
        self._send(conn, b"HTTP/1.1 200 OK\r\nContent-Length: 2147483648\r\n\r\n")
        while True:
            self._send(conn, BLOCK)

    def b_loop(self, conn: socket.socket, path: str) -> None:
        self._send(conn, b"HTTP/1.1 302 Found\r\nLocation: /loop\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    def b_to(self, conn: socket.socket, path: str) -> None:
        target = unquote(urlsplit(path).query.partition("url=")[2]).encode("utf-8")
        self._send(
            conn, b"HTTP/1.1 302 Found\r\nLocation: " + target + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )


_REAL_GETADDRINFO = socket.getaddrinfo
LOOKUPS: list[str] = []


def loopback_getaddrinfo(host: object, port: object, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0):  # type: ignore[no-untyped-def]
    """A `socket.getaddrinfo` that can only answer with loopback addresses and never asks DNS.

    `localhost` and numeric addresses are resolved locally (AI_NUMERICHOST); every other name,
    and any numeric address off the loopback net (`10.0.0.1`, `2130706433`...), raises
    `socket.gaierror` like an unknown name would. Names asked for are recorded in LOOKUPS.
    """
    name = host.decode("ascii", "replace") if isinstance(host, bytes) else str(host)
    LOOKUPS.append(name)
    if name.lower().rstrip(".") == "localhost":
        name = "127.0.0.1"
    try:
        infos = _REAL_GETADDRINFO(name, port, family, type, proto, flags | socket.AI_NUMERICHOST)  # type: ignore[arg-type]
    except (socket.gaierror, UnicodeError, ValueError) as exc:
        raise socket.gaierror(
            socket.EAI_NONAME, f"Name or service not known ({name!r}: tests resolve no names)"
        ) from exc
    for info in infos:
        address = str(info[4][0]).split("%", 1)[0]
        if not ipaddress.ip_address(address).is_loopback:
            raise socket.gaierror(socket.EAI_NONAME, f"Name or service not known ({address} is off this machine)")
    return infos


@contextmanager
def serving(tls: ssl.SSLContext | None = None, on_accept: str | None = None) -> Iterator[FaultServer]:
    server = FaultServer(tls, on_accept).start()
    try:
        yield server
    finally:
        server.close()


def options(**kw: object) -> Options:
    """Options with retries off (when this version has retries): one attempt, one timing."""
    if "retries" in Options.__dataclass_fields__:
        kw.setdefault("retries", 0)
    return Options(**kw)  # type: ignore[arg-type]


@dataclass
class Observed:
    """One fault tried: what came back and how long it took (collected for the report)."""

    fault: str
    result: Result
    seconds: float


@dataclass
class Journal:
    entries: list[Observed] = field(default_factory=list)

    def add(self, fault: str, result: Result, seconds: float) -> None:
        self.entries.append(Observed(fault, result, seconds))
        kind = result.error.value if result.error is not None else "-"
        print(
            f"\nFAULT {fault!r}: error={kind} status={result.status} bytes={result.bytes} "
            f"truncated={result.truncated} time={seconds:.3f}s message={result.error_message!r}"
        )


JOURNAL = Journal()


def timed_fetch(url: str, fault: str | None = None, **kw: object) -> tuple[Result, float]:
    """`fetch_one` with fresh connections, timed; each call is written to the journal."""
    client = Client(options(**kw))
    start = time.monotonic()
    try:
        result = fetch_one(url, client, line=1)
    finally:
        client.close()
    took = time.monotonic() - start
    JOURNAL.add(fault or url, result, took)
    return result, took
