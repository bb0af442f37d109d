"""Where a setting comes from when not from the command line: the environment or a config file.

Click decides the precedence (command line, then the environment, then `default_map`,
then the built-in default); this module only names things so that a setting is spelt the
same everywhere: `--per-host` is `FETCHPOOL_PER_HOST` and `per-host` in the config file,
`--header` is `FETCHPOOL_HEADER` and `header`, whatever the parameter is called inside.
Also `--version`, which must stay quick: it reads versions without importing requests.
"""

from __future__ import annotations

import copy
import importlib.util
import platform
import re
from typing import Any

import click
from click.core import ParameterSource

from . import __version__
from .config import ConfigError, load

ENV_PREFIX = "FETCHPOOL"
_NOT_SETTINGS = {"config", "version", "help"}
_CONFIG_PATH = "fetchpool.config"  # ctx.meta key: the config file read, for error messages


class SettingsCommand(click.Command):
    """A command whose options may come from the environment and a config file, and whose
    refusal of a value says where the value came from: a `FETCHPOOL_RATE` set months ago in
    a profile is hard to find from "Invalid value for '--rate'" alone."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        name_env_vars(self)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.BadParameter as exc:
            if exc.param is not None and exc.param_hint is None:
                exc.param_hint = error_hint(ctx, exc.param)
            raise


def error_hint(ctx: click.Context, param: click.Parameter) -> str:
    """`'--rate'`, or `'--rate' (from FETCHPOOL_RATE)`, or `'--rate' (from config 'fp.toml')`."""
    hint = param.get_error_hint(ctx)
    source = ctx.get_parameter_source(param.name) if param.name else None
    if source == ParameterSource.ENVIRONMENT and isinstance(param, click.Option):
        envvar = param.envvar if isinstance(param.envvar, str) else f"{ENV_PREFIX}_{(param.name or '').upper()}"
        return f"{hint} (from {envvar})"
    if source == ParameterSource.DEFAULT_MAP and ctx.meta.get(_CONFIG_PATH):
        return f"{hint} (from config {ctx.meta[_CONFIG_PATH]!r})"
    return hint


def setting_name(param: click.Parameter) -> str | None:
    """`--per-host` -> `per_host`: the long flag's name, which the env var and config key use."""
    longs = [o for o in param.opts if o.startswith("--")]
    return longs[0][2:].replace("-", "_") if longs else param.name


def settings_of(command: click.Command) -> dict[str, click.Option]:
    """{setting name: option} for every option a config file or the environment may give."""
    return {
        name: p
        for p in command.params
        if isinstance(p, click.Option) and p.expose_value and (name := setting_name(p)) and name not in _NOT_SETTINGS
    }


def name_env_vars(command: click.Command) -> None:
    """Spell every setting's env var as its flag, and read repeatable ones one value a line.

    An option whose parameter is named otherwise than its flag (`-H/--header` is `headers`)
    gets the env var of its flag, not the one `auto_envvar_prefix` would derive. Click splits
    a repeatable option's env var on whitespace, which would cut `Accept: text/html` in two:
    each one gets a copy of its type (types such as `click.STRING` are shared) that splits lines.
    """
    for name, option in settings_of(command).items():
        if option.name != name and option.envvar is None:
            option.envvar = f"{ENV_PREFIX}_{name.upper()}"
            option.allow_from_autoenv = False
        if option.multiple:
            option.type = copy.copy(option.type)
            option.type.split_envvar_value = _lines  # type: ignore[method-assign,assignment]


def _lines(value: str) -> list[str]:
    """An env var holding a list: one item a line, blank lines skipped."""
    return [line for line in value.splitlines() if line.strip()]


def load_config(ctx: click.Context, param: click.Parameter, path: str | None) -> None:
    """`--config FILE` (or FETCHPOOL_CONFIG): the file's settings become Click's `default_map`.

    An eager option, so it is read before every other option looks for its default.
    """
    if path is None or ctx.resilient_parsing:
        return
    options = settings_of(ctx.command)
    try:
        settings = load(path, {name: option.multiple for name, option in options.items()})
    except ConfigError as exc:
        raise click.UsageError(str(exc), ctx) from None
    ctx.default_map = {**(ctx.default_map or {}), **{options[k].name: v for k, v in settings.items()}}
    ctx.meta[_CONFIG_PATH] = path


config_option = click.option(
    "--config",
    type=click.Path(dir_okay=False),
    is_eager=True,
    expose_value=False,
    callback=load_config,
    metavar="FILE",
    help=f"Read settings from this TOML file (also {ENV_PREFIX}_CONFIG); flags and the environment win over it.",
)


def print_version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(version_text())
        ctx.exit()


version_option = click.option(
    "-V",
    "--version",
    is_flag=True,
    is_eager=True,
    expose_value=False,
    allow_from_autoenv=False,
    callback=print_version,
    help="Show the version (and those of requests, urllib3 and Python) and exit.",
)


def version_text() -> str:
    python = f"{platform.python_version()} ({platform.python_implementation()})"
    return f"fetchpool {__version__}\nrequests {_version('requests')}\nurllib3 {_version('urllib3')}\nPython {python}"


# Where each package keeps its version, as a file of its own that imports nothing.
_VERSION_FILES = {"requests": "__version__.py", "urllib3": "_version.py"}
_ASSIGNED = re.compile(r"""^__version__\s*(?::[^=\n]*)?=\s*(?:version\s*=\s*)?["']([^"']+)["']""", re.MULTILINE)


def _version(package: str) -> str:
    """The installed version, read from the package's version file without importing the
    package (importing requests costs more than the rest of `--version`); the installed
    metadata when that file is not where it used to be."""
    spec = importlib.util.find_spec(package)
    if spec is None:
        return "not installed"
    for folder in spec.submodule_search_locations or ():
        try:
            with open(f"{folder}/{_VERSION_FILES[package]}", encoding="utf-8") as f:
                found = _ASSIGNED.search(f.read())
        except OSError:
            continue
        if found:
            return found.group(1)
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:  # pragma: no cover - a package without metadata
        return "unknown"
