"""One command-line run: pick the writers from the environment, write every record, summarise.

`cli` turns flags into `Options` and an `OutputPlan`; this module drives the run with them.
Only the main thread writes: records, the live view and the summary.
"""

from __future__ import annotations

import itertools
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from enum import IntEnum
from typing import TYPE_CHECKING, Any, NoReturn, TextIO, cast

from .options import Options
from .output.select import DEFAULT_ACCEPT, AcceptPolicy, FailPolicy, Filtered, RecordFilter
from .result import FIELDS
from .streams import STDIN, STDOUT, Closed, Discard, Guarded, naming, naming_own

if TYPE_CHECKING:
    from .inputs import UrlArgument
    from .monitor import MonitorPlan

Sources = tuple["str | UrlArgument", ...]  # FILEs, `-` and URLs given as arguments, in order


class ExitCode(IntEnum):
    """Process exit status; documented in the README, one test each."""

    OK = 0
    FAILURES = 1
    USAGE = 2
    UNAVAILABLE = 69  # sysexits' EX_UNAVAILABLE: no Ray to run on (--ray-address unreachable, no local Ray)
    IO_ERROR = 74  # sysexits' EX_IOERR: an input or output failed with an OS error
    STATE_BUSY = 75  # sysexits' EX_TEMPFAIL: another run held --state longer than --state-wait
    INTERRUPTED = 130
    BROKEN_PIPE = 141
    TERMINATED = 143


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


@dataclass
class Environment:
    """The streams and what they are connected to, injectable for tests (as httpie does)."""

    stdin: Any = None  # None: the process's own stream, looked up when the command runs
    stdout: TextIO = None  # type: ignore[assignment]
    stderr: TextIO = None  # type: ignore[assignment]
    stdin_isatty: bool = field(default_factory=lambda: _isatty(sys.stdin))
    stdout_isatty: bool = field(default_factory=lambda: _isatty(sys.stdout))
    stderr_isatty: bool = field(default_factory=lambda: _isatty(sys.stderr))
    no_color: bool = field(default_factory=lambda: "NO_COLOR" in os.environ or os.environ.get("TERM") == "dumb")

    def bind(self) -> Environment:
        """Fill unset streams from `sys` as they are now (CliRunner swaps them late).

        A stream closed when the process started is None in `sys`: stdin and stdout then
        fail clearly when used (`Closed`), a closed stderr swallows what it is given.
        """
        self.stdin = self.stdin if self.stdin is not None else sys.stdin or Closed(STDIN)
        self.stdout = self.stdout if self.stdout is not None else sys.stdout or Closed(STDOUT)
        self.stderr = self.stderr if self.stderr is not None else sys.stderr or Discard()
        return self

    @property
    def stdin_bytes(self) -> Any:
        return getattr(self.stdin, "buffer", self.stdin)


@dataclass(frozen=True)
class OutputPlan:
    """Everything about output the flags decided: format, destination, selection, policy."""

    format: str = "auto"  # auto | table | jsonl | json | csv
    fields: tuple[str, ...] = FIELDS
    output: str | None = None
    summary_json: str | None = None
    keep: RecordFilter = field(default_factory=RecordFilter)
    accept: AcceptPolicy = DEFAULT_ACCEPT
    fail_on: FailPolicy = field(default_factory=FailPolicy)
    progress: bool = True
    quiet: bool = False
    append: bool = False  # -o FILE is appended to, not replaced (--resume)

    def records_on_stdout(self, env: Environment) -> bool:
        """True when stdout carries the records themselves (not the live view, not `-o FILE`)."""
        return self.output is None and not (self.record_format(env) == "table" and env.stdout_isatty)

    def record_format(self, env: Environment) -> str:
        """The format of the records themselves; `table` on a terminal means the live view."""
        if self.format != "auto":
            return self.format
        if self.output is not None:
            return {".csv": "csv", ".json": "json"}.get(os.path.splitext(self.output)[1].lower(), "jsonl")
        return "table" if env.stdout_isatty else "jsonl"


STUCK_OUTPUT = 1.0  # s a stopped run waits for a write of its records to be taken
STOP_DEADLINE = 10.0  # s after a stop, the command exits whatever it still waits for


