"""The core's parsers as Click parameter types.

Each type turns one flag's text into the value `Options` or `OutputPlan` takes, so a bad
value is refused by Click as it reads the flag ("Invalid value for '--rate': ..."), from
the command line, the environment or a config file alike, and the command body only maps
values it knows are good. The parsing itself stays in the core (`options`, `limits`,
`output.select`), which imports no click.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

import click

from .limits import parse_rate
from .options import MAX_BYTES, OptionsError, parse_header, parse_retry_on
from .output.select import AcceptPolicy, FailPolicy, Outcomes, SpecError, parse_fields
from .result import redact_text, redact_url


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
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_BYTES:
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


class Seconds(click.FloatRange):
    """A duration: `nan` and `inf` are named for what they are, before the range is checked."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"must be a finite number of seconds, got {value!r}", param, ctx)
        return super().convert(number, param, ctx)


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
            from .inputs import UrlArgument  # loads requests, which --help never needs

            return UrlArgument(text)
        try:
            return self._path.convert(value, param, ctx)
        except click.BadParameter as exc:  # its message quotes the argument, password and all
            raise click.BadParameter(redact_text(redact_url(exc.message)), ctx, param) from None


class Parsed(click.ParamType):
    """A flag read by one of the core's parsers; its error becomes Click's, naming the flag.

    `OptionsError` carries a reason meant for the user; `SpecError`'s text is the whole message.
    Values that are already parsed (a default Click converts again) pass through.
    """

    def __init__(self, name: str, parse: Callable[[str], Any], result: type | tuple[type, ...]) -> None:
        self.name = name
        self._parse = parse
        self._result = result

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, self._result):
            return value
        try:
            return self._parse(str(value))  # a TOML number (`rate = 20`) reads as its text
        except OptionsError as exc:
            self.fail(exc.reason, param, ctx)
        except SpecError as exc:
            self.fail(str(exc), param, ctx)


RATE = Parsed("rate", parse_rate, float)
RETRY_ON = Parsed("list", parse_retry_on, frozenset)
HEADER = Parsed("header", parse_header, tuple)
STATUS_LIST = Parsed("list", Outcomes.parse, Outcomes)
ACCEPT = Parsed("list", AcceptPolicy.parse, AcceptPolicy)
FAIL_ON = Parsed("spec", FailPolicy.parse, FailPolicy)
FIELD_LIST = Parsed("list", parse_fields, tuple)
