"""The processes engine's side of `multiprocessing`: how its children start, and what a command stops.

Both are about the process as a whole (signals, the resource tracker), not one run.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from typing import Any


def process_pool(processes: int, initializer: Callable[..., None], initargs: tuple[Any, ...]) -> Any:
    """`multiprocessing.Pool` with 'spawn' (no fork of a process whose threads hold locks),
    whose children never see a terminal's Ctrl-C.

    A terminal sends SIGINT to the whole foreground job; a spawned child spends a second
    importing requests before `worker.start` can ignore it, and would print a
    KeyboardInterrupt traceback. So SIGINT is blocked in this thread while the Pool starts
    them: a blocked signal stays blocked across fork and exec, in the interpreter's start-up
    too, and the Pool's own threads, which start any replacement, are created here and
    inherit it. The parent loses nothing: a Ctrl-C meanwhile goes to one of its other
    threads, or waits until the mask is restored. (Ignoring SIGINT around the start instead
    would drop a Ctrl-C that came meanwhile; a child in its own process group or session
    would no longer be part of the job it was started in.) The resource tracker is started
    first because starting it unblocks SIGINT in the calling thread.
    """
    import multiprocessing
    from multiprocessing import resource_tracker

    context = multiprocessing.get_context("spawn")
    if not hasattr(signal, "pthread_sigmask"):
        return context.Pool(processes, initializer=initializer, initargs=initargs)
    resource_tracker.ensure_running()
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        return context.Pool(processes, initializer=initializer, initargs=initargs)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def release_processes() -> None:
    """Stop and reap what `multiprocessing` started in this process; for a command about to exit.

    A stopped or finished run has stopped its own workers. What remains is the resource
    tracker, which would outlive the command by the moment it takes to notice (a zombie
    until init reaps it), and, after an immediate exit, workers the run could not stop.
    Only a command calls this: it owns its interpreter. In a library caller's interpreter
    the tracker is shared with everything else, so it is left to `multiprocessing`.
    """
    if "multiprocessing" not in sys.modules:
        return  # no engine of processes ran here
    import multiprocessing
    from multiprocessing import resource_tracker

    for _ in range(3):  # a Pool still running starts replacements meanwhile
        children = multiprocessing.active_children()
        for child in children:
            child.kill()
        for child in children:
            child.join(timeout=1.0)
    if multiprocessing.active_children():
        return  # they hold the tracker's pipe: it could not end before them
    stop = getattr(resource_tracker._resource_tracker, "_stop", None)  # private, in 3.8 to 3.13
    try:
        if stop is not None:
            stop()
    except Exception:  # noqa: BLE001 - nothing here may keep the command from exiting
        pass
