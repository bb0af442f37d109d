"""Where fetches run: threads in this process, or processes behind any Pool-API factory.

An engine only starts workers, takes jobs and hands each outcome to `deliver`; all
scheduling (window, limits, retries, order, stop) is the scheduler's, on the caller's
thread, the same for every engine. `submit` never blocks: the scheduler keeps at most
`concurrency` jobs in flight, which is never more than the engine's threads.
"""

from __future__ import annotations

import gc
import math
import os
import queue
import shutil
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from ..options import Options
from . import worker
from .spawn import process_pool
from .worker import Deliver, Job

START_TIMEOUT = 60.0  # spawning imports requests in every child; a loaded machine is slow
ADMIT_TIMEOUT = 30.0  # for a connection to answer the run's key (a worker does in milliseconds)
MAX_PENDING = 64  # connections answering at once; more are closed unheard
PoolFactory = Callable[..., Any]  # (processes, initializer, initargs) -> a Pool


class Cluster(Protocol):
    """Machines that workers may run on, reached over TCP (Ray): joined before the Pool starts."""

    def join(self, processes: int) -> tuple[str, int]:
        """Start or join the cluster: the address its workers reach this process at, and
        the number of worker processes to run (`processes`, or the cluster's choice for 0)."""
        ...

    def leave(self) -> None:
        """Stop what `join` started, or disconnect; safe to call again, or without a join."""
        ...


class Engine(Protocol):
    def start(self, deliver: Deliver, stopped: threading.Event | None = None) -> None: ...

    def submit(self, jobs: Sequence[Job]) -> None: ...

    def shutdown(self, now: bool = False) -> None: ...


