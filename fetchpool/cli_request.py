"""The flags that shape the request itself: input format, body, credentials, encoding, addresses.

Declared as one decorator for `cli.main`, and mapped onto `Options` keyword arguments by
`request_settings`; the values are checked by `Options` itself.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from .app import Environment
from .options import OptionsError, parse_resolve

F = TypeVar("F", bound=Callable[..., Any])
KEYS = ("input_format", "data", "user", "retry_all_methods", "compressed", "resolve")

_OPTIONS = (
    click.option(
        "--input-format",
        type=click.Choice(["auto", "lines", "jsonl"]),
        default="auto",
        show_default=True,
        help="Input lines: URLs, JSON objects (a request each), or auto: a line starting with { is JSON.",
    ),
    click.option(
        "-d",
        "--data",
        metavar="TEXT|@FILE",
        default=None,
        help="Send this body (as curl -d: @FILE reads a file without its newlines; implies POST without -X).",
    ),
    click.option(
        "-u", "--user", metavar="USER:PASSWORD", default=None, help="Basic auth for every URL; masked in all output."
    ),
    click.option(
        "--retry-all-methods", is_flag=True, help="Retry POST and other non-idempotent requests too (default: not)."
    ),
    click.option(
        "--compressed", is_flag=True, help="Ask for a compressed answer (gzip, deflate); --max-bytes caps it decoded."
    ),
    click.option(
        "--resolve",
        metavar="HOST:PORT:ADDR",
        multiple=True,
        help="Connect to ADDR for HOST:PORT; TLS and Host still use HOST (as curl). Repeatable.",
    ),
)


def request_options(command: F) -> F:
    """Add the request flags to a Click command."""
    for option in reversed(_OPTIONS):
        command = option(command)
    return command


def request_settings(flags: dict[str, Any]) -> dict[str, Any]:
    """Pop the request flags from `flags` -> `Options` keyword arguments.

    `-d` without `-X` makes the method POST, as in curl (it sets `flags["method"]`).
    """
    given = {key: flags.pop(key) for key in KEYS}
    ctx = click.get_current_context()
    settings: dict[str, Any] = {
        "input_format": given["input_format"],
        "user": given["user"],
        "retry_all_methods": given["retry_all_methods"],
        "compressed": given["compressed"],
        "resolve": tuple(_resolve(ctx, text) for text in given["resolve"]),
    }
    if given["data"] is not None:
        settings["data"] = _body(ctx, given["data"])
        if ctx.get_parameter_source("method") in (click.core.ParameterSource.DEFAULT, None):
            flags["method"] = "POST"
    return settings


def _resolve(ctx: click.Context, text: str) -> tuple[str, int, str]:
    try:
        return parse_resolve(text)
    except OptionsError as exc:
        raise click.BadParameter(exc.reason, ctx, _param(ctx, "resolve")) from None


def _body(ctx: click.Context, text: str) -> bytes:
    """`-d TEXT` as UTF-8; `-d @FILE` the file's bytes without CR and LF, as curl -d reads it.

    `@-` reads stdin, which is refused when stdin carries the URLs.
    """
    if not text.startswith("@"):
        return text.encode("utf-8", "surrogateescape")
    path = text[1:]
    if path == "-":
        files = ctx.params.get("files") or ()
        if not files or "-" in files:
            raise click.BadParameter("@- reads stdin, which already carries the URLs: use @FILE", ctx, _param(ctx))
        stdin = ctx.obj.stdin_bytes if isinstance(ctx.obj, Environment) else sys.stdin.buffer
        data = stdin.read()
    else:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise click.BadParameter(f"cannot read {path!r}: {exc.strerror}", ctx, _param(ctx)) from None
    return data.replace(b"\r", b"").replace(b"\n", b"")


def _param(ctx: click.Context, name: str = "data") -> click.Parameter | None:
    return next((p for p in ctx.command.params if p.name == name), None)
