"""The command's flags in groups, each one decorator and one function that maps it.

`run_options` (how many, how fast, in what order), `fetch_options` (what each request is
and how long it may take) and `output_options` (what is written where, what counts as
failure), as sqlite-utils shares groups of flags between commands. Each `*_settings`
function pops its group's values from the flags and returns `Options` keyword arguments;
`output_plan` builds the `OutputPlan`. A new group is one more decorator and one more call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from .cli_types import ACCEPT, FAIL_ON, FIELD_LIST, HEADER, RATE, RETRY_ON, STATUS_LIST, ByteSize, Seconds
from .options import DEFAULT_USER_AGENT, MAX_CONCURRENCY, MAX_RETRIES, MAX_SECONDS
from .result import FIELDS

if TYPE_CHECKING:
    from .app import Environment, OutputPlan

F = TypeVar("F", bound=Callable[..., Any])


def group(*decorators: Callable[[Any], Any]) -> Callable[[F], F]:
    """Several `click.option`s as one decorator; they list in `--help` in the order given."""

    def apply(f: F) -> F:
        for decorator in reversed(decorators):
            f = decorator(f)
        return f

    return apply


run_options = group(
    click.option(
        "-c",
        "--concurrency",
        type=click.IntRange(1, MAX_CONCURRENCY),
        default=16,
        show_default=True,
        help="Requests in flight at once, in the whole run (shared among --processes).",
    ),
    click.option(
        "--engine",
        type=click.Choice(["threads", "processes", "ray"]),
        default="threads",
        show_default=True,
        help="Where fetches run: threads in this process, worker processes, or a Ray cluster.",
    ),
    click.option(
        "--processes",
        type=click.IntRange(1, MAX_CONCURRENCY),
        default=None,
        metavar="P",
        help="Worker processes for --engine processes or ray (default: one per CPU; with --ray-address, one per"
        " free CPU of the cluster); -c is shared among them.",
    ),
    click.option(
        "--ray-address",
        default=None,
        metavar="auto|HOST:PORT",
        help="Ray cluster for --engine ray (default: a local Ray started for the run and stopped after it).",
    ),
    click.option(
        "--per-host",
        type=click.IntRange(1),
        default=None,
        metavar="N",
        help="At most N requests in flight per host (default: no limit).",
    ),
    click.option(
        "--rate",
        type=RATE,
        default=None,
        metavar="R[/s|/m|/h]",
        help="At most R requests per second (or per minute, hour); global unless --rate-per-host.",
    ),
    click.option("--rate-per-host", is_flag=True, help="Apply --rate to each host separately."),
    click.option("--ordered", is_flag=True, help="Write records in input order (default: as they complete)."),
)


def run_settings(flags: dict[str, Any]) -> dict[str, Any]:
    """`run_options` -> `Options` keyword arguments."""
    settings = {name: flags.pop(name) for name in ("concurrency", "per_host", "rate", "rate_per_host", "ordered")}
    settings.update(engine=flags.pop("engine"), processes=flags.pop("processes") or 0)
    settings["ray_address"] = flags.pop("ray_address")
    return settings


fetch_options = group(
    click.option("-X", "--method", default="GET", show_default=True, help="HTTP method, e.g. HEAD."),
    click.option(
        "-H",
        "--header",
        "headers",
        type=HEADER,
        multiple=True,
        metavar="'NAME: VALUE'",
        help="Extra request header; repeatable, each sent. 'NAME:' removes a default header, 'NAME;' sends it empty.",
    ),
    click.option(
        "-A", "--user-agent", default=DEFAULT_USER_AGENT, show_default=True, help="User-Agent header; '' sends none."
    ),
    click.option(
        "-t",
        "--timeout",
        type=Seconds(0, MAX_SECONDS, min_open=True),
        default=10.0,
        show_default=True,
        help="Deadline in seconds for the whole of one URL: every attempt, redirect and body, and the waits between retries.",
    ),
    click.option(
        "--connect-timeout",
        type=Seconds(0, MAX_SECONDS, min_open=True),
        default=5.0,
        show_default=True,
        help="Deadline in seconds to open one connection (TCP, TLS, proxy tunnel), within what is left of -t.",
    ),
    click.option("--follow/--no-follow", default=True, show_default=True, help="Follow redirects."),
    click.option(
        "--max-redirects",
        type=click.IntRange(0),
        default=10,
        show_default=True,
        help="Redirects to follow before giving up (too_many_redirects).",
    ),
    click.option("-k", "--insecure", is_flag=True, help="Do not verify TLS certificates."),
    click.option(
        "--max-bytes",
        type=ByteSize(),
        default="10M",
        show_default=True,
        help="Read at most this much of each body (512k, 10M, ...); then truncated: true.",
    ),
    click.option(
        "--retries",
        type=click.IntRange(0, MAX_RETRIES),
        default=2,
        show_default=True,
        help="Retries after a retryable failure (see --retry-on).",
    ),
    click.option(
        "--backoff",
        type=Seconds(0, MAX_SECONDS),
        default=0.5,
        show_default=True,
        help="Base of the exponential backoff between retries, in seconds (with jitter).",
    ),
    click.option(
        "--retry-on",
        type=RETRY_ON,
        default="429,502,503,504,connect,timeout,read,protocol",
        show_default=True,
        metavar="LIST",
        help="Status codes and error kinds that are retried.",
    ),
    click.option(
        "--max-retry-wait",
        type=Seconds(0, MAX_SECONDS),
        default=30.0,
        show_default=True,
        help="Longest wait for a retry; a longer Retry-After gives up and reports the status.",
    ),
    click.option(
        "--default-scheme",
        type=click.Choice(["http", "https"]),
        default="https",
        show_default=True,
        help="Scheme for lines without one.",
    ),
)


def fetch_settings(flags: dict[str, Any]) -> dict[str, Any]:
    """`fetch_options` -> `Options` keyword arguments."""
    same = ("method", "headers", "user_agent", "timeout", "connect_timeout", "max_redirects", "max_bytes")
    settings = {name: flags.pop(name) for name in same}
    settings.update({name: flags.pop(name) for name in ("retries", "backoff", "retry_on", "max_retry_wait")})
    settings["default_scheme"] = flags.pop("default_scheme")
    settings["follow_redirects"] = flags.pop("follow")
    settings["verify"] = not flags.pop("insecure")
    return settings


FLAG_OF_FIELD = {"follow_redirects": "follow", "verify": "insecure"}  # Options fields named otherwise


output_options = group(
    click.option(
        "--json", "as_json", is_flag=True, help="JSON lines on stdout even when it is a terminal (= --format jsonl)."
    ),
    click.option(
        "-f",
        "--format",
        "fmt",
        type=click.Choice(["auto", "table", "jsonl", "json", "csv"]),
        default="auto",
        show_default=True,
        help="Record format. auto: the live table on a terminal, JSON lines otherwise (or by -o's extension).",
    ),
    click.option(
        "--fields",
        type=FIELD_LIST,
        default=None,
        metavar="LIST",
        help="Keys/columns to write, in this order: url,status,elapsed_ms,...",
    ),
    click.option(
        "--match-status",
        type=STATUS_LIST,
        default=None,
        metavar="LIST",
        help="Write only records matching: codes, ranges, classes, error kinds (200,3xx,timeout).",
    ),
    click.option(
        "--filter-status",
        type=STATUS_LIST,
        default=None,
        metavar="LIST",
        help="Leave out records matching these codes, classes or error kinds.",
    ),
    click.option("--only-failures", is_flag=True, help="Write only records that are not ok."),
    click.option(
        "-o",
        "--output",
        type=click.Path(dir_okay=False, writable=True),
        default=None,
        help="Write records to FILE (json and csv atomically) while the terminal shows the live view.",
    ),
    click.option(
        "--summary-json",
        type=click.Path(dir_okay=False, writable=True),
        default=None,
        metavar="FILE",
        help="Write the run's summary (counts, latency percentiles, throughput, timestamps) as JSON; - is stdout.",
    ),
    click.option(
        "--fail-on",
        type=FAIL_ON,
        default="any",
        show_default=True,
        metavar="any|none|LIST",
        help="What makes the exit status 1: any record not ok, nothing, or matching classes/kinds (5xx,dns,timeout); "
        "add empty (any,empty) to fail when the input holds no URL.",
    ),
    click.option(
        "--accept",
        type=ACCEPT,
        default="200-399",
        show_default=True,
        metavar="LIST",
        help="Statuses that count as ok (200-299,301).",
    ),
    click.option(
        "--no-progress", is_flag=True, help="No progress bar or live redraw; just the summary or final report."
    ),
    click.option("-q", "--quiet", is_flag=True, help="Nothing on stderr but errors: no progress, no summary."),
)


_RANK = {
    click.core.ParameterSource.COMMANDLINE: 3,
    click.core.ParameterSource.ENVIRONMENT: 2,
    click.core.ParameterSource.DEFAULT_MAP: 1,
}


def _stronger(first: str, second: str) -> str | None:
    """Of two parameters given, the one from the stronger source; None when equally strong."""
    ctx = click.get_current_context()
    ranks = [_RANK.get(ctx.get_parameter_source(name), 0) for name in (first, second)]  # type: ignore[arg-type]
    return None if ranks[0] == ranks[1] else (first if ranks[0] > ranks[1] else second)


def output_plan(flags: dict[str, Any], env: Environment) -> OutputPlan:
    """`output_options` -> `OutputPlan`; flags that contradict each other are a usage error
    naming them: nothing given is silently ignored."""
    from .app import OutputPlan
    from .output.select import RecordFilter

    as_json, fmt, fields, output = flags.pop("as_json"), flags.pop("fmt"), flags.pop("fields"), flags.pop("output")
    if as_json and fmt not in ("auto", "jsonl"):
        winner = _stronger("as_json", "fmt")  # a flag beats the environment, which beats the config
        if winner is None:
            raise click.UsageError(f"--json is --format jsonl: it contradicts --format {fmt}")
        as_json = winner == "as_json"
    quiet = flags.pop("quiet")
    plan = OutputPlan(
        format="jsonl" if as_json else fmt,
        fields=fields or FIELDS,
        output=None if output == "-" else output,  # -o - is stdout, as everywhere else
        summary_json=flags.pop("summary_json"),
        keep=RecordFilter(flags.pop("match_status"), flags.pop("filter_status"), flags.pop("only_failures")),
        accept=flags.pop("accept"),
        fail_on=flags.pop("fail_on"),
        progress=not (flags.pop("no_progress") or quiet),
        quiet=quiet,
    )
    if fields and plan.record_format(env) == "table":
        raise click.UsageError(
            "--fields picks the keys of jsonl, json and csv records; the table has fixed columns "
            "(add --json or --format csv, or -o FILE)"
        )
    return plan
