"""The flags for what is taken from each response, and checked in it: one decorator, one mapping.

`response_options` adds the flags to a command; `response_settings(flags)` pops them and
returns the `Options` keyword arguments they mean. A check that cannot work (a bad regex,
a header spec with no colon) is a usage error naming its flag.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from .checks import Checks, CheckSpecError, parse_expect_header

F = TypeVar("F", bound=Callable[..., Any])

_OPTIONS = (
    click.option(
        "--include-header",
        "include_headers",
        multiple=True,
        metavar="NAME",
        help="Copy this response header into the record's `headers` (repeatable).",
    ),
    click.option("--title", is_flag=True, help="Add the HTML <title> to the record (read within --max-bytes)."),
    click.option("--hash", "hash_body", is_flag=True, help="Add the SHA-256 of the body as read to the record."),
    click.option(
        "--save-dir",
        type=click.Path(file_okay=False),
        metavar="DIR",
        help="Save each ok body in DIR (an existing folder); the record gains saved_to and sha256.",
    ),
    click.option("--expect-body", multiple=True, metavar="TEXT", help="Check: the body contains TEXT (repeatable)."),
    click.option("--expect-regex", multiple=True, metavar="RE", help="Check: the body matches RE (repeatable)."),
    click.option("--reject-body", multiple=True, metavar="TEXT", help="Check: the body does not contain TEXT."),
    click.option("--reject-regex", multiple=True, metavar="RE", help="Check: the body does not match RE."),
    click.option(
        "--expect-header",
        multiple=True,
        metavar="'NAME: RE'",
        help="Check: the response has header NAME matching RE (repeatable).",
    ),
    click.option("--max-response-time", type=float, metavar="MS", help="Check: elapsed_ms is at most MS milliseconds."),
    click.option(
        "--cert-days",
        type=click.IntRange(min=0),
        metavar="N",
        help="Check: an https certificate has at least N days left; adds cert_expires and cert_days_left.",
    ),
)

_CHECK_FLAGS = ("expect_body", "expect_regex", "reject_body", "reject_regex", "expect_header")


def response_options(command: F) -> F:
    """Add the response and check flags to a Click command."""
    for option in reversed(_OPTIONS):
        command = option(command)
    return command


def response_settings(flags: dict[str, Any]) -> dict[str, Any]:
    """Pop the response flags from `flags` -> `Options` keyword arguments."""
    settings = {name: flags.pop(name) for name in ("include_headers", "title", "hash_body", "save_dir")}
    given = {name: tuple(flags.pop(name)) for name in _CHECK_FLAGS}
    try:
        checks = Checks(
            expect_body=given["expect_body"],
            expect_regex=given["expect_regex"],
            reject_body=given["reject_body"],
            reject_regex=given["reject_regex"],
            expect_header=tuple(parse_expect_header(h) for h in given["expect_header"]),
            max_response_ms=flags.pop("max_response_time"),
            cert_days=flags.pop("cert_days"),
        )
    except CheckSpecError as exc:
        raise click.BadParameter(str(exc), param_hint=_culprit(given)) from None
    settings["include_headers"] = tuple(settings["include_headers"])
    return {**settings, "checks": checks}


def _culprit(given: dict[str, Any]) -> str | None:
    """The flag whose value a Checks refused, for the message (None when it cannot tell)."""
    import re

    for key, flag in (("expect_regex", "--expect-regex"), ("reject_regex", "--reject-regex")):
        for pattern in given[key]:
            try:
                re.compile(pattern)
            except re.error:
                return f"'{flag}'"
    for spec in given["expect_header"]:
        try:
            re.compile(spec.partition(":")[2].strip())
        except re.error:
            return "'--expect-header'"
    for key, flag in (("expect_body", "--expect-body"), ("reject_body", "--reject-body")):
        if any(not text for text in given[key]):
            return f"'{flag}'"
    return None
