"""The `fetchpool` command: flags -> Options, pick the output from the environment, drive, exit.

Everything here is translation at the edge; fetching lives in the library modules.
"""

from __future__ import annotations

import io
import math
import os
import stat
import sys
from typing import TYPE_CHECKING, Any

import click

from . import __version__
from .app import Environment, ExitCode, OutputPlan
from .cli_monitor import monitor_options, monitor_plan
from .limits import parse_rate
from .options import (
    DEFAULT_USER_AGENT,
    MAX_BYTES,
    MAX_CONCURRENCY,
    MAX_RETRIES,
    MAX_SECONDS,
    Options,
    OptionsError,
    parse_header,
    parse_retry_on,
)
from .result import FIELDS, redact_text, redact_url

if TYPE_CHECKING:
    from .inputs import UrlArgument  # imported late: it loads requests, which --help never needs


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
            number = math.nan
        if not 0 <= number <= MAX_BYTES or unit not in self._UNITS or number * self._UNITS[unit] > MAX_BYTES:
            self.fail(f"{value!r} is not a size like 1048576, 512k or 10M (at most 1 PiB)", param, ctx)
        return int(number * self._UNITS[unit])


class FileOrUrl(click.ParamType):
    """A FILE to read, or a URL to fetch: an argument that names no file and starts with
    `http://` or `https://` (as lychee reads its arguments). A file of that name wins."""

    name = "file"
    _path = click.Path(exists=True, dir_okay=False, readable=True, allow_dash=True)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):  # already converted
            return value
        text = value
        if text.lower().startswith(("http://", "https://")) and not os.path.lexists(text):
            from .inputs import UrlArgument

            return UrlArgument(text)
        try:
            return self._path.convert(value, param, ctx)
        except click.BadParameter as exc:  # its message quotes the argument, password and all
            raise click.BadParameter(redact_text(redact_url(exc.message)), ctx, param) from None