class ThreadEngine:
    """`concurrency` long-lived threads over one shared queue, each with its own Client.

    One task per thread, not one per URL: `apply_async` per URL costs a task object, an
    event and two hand-offs through a Pool's own threads, a tenth of a fetch's CPU.
    """

    def __init__(self, options: Options) -> None:
        self.options = options
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []

    def start(self, deliver: Deliver, stopped: threading.Event | None = None) -> None:
        for n in range(self.options.concurrency):
            thread = threading.Thread(
                target=worker.loop, args=(self._jobs, deliver, self.options), name=f"fetchpool-{n}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def submit(self, jobs: Sequence[Job]) -> None:
        for job in jobs:
            self._jobs.put(job)

    def shutdown(self, now: bool = False) -> None:
        """Threads end after their current URL; `now` drops queued URLs and does not wait."""
        while now:
            try:
                self._jobs.get_nowait()
            except queue.Empty:
                break
        for _ in self._threads:
            self._jobs.put(None)
        if not now:
            for thread in self._threads:
                thread.join(timeout=self.options.timeout + 1)


class _Child:
    """One connected worker process and the jobs it holds (for the record if it dies)."""

    def __init__(self, conn: Any, pid: int) -> None:
        self.conn, self.pid = conn, pid
        self.held: dict[int, tuple[Job, float]] = {}  # seq -> (job, when it was sent)


class PoolEngine:
    """Worker processes from any Pool-API factory, each fetching with its own threads.

    The Pool is used only to start and stop processes: its initializer (`worker.start`)
    connects each child back to a listener here and serves over that connection, jobs
    one way and results the other, a message per burst. This keeps every child's jobs known, so a child
    that dies (kill -9, the OOM killer) turns exactly the URLs it held into `internal`
    records, and nothing is shared that a dying child could leave locked (as a
    `multiprocessing.Queue` lock would be). A Pool that replaces dead workers
    (multiprocessing's does) brings the lost capacity back: the new child connects too.
    """

    def __init__(
        self,
        options: Options,
        factory: PoolFactory = process_pool,
        processes: int | None = None,
        cluster: Cluster | None = None,
        respawns: bool = True,
    ) -> None:
        self.options = options
        self._cluster = cluster  # workers on other machines too: TCP, not a local socket
        self._respawns = respawns  # the Pool replaces a dead worker (multiprocessing's; Ray's does not)
        self._size(processes or options.processes)
        self._factory = factory
        self._lock = threading.RLock()
        self._ready = threading.Condition(self._lock)
        self._children: list[_Child] = []
        self._backlog: list[Job] = []  # submitted before any child connected
        self._closing = False
        self._orphaned = False  # every worker died and none came back
        self._deliver: Deliver = lambda seq, outcome: None
        self._listener: Any = None
        self._socket_dir: str | None = None
        self._authkey = os.urandom(32)
        self._pool: Any = None
        self._pending: set[Any] = set()  # connections still to prove they are the run's

    def _size(self, processes: int) -> None:
        """P processes of ceil(c / P) threads each: `-c` is shared (0 processes: not known yet)."""
        self.processes = min(processes, self.options.concurrency)
        self.threads = math.ceil(self.options.concurrency / self.processes) if self.processes else 0

    def start(self, deliver: Deliver, stopped: threading.Event | None = None) -> None:
        """Start the workers and wait until they are all connected, or the run is `stopped`."""
        stopped = stopped or threading.Event()
        if stopped.is_set():
            return  # stopped before it began: nothing to start, nor to stop later
        self._deliver = deliver
        try:
            self._listen()
            local = self._cluster is None
            environ = None if local else worker.fetch_environ()  # a local child inherits it
            args = (self.options, self._listener.address, self._authkey, self.threads, local, environ)
            threading.Thread(target=self._accept, name="fetchpool-accept", daemon=True).start()  # Ray's Pool waits
            self._pool = self._factory(self.processes, worker.start, args)
        except BaseException:
            self.shutdown(now=True)
            raise
        self._await_children(stopped)

    def _listen(self) -> None:
        """Where workers connect: a local socket, or for a cluster its address of this machine.

        A cluster's workers may run on any of its machines, so the listener is on the
        address the cluster knows this machine by (127.0.0.1 for a local or loopback Ray),
        and the authkey's challenge keeps out anyone else who can reach it.
        """
        from multiprocessing.connection import Listener

        if self._cluster is None:
            self._listener = Listener(self._socket_address(), family="AF_UNIX")  # each admitted by its key
            return
        host, processes = self._cluster.join(self.processes)
        self._size(processes)
        self._listener = Listener((host, 0), backlog=max(self.processes, 16))  # they connect all at once

    def _socket_address(self) -> str:
        """Where local workers connect: nothing on disk that an exit could leave behind.

        Linux has abstract socket names; elsewhere the socket is in a folder of this run's,
        removed at shutdown (multiprocessing's own folder goes only at a clean exit, and a
        stopped command exits at once).
        """
        if sys.platform == "linux":
            return f"\0fetchpool-{os.getpid()}-{os.urandom(8).hex()}"
        self._socket_dir = tempfile.mkdtemp(prefix="fetchpool-")
        return os.path.join(self._socket_dir, "workers")

    def _await_children(self, stopped: threading.Event) -> None:
        """Start fetching only once the workers are there, so limits see no start-up burst.

        A stop (Ctrl-C, SIGTERM) ends the wait at once: the run then ends without
        fetching, and its shutdown stops the children, connected or still starting.
        """
        end = time.monotonic() + START_TIMEOUT
        with self._ready:
            while len(self._children) < self.processes and not stopped.is_set():
                left = end - time.monotonic()
                if left <= 0:
                    break
                self._ready.wait(min(left, 0.1))
            started = bool(self._children) or stopped.is_set()
        if not started:
            self.shutdown(now=True)
            raise RuntimeError(f"no worker process connected within {START_TIMEOUT:.0f} s")

    def submit(self, jobs: Sequence[Job]) -> None:
        with self._lock:
            if self._children:
                return self._send(jobs)
            if not self._orphaned:
                self._backlog.extend(jobs)  # a replacement for a dead worker may still connect
                return
        for job in jobs:
            self._deliver(job[0], self._lost(job, None, "no worker process left to fetch this URL"))

    def _await_replacement(self) -> None:
        """Every worker died: give a replacement START_TIMEOUT to connect, else fail what waits.

        multiprocessing's Pool starts replacements; Ray's does not restart its actors, so
        with it what waits fails at once rather than after a minute of nothing.
        """
        end = time.monotonic() + (START_TIMEOUT if self._respawns else 0.0)
        with self._ready:
            while not self._children and not self._closing and time.monotonic() < end:
                self._ready.wait(0.1)
            if self._children or self._closing:
                return
            self._orphaned = True
            waiting, self._backlog = self._backlog, []
        self.submit(waiting)

    def _send(self, jobs: Sequence[Job]) -> None:
        """Deal jobs to the least busy children (under the lock)."""
        batches: dict[int, list[Job]] = {}
        now = time.monotonic()
        for job in jobs:
            child = min(self._children, key=lambda c: len(c.held))
            child.held[job[0]] = (job, now)
            batches.setdefault(id(child), []).append(job)
        for child in self._children:
            if id(child) in batches:
                try:
                    child.conn.send(batches[id(child)])
                except OSError:
                    pass  # it died: its receiver turns what it held into records

    def _accept(self) -> None:
        """Take connections; each proves it is the run's on a thread of its own.

        A cluster's listener can be reached from other machines: one that connects and
        says nothing holds up only its own thread for ADMIT_TIMEOUT, not the workers that
        connect after it, and at most MAX_PENDING such wait at once.
        """
        while True:
            try:
                conn = self._listener.accept()
            except OSError:
                if self._closing:
                    return
                time.sleep(0.05)  # out of descriptors, say: not a busy loop
                continue
            with self._lock:
                if self._closing:
                    conn.close()
                    return
                if len(self._pending) >= MAX_PENDING:
                    conn.close()
                    continue
                self._pending.add(conn)
            threading.Thread(target=self._admit, args=(conn,), name="fetchpool-admit", daemon=True).start()

    def _admit(self, conn: Any) -> None:
        """A worker if it answers the run's key in time (multiprocessing's challenge, both ways)."""
        from multiprocessing.connection import answer_challenge, deliver_challenge

        timer = threading.Timer(ADMIT_TIMEOUT, _hang_up, (conn,))
        timer.start()
        try:
            deliver_challenge(conn, self._authkey)
            answer_challenge(conn, self._authkey)
            pid = conn.recv()
        except Exception:  # noqa: BLE001 - not one of the run's workers, too slow, or gone
            pid = None
        finally:
            timer.cancel()
        with self._lock:
            self._pending.discard(conn)
            if pid is None or self._closing:
                conn.close()
                return
            child = _Child(conn, pid)
            self._children.append(child)
            self._ready.notify_all()
            backlog, self._backlog = self._backlog, []
            if backlog:
                self._send(backlog)
        threading.current_thread().name = "fetchpool-receive"
        self._receive(child)

    def _receive(self, child: _Child) -> None:
        deliver = self._deliver
        message = f"worker process {child.pid} ended before it answered for this URL (killed, or out of memory)"
        while True:
            try:
                batch = child.conn.recv()
            except (EOFError, OSError):
                break
            except Exception as exc:  # noqa: BLE001 - a message this fetchpool cannot read (another version?)
                message = f"cannot read what worker process {child.pid} sent: {type(exc).__name__}: {exc}"[:300]
                break
            with self._lock:
                for seq, _ in batch:
                    child.held.pop(seq, None)
            for seq, outcome in batch:
                deliver(seq, outcome)
        with self._lock:  # which `_send` holds while it writes to the connection
            child.conn.close()  # here, not by a shutdown: closing it under a recv() is not safe
            if child in self._children:
                self._children.remove(child)
            lost, child.held = child.held, {}
            if self._closing:
                return
            if not self._children:
                threading.Thread(target=self._await_replacement, name="fetchpool-respawn", daemon=True).start()
        for seq, (job, sent) in lost.items():
            deliver(seq, self._lost(job, sent, message))

    def _lost(self, job: Job, sent: float | None, message: str) -> Any:
        """The `internal` record of a URL no worker will fetch, timed from its first attempt.

        A first attempt's start is known only to the child, so the time it was sent stands
        for it. A start from a worker on another machine is on another clock: not used.
        """
        started = job[3] if job[3] is not None and self._cluster is None else sent
        return worker.internal(job[1], job[2], message, started)

    def shutdown(self, now: bool = False) -> None:
        """Stop every child at once: a stop has nothing left to wait for, nor has a finished run.

        Each step runs whatever the one before raised (a Ray whose connection broke), and
        the cluster is left last in any case.
        """
        with self._lock:
            if self._closing:
                return
            self._closing = True
            children, self._children = self._children, []
            pending, self._pending = set(self._pending), set()
        pool, self._pool = self._pool, None
        try:
            if pool is not None:
                pool.terminate()  # SIGTERM to each child, then reaped: no zombie stays
                del pool
                gc.collect()  # its queues' semaphores unlinked now, or the resource tracker warns at exit
        finally:
            try:
                for conn in [child.conn for child in children] + list(pending):
                    _hang_up(conn)  # a child the Pool did not know of sees EOF and exits
                if self._listener is not None:
                    self._wake_acceptor()
                    self._listener.close()
                if self._socket_dir is not None:
                    shutil.rmtree(self._socket_dir, ignore_errors=True)
            finally:
                if self._cluster is not None:
                    self._cluster.leave()

    def _wake_acceptor(self) -> None:
        from multiprocessing.connection import Client as Connect

        try:
            Connect(self._listener.address).close()
        except Exception:  # noqa: BLE001 - the acceptor may be gone already
            pass


def _hang_up(conn: Any) -> None:
    """End a connection that another thread may be reading: its recv() sees EOF, and
    that thread closes it (closing it here could free its descriptor under the read)."""
    try:
        with socket.socket(fileno=os.dup(conn.fileno())) as sock:
            sock.shutdown(socket.SHUT_RDWR)
    except OSError:  # closed already
        pass


def make_engine(options: Options, factory: PoolFactory | None = None) -> Engine:
    """The engine `options.engine` names, or processes from `factory` when one is given."""
    if factory is not None:
        return PoolEngine(options, factory)
    if options.engine == "processes":
        return PoolEngine(options)
    if options.engine == "ray":
        from .rayengine import ray_engine

        return ray_engine(options)
    return ThreadEngine(options)