class Stopper:
    """First Ctrl-C (or SIGTERM) stops the run gracefully; a second Ctrl-C exits at once."""

    def __init__(self) -> None:
        self.code: ExitCode | None = None
        self.run: Any = None
        # `ray.init` never looks at a stop, and holds the interpreter in C++ waits for its
        # servers (for good if a signal to every process killed them). A stop then exits at once.
        self.blocking_start = False
        self.records: Any = None  # the records' writer, whose write a reader may never take
        self._first = 0.0
        self._keep: tuple[socket.socket, socket.socket] | None = None

    def __call__(self, signum: int, frame: Any) -> None:
        # A wrapper such as `timeout` forwards the terminal's SIGINT: the same press arrives
        # twice within moments. Only a press at least half a second later means "now".
        if self.code is not None and signum == signal.SIGINT and time.monotonic() - self._first > 0.5:
            if _isatty(sys.stderr):
                sys.stderr.write("\x1b[?25h")  # give the cursor back
            self._quit(ExitCode.INTERRUPTED)
        if self.code is not None:
            return
        self._first = time.monotonic()
        self.code = ExitCode.INTERRUPTED if signum == signal.SIGINT else ExitCode.TERMINATED
        if self.blocking_start and self.run is not None and self.run.starting:
            exit_now(self.code)  # nothing fetched yet, and Ray's start cannot be interrupted
        if self.run is not None:
            self.run.stop()
        threading.Thread(target=self._watch_stop, name="fetchpool-stopping", daemon=True).start()

    def _watch_stop(self) -> None:
        """Exit once the records have waited STUCK_OUTPUT for a reader that stopped reading,
        and in any case STOP_DEADLINE after the stop.

        A stop writes what finished, but a pipe whose reader takes nothing more (a stuck
        consumer) blocks that write for good, and Python retries a write a signal
        interrupted: the stop would wait for the reader. What it could not write is lost
        to that reader anyway. The deadline is for a wait nobody foresaw (a stop normally
        ends the command within a second): `timeout` and systemd send one SIGTERM, and the
        command must end with 143 rather than their SIGKILL's 137 some time later.
        """
        while True:
            time.sleep(0.1)
            since = getattr(self.records, "writing_since", None)
            now = time.monotonic()
            stuck = since is not None and now - max(since, self._first) >= STUCK_OUTPUT
            if stuck or now - self._first >= STOP_DEADLINE:
                self._quit(self.code or ExitCode.TERMINATED)

    def _quit(self, code: ExitCode) -> NoReturn:
        self._close_run()
        exit_now(code)

    def _close_run(self) -> None:
        """Stop the run's workers before exiting at once, waiting a second at most: the main
        thread, interrupted for this, may hold what closing needs."""
        if self.run is None:
            return
        closing = threading.Thread(target=self.run.close, name="fetchpool-close", daemon=True)
        closing.start()
        closing.join(timeout=1.0)

    def install(self) -> None:
        signal.signal(signal.SIGINT, self)
        signal.signal(signal.SIGTERM, self)
        if self.blocking_start:
            self._watch_start()

    def _watch_start(self) -> None:
        """Act on a stop while the engine starts from a thread, not only from the main one.

        Python runs a signal handler on the main thread between bytecodes, and `ray.init`
        holds that thread in C++ waits: for half a minute when a SIGTERM to the whole job
        killed the servers it waits for. The signal's wakeup byte reaches this thread at once.
        """
        try:
            wake, woken = socket.socketpair()
            woken.setblocking(False)
            signal.set_wakeup_fd(woken.fileno(), warn_on_full_buffer=False)
        except (OSError, ValueError):  # not the main thread (the library), or no sockets
            return

        def watch() -> None:
            while data := wake.recv(64):
                for signum in data:
                    if signum in (signal.SIGINT, signal.SIGTERM) and self.run is not None and self.run.starting:
                        self(signum, None)

        threading.Thread(target=watch, name="fetchpool-stop-watch", daemon=True).start()
        self._keep = (wake, woken)  # the sockets live as long as the command


