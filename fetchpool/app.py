"""One command-line run: pick the writers from the environment, write every record, summarise.

`cli` turns flags into `Options` and an `OutputPlan`; this module drives the run with them.
Only the main thread writes: records, the live view and the summary.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, TextIO

from .options import Options
from .output.select import DEFAULT_ACCEPT, AcceptPolicy, FailPolicy, Filtered, RecordFilter
from .result import FIELDS


class ExitCode(IntEnum):
    """Process exit status; documented in the README, one test each."""

    OK = 0
    FAILURES = 1
    USAGE = 2
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
        """Fill unset streams from `sys` as they are now (CliRunner swaps them late)."""
        self.stdin = self.stdin if self.stdin is not None else sys.stdin
        self.stdout = self.stdout if self.stdout is not None else sys.stdout
        self.stderr = self.stderr if self.stderr is not None else sys.stderr
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

    def record_format(self, env: Environment) -> str:
        """The format of the records themselves; `table` on a terminal means the live view."""
        if self.format != "auto":
            return self.format
        if self.output is not None:
            return {".csv": "csv", ".json": "json"}.get(os.path.splitext(self.output)[1].lower(), "jsonl")
        return "table" if env.stdout_isatty else "jsonl"


class Stopper:
    """First Ctrl-C (or SIGTERM) stops the run gracefully; a second Ctrl-C exits at once."""

    def __init__(self) -> None:
        self.code: ExitCode | None = None
        self.run: Any = None
        self._first = 0.0

    def __call__(self, signum: int, frame: Any) -> None:
        # A wrapper such as `timeout` forwards the terminal's SIGINT: the same press arrives
        # twice within moments. Only a press at least half a second later means "now".
        if self.code is not None and signum == signal.SIGINT and time.monotonic() - self._first > 0.5:
            sys.stderr.write("\x1b[?25h" if _isatty(sys.stderr) else "")  # give the cursor back
            os._exit(ExitCode.INTERRUPTED)
        if self.code is not None:
            return
        self._first = time.monotonic()
        self.code = ExitCode.INTERRUPTED if signum == signal.SIGINT else ExitCode.TERMINATED
        if self.run is not None:
            self.run.stop()

    def install(self) -> None:
        signal.signal(signal.SIGINT, self)
        signal.signal(signal.SIGTERM, self)


def drive(env: Environment, files: tuple[str, ...], demo: int | None, options: Options, plan: OutputPlan) -> ExitCode:
    """Run the fetch, write every record, show or print the summary; return the exit code."""
    from .output.stats import Stats
    from .pool import run
    from .pool.worker import setup_process

    setup_process(options)
    stopper = Stopper()
    stopper.install()
    stats = Stats()
    failing = False
    with ExitStack() as stack:
        items = _items(env, files, demo, options, stack)
        fetching = stopper.run = run(items, options)
        records = _records_writer(env, plan, stack)
        live = _live_view(env, plan, stats, files, demo, stopper, stack)
        try:
            for batch in fetching.batches():
                for result in batch:
                    plan.accept.apply(result)
                    stats.add(result)
                    failing |= plan.fail_on.fails(result)
                    if live is not None and plan.keep(result):
                        live.write(result)
                if records is not None:
                    records.write_batch(batch)
            if records is not None:
                records.close()
        except BrokenPipeError:
            fetching.close()
            _silence_stdout()
            os._exit(ExitCode.BROKEN_PIPE)
        stats.finish()
        if live is not None:
            live.close()
        elif not plan.quiet and (env.stderr_isatty or stopper.code is not None):
            print(stats.line(interrupted=stopper.code is not None), file=env.stderr)
    if plan.summary_json:
        from .output.jsonarray import write_json

        write_json(plan.summary_json, stats.to_dict(interrupted=stopper.code is not None))
    if stopper.code is not None:
        _flush(env)
        os._exit(stopper.code)  # in-flight requests are abandoned, not waited for
    return ExitCode.FAILURES if failing else ExitCode.OK


def _items(
    env: Environment, files: tuple[str, ...], demo: int | None, options: Options, stack: ExitStack
) -> Iterator[Any]:
    from .inputs import open_inputs, parse

    if demo is None:
        return open_inputs(files, env.stdin_bytes, options.default_scheme)
    from . import demo as demo_server

    base = stack.enter_context(demo_server.serve())
    return parse(demo_server.urls(base, demo), "demo", options.default_scheme)


def _records_writer(env: Environment, plan: OutputPlan, stack: ExitStack) -> Any:
    """The writer for the records, or None when the live view on stdout is all there is."""
    fmt = plan.record_format(env)
    if fmt == "table" and plan.output is None and env.stdout_isatty:
        return None
    if plan.output is None:
        stream = env.stdout
    elif fmt in ("json", "csv"):
        from .output.jsonarray import atomic_path

        stream = stack.enter_context(atomic_path(plan.output, newline="" if fmt == "csv" else None))
    else:
        stream = stack.enter_context(open(plan.output, "w", encoding="utf-8"))
    writer = _format_writer(fmt, stream, plan, env)
    return Filtered(writer, plan.keep) if plan.keep.active else writer


def _format_writer(fmt: str, stream: TextIO, plan: OutputPlan, env: Environment) -> Any:
    if fmt == "jsonl":
        from .output.jsonl import JsonLinesWriter

        return JsonLinesWriter(stream, plan.fields)
    if fmt == "json":
        from .output.jsonarray import JsonArrayWriter

        return JsonArrayWriter(stream, plan.fields)
    if fmt == "csv":
        from .output.csvout import CsvWriter

        return CsvWriter(stream, plan.fields)
    from .output.table import PipeConsole, TableWriter

    return TableWriter(PipeConsole(file=stream, no_color=env.no_color, highlight=False))


def _live_view(
    env: Environment,
    plan: OutputPlan,
    stats: Any,
    files: tuple[str, ...],
    demo: int | None,
    stopper: Stopper,
    stack: ExitStack,
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

    console = Console(file=stream, no_color=env.no_color, highlight=False, force_terminal=True)
    live = LiveWriter(console, stats, demo, progress_only=progress_only, interrupted=lambda: stopper.code is not None)
    stack.callback(live.close)
    if demo is None:
        live.count_total(files)
    return live


def _flush(env: Environment) -> None:
    for stream in (env.stdout, env.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass


def _silence_stdout() -> None:
    """After EPIPE, point stdout at /dev/null so the interpreter's final flush is quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
