"""One total deadline per URL, which requests' own timeouts cannot give.

requests and urllib3 time out each socket operation, so a server that drips one byte a
second keeps a fetch alive forever. One watchdog thread here sleeps until the nearest
deadline and shuts the socket of the fetch it belongs to; the blocked read then ends at
once. A shut socket reads as end of file, which is also how a body framed by the
connection's close ends: so the fetch checks its guard after every read (`Guard.check`)
and never takes an end of file for the end of a response once the deadline has passed.
Connections find their guard through a thread-local, set by the worker.
"""

from __future__ import annotations

import heapq
import itertools
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from .errors import FetchError
from .result import ErrorKind

_local = threading.local()
_lock = threading.Lock()  # the watchdog's, and every guard's: a socket is never shut once detached


class Guard:
    """The deadline of one URL and the socket it is currently waiting on."""

    __slots__ = ("deadline", "sock", "expired", "done", "fresh")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.sock: socket.socket | None = None
        self.expired = False  # set before the socket is shut: whoever reads after a shutdown sees it
        self.done = False
        self.fresh = False  # the next request must go out on a new connection

    def attach(self, sock: socket.socket | None) -> None:
        with _lock:
            self.sock = sock
            if self.expired:
                _shut(sock)

    def detach(self) -> bool:
        """Stop watching the socket (it goes back to the pool); True if the deadline struck first."""
        with _lock:
            self.sock = None
            return self.expired

    def expire(self) -> None:
        self.expired = True
        _shut(self.sock)

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def passed(self) -> bool:
        """True once the deadline is reached, whether or not the watchdog has woken yet."""
        return self.expired or time.monotonic() >= self.deadline

    def check(self) -> None:
        """Raise `timeout` once the deadline has passed: what was read may have been cut by it."""
        if self.passed():
            raise FetchError(ErrorKind.TIMEOUT, "total deadline reached")


def _shut(sock: socket.socket | None) -> None:
    if sock is None:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class Watchdog:
    """Sleeps until the nearest deadline (a heap), so a 2 ms deadline is kept as well as a 10 s one.

    A guard that ends early stays in the heap until it comes up, or until finished guards
    outnumber the live ones, when the heap is rebuilt: memory follows what is in flight.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Guard]] = []
        self._live = 0
        self._wake = threading.Condition(_lock)
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    @contextmanager
    def watch(self, deadline: float) -> Iterator[Guard]:
        guard = Guard(deadline)
        with self._wake:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="fetchpool-deadline", daemon=True)
                self._thread.start()
            heapq.heappush(self._heap, (deadline, next(self._order), guard))
            self._live += 1
            if self._heap[0][2] is guard:
                self._wake.notify()
        _local.guard = guard
        try:
            yield guard
        finally:
            _local.guard = None
            self._unwatch(guard)

    def _unwatch(self, guard: Guard) -> None:
        with self._wake:
            guard.done, guard.sock = True, None
            self._live -= 1
            if len(self._heap) > 2 * self._live + 64:
                self._heap = [entry for entry in self._heap if not entry[2].done]
                heapq.heapify(self._heap)

    def _run(self) -> None:
        with self._wake:
            while True:
                now = time.monotonic()
                while self._heap and (self._heap[0][2].done or self._heap[0][0] <= now):
                    guard = heapq.heappop(self._heap)[2]
                    if not guard.done:
                        guard.expire()
                self._wake.wait(self._heap[0][0] - now if self._heap else None)


WATCHDOG = Watchdog()


def _after_fork() -> None:
    """A forked worker has no watchdog thread, and the lock may have been held at the fork."""
    global _lock
    _lock = threading.Lock()
    WATCHDOG.__init__()  # type: ignore[misc]


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def current_guard() -> Guard | None:
    return getattr(_local, "guard", None)
