"""The one place concurrency lives: a bounded, streaming fan-out over a Pool.

The stock `Pool.imap*` consumes its whole input up front, so ten million lines would sit
in memory. Here a feeder thread reads input only while fewer than `options.window` URLs
are in flight or waiting to be written, and submits them with `apply_async`, which every
Pool-compatible backend has (`multiprocessing.dummy`, `multiprocessing`, Ray's Pool).
Results come back through one queue to the caller's thread, which alone yields them.
"""

from __future__ import annotations

import heapq
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from .fetch import Client, fetch_attempt
from .inputs import Item, Target, parse
from .options import Options
from .result import ErrorKind, Result
from .retry import retry_delay

PoolFactory = Callable[..., Any]
_worker: dict[str, Any] = {}
_STOPPED = threading.Event()


def _init_worker(options: Options) -> None:
    """Pool initializer: each worker thread (or process) gets its own Client."""
    local = _worker.setdefault("local", threading.local())
    local.client = Client(options)
    local.options = options


def _client() -> Client:
    local = _worker.get("local")
    client = getattr(local, "client", None)
    if client is None:  # a backend that ignores initializer for some threads
        raise RuntimeError("worker not initialised")
    return client


class _Again:
    """A worker's answer meaning "retry this URL after `delay` s"; `result` is the attempt so far."""

    def __init__(self, target: Target, result: Result, delay: float, started: float) -> None:
        self.target, self.result, self.delay, self.started = target, result, delay, started


def _work(seq: int, target: Target, attempt: int = 1, started: float | None = None) -> tuple[int, Any]:
    """Runs in a worker. Never raises: a bug becomes an `internal` record, not a lost line.

    After a stop, URLs still queued are skipped (None) instead of fetched. A retry is not
    waited for here: the caller's thread schedules it, so the worker is free meanwhile.
    """
    if _STOPPED.is_set():
        return seq, None
    try:
        client = _client()
        started = started if started is not None else time.monotonic()
        result, retry_after = fetch_attempt(target.url, client, target.line, target.input, attempt, started)
        delay = retry_delay(result, retry_after, client.options)
        if delay is not None:
            return seq, _Again(target, result, delay, started)
    except BaseException as exc:  # noqa: BLE001 - the promise is one record per line
        message = f"{type(exc).__name__}: {exc}"
        result = Result.failed(target.url, target.line, ErrorKind.INTERNAL, message, target.input)
    return seq, result


def _thread_pool(processes: int, initializer: Callable[..., None], initargs: tuple[Any, ...]) -> Any:
    from multiprocessing.dummy import Pool

    return Pool(processes, initializer=initializer, initargs=initargs)


class _End:
    def __init__(self, count: int) -> None:
        self.count = count


class _InputFailed:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class Run:
    """Iterate results of fetching `items`; `stop()` ends it early, keeping what finished."""

    def __init__(self, items: Iterable[Item], options: Options, pool_factory: PoolFactory = _thread_pool) -> None:
        self.options = options
        self._items = items
        self._pool_factory = pool_factory
        self._done: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._slots = threading.Semaphore(options.window)
        self._stop = threading.Event()
        self._retries: list[tuple[float, int, _Again]] = []
        self._pool: Any = None
        self.submitted = 0

    def stop(self) -> None:
        """Stop reading input and starting URLs; the iterator then ends after what is done."""
        self._stop.set()
        _STOPPED.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def pending(self) -> bool:
        """True when a finished result is already waiting: the writer may skip a flush."""
        return not self._done.empty()

    def __iter__(self) -> Iterator[Result]:
        _STOPPED.clear()
        pool = self._pool = self._pool_factory(self.options.concurrency, _init_worker, (self.options,))
        feeder = threading.Thread(target=self._feed, args=(pool,), name="fetchpool-feeder", daemon=True)
        feeder.start()
        try:
            yield from self._collect()
        finally:
            self.stop()
            pool.close()

    def _feed(self, pool: Any) -> None:
        count = 0
        try:
            for item in self._items:
                while not self._slots.acquire(timeout=0.1):
                    if self._stop.is_set():
                        return
                if self._stop.is_set():
                    return
                if isinstance(item, Target):
                    pool.apply_async(_work, (count, item), callback=self._done.put)
                else:
                    self._done.put((count, item))
                count += 1
        except BaseException as exc:  # noqa: BLE001 - reported on the caller's thread
            self._done.put(_InputFailed(exc))
        finally:
            self.submitted = count
            self._done.put(_End(count))

    def _collect(self) -> Iterator[Result]:
        total, given, next_seq = None, 0, 0
        held: dict[int, Result] = {}
        while total is None or given < total:
            if self._stop.is_set():
                break
            try:
                msg = self._done.get(timeout=self._resubmit_due())
            except queue.Empty:
                continue
            if isinstance(msg, _End):
                total = msg.count
                continue
            if isinstance(msg, _InputFailed):
                raise msg.exc
            seq, result = msg
            if isinstance(result, _Again):
                heapq.heappush(self._retries, (time.monotonic() + result.delay, seq, result))
                continue
            if not self.options.ordered:
                given += 1
                self._slots.release()
                yield result
                continue
            held[seq] = result
            while next_seq in held:
                given += 1
                next_seq += 1
                self._slots.release()
                yield held.pop(next_seq - 1)
        yield from self._leftovers(held)

    def _resubmit_due(self) -> float:
        """Start the retries whose wait is over; return how long the caller may block."""
        now = time.monotonic()
        while self._retries and self._retries[0][0] <= now:
            _, seq, again = heapq.heappop(self._retries)
            args = (seq, again.target, again.result.attempts + 1, again.started)
            self._pool.apply_async(_work, args, callback=self._done.put)
        return min(0.1, self._retries[0][0] - now) if self._retries else 0.1

    def _leftovers(self, held: dict[int, Result]) -> Iterator[Result]:
        """After a stop: what already finished is still written, nothing is waited for.

        A URL waiting for a retry is written with its last attempt's record.
        """
        for _, seq, again in self._retries:
            held[seq] = again.result
        while True:
            try:
                msg = self._done.get_nowait()
            except queue.Empty:
                break
            if isinstance(msg, tuple) and msg[1] is not None:
                held[msg[0]] = msg[1].result if isinstance(msg[1], _Again) else msg[1]
        for seq in sorted(held):
            yield held[seq]


def run(items: Iterable[Item], options: Options | None = None, pool_factory: PoolFactory = _thread_pool) -> Run:
    """Fetch already-parsed items (see `inputs`); iterate the returned Run for results."""
    return Run(items, options or Options(), pool_factory)


def fetch(urls: Iterable[str], options: Options | None = None) -> Iterator[Result]:
    """Fetch URL lines concurrently; yields one Result per non-blank, non-comment line."""
    options = options or Options()
    yield from run(parse(urls, "-", options.default_scheme), options)
