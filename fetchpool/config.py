"""`--config FILE`: settings for long-lived setups, in TOML, below flags and the environment.

The file's keys are the long option names (`concurrency`, `per-host`, `header` ...), with
dashes or underscores. It becomes Click's `default_map`, which Click consults after the
command line and the environment, so the precedence is flag > environment > config >
built-in default without any code here deciding it. An unknown key is an error naming it:
a typo in a config file must not be silently ignored for months.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any


class ConfigError(ValueError):
    """The config file cannot be read or names a setting that does not exist."""


def load(path: str, known: Mapping[str, bool]) -> dict[str, Any]:
    """Read `path` -> {parameter name: value}; `known` maps each name to "takes a list".

    A list-taking (repeatable) option accepts a TOML array or a single value.
    """
    if sys.version_info >= (3, 11):  # imported here: every run loads this module, few read a file
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib

    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"cannot read config {path!r}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config {path!r} is not valid TOML: {exc}") from None
    settings: dict[str, Any] = {}
    for key, value in data.items():
        name = key.replace("-", "_")
        if name not in known:
            raise ConfigError(f"config {path!r}: unknown setting {key!r}")
        if isinstance(value, dict):
            raise ConfigError(f"config {path!r}: {key!r} must be a value, not a table")
        if known[name]:
            value = list(value) if isinstance(value, list) else [value]
        elif isinstance(value, list):
            raise ConfigError(f"config {path!r}: {key!r} takes one value, not a list")
        settings[name] = [_text(v) for v in value] if isinstance(value, list) else _text(value)
    return settings


def _text(value: Any) -> str:
    """Every value as text, so Click converts and refuses it exactly as the flag's own:
    `retries = 2.9` or `retries = true` must not become 2 or 1 on the way."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)
