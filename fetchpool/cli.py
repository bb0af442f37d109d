"""The `fetchpool` command: flags -> Options, pick the output from the environment, drive, exit.

Everything here is translation at the edge; fetching lives in the library modules.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, TextIO

import click

from . import __version__
from .limits import parse_rate
from .options import DEFAULT_USER_AGENT, MAX_CONCURRENCY, Options, OptionsError, parse_header, parse_retry_on


class ExitCode(IntEnum):
    """Process exit status; documented in the README, one test each."""

    OK = 0
    FAILURES = 1
    USAGE = 2
    INTERRUPTED = 130
    BROKEN_PIPE = 141
    TERMINATED = 143


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


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class ByteSize(click.ParamType):
    """`10485760`, `512k`, `10M`, `1GiB` -> bytes."""

    name = "size"
    _UNITS = {
        "": 1,
        "b": 1,
        "k": 1024,
        "kb": 1024,
        "kib": 1024,
        "m": 1024**2,
        "mb": 1024**2,
        "mib": 1024**2,
        "g": 1024**3,
        "gb": 1024**3,
        "gib": 1024**3,
    }

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        text = str(value).strip().lower()
        digits = text.rstrip("abcdefghijklmnopqrstuvwxyz").strip()
        unit = text[len(digits) :].strip()
        try:
            number = float(digits)
        except ValueError:
            number = -1
        if number < 0 or unit not in self._UNITS:
            self.fail(f"{value!r} is not a size like 1048576, 512k or 10M", param, ctx)
        return int(number * self._UNITS[unit])


class _Stopper:
    """First Ctrl-C (or SIGTERM) stops the run gracefully; a second Ctrl-C exits at once."""

    def __init__(self) -> None:
        self.code: ExitCode | None = None
        self.run: Any = None

    def __call__(self, signum: int, frame: Any) -> None:
        if self.code is not None and signum == signal.SIGINT:
            os._exit(ExitCode.INTERRUPTED)
        self.code = ExitCode.INTERRUPTED if signum == signal.SIGINT else ExitCode.TERMINATED
        if self.run is not None:
            self.run.stop()

    def install(self) -> None:
        signal.signal(signal.SIGINT, self)
        signal.signal(signal.SIGTERM, self)


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.argument(
    "files", nargs=-1, metavar="[FILE]...", type=click.Path(exists=True, dir_okay=False, readable=True, allow_dash=True)
)
@click.option(
    "-c",
    "--concurrency",
    type=click.IntRange(1, MAX_CONCURRENCY),
    default=16,
    show_default=True,
    help="Requests in flight at once (worker threads).",
)
@click.option(
    "--per-host",
    type=click.IntRange(1),
    default=None,
    metavar="N",
    help="At most N requests in flight per host (default: no limit).",
)
@click.option(
    "--rate",
    default=None,
    metavar="R[/s|/m|/h]",
    help="At most R requests per second (or per minute, hour); global unless --rate-per-host.",
)
@click.option("--rate-per-host", is_flag=True, help="Apply --rate to each host separately.")
@click.option("--ordered", is_flag=True, help="Write records in input order (default: as they complete).")
@click.option("-X", "--method", default="GET", show_default=True, help="HTTP method, e.g. HEAD.")
@click.option(
    "-H", "--header", "headers", multiple=True, metavar="'NAME: VALUE'", help="Extra request header; repeatable."
)
@click.option("-A", "--user-agent", default=DEFAULT_USER_AGENT, show_default=True, help="User-Agent header.")
@click.option(
    "-t",
    "--timeout",
    type=click.FloatRange(0, min_open=True),
    default=10.0,
    show_default=True,
    help="Total deadline in seconds for one URL: connect, headers, redirects and body.",
)
@click.option(
    "--connect-timeout",
    type=click.FloatRange(0, min_open=True),
    default=5.0,
    show_default=True,
    help="Deadline in seconds to open a connection.",
)
@click.option("--follow/--no-follow", default=True, show_default=True, help="Follow redirects.")
@click.option(
    "--max-redirects",
    type=click.IntRange(0),
    default=10,
    show_default=True,
    help="Redirects to follow before giving up (too_many_redirects).",
)
@click.option("-k", "--insecure", is_flag=True, help="Do not verify TLS certificates.")
@click.option(
    "--max-bytes",
    type=ByteSize(),
    default="10M",
    show_default=True,
    help="Read at most this much of each body (512k, 10M, ...); then truncated: true.",
)
@click.option(
    "--retries",
    type=click.IntRange(0),
    default=2,
    show_default=True,
    help="Retries after a retryable failure (see --retry-on).",
)
@click.option(
    "--backoff",
    type=click.FloatRange(0),
    default=0.5,
    show_default=True,
    help="Base of the exponential backoff between retries, in seconds (with jitter).",
)
@click.option(
    "--retry-on",
    default="429,502,503,504,connect,timeout,read",
    show_default=True,
    metavar="LIST",
    help="Status codes and error kinds that are retried.",
)
@click.option(
    "--max-retry-wait",
    type=click.FloatRange(0),
    default=30.0,
    show_default=True,
    help="Longest wait for a retry; a longer Retry-After gives up and reports the status.",
)
@click.option(
    "--default-scheme",
    type=click.Choice(["http", "https"]),
    default="https",
    show_default=True,
    help="Scheme for lines without one.",
)
@click.option("--json", "as_json", is_flag=True, help="JSON lines on stdout even when it is a terminal.")
@click.option(
    "--demo",
    type=click.IntRange(1),
    is_flag=False,
    flag_value=200,
    default=None,
    metavar="[N]",
    help="Fetch N (200) URLs from a built-in local server: try fetchpool with no network.",
)
@click.option(
    "--traceback",
    is_flag=True,
    envvar="FETCHPOOL_DEBUG",
    help="Show Python tracebacks for internal errors (also FETCHPOOL_DEBUG=1).",
)
@click.version_option(__version__, "-V", "--version", prog_name="fetchpool")
@click.pass_context
def main(ctx: click.Context, files: tuple[str, ...], **flags: Any) -> None:
    """Fetch every URL in FILE(s) (or stdin) concurrently; one record per URL line.

    Records are JSON lines on stdout when it is not a terminal, a table when it is.
    Blank lines and lines starting with # are skipped; lines without a scheme get
    --default-scheme. Exit status: 0 all ok, 1 some failed, 2 usage error, 130 interrupted.
    """
    env = (ctx.obj if isinstance(ctx.obj, Environment) else Environment()).bind()
    demo = flags.pop("demo")
    if demo is not None and files:
        raise click.UsageError("--demo fetches from its own server: give no FILE with it")
    if demo is None and not files and env.stdin_isatty:
        click.echo(
            ctx.get_usage() + "\n\nNo FILE given and stdin is a terminal. Try 'fetchpool --demo' or --help.", err=True
        )
        ctx.exit(ExitCode.USAGE)
    if demo is not None:
        _demo_defaults(ctx, flags)
    show_traceback = flags.pop("traceback")
    as_json = flags.pop("as_json")
    options = _options(flags)
    try:
        code = _drive(env, files or ("-",), demo, options, as_json)
    except Exception as exc:
        if show_traceback:
            raise
        click.echo(f"fetchpool: internal error: {type(exc).__name__}: {exc} (rerun with --traceback)", err=True)
        code = ExitCode.FAILURES
    ctx.exit(code)


def _demo_defaults(ctx: click.Context, flags: dict[str, Any]) -> None:
    """The demo should end in seconds: a short deadline and no retries, unless asked for."""
    from .demo import DEMO_TIMEOUT

    if ctx.get_parameter_source("timeout") == click.core.ParameterSource.DEFAULT:
        flags["timeout"] = DEMO_TIMEOUT
    if ctx.get_parameter_source("retries") == click.core.ParameterSource.DEFAULT:
        flags["retries"] = 0


def _options(flags: dict[str, Any]) -> Options:
    try:
        headers = tuple(parse_header(h) for h in flags.pop("headers"))
        return Options(
            concurrency=flags["concurrency"],
            method=flags["method"],
            headers=headers,
            user_agent=flags["user_agent"],
            timeout=flags["timeout"],
            connect_timeout=flags["connect_timeout"],
            follow_redirects=flags["follow"],
            max_redirects=flags["max_redirects"],
            verify=not flags["insecure"],
            max_bytes=flags["max_bytes"],
            default_scheme=flags["default_scheme"],
            ordered=flags["ordered"],
            retries=flags["retries"],
            backoff=flags["backoff"],
            retry_on=parse_retry_on(flags["retry_on"]),
            max_retry_wait=flags["max_retry_wait"],
            per_host=flags["per_host"],
            rate=parse_rate(flags["rate"]) if flags["rate"] is not None else None,
            rate_per_host=flags["rate_per_host"],
        )
    except OptionsError as exc:
        raise click.UsageError(str(exc)) from None


def _drive(env: Environment, files: tuple[str, ...], demo: int | None, options: Options, as_json: bool) -> ExitCode:
    """Run the fetch, write every record, print the summary; return the exit code."""
    from .inputs import open_inputs, parse
    from .output.summary import Summary
    from .pool import run

    stopper = _Stopper()
    stopper.install()
    with ExitStack() as stack:
        if demo is not None:
            from . import demo as demo_server

            base = stack.enter_context(demo_server.serve())
            items: Iterator[Any] = parse(demo_server.urls(base, demo), "demo", options.default_scheme)
        else:
            items = open_inputs(files, env.stdin_bytes, options.default_scheme)
        fetching = stopper.run = run(items, options)
        writer = _writer(env, as_json, fetching)
        fetching.on_idle = getattr(writer, "flush", None)
        summary = Summary()
        try:
            for result in fetching:
                summary.add(result)
                writer.write(result)
            writer.close()
        except BrokenPipeError:
            _silence_stdout()
            os._exit(ExitCode.BROKEN_PIPE)
        if env.stderr_isatty or stopper.code is not None:
            click.echo(summary.line(interrupted=stopper.code is not None), file=env.stderr)
    if stopper.code is not None:
        _flush(env)
        os._exit(stopper.code)  # in-flight requests are abandoned, not waited for
    return ExitCode.FAILURES if summary.failed else ExitCode.OK


def _writer(env: Environment, as_json: bool, fetching: Any) -> Any:
    if as_json or not env.stdout_isatty:
        from .output.jsonl import JsonLinesWriter

        return JsonLinesWriter(env.stdout, fetching.pending)
    from rich.console import Console

    from .output.table import TableWriter

    return TableWriter(Console(file=env.stdout, no_color=env.no_color, highlight=False))


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


def run_cli() -> None:
    """Console-script entry point."""
    try:
        main(prog_name="fetchpool")
    except KeyboardInterrupt:
        sys.exit(ExitCode.INTERRUPTED)
