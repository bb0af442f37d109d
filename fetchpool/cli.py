"""The `fetchpool` command: flags -> Options, pick the output from the environment, drive, exit.

Everything here is translation at the edge; fetching lives in the library modules.
"""

from __future__ import annotations

import io
import os
import signal
import stat
import sys
from typing import TYPE_CHECKING, Any

import click

from .app import Environment, ExitCode
from .cli_config import ENV_PREFIX, SettingsCommand, config_option, error_hint, version_option
from .cli_monitor import monitor_options, monitor_plan
from .cli_options import (
    FLAG_OF_FIELD,
    fetch_options,
    fetch_settings,
    output_options,
    output_plan,
    run_options,
    run_settings,
)
from .cli_request import request_options, request_settings
from .cli_response import response_options, response_settings
from .cli_types import FileOrUrl
from .options import Options, OptionsError
from .result import redact_text

if TYPE_CHECKING:
    from .app import OutputPlan
    from .inputs import UrlArgument  # imported late: it loads requests, which --help never needs
    from .monitor import MonitorPlan

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100, "auto_envvar_prefix": ENV_PREFIX}


@click.command(cls=SettingsCommand, context_settings=CONTEXT)
@click.argument("files", nargs=-1, metavar="[FILE|URL]...", type=FileOrUrl())
@run_options
@fetch_options
@output_options
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
@request_options
@response_options
@monitor_options
@config_option
@version_option
@click.pass_context
def main(ctx: click.Context, files: tuple[str | UrlArgument, ...], **flags: Any) -> None:
    """Fetch every URL in FILE(s) (or stdin) concurrently; one record per URL line.

    An argument that starts with http:// or https:// and names no file is a URL to fetch.

    Records are JSON lines on stdout when it is not a terminal, a table when it is.
    Blank lines and lines starting with # are skipped; lines without a scheme get
    --default-scheme. Exit status: 0 all ok, 1 some failed, 2 usage error, 74 I/O error,
    130 interrupted.

    Every option can also be set as FETCHPOOL_<OPTION> (FETCHPOOL_PER_HOST=4) or in a
    TOML file given by --config; a flag wins over the environment, which wins over the file.
    """
    env = (ctx.obj if isinstance(ctx.obj, Environment) else Environment()).bind()
    demo, show_traceback = flags.pop("demo"), flags.pop("traceback")
    files = _inputs(ctx, env, files, demo, flags)
    monitor = monitor_plan(flags)  # before the output plan: --resume F writes to F
    plan = output_plan(flags, env)
    _check_paths(env, tuple(f for f in files or ("-",) if isinstance(f, str)) if demo is None else (), plan)
    options = _options(
        request_settings(flags),  # first: -d without -X makes the method POST
        run_settings(flags),
        fetch_settings(flags),
        response_settings(flags),
    )
    _check_ca_bundle(options)
    _check_engine(options)
    ctx.exit(_drive(env, files, demo, options, plan, monitor, show_traceback))


def _inputs(
    ctx: click.Context, env: Environment, files: tuple[str | UrlArgument, ...], demo: int | None, flags: dict[str, Any]
) -> tuple[str | UrlArgument, ...]:
    """The inputs to read: FILEs and URLs, stdin, or the demo's (with its short defaults)."""
    if demo is not None and files:
        raise click.UsageError("--demo fetches from its own server: give no FILE with it")
    if demo is None and not files and env.stdin_isatty:
        click.echo(
            ctx.get_usage() + "\n\nNo FILE given and stdin is a terminal. Try 'fetchpool --demo' or --help.", err=True
        )
        ctx.exit(ExitCode.USAGE)
    if demo is not None:
        _demo_defaults(ctx, flags)
    return _number_urls(files)