def drive(
    env: Environment,
    files: Sources,
    demo: int | None,
    options: Options,
    plan: OutputPlan,
    monitor: MonitorPlan | None = None,
) -> ExitCode:
    """Run the fetch, write every record, show or print the summary; return the exit code."""
    from .output.stats import Stats
    from .pool import run
    from .pool.worker import setup_process

    switch_interval = sys.getswitchinterval()
    setup_process(options)
    _check_streams(env, files, demo, plan)
    if options.engine == "ray":  # Ray writes to fd 1: the records keep a stdout of their own
        from .pool.rayengine import records_stdout

        env = replace(env, stdout=records_stdout(env.stdout))
    stopper = Stopper()
    stopper.blocking_start = options.engine == "ray"
    stopper.install()
    stats = Stats()
    failing = False
    typed = threading.Event() if demo is None and env.stdin_isatty and (not files or "-" in files) else None
    with ExitStack() as stack:
        stack.callback(sys.setswitchinterval, switch_interval)  # a run inside a caller's process (tests)
        # -- monitor: state, resume, shards, dedupe, metrics (fetchpool.monitor) --
        from .monitor import MonitorPlan, Refused, Watch

        monitor = monitor or MonitorPlan()
        plan = replace(plan, append=monitor.resume is not None)
        try:
            watch = Watch.open(monitor, options, stack)
        except Refused as exc:
            _say(env, str(exc))
            return ExitCode(exc.code)
        options = monitor.options(options)
        if monitor.active:
            stats.monitor = watch.counts
        # -- end monitor --
        items = _items(env, files, demo, options, stack)
        items = watch.items(items) if monitor.active else items  # monitor
        if typed is not None:  # URLs typed at the terminal: no live view over what is being typed
            items = _then_set(items, typed)
        fetching = stopper.run = run(items, options)
        records = stopper.records = _records_writer(env, plan, stack)
        live = _live_view(env, plan, stats, files, demo, stopper, stack, typed)
        try:
            for batch in watch.batches(fetching.batches(), plan.accept.apply):  # monitor: ok judged, state kept
                for result in batch:
                    stats.add(result)
                    failing |= watch.fails(result, plan.fail_on.fails)  # monitor: --fail-after, new-failures
                    if live is not None and plan.keep(result):
                        live.write(result)
                if records is not None:
                    records.write_batch(batch)
            stats.read = fetching.read
            stats.finish()
            summary = stats.to_dict(interrupted=stopper.code is not None)
            # The other outputs first: one that cannot be written leaves an atomic -o as it was.
            if plan.summary_json not in (None, "-"):
                _write_summary(env, plan.summary_json, summary)
            watch.finish()  # monitor: the metrics file
            if records is not None:
                records.close()
        except BrokenPipeError:
            fetching.close()
            _broken_pipe()
        if live is not None:
            live.close()
        elif not plan.quiet and (env.stderr_isatty or stopper.code is not None):
            _say(env, stats.line(interrupted=stopper.code is not None))
        if stats.total == 0 and stopper.code is None and not watch.counts["skipped"]:  # skipped: not empty
            failing |= _no_urls(env, plan)
    if plan.summary_json == "-":  # on stdout: after the records
        _write_summary(env, "-", summary)
    if stopper.code is not None:
        _flush(env)
        exit_now(stopper.code)  # in-flight requests are abandoned, not waited for
    return ExitCode.FAILURES if failing else ExitCode.OK


def _check_streams(env: Environment, files: Sources, demo: int | None, plan: OutputPlan) -> None:
    """A closed stdin or stdout that the run needs fails it before anything is fetched."""
    if demo is None and "-" in files and isinstance(env.stdin, Closed):
        raise env.stdin.error("read")
    if (plan.records_on_stdout(env) or plan.summary_json == "-") and isinstance(env.stdout, Closed):
        raise env.stdout.error("write")


def _no_urls(env: Environment, plan: OutputPlan) -> bool:
    """A run that read no URL says so, terminal or not (cron mails stderr); True to fail it."""
    if not plan.quiet:
        _say(env, "fetchpool: no URLs in input")
    return plan.fail_on.empty


def _items(env: Environment, files: Sources, demo: int | None, options: Options, stack: ExitStack) -> Iterator[Any]:
    from .inputs import open_inputs, parse

    if demo is None:
        scheme, form = options.default_scheme, options.input_format  # req-in: --input-format
        return itertools.chain.from_iterable(_named(open_inputs((f,), env.stdin_bytes, scheme, form), f) for f in files)
    from . import demo as demo_server

    base = stack.enter_context(demo_server.serve())
    return parse(demo_server.urls(base, demo), "demo", options.default_scheme)


def _named(items: Iterator[Any], path: str | UrlArgument) -> Iterator[Any]:
    """The items of one input; an OS error while reading it names it."""
    if not isinstance(path, str):  # a URL given as an argument: nothing to read
        yield from items
        return
    with naming("read", STDIN if path == "-" else path):
        yield from items


def _records_writer(env: Environment, plan: OutputPlan, stack: ExitStack) -> Any:
    """The writer for the records, or None when the live view on stdout is all there is.

    The output is opened here, before anything is fetched, so a name that cannot be
    written fails the run at once rather than after the last URL.
    """
    fmt = plan.record_format(env)
    if fmt == "table" and plan.output is None and env.stdout_isatty:
        return None
    name = STDOUT if plan.output is None else plan.output
    if plan.output is None:
        stream = env.stdout
    elif fmt in ("json", "csv"):
        from .output.jsonarray import atomic_path

        atomic = atomic_path(plan.output, newline="" if fmt == "csv" else None)
        stream = stack.enter_context(naming_own("write", plan.output, atomic))
    else:
        with naming("write", plan.output):
            plain = open(plan.output, "a" if plan.append else "w", encoding="utf-8")
        stream = stack.enter_context(naming_own("write", plan.output, plain))
    writer = Guarded(_format_writer(fmt, stream, plan, env), name)
    return Filtered(writer, plan.keep) if plan.keep.active else writer


