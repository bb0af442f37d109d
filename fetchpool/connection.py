"""urllib3 connections that report their sockets to the deadline and know when they were reused.

A kept-alive connection the server closed while it sat idle fails the next request before
any byte of an answer arrives; curl and browsers then send the request again on a new
connection. To do the same, and only then, a connection counts the responses it has served
since it was opened, and a response notes whether its first byte ever arrived: a failure
on a reused connection with nothing received is marked `stale` for `client._send`.
"""

from __future__ import annotations

import http.client
import socket
from typing import Any

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from .deadline import current_guard

_CLOSED = (ConnectionResetError, ConnectionAbortedError, BrokenPipeError)


class _HeadReader:
    """The response's file while its head is read: notes a line cut short by the end of the stream.

    http.client takes an end of stream inside the header block for its end, so a server
    that dies half-way through its headers would look like a complete, empty response.
    """

    __slots__ = ("fp", "cut")

    def __init__(self, fp: Any) -> None:
        self.fp, self.cut = fp, False

    def readline(self, limit: int = -1) -> bytes:
        line: bytes = self.fp.readline(limit)
        if not line.endswith(b"\n") and (limit < 0 or len(line) < limit):
            self.cut = True
        return line

    def __getattr__(self, name: str) -> Any:
        return getattr(self.fp, name)


class _Response(http.client.HTTPResponse):
    """Marks a failure that came before the first byte of the status line: `nothing = True`;
    refuses a head the server did not finish (`protocol`, never an empty 200)."""

    def begin(self) -> None:
        if self.headers is not None:  # type: ignore[has-type]
            return
        try:
            arrived = bool(self.fp.peek(1))  # one read, into the buffer the status line is read from
        except _CLOSED as exc:
            exc.nothing = True  # type: ignore[attr-defined]
            raise
        head = self.fp = _HeadReader(self.fp)
        try:
            super().begin()
        except http.client.RemoteDisconnected as exc:
            exc.nothing = not arrived  # type: ignore[attr-defined]
            raise
        finally:
            if self.fp is head:
                self.fp = head.fp
        if head.cut:
            cut = http.client.RemoteDisconnected("the server closed the connection in the middle of its headers")
            cut.nothing = False  # type: ignore[attr-defined]
            raise cut


class _Watched:
    """Mixin: register the socket with the current URL's guard, count the responses served."""

    sock: socket.socket | None
    response_class: type[http.client.HTTPResponse] = _Response
    served = 0  # responses since this socket was opened

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()  # type: ignore[misc]
        guard = current_guard()
        if guard is not None:  # a proxy's CONNECT answer is read on this socket, under the deadline too
            guard.attach(sock)
        return sock  # type: ignore[no-any-return]

    def connect(self) -> None:
        self.served = 0
        super().connect()  # type: ignore[misc]

    def request(self, *args: Any, **kwargs: Any) -> None:
        guard = current_guard()
        if guard is not None and guard.fresh and self.served and self.sock is not None:
            self.close()  # type: ignore[attr-defined]  # a new socket is opened for this request
        super().request(*args, **kwargs)  # type: ignore[misc]

    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        guard = current_guard()
        if guard is not None:
            guard.attach(self.sock)
        reused = self.served > 0
        try:
            response = super().getresponse(*args, **kwargs)  # type: ignore[misc]
        except (http.client.RemoteDisconnected, *_CLOSED) as exc:
            exc.stale = reused and getattr(exc, "nothing", False)  # type: ignore[union-attr]
            raise
        self.served += 1
        return response


def stale(exc: BaseException) -> bool:
    """True when `exc` is, or wraps, a request lost with a reused connection before any answer."""
    seen: set[int] = set()
    todo: list[object] = [exc]
    while todo:
        e = todo.pop()
        if not isinstance(e, BaseException) or id(e) in seen:
            continue
        seen.add(id(e))
        if getattr(e, "stale", False):
            return True
        todo += [e.__cause__, e.__context__, getattr(e, "reason", None), *e.args]
    return False


class WatchedHTTPConnection(_Watched, HTTPConnection):
    pass


class WatchedHTTPSConnection(_Watched, HTTPSConnection):
    pass


class WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = WatchedHTTPConnection


class WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = WatchedHTTPSConnection


POOL_CLASSES = {"http": WatchedHTTPPool, "https": WatchedHTTPSPool}


class _Resolved:
    """Mixin: connect to the address `--resolve` gives for this host and port.

    Only the socket's address changes, and only while it is opened: urllib3 connects to
    `_dns_host` but sends SNI, checks the certificate and writes `Host` from `host`, so
    TLS and the server see the name in the URL, as with curl's --resolve.
    """

    host: str
    port: int
    _dns_host: str
    resolve: dict[tuple[str, int], str] = {}

    def _new_conn(self) -> socket.socket:
        address = self.resolve.get((self.host.rstrip(".").lower(), self.port))
        if address is None:
            return super()._new_conn()  # type: ignore[misc,no-any-return]
        name, self._dns_host = self._dns_host, address
        try:
            return super()._new_conn()  # type: ignore[misc,no-any-return]
        finally:
            self._dns_host = name


def pool_classes(resolve: tuple[tuple[str, int, str], ...] = ()) -> dict[str, type[HTTPConnectionPool]]:
    """The pool classes of one Client: the watched ones, or subclasses that apply `resolve`.

    Built per Client, so two runs with different --resolve never share a mapping.
    """
    if not resolve:
        return POOL_CLASSES  # type: ignore[return-value]
    table = {(host.rstrip(".").lower(), port): address.strip("[]") for host, port, address in resolve}
    http = type("ResolvedHTTPConnection", (_Resolved, WatchedHTTPConnection), {"resolve": table})
    https = type("ResolvedHTTPSConnection", (_Resolved, WatchedHTTPSConnection), {"resolve": table})
    return {
        "http": type("ResolvedHTTPPool", (WatchedHTTPPool,), {"ConnectionCls": http}),
        "https": type("ResolvedHTTPSPool", (WatchedHTTPSPool,), {"ConnectionCls": https}),
    }
