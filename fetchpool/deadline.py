"""A total deadline per fetch, which requests' own timeouts cannot give.

requests and urllib3 time out each socket operation, so a server that drips one byte a
second keeps a fetch alive forever. One watchdog thread here shuts the socket of any
fetch past its deadline; the blocked read then fails at once and the fetch reports
`timeout`. Connections find their guard through a thread-local, set by the worker.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

_local = threading.local()
SCAN_INTERVAL = 0.05


class Guard:
    """The deadline of one fetch and the socket it is currently reading."""

    __slots__ = ("deadline", "sock", "expired")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.sock: socket.socket | None = None
        self.expired = False

    def attach(self, sock: socket.socket | None) -> None:
        self.sock = sock
        if self.expired:
            _shut(sock)

    def expire(self) -> None:
        self.expired = True
        _shut(self.sock)

    def remaining(self) -> float:
        return self.deadline - time.monotonic()


def _shut(sock: socket.socket | None) -> None:
    if sock is None:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class Watchdog:
    """Scans the open guards a few times a second; cheap at any request rate."""

    def __init__(self) -> None:
        self._guards: set[Guard] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @contextmanager
    def watch(self, deadline: float) -> Iterator[Guard]:
        guard = Guard(deadline)
        self._start()
        self._guards.add(guard)
        _local.guard = guard
        try:
            yield guard
        finally:
            _local.guard = None
            self._guards.discard(guard)

    def _start(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="fetchpool-deadline", daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        while True:
            time.sleep(SCAN_INTERVAL)
            now = time.monotonic()
            for guard in list(self._guards):
                if not guard.expired and now >= guard.deadline:
                    guard.expire()


WATCHDOG = Watchdog()


def current_guard() -> Guard | None:
    return getattr(_local, "guard", None)


class _Watched:
    """Mixin: register the socket with the current fetch's guard before waiting on it."""

    sock: socket.socket | None

    def getresponse(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        guard = current_guard()
        if guard is not None:
            guard.attach(self.sock)
        return super().getresponse(*args, **kwargs)  # type: ignore[misc]


class WatchedHTTPConnection(_Watched, HTTPConnection):
    pass


class WatchedHTTPSConnection(_Watched, HTTPSConnection):
    pass


class WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = WatchedHTTPConnection


class WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = WatchedHTTPSConnection


POOL_CLASSES = {"http": WatchedHTTPPool, "https": WatchedHTTPSPool}