class Seconds(click.FloatRange):
    """A duration: `nan` and `inf` are named for what they are, before the range is checked."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"must be a finite number of seconds, got {value!r}", param, ctx)
        return super().convert(number, param, ctx)


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.argument("files", nargs=-1, metavar="[FILE|URL]...", type=FileOrUrl())
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
    "-H",
    "--header",
    "headers",
    multiple=True,
    metavar="'NAME: VALUE'",
    help="Extra request header; repeatable, each sent. 'NAME:' removes a default header, 'NAME;' sends it empty.",
)
@click.option(
    "-A", "--user-agent", default=DEFAULT_USER_AGENT, show_default=True, help="User-Agent header; '' sends none."
)
@click.option(
    "-t",
    "--timeout",
    type=Seconds(0, MAX_SECONDS, min_open=True),
    default=10.0,
    show_default=True,
    help="Deadline in seconds for the whole of one URL: every attempt, redirect and body, and the waits between retries.",
)
@click.option(
    "--connect-timeout",
    type=Seconds(0, MAX_SECONDS, min_open=True),
    default=5.0,
    show_default=True,
    help="Deadline in seconds to open one connection (TCP, TLS, proxy tunnel), within what is left of -t.",
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
    type=click.IntRange(0, MAX_RETRIES),
    default=2,
    show_default=True,
    help="Retries after a retryable failure (see --retry-on).",
)
@click.option(
    "--backoff",
    type=Seconds(0, MAX_SECONDS),
    default=0.5,
    show_default=True,
    help="Base of the exponential backoff between retries, in seconds (with jitter).",
)
@click.option(
    "--retry-on",
    default="429,502,503,504,connect,timeout,read,protocol",
    show_default=True,
    metavar="LIST",
    help="Status codes and error kinds that are retried.",
)
@click.option(
    "--max-retry-wait",
    type=Seconds(0, MAX_SECONDS),
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
@click.option(
    "--json", "as_json", is_flag=True, help="JSON lines on stdout even when it is a terminal (= --format jsonl)."
)
@click.option(
    "-f",
    "--format",
    "fmt",
    type=click.Choice(["auto", "table", "jsonl", "json", "csv"]),
    default="auto",
    show_default=True,
    help="Record format. auto: the live table on a terminal, JSON lines otherwise (or by -o's extension).",
)
@click.option(
    "--fields", default=None, metavar="LIST", help="Keys/columns to write, in this order: url,status,elapsed_ms,..."
)
@click.option(
    "--match-status",
    default=None,
    metavar="LIST",
    help="Write only records matching: codes, ranges, classes, error kinds (200,3xx,timeout).",
)
@click.option(
    "--filter-status",
    default=None,
    metavar="LIST",
    help="Leave out records matching these codes, classes or error kinds.",
)
@click.option("--only-failures", is_flag=True, help="Write only records that are not ok.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Write records to FILE (json and csv atomically) while the terminal shows the live view.",
)
@click.option(
    "--summary-json",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    metavar="FILE",
    help="Write the run's summary (counts, latency percentiles, throughput, timestamps) as JSON; - is stdout.",
)
@click.option(
    "--fail-on",
    default="any",
    show_default=True,
    metavar="any|none|LIST",
    help="What makes the exit status 1: any record not ok, nothing, or matching classes/kinds (5xx,dns,timeout); "
    "add empty (any,empty) to fail when the input holds no URL.",
)
@click.option(
    "--accept", default="200-399", show_default=True, metavar="LIST", help="Statuses that count as ok (200-299,301)."
)
@click.option("--no-progress", is_flag=True, help="No progress bar or live redraw; just the summary or final report.")
@click.option("-q", "--quiet", is_flag=True, help="Nothing on stderr but errors: no progress, no summary.")
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
@monitor_options
@click.version_option(__version__, "-V", "--version", prog_name="fetchpool")
@click.pass_context
def main(ctx: click.Context, files: tuple[str | UrlArgument, ...], **flags: Any) -> None:
    """Fetch every URL in FILE(s) (or stdin) concurrently; one record per URL line.

    An argument that starts with http:// or https:// and names no file is a URL to fetch.

    Records are JSON lines on stdout when it is not a terminal, a table when it is.
    Blank lines and lines starting with # are skipped; lines without a scheme get
    --default-scheme. Exit status: 0 all ok, 1 some failed, 2 usage error, 74 I/O error,
    130 interrupted.
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
    if flags["output"] == "-":
        flags["output"] = None  # -o - is stdout, as everywhere else
    files = _number_urls(files)
    monitor = monitor_plan(flags)
    plan = _plan(flags, env)
    paths = tuple(f for f in files if isinstance(f, str)) if files else ("-",)
    _check_paths(env, paths if demo is None else (), plan)
    options = _options(flags)
    _check_ca_bundle(options)
    from .app import drive, silence_stdout
    from .streams import STDOUT, StreamError

    try:
        code = drive(env, files or ("-",), demo, options, plan, monitor)
    except StreamError as exc:
        if show_traceback:
            raise
        if exc.name == STDOUT:
            silence_stdout()  # what is still buffered for it would fail again at exit
        _echo_error(f"fetchpool: {exc}")
        code = ExitCode.IO_ERROR
    except Exception as exc:
        if show_traceback:
            raise
        message = redact_text(f"{type(exc).__name__}: {exc}")
        _echo_error(f"fetchpool: internal error: {message} (rerun with --traceback)")
        code = ExitCode.FAILURES
    ctx.exit(code)


def _number_urls(files: tuple[str | UrlArgument, ...]) -> tuple[str | UrlArgument, ...]:
    """Give each URL argument its position among URL arguments: the `line` of its record."""
    from dataclasses import replace

    positions = iter(range(1, len(files) + 1))
    return tuple(f if isinstance(f, str) else replace(f, position=next(positions)) for f in files)


def _echo_error(line: str) -> None:
    """The one line that says why the run failed; a stderr that cannot take it is ignored."""
    try:
        click.echo(line, err=True)
    except (OSError, ValueError):
        pass


def _check_paths(env: Environment, files: tuple[str, ...], plan: OutputPlan) -> None:
    """Refuse, before fetching anything, outputs that would fail, eat an input, or each other.

    Files are compared by what they are, not how they are spelt: `./x`, a symlink, a hard
    link, or a name that does not exist yet in the same folder all count as the same file.
    stdout and stdin count too, when the records go to stdout or the URLs come from stdin.
    """
    outputs = _outputs(env, plan)
    if len(outputs) == 2:
        (flag1, out1, id1), (flag2, out2, id2) = outputs
        if out1 == out2 == "-":
            raise click.UsageError("--summary-json - and the records would both go to stdout: add -o FILE")
        if id1 is not None and id1 == id2:
            first = "stdout (the records)" if out1 == "-" else f"{flag1} {out1!r}"
            raise click.UsageError(f"{first} and {flag2} {out2!r} are the same file: one would eat the other")
    inputs = {_stream_identity(env.stdin) if name == "-" else _identity(name) for name in files} - {None}
    for _, out, identity in outputs:
        if identity in inputs:
            shown = "stdout" if out == "-" else repr(out)
            raise click.UsageError(f"{shown} is an input file: writing it would destroy the URLs")


