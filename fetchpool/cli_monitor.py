"""Flags of runs that span more than one go: state, conditional requests, alerting, resume, shards.

`monitor_options` declares them on `main`; `monitor_plan` maps them (popping its keys) to a
`MonitorPlan`, and adjusts the shared flags they imply (`--resume F` is `-o F` in JSON lines,
`--fail-on new-failures` replaces the record policy).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from .monitor import MonitorPlan  # imported late: it loads requests, which --help never needs

_OPTIONS = (
    click.option(
        "--state",
        type=click.Path(dir_okay=False),
        default=None,
        metavar="FILE",
        help="Remember each URL's last result in this SQLite file; records gain changed, prev_status, prev_ok, "
        "fails_in_a_row.",
    ),
    click.option(
        "--state-wait",
        type=click.FloatRange(0, 86400),
        default=60.0,
        show_default=True,
        metavar="S",
        help="How long to wait for another run holding --state; then exit 75.",
    ),
    click.option(
        "--conditional", is_flag=True, help="Send If-None-Match/If-Modified-Since from --state; a 304 is unchanged."
    ),
    click.option(
        "--fail-after",
        type=click.IntRange(1, 1000),
        default=1,
        show_default=True,
        metavar="N",
        help="With --state: a URL fails the exit status only after N failed runs in a row.",
    ),
    click.option(
        "--metrics",
        type=click.Path(dir_okay=False),
        default=None,
        metavar="FILE",
        help="Write a Prometheus textfile (node_exporter's collector) atomically at the end.",
    ),
    click.option(
        "--resume",
        type=click.Path(dir_okay=False),
        default=None,
        metavar="OUT.jsonl",
        help="Skip URLs with an ok record in OUT.jsonl and append the rest's records to it.",
    ),
    click.option("--shard", default=None, metavar="K/N", help="Fetch only shard K of N (0 <= K < N) of the input."),
    click.option("--dedupe", is_flag=True, help="Skip a URL (method + URL, or id) already seen in this run."),
)


def monitor_options(command: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(_OPTIONS):
        command = option(command)
    return command


_UNSET = (click.core.ParameterSource.DEFAULT, None)


def monitor_plan(flags: dict[str, Any]) -> MonitorPlan:
    """Pop this module's flags -> MonitorPlan; contradictions are usage errors naming the flags."""
    from .filters import parse_shard
    from .monitor import MonitorPlan

    state, resume = flags.pop("state"), flags.pop("resume")
    shard_text = flags.pop("shard")
    try:
        shard = parse_shard(shard_text) if shard_text is not None else None
    except ValueError as exc:
        raise click.BadParameter(str(exc).removeprefix("--shard takes "), param_hint="'--shard'") from None
    wait = flags.pop("state_wait")
    if not math.isfinite(wait):
        raise click.BadParameter(f"must be a finite number of seconds, got {wait!r}", param_hint="'--state-wait'")
    plan = MonitorPlan(
        state=state,
        state_wait=wait,
        conditional=flags.pop("conditional"),
        new_failures=_new_failures(flags),
        fail_after=flags.pop("fail_after"),
        metrics=flags.pop("metrics"),
        resume=resume,
        shard=shard,
        dedupe=flags.pop("dedupe"),
    )
    if state is None:
        for flag, given in (
            ("--conditional", plan.conditional),
            ("--fail-on new-failures", plan.new_failures),
            ("--fail-after", plan.fail_after != 1),
            ("--state-wait", click.get_current_context().get_parameter_source("state_wait") not in _UNSET),
        ):
            if given:
                raise click.UsageError(f"{flag} needs --state FILE: it compares with the last run")
    for flag, path in (("--state", state), ("--metrics", plan.metrics), ("--resume", resume)):
        _check_folder(flag, path)
    if resume is not None:
        _resume_output(flags, resume)
    return plan


def _check_folder(flag: str, path: str | None) -> None:
    """A file in a missing or read-only folder is refused before anything is fetched, as for -o."""
    import os

    if path is None:
        return
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
        raise click.UsageError(f"{flag} {path!r}: {folder!r} is not a writable folder")


def _new_failures(flags: dict[str, Any]) -> bool:
    """`--fail-on new-failures[,empty]` (parsed by FailPolicy): the state decides it."""
    return bool(getattr(flags["fail_on"], "new_failures", False))


def _resume_output(flags: dict[str, Any], resume: str) -> None:
    """`--resume F` appends JSON lines to F: `-o` may only name F too, the format only jsonl."""
    import os

    output = flags.get("output")
    if output not in (None, "-") and os.path.abspath(output) != os.path.abspath(resume):
        raise click.UsageError("--resume appends to its own file: drop -o, or give -o the same file")
    if flags.get("fmt") not in ("auto", "jsonl"):
        raise click.UsageError(f"--resume appends JSON lines: it contradicts --format {flags.get('fmt')}")
    if flags.get("fields"):
        raise click.UsageError("--resume reads its file back: every key must be written (drop --fields)")
    flags["output"], flags["fmt"] = resume, "jsonl"
