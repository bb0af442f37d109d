"""What runs where the fetching happens: one URL's attempt, a worker thread's loop, a child's setup.

Nothing here is module state: a worker thread keeps its `Client` in a local variable, and a
worker process gets everything from its initialiser's arguments (Ray's Pool cannot carry
module globals set by an initialiser into its actors, ray-project/ray#37705), then serves
the parent over one connection until the parent goes away.
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from ..client import Client, echoed, fetch_attempt
from ..inputs import Target
from ..options import Options
from ..result import ErrorKind, Result
from ..retry import retry_delay

Job = tuple[int, Target, int, "float | None"]  # seq, target, attempt, first attempt's start
Deliver = Callable[[int, Any], None]  # (seq, Result or Again), called from worker threads
CONNECT_TIMEOUT = 10.0  # for a worker on a cluster's machine to reach the run's listener
# Each thread waiting for the GIL wakes every switch interval to ask for it: at Python's 5 ms,
# the 200 threads whose replies are ready at -c 256 wake 40,000 times a second to no use.
# Fetch threads give up the GIL at every socket call anyway, so a longer
# interval only lets a thread finish its stretch of Python (one reply) before another runs.
SWITCH_INTERVAL = 0.05


class Again:
    """A worker's answer meaning "retry this URL after `delay` s"; `result` is the attempt so far."""

    __slots__ = ("target", "result", "delay", "started")

    def __init__(self, target: Target, result: Result, delay: float, started: float) -> None:
        self.target, self.result, self.delay, self.started = target, result, delay, started

    def __reduce__(self) -> tuple[Any, ...]:
        return Again, (self.target, self.result, self.delay, self.started)


def work(job: Job, client: Client) -> Result | Again:
    """One attempt at one URL. Never raises: a bug becomes an `internal` record, not a lost line.

    A retry is not waited for here: the scheduler plans it, so the worker is free meanwhile.
    """
    _, target, attempt, first = job
    started = first if first is not None else time.monotonic()
    try:
        result, retry_after = fetch_attempt(target, client, attempt, started)
        delay = retry_delay(result, retry_after, client.options, started, client.method_of(target))
        if delay is not None:
            return Again(target, result, delay, started)
        return result
    except BaseException as exc:  # noqa: BLE001 - the promise is one record per line
        return internal(target, attempt, f"{type(exc).__name__}: {exc}", started)


def internal(target: Target, attempt: int, message: str, started: float | None = None) -> Result:
    """The record of a URL whose fetch broke inside fetchpool (counted as attempted).

    `started` is the first attempt's start, as for any record: the time until now counts.
    """
    result = Result.failed(str(target.url), target.line, ErrorKind.INTERNAL, message, target.input)
    result.attempts = attempt
    if started is not None:
        result.elapsed_ms = round(max(time.monotonic() - started, 0.0) * 1000, 3)
    result.extra = echoed(target) or None
    return result


def loop(jobs: queue.SimpleQueue[Job | None], deliver: Deliver, options: Options) -> None:
    """A long-lived worker thread: one Client, jobs from a shared queue until a None."""
    client = Client(options)
    try:
        while (job := jobs.get()) is not None:
            deliver(job[0], work(job, client))
    finally:
        client.close()


def setup_process(options: Options) -> None:
    """Per-process settings of a fetching process: quick header parsing, no `-k` warning flood,
    and a GIL switch interval for hundreds of threads.

    The CLI calls it for its own process; worker processes call it from `start`. The
    library on threads does not, so it leaves the caller's interpreter as it found it.
    """
    from .. import fastheaders

    fastheaders.install()
    sys.setswitchinterval(SWITCH_INTERVAL)
    if not options.verify:  # asked for with -k: one warning per host would flood stderr
        import urllib3

        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)


def fetch_environ() -> dict[str, str]:
    """The settings of this process's environment that decide how a URL is fetched: its
    proxies (any `*_proxy`, `no_proxy`, either case, as urllib reads them) and CA bundle."""
    return {name: value for name, value in os.environ.items() if _fetch_setting(name)}


def _fetch_setting(name: str) -> bool:
    return name.lower().endswith("_proxy") or name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


def adopt_environ(environ: dict[str, str]) -> None:
    """Fetch as the run's process would: a worker on another machine of a cluster starts
    with that machine's environment (its `ray start`'s), whose proxies are not the run's."""
    for name in [name for name in os.environ if _fetch_setting(name) and name not in environ]:
        del os.environ[name]
    os.environ.update(environ)


def start(
    options: Options,
    address: Any,
    authkey: bytes,
    threads: int,
    block: bool = True,
    environ: dict[str, str] | None = None,
) -> None:
    """Pool initialiser of a worker process: set it up, connect to the parent, serve it.

    It never returns: the process serves until the parent closes the connection, then
    exits. So the Pool's own worker loop never runs here, and this process never holds
    the lock of the Pool's task queue; a child killed while holding it would leave the
    Pool unable to terminate. Only the parent handles Ctrl-C (a terminal sends it to the
    whole process group): `spawn.process_pool` starts its children with SIGINT blocked, and
    ignoring it here covers any other Pool and drops one still pending. A Pool that waits
    for its initializer (Ray's) gets `block=False`: serving then runs on a thread.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        from multiprocessing.connection import Client as Connect

        if environ is not None:
            adopt_environ(environ)
        setup_process(options)
        if isinstance(address, tuple):  # TCP: multiprocessing's connect would wait minutes for no answer
            socket.create_connection(address, timeout=CONNECT_TIMEOUT).close()
        conn = Connect(address, authkey=authkey)
        conn.send(os.getpid())
    except BaseException:  # noqa: BLE001 - the parent is gone, or we cannot serve it
        os._exit(1)
    if not block:
        threading.Thread(target=serve, args=(conn, options, threads), name="fetchpool-serve", daemon=True).start()
        return
    serve(conn, options, threads)


def serve(conn: Any, options: Options, threads: int) -> None:
    """Fetch what the parent sends with `threads` threads; send back each result when ready.

    Results go back in one message per burst: whatever finished while the last message was
    being sent, so nothing waits for a slower URL. When the parent closes the connection
    (the run ended, or the parent died), this process exits at once: nothing here is
    worth finishing and no orphan may stay behind.
    """
    jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
    done: queue.SimpleQueue[tuple[int, Any]] = queue.SimpleQueue()
    for n in range(threads):
        deliver = _putter(done)
        threading.Thread(target=loop, args=(jobs, deliver, options), name=f"fetchpool-{n}", daemon=True).start()
    threading.Thread(target=_send_results, args=(conn, done), name="fetchpool-send", daemon=True).start()
    try:
        while (batch := conn.recv()) is not None:
            for job in batch:
                jobs.put(job)
    except (EOFError, OSError):
        pass
    os._exit(0)


def _putter(done: queue.SimpleQueue[tuple[int, Any]]) -> Deliver:
    def deliver(seq: int, outcome: Any) -> None:
        done.put((seq, outcome))

    return deliver


def _send_results(conn: Any, done: queue.SimpleQueue[tuple[int, Any]]) -> None:
    try:
        while True:
            batch = [done.get()]
            while True:
                try:
                    batch.append(done.get_nowait())
                except queue.Empty:
                    break
            conn.send(batch)
    except (OSError, ValueError):
        os._exit(0)  # the parent is gone