def _outputs(env: Environment, plan: OutputPlan) -> list[tuple[str, str, Any]]:
    """(flag, name as given, identity) of each output, `-` for stdout; a folder that cannot
    take the file is refused here."""
    records = plan.output if plan.output is not None else ("-" if plan.records_on_stdout(env) else None)
    outputs = []
    for flag, out in (("-o", records), ("--summary-json", plan.summary_json)):
        if out is None:
            continue
        if out != "-":
            folder = os.path.dirname(os.path.abspath(out))
            if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
                raise click.UsageError(f"cannot write {out!r}: {folder!r} is not a writable folder")
        outputs.append((flag, out, _stream_identity(env.stdout) if out == "-" else _identity(out)))
    return outputs


def _identity(path: str) -> tuple[Any, ...] | None:
    """What names one file however it is spelt: its inode, or for a file still to be made
    (a dangling symlink followed), its folder's inode and its name. None for a device or
    a pipe: `/dev/null` twice eats nothing."""
    try:
        st = os.stat(path)
        return ("file", st.st_dev, st.st_ino) if stat.S_ISREG(st.st_mode) else None
    except OSError:
        pass
    folder, name = os.path.split(os.path.realpath(path))
    try:
        st = os.stat(folder)
        return ("new", st.st_dev, st.st_ino, name)
    except OSError:
        return ("path", folder, name)


def _stream_identity(stream: Any) -> tuple[Any, ...] | None:
    """The regular file behind a standard stream (`< urls.txt`, `> out.jsonl`), else None."""
    try:
        st = os.fstat(stream.fileno())
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return None
    return ("file", st.st_dev, st.st_ino) if stat.S_ISREG(st.st_mode) else None


def _check_ca_bundle(options: Options) -> None:
    """A CA bundle named in the environment must exist; else every https URL would fail."""
    for var in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        path = os.environ.get(var)
        if path and options.verify and not os.path.exists(path):
            raise click.UsageError(f"{var}={path!r}: no such file")


def _demo_defaults(ctx: click.Context, flags: dict[str, Any]) -> None:
    """The demo should end in seconds: a short deadline and no retries, unless asked for."""
    from .demo import DEMO_TIMEOUT

    if ctx.get_parameter_source("timeout") == click.core.ParameterSource.DEFAULT:
        flags["timeout"] = DEMO_TIMEOUT
    if ctx.get_parameter_source("retries") == click.core.ParameterSource.DEFAULT:
        flags["retries"] = 0


def _plan(flags: dict[str, Any], env: Environment) -> OutputPlan:
    """Output flags -> OutputPlan; a bad spec, or flags that contradict each other, is a
    usage error naming them: nothing given is silently ignored."""
    from .output.select import AcceptPolicy, FailPolicy, RecordFilter, SpecError, parse_fields

    as_json, fmt = flags.pop("as_json"), flags.pop("fmt")
    if as_json and fmt not in ("auto", "jsonl"):
        raise click.UsageError(f"--json is --format jsonl: it contradicts --format {fmt}")
    fmt = "jsonl" if as_json else fmt
    try:
        plan = OutputPlan(
            format=fmt,
            fields=parse_fields(flags["fields"]) if flags["fields"] else FIELDS,
            output=flags["output"],
            summary_json=flags["summary_json"],
            keep=RecordFilter.parse(flags["match_status"], flags["filter_status"], flags["only_failures"]),
            accept=AcceptPolicy.parse(flags["accept"]),
            fail_on=FailPolicy.parse(flags["fail_on"]),
            progress=not (flags["no_progress"] or flags["quiet"]),
            quiet=flags["quiet"],
        )
    except SpecError as exc:
        raise click.UsageError(str(exc)) from None
    if flags["fields"] and plan.record_format(env) == "table":
        raise click.UsageError(
            "--fields picks the keys of jsonl, json and csv records; the table has fixed columns "
            "(add --json or --format csv, or -o FILE)"
        )
    return plan


def _options(flags: dict[str, Any]) -> Options:
    """Flags -> Options; a value Options refuses is a usage error naming its flag."""
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
        ctx = click.get_current_context()
        param = next((p for p in ctx.command.params if p.name == exc.field), None)
        if param is None:
            raise click.UsageError(str(exc)) from None
        raise click.BadParameter(exc.reason, ctx, param) from None


def run_cli() -> None:
    """Console-script entry point."""
    try:
        main(prog_name="fetchpool")
    except KeyboardInterrupt:
        sys.exit(ExitCode.INTERRUPTED)
