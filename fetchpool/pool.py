"""The one place concurrency lives: a bounded, streaming fan-out over a Pool.

The stock `Pool.imap*` consumes its whole input up front, so ten million lines would sit
in memory. Here a feeder thread reads input only while fewer than `options.window` URLs
are in flight or waiting to be written, and work is submitted with `apply_async`, which
every Pool-compatible backend has (`multiprocessing.dummy`, `multiprocessing`, Ray's Pool).
Results come back through one queue to the caller's thread, which alone yields them.

With per-host or rate limits, URLs that must wait are parked on the caller's thread, not
in a worker, so a busy host never holds a thread or stalls the others.
"""

from __future__ import annotations

import heapq
import itertools
import math
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from multiprocessing.pool import ThreadPool
from typing import Any
from urllib.parse import urlsplit

from .client import Client, echoed, fetch_attempt
from .inputs import Item, Target, parse
from .limits import HostGate
from .options import Options
from .result import ErrorKind, Result
from .retry import retry_delay

PoolFactory = Callable[..., Any]
_worker: dict[str, Any] = {}
_STOPPED_RUNS: set[int] = set()  # runs whose queued URLs workers should skip
_RUN_IDS = itertools.count(1)


def _init_worker(options: Options) -> None:
    """Pool initializer: each worker thread (or process) gets its own Client."""
    local = _worker.setdefault("local", threading.local())
    local.client = Client(options)


def _client() -> Client:
    client = getattr(_worker.get("local"), "client", None)
    if client is None:  # a backend that skipped the initializer
        raise RuntimeError("worker not initialised")
    return client


class _Again:
    """A worker's answer meaning "retry this URL after `delay` s"; `result` is the attempt so far."""

    def __init__(self, target: Target, result: Result, delay: float, started: float) -> None:
        self.target, self.result, self.delay, self.started = target, result, delay, started


def _work(seq: int, target: Target, attempt: int = 1, started: float | None = None, run_id: int = 0) -> tuple[int, Any]:
    """Runs in a worker. Never raises: a bug becomes an `internal` record, not a lost line.

    After a stop, URLs still queued are skipped (None) instead of fetched. A retry is not
    waited for here: the caller's thread schedules it, so the worker is free meanwhile.
    """
    if run_id in _STOPPED_RUNS:
        return seq, None
    try:
        client = _client()
        started = started if started is not None else time.monotonic()
        result, retry_after = fetch_attempt(target, client, attempt, started)
        delay = retry_delay(result, retry_after, client.options, started, client.method_of(target))
        if delay is not None:
            return seq, _Again(target, result, delay, started)
    except BaseException as exc:  # noqa: BLE001 - the promise is one record per line
        message = f"{type(exc).__name__}: {exc}"
        result = Result.failed(target.url, target.line, ErrorKind.INTERNAL, message, target.input)
        result.extra = echoed(target) or None
    return seq, result


def _loop(jobs: queue.SimpleQueue[Any], deliver: Callable[[Any], None]) -> None:
    """A long-lived worker for thread pools: one task per thread, not one per URL.

    `apply_async` per URL costs a task object, an event and two hand-offs through the
    pool's own threads; workers that share the run's queues skip all of that.
    """
    while (job := jobs.get()) is not None:
        deliver(_work(*job))


def _thread_pool(processes: int, initializer: Callable[..., None], initargs: tuple[Any, ...]) -> Any:
    from multiprocessing.dummy import Pool

    return Pool(processes, initializer=initializer, initargs=initargs)


class _End:
    def __init__(self, count: int) -> None:
        self.count = count


class _InputFailed:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class _Parked:
    """A URL read from input, to be started by the caller's thread when limits allow."""

    def __init__(
        self, seq: int, target: Target, attempt: int = 1, started: float | None = None, previous: Result | None = None
    ) -> None:
        self.seq, self.target, self.attempt, self.started = seq, target, attempt, started
        self.previous = previous  # the last attempt's record, written if the run stops first
        self.host = urlsplit(target.url).hostname or ""


