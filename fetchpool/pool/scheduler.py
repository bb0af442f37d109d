"""The one place concurrency is decided: a bounded, streaming fan-out over an engine.

The stock `Pool.imap*` consumes its whole input up front, so ten million lines would sit
in memory. Here a feeder thread reads input only while fewer than `options.window` URLs
are read but not yet written. Everything else happens on the caller's thread, the same
for every engine: at most `concurrency` URLs in flight, URLs that must wait for their
host or the rate parked here (not in a worker, so a busy host never holds one), retries
planned on a heap, input order restored with `--ordered`, and a stop.

Results come back through one queue; `batches()` hands the caller whatever is ready as
one list, so a writer writes and flushes once per burst and nobody waits on a finished
record.
"""

from __future__ import annotations

import heapq
import math
import queue
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import urlsplit

from ..inputs import Item, Target
from ..limits import HostGate
from ..options import Options
from ..result import Result
from .engines import Engine, make_engine
from .worker import Again, Job


class _End:
    def __init__(self, count: int) -> None:
        self.count = count


class _InputFailed:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


WAIT = 0.1  # s the caller's thread waits for a result at most before it looks at the clock again
_WAKE = object()  # put by `stop()`: the caller's thread, if it waits for a result, sees the stop at once


def _hostname(url: object) -> str:
    return urlsplit(url).hostname or "" if isinstance(url, str) else ""


class _Window:
    """The read-ahead: the feeder takes a slot per item read, the caller gives back a burst.

    A `threading.Semaphore` would notify once per slot given back; this notifies once.
    """

    def __init__(self, size: int) -> None:
        self._free = size
        self._cond = threading.Condition(threading.Lock())

    def take(self, timeout: float) -> bool:
        with self._cond:
            if self._free <= 0:
                self._cond.wait(timeout)
                if self._free <= 0:
                    return False
            self._free -= 1
            return True

    def give(self, n: int) -> None:
        with self._cond:
            self._free += n
            self._cond.notify()


class _Parked:
    """A URL read from input, started by the caller's thread when limits allow."""

    __slots__ = ("seq", "target", "attempt", "started", "previous", "host")

    def __init__(
        self, seq: int, target: Target, attempt: int = 1, started: float | None = None, previous: Result | None = None
    ) -> None:
        self.seq, self.target, self.attempt, self.started = seq, target, attempt, started
        self.previous = previous  # the last attempt's record, written if the run stops first
        self.host: str | None = None  # found only when limits need it: a URL split costs more than the rest

    def hostname(self) -> str:
        if self.host is None:
            self.host = _hostname(self.target.url)
        return self.host

    def job(self) -> Job:
        return (self.seq, self.target, self.attempt, self.started)