def _format_writer(fmt: str, stream: TextIO, plan: OutputPlan, env: Environment) -> Any:
    if fmt == "jsonl":
        from .output.jsonl import JsonLinesWriter

        return JsonLinesWriter(stream, plan.fields)
    from .output import WholeLines

    lines = cast(TextIO, WholeLines(stream))  # duck-typed: the writers only write and flush
    if fmt == "json":
        from .output.jsonarray import JsonArrayWriter

        return JsonArrayWriter(lines, plan.fields)
    if fmt == "csv":
        from .output.csvout import CsvWriter

        return CsvWriter(stream, plan.fields)
    from .output.table import PipeConsole, TableWriter

    return TableWriter(PipeConsole(file=lines, no_color=env.no_color, highlight=False))


def _live_view(
    env: Environment,
    plan: OutputPlan,
    stats: Any,
    files: Sources,
    demo: int | None,
    stopper: Stopper,
    stack: ExitStack,
    typed: threading.Event | None = None,
) -> Any:
    """The live view: full on a terminal stdout free of records, else progress on a terminal stderr."""
    records_on_stdout = plan.output is None and not (plan.record_format(env) == "table" and env.stdout_isatty)
    if env.stdout_isatty and not records_on_stdout:
        stream, progress_only = env.stdout, False
    elif env.stderr_isatty and not env.stdout_isatty and plan.progress and not plan.quiet:
        stream, progress_only = env.stderr, True
    else:
        return None
    from rich.console import Console

    from .output.live import LiveWriter

    # --no-progress (and -q) on a terminal stdout: nothing redrawn, only the final report
    interactive = None if plan.progress else False
    console = Console(
        file=stream, no_color=env.no_color, highlight=False, force_terminal=True, force_interactive=interactive
    )
    live = LiveWriter(
        console,
        stats,
        demo,
        progress_only=progress_only,
        interrupted=lambda: stopper.code is not None,
        start_after=typed,
        records_to=plan.output if plan.output not in (None, "-") else None,
    )
    stack.callback(live.close)
    if demo is None:
        live.count_total(files)
    return live


def _write_summary(env: Environment, path: str, document: dict[str, Any]) -> None:
    """`--summary-json FILE` atomically, or `-` on stdout after everything else."""
    if path != "-":
        from .output.jsonarray import write_json

        with naming("write", path):
            write_json(path, document)
        return
    import json

    from .output import write_lines

    try:
        with naming("write", STDOUT):
            write_lines(env.stdout, json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    except BrokenPipeError:
        _broken_pipe()


def _say(env: Environment, line: str) -> None:
    """A line for the person on stderr; a stderr that cannot take it is not a reason to fail."""
    try:
        print(line, file=env.stderr, flush=True)
    except (OSError, ValueError):
        pass


def _broken_pipe() -> None:
    """The reader went away: exit quietly, as a program killed by SIGPIPE would."""
    silence_stdout()
    exit_now(ExitCode.BROKEN_PIPE)


def _then_set(items: Iterator[Any], event: threading.Event) -> Iterator[Any]:
    """`items`, then `event` set once they run out (or fail)."""
    try:
        yield from items
    finally:
        event.set()


def _flush(env: Environment) -> None:
    for stream in (env.stdout, env.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass


def release_processes() -> None:
    """Stop what the processes engine leaves to the process (see `pool.spawn`); a command's exit only."""
    if "fetchpool.pool.spawn" in sys.modules:
        from .pool.spawn import release_processes as release

        release()
    if "fetchpool.pool.rayengine" in sys.modules:
        from .pool.rayengine import remove_folders

        remove_folders()  # a local Ray never shut down (a stop while it started): its processes, its folder


RELEASE_TIMEOUT = 5.0  # s an exit gives stopping what the run started (milliseconds, normally)


def exit_now(code: int) -> NoReturn:
    """End the command at once (no atexit, no waiting for threads), leaving no process behind.

    Stopping those goes through multiprocessing's private parts (its resource tracker's
    stop waits for the tracker with no limit): however that goes, the command exits.
    """
    releasing = threading.Thread(target=release_processes, name="fetchpool-release", daemon=True)
    releasing.start()
    releasing.join(timeout=RELEASE_TIMEOUT)
    os._exit(code)


def silence_stdout() -> None:
    """After EPIPE, point stdout at /dev/null so the interpreter's final flush is quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (AttributeError, OSError, ValueError):
        pass