class Run:
    """Iterate results of fetching `items`; `stop()` ends it early, keeping what finished.

    `on_idle`, if set, is called whenever the run is about to wait for a result: a writer
    that batches output flushes there, so no finished record ever waits on a slow one.
    """

    def __init__(self, items: Iterable[Item], options: Options, pool_factory: PoolFactory = _thread_pool) -> None:
        self.options = options
        self.on_idle: Callable[[], None] | None = None
        self.read = 0  # items taken from input so far: after a stop, `read` minus those yielded were never fetched
        self._items = items
        self._pool_factory = pool_factory
        self._done: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._slots = threading.Semaphore(options.window)
        self._stop = threading.Event()
        self._wakeups: list[tuple[float, int, Any]] = []  # (when, tie, _Parked or host)
        self._tie = 0
        self._gate = HostGate(options.per_host, options.rate, options.rate_per_host) if options.limited else None
        self._parked: dict[str, deque[_Parked]] = {}
        self._pool: Any = None
        self._id = next(_RUN_IDS)
        self._jobs: queue.SimpleQueue[Any] | None = None  # set when workers loop over it

    def stop(self) -> None:
        """Stop reading input and starting URLs; the iterator then ends after what is done."""
        self._stop.set()
        _STOPPED_RUNS.add(self._id)

    def pending(self) -> bool:
        """True when a message is already waiting: the writer may skip a flush."""
        return not self._done.empty()

    def __iter__(self) -> Iterator[Result]:
        self._pool = self._pool_factory(self.options.concurrency, _init_worker, (self.options,))
        if isinstance(self._pool, ThreadPool):
            self._jobs = queue.SimpleQueue()
            for _ in range(self.options.concurrency):
                self._pool.apply_async(_loop, (self._jobs, self._done.put))
        threading.Thread(target=self._feed, name="fetchpool-feeder", daemon=True).start()
        try:
            yield from self._collect()
        finally:
            self.stop()
            if self._jobs is not None:
                for _ in range(self.options.concurrency):
                    self._jobs.put(None)
            self._pool.close()

    def _submit(self, args: tuple[Any, ...]) -> None:
        """Hand one URL to the workers: their shared queue, or the Pool API for other backends."""
        if self._jobs is not None:
            self._jobs.put(args)
        else:
            self._pool.apply_async(_work, args, callback=self._done.put)

    # -- input side (feeder thread) ------------------------------------------------------

    def _feed(self) -> None:
        count = 0
        try:
            for item in self._items:
                self.read += 1  # only this thread writes it
                while not self._slots.acquire(timeout=0.1):
                    if self._stop.is_set():
                        return
                if self._stop.is_set():
                    return
                if not isinstance(item, Target):
                    self._done.put((count, item))
                elif self._gate is None:
                    self._submit((count, item, 1, None, self._id))
                else:
                    self._done.put(_Parked(count, item))  # the caller's thread decides when
                count += 1
        except BaseException as exc:  # noqa: BLE001 - reported on the caller's thread
            self._done.put(_InputFailed(exc))
        finally:
            self._done.put(_End(count))

    # -- output side (the caller's thread) -------------------------------------------------

    def _collect(self) -> Iterator[Result]:
        total, given, next_seq = None, 0, 0
        held: dict[int, Result] = {}
        while total is None or given < total:
            if self._stop.is_set():
                break
            try:
                msg = self._done.get_nowait()
            except queue.Empty:
                if self.on_idle is not None:
                    self.on_idle()
                try:
                    msg = self._done.get(timeout=self._wake_due())
                except queue.Empty:
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
            if isinstance(result, _Again):
                again = _Parked(seq, result.target, result.result.attempts + 1, result.started, result.result)
                self._later(result.delay, again)
                self._finished(result.target)
                continue
            if result is None:  # skipped after a stop
                continue
            if result.attempts:
                self._finished(result)
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

    def _start(self, job: _Parked) -> None:
        self._submit((job.seq, job.target, job.attempt, job.started, self._id))

    def _later(self, delay: float, what: Any) -> None:
        self._tie += 1
        heapq.heappush(self._wakeups, (time.monotonic() + delay, self._tie, what))

    def _park(self, job: _Parked) -> None:
        if self._gate is None:
            return self._start(job)
        key = job.host if self._gate.keyed_by_host else "*"
        self._parked.setdefault(key, deque()).append(job)
        self._offer(key)

    def _offer(self, key: str) -> None:
        """Start what the limits allow of the URLs parked under `key`."""
        assert self._gate is not None
        waiting = self._parked.get(key)
        now = time.monotonic()
        while waiting:
            wait = self._gate.admit(waiting[0].host, now)
            if wait == 0.0:
                self._start(waiting.popleft())
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
        host = urlsplit(record.url).hostname or ""
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
        return min(0.1, max(self._wakeups[0][0] - now, 0.0)) if self._wakeups else 0.1

    def _leftovers(self, held: dict[int, Result]) -> Iterator[Result]:
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
    yield from run(parse(urls, "-", options.default_scheme, options.input_format), options)