class Run:
    """Iterate results of fetching `items`; `stop()` ends it early, keeping what finished."""

    def __init__(self, items: Iterable[Item], options: Options, engine: Engine | None = None) -> None:
        self.options = options
        self.starting = False  # True while the engine starts its workers (seconds on Ray)
        self.read = 0  # items taken from input so far: after a stop, `read` minus those yielded were never fetched
        self._items = items
        self._engine = engine if engine is not None else make_engine(options)
        self._done: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._slots = _Window(options.window)
        self._stop = threading.Event()
        self._wakeups: list[tuple[float, int, Any]] = []  # (when, tie, _Parked or host)
        self._tie = 0
        self._gate = HostGate(options.per_host, options.rate, options.rate_per_host) if options.limited else None
        self._parked: dict[str, deque[_Parked]] = {}
        self._ready: deque[_Parked] = deque()  # allowed to start, waiting for a slot in flight
        self._running = 0
        # Start more only once a burst of messages is taken, or when few are left in flight:
        # a process engine then sends one message per burst, not one per URL.
        self._low = options.concurrency // 2

    def stop(self) -> None:
        """Stop reading input and starting URLs; the iterator then ends after what is done.

        It also wakes the caller's thread waiting for a result. A stop may come from a signal
        handler, which runs inside that wait, and before Python 3.13 a `SimpleQueue.get` whose
        timeout a handler outlasted waits for the next item with no deadline: after a stop no
        result comes (see `_deliver`), so without this item the run would never end.
        """
        self._stop.set()
        self._done.put(_WAKE)

    def close(self) -> None:
        """Stop at once and stop the engine's workers (the run is not iterated further)."""
        self.stop()
        self._engine.shutdown(now=True)

    def __iter__(self) -> Iterator[Result]:
        for batch in self.batches():
            yield from batch

    def batches(self) -> Iterator[list[Result]]:
        """Results in bursts: each list is everything ready when the last one was taken."""
        self.starting = True
        self._engine.start(self._deliver, self._stop)
        self.starting = False
        threading.Thread(target=self._feed, name="fetchpool-feeder", daemon=True).start()
        finished = False
        try:
            yield from self._collect()
            finished = not self._stop.is_set()
        finally:
            self.stop()
            self._engine.shutdown(now=not finished)

    def _deliver(self, seq: int, outcome: Result | Again) -> None:
        """Called by the engine's threads. After a stop nothing more is taken: in-flight URLs
        are abandoned, and a worker killed along with us (SIGTERM to the whole process
        group) must not turn them into `internal` records."""
        if not self._stop.is_set():
            self._done.put((seq, outcome))

    # -- input side (feeder thread) ------------------------------------------------------

    def _feed(self) -> None:
        count = 0
        try:
            for item in self._items:
                self.read += 1  # only this thread writes it
                while not self._slots.take(timeout=0.1):
                    if self._stop.is_set():
                        return
                if self._stop.is_set():
                    return
                self._done.put(_Parked(count, item) if isinstance(item, Target) else (count, item))
                count += 1
        except BaseException as exc:  # noqa: BLE001 - reported on the caller's thread
            self._done.put(_InputFailed(exc))
        finally:
            self._done.put(_End(count))

    # -- the caller's thread ---------------------------------------------------------------

    def _collect(self) -> Iterator[list[Result]]:
        total, given, next_seq = None, 0, 0
        held: dict[int, Result] = {}
        out: list[Result] = []
        while total is None or given < total:
            if self._stop.is_set():
                break
            if self._wakeups and self._wakeups[0][0] <= time.monotonic():
                self._wake_due()
            if self._running <= self._low:
                self._pump()
            try:
                msg = self._done.get_nowait()
            except queue.Empty:
                self._pump()
                if out:
                    yield out
                    self._slots.give(len(out))
                    out = []
                    continue
                try:
                    msg = self._done.get(timeout=self._wake_due())
                except queue.Empty:
                    continue
            if msg is _WAKE:
                continue
            if isinstance(msg, _Parked):
                self._park(msg)
                continue
            if isinstance(msg, _End):
                total = msg.count
                continue
            if isinstance(msg, _InputFailed):
                raise msg.exc
            seq, result = msg
            if isinstance(result, Again):
                self._running -= 1
                again = _Parked(seq, result.target, result.result.attempts + 1, result.started, result.result)
                self._later(result.delay, again)
                self._finished(result.target)
                continue
            if result.attempts:
                self._running -= 1
                self._finished(result)
            if not self.options.ordered:
                given += 1
                out.append(result)
                continue
            held[seq] = result
            while next_seq in held:
                given += 1
                next_seq += 1
                out.append(held.pop(next_seq - 1))
        if out:
            yield out
        leftovers = self._leftovers(held)
        if leftovers:
            yield leftovers

    def _pump(self) -> None:
        """Hand the engine what may start, keeping at most `concurrency` in flight."""
        room = self.options.concurrency - self._running
        if room <= 0 or not self._ready:
            return
        jobs = [self._ready.popleft().job() for _ in range(min(room, len(self._ready)))]
        self._running += len(jobs)
        self._engine.submit(jobs)

    def _later(self, delay: float, what: Any) -> None:
        self._tie += 1
        heapq.heappush(self._wakeups, (time.monotonic() + delay, self._tie, what))

    def _park(self, job: _Parked) -> None:
        if self._gate is None:
            self._ready.append(job)
            return
        key = job.hostname() if self._gate.keyed_by_host else "*"
        self._parked.setdefault(key, deque()).append(job)
        self._offer(key)

    def _offer(self, key: str) -> None:
        """Start what the limits allow of the URLs parked under `key`."""
        assert self._gate is not None
        waiting = self._parked.get(key)
        now = time.monotonic()
        while waiting:
            wait = self._gate.admit(waiting[0].hostname(), now)
            if wait == 0.0:
                self._ready.append(waiting.popleft())
                continue
            if wait != math.inf:
                self._later(wait, key)
            break
        if not waiting:
            self._parked.pop(key, None)

    def _finished(self, record: Result | Target) -> None:
        """A request ended: its host may take the next parked URL."""
        if self._gate is None:
            return
        host = _hostname(record.url)
        self._gate.finished(host)
        self._offer(host if self._gate.keyed_by_host else "*")

    def _wake_due(self) -> float:
        """Start retries and parked hosts whose wait is over; return how long to block."""
        now = time.monotonic()
        while self._wakeups and self._wakeups[0][0] <= now:
            _, _, what = heapq.heappop(self._wakeups)
            if isinstance(what, _Parked):
                self._park(what)
            else:
                self._offer(what)
        self._pump()
        return min(WAIT, max(self._wakeups[0][0] - now, 0.0)) if self._wakeups else WAIT

    def _leftovers(self, held: dict[int, Result]) -> list[Result]:
        """After a stop: what already finished is still written, nothing is waited for.

        A URL waiting for a retry is written with its last attempt's record.
        """
        for _, _, what in self._wakeups:
            if isinstance(what, _Parked) and what.previous is not None:
                held[what.seq] = what.previous
        while True:
            try:
                msg = self._done.get_nowait()
            except queue.Empty:
                break
            if isinstance(msg, tuple):
                held[msg[0]] = msg[1].result if isinstance(msg[1], Again) else msg[1]
        return [held[seq] for seq in sorted(held)]