def _drive(
    env: Environment,
    files: tuple[str | UrlArgument, ...],
    demo: int | None,
    options: Options,
    plan: OutputPlan,
    monitor: MonitorPlan,
    show_traceback: bool,
) -> int:
    """Run, turning what escapes into the exit status and one line on stderr."""
    from .app import drive, silence_stdout
    from .pool.rayengine import RayUnavailable
    from .streams import STDOUT, StreamError

    try:
        return drive(env, files or ("-",), demo, options, plan, monitor)
    except RayUnavailable as exc:  # no Ray to run on: nothing was fetched
        if show_traceback:
            raise
        _echo_error(f"fetchpool: {exc}")
        return ExitCode.UNAVAILABLE
    except StreamError as exc:
        if show_traceback:
            raise
        if exc.name == STDOUT:
            silence_stdout()  # what is still buffered for it would fail again at exit
        _echo_error(f"fetchpool: {exc}")
        return ExitCode.IO_ERROR
    except Exception as exc:
        if show_traceback:
            raise
        message = redact_text(f"{type(exc).__name__}: {exc}")
        _echo_error(f"fetchpool: internal error: {message} (rerun with --traceback)")
        return ExitCode.FAILURES


def _check_engine(options: Options) -> None:
    """An engine that cannot run here (Ray not installed), or flags for another engine than
    the one chosen, are a usage error before any fetch."""
    ctx = click.get_current_context()
    given = {
        name: ctx.get_parameter_source(name) not in (click.core.ParameterSource.DEFAULT, None)
        for name in ("processes", "ray_address")
    }
    if given["processes"] and options.engine == "threads":
        raise click.UsageError("--processes is for --engine processes or ray")
    if given["ray_address"] and options.engine != "ray":
        raise click.UsageError("--ray-address is for --engine ray")
    if options.engine == "ray":
        from .pool.rayengine import check_address, check_ray

        try:  # one line each, naming what to do: the usage block would bury it
            check_ray()
            check_address(options.ray_address)
        except OptionsError as exc:
            _echo_error(f"fetchpool: {'--ray-address ' if exc.field else ''}{exc.reason}")
            ctx.exit(ExitCode.USAGE)


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


def _options(*groups: dict[str, Any]) -> Options:
    """Each group's settings -> one Options; a value Options refuses is a usage error naming its flag."""
    try:
        return Options(**{name: value for settings in groups for name, value in settings.items()})
    except OptionsError as exc:
        ctx = click.get_current_context()
        name = FLAG_OF_FIELD.get(exc.field or "", exc.field)
        param = next((p for p in ctx.command.params if p.name == name), None)
        if param is None:
            raise click.UsageError(str(exc)) from None
        raise click.BadParameter(exc.reason, ctx, param, error_hint(ctx, param)) from None


def run_cli() -> None:
    """Console-script entry point; also where a stream that cannot be written is met outside a run.

    A stderr that was closed, or cannot take a message, must not turn a usage error into a
    traceback (nor send it to stdout, among the records: Click falls back to stdout when
    `sys.stderr` is None). stdout failing while `--help` or `--version` writes it is an
    I/O error, as in a run.
    """
    from .streams import STDOUT, Closed, Tolerant

    # Until the run installs its own handler, Ctrl-C ends the command at once with 130
    # (Click would print "Aborted!" and exit 1). Nothing has been fetched or written yet.
    signal.signal(signal.SIGINT, lambda signum, frame: os._exit(ExitCode.INTERRUPTED))
    sys.stderr = Tolerant(sys.stderr)
    if sys.stdout is None:
        sys.stdout = Closed(STDOUT)  # type: ignore[assignment]
    try:
        main(prog_name="fetchpool")
    except KeyboardInterrupt:
        sys.exit(ExitCode.INTERRUPTED)
    except OSError as exc:  # only stdout can raise here: stderr is tolerant
        from .app import silence_stdout

        silence_stdout()
        _echo_error(f"fetchpool: cannot write {STDOUT}: {exc.strerror or exc}")
        sys.exit(ExitCode.IO_ERROR)
    finally:
        from .app import release_processes

        release_processes()  # the command owns this interpreter: nothing it started outlives it
