"""Settings from the environment and `--config FILE`: precedence flag > env > config > default,
lists in each, mistakes named; `--version`; shell completion."""

from __future__ import annotations

import io
import itertools
import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

import fetchpool.app
from fetchpool import __version__
from fetchpool.cli import Environment, ExitCode, main
from fetchpool.cli_config import name_env_vars, settings_of
from fetchpool.options import parse_retry_on

from conftest import cli_env


class Seen:
    """What the command would have run with: `drive` is replaced, nothing is fetched."""

    options: Any = None
    plan: Any = None


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> Seen:
    got = Seen()

    def drive(env: Any, files: Any, demo: Any, options: Any, plan: Any, monitor: Any = None) -> ExitCode:
        got.options, got.plan = options, plan
        return ExitCode.OK

    monkeypatch.setattr(fetchpool.app, "drive", drive)
    return got


def invoke(args: list[str], env: dict[str, str] | None = None) -> click.testing.Result:
    environment = Environment(stdin=io.BytesIO(b"http://127.0.0.1:9/\n"), stdout_isatty=False, stderr_isatty=False)
    return CliRunner().invoke(main, args, obj=environment, env=env, catch_exceptions=False)


# (flag args, env var and value, config line, how to read it, value from each layer and the default)
KINDS = {
    "plain value": (["-c", "3"], ("FETCHPOOL_CONCURRENCY", "4"), "concurrency = 5", "concurrency", (3, 4, 5, 16)),
    "flag": (["--ordered"], ("FETCHPOOL_ORDERED", "0"), "ordered = true", "ordered", (True, False, True, False)),
    "short flag": (["-k"], ("FETCHPOOL_INSECURE", "false"), "insecure = true", "verify", (False, True, False, True)),
    "on/off flag": (
        ["--no-follow"],
        ("FETCHPOOL_FOLLOW", "1"),
        "follow = false",
        "follow_redirects",
        (False, True, False, True),
    ),
    "list spec": (
        ["--retry-on", "429"],
        ("FETCHPOOL_RETRY_ON", "503,timeout"),
        'retry-on = "5xx"',
        "retry_on",
        (
            parse_retry_on("429"),
            parse_retry_on("503,timeout"),
            parse_retry_on("5xx"),
            parse_retry_on("429,502,503,504,connect,timeout,read,protocol"),
        ),
    ),
    "repeatable": (
        ["-H", "X-A: flag", "-H", "X-B: flag two"],
        ("FETCHPOOL_HEADER", "X-A: env\nX-B: two words\n"),
        'header = ["X-A: config", "Accept:"]',
        "headers",
        (
            (("X-A", "flag"), ("X-B", "flag two")),
            (("X-A", "env"), ("X-B", "two words")),
            (("X-A", "config"), ("Accept", None)),
            (),
        ),
    ),
    "choice": (
        ["-f", "csv"],
        ("FETCHPOOL_FORMAT", "json"),
        'format = "jsonl"',
        "plan.format",
        ("csv", "json", "jsonl", "auto"),
    ),
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "layers",
    list(itertools.product([True, False], repeat=3)),
    ids=lambda b: "".join("FEC"[i] if on else "-" for i, on in enumerate(b)),
)
def test_precedence_flag_then_env_then_config_then_default(
    seen: Seen, tmp_path: Path, kind: str, layers: tuple[bool, bool, bool]
) -> None:
    args, (var, value), line, attr, expected = KINDS[kind]
    use_flag, use_env, use_config = layers
    config = tmp_path / "fp.toml"
    config.write_text(line + "\n")
    result = invoke(
        [*(args if use_flag else []), *(["--config", str(config)] if use_config else [])],
        env={var: value} if use_env else None,
    )
    assert result.exit_code == ExitCode.OK, result.output
    got = getattr(seen.plan, attr[5:]) if attr.startswith("plan.") else getattr(seen.options, attr)
    winner = next((i for i, on in enumerate(layers) if on), 3)
    assert got == expected[winner]


def test_every_setting_has_the_env_var_and_config_key_of_its_flag() -> None:
    names = settings_of(main)
    assert {"header", "format", "json", "retry_on", "per_host", "no_progress", "follow"} <= set(names)
    assert "config" not in names and "version" not in names
    assert names["header"].envvar == "FETCHPOOL_HEADER" and names["format"].envvar == "FETCHPOOL_FORMAT"


def test_fetchpool_config_names_the_file_and_config_wins_over_it(seen: Seen, tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text("concurrency = 7\nper-host = 2\n")
    (tmp_path / "b.toml").write_text("concurrency = 9\n")
    assert invoke([], env={"FETCHPOOL_CONFIG": str(tmp_path / "a.toml")}).exit_code == ExitCode.OK
    assert (seen.options.concurrency, seen.options.per_host) == (7, 2)
    result = invoke(["--config", str(tmp_path / "b.toml")], env={"FETCHPOOL_CONFIG": str(tmp_path / "a.toml")})
    assert result.exit_code == ExitCode.OK and (seen.options.concurrency, seen.options.per_host) == (9, None)


@pytest.mark.parametrize(
    "text, message",
    [
        ("concurency = 3\n", "unknown setting 'concurency'"),
        ("headers = 'X: 1'\n", "unknown setting 'headers'"),  # the flag's name, not the parameter's
        ("config = 'other.toml'\n", "unknown setting 'config'"),
        ("concurrency = [1, 2]\n", "'concurrency' takes one value"),
        ("concurrency = 0\n", "Invalid value for '-c' / '--concurrency'"),
        ("rate = 'fast'\n", "Invalid value for '--rate'"),
        ("match-status = '6xx'\n", "Invalid value for '--match-status'"),
        ("header = ['no colon']\n", "Invalid value for '-H' / '--header'"),
        ("format = 'xml'\n", "Invalid value for '-f' / '--format'"),
        ("concurrency = \n", "not valid TOML"),
    ],
)
def test_a_config_mistake_is_a_usage_error_naming_it(seen: Seen, tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "fp.toml"
    config.write_text(text)
    result = invoke(["--config", str(config)])
    assert result.exit_code == ExitCode.USAGE and message in result.stderr, result.stderr
    if message.startswith("Invalid value"):
        assert f"(from config {str(config)!r}): " in result.stderr
    assert seen.options is None and "Traceback" not in result.output


def test_a_missing_config_is_a_usage_error(tmp_path: Path) -> None:
    result = invoke([], env={"FETCHPOOL_CONFIG": str(tmp_path / "absent.toml")})
    assert result.exit_code == ExitCode.USAGE and "cannot read config" in result.stderr


@pytest.mark.parametrize(
    "var, value, message",
    [
        ("FETCHPOOL_RATE", "fast", "Invalid value for '--rate'"),
        ("FETCHPOOL_RETRY_ON", "²", "Invalid value for '--retry-on'"),
        ("FETCHPOOL_HEADER", "X-A: 1\nno colon", "Invalid value for '-H' / '--header'"),
        ("FETCHPOOL_MAX_BYTES", "lots", "Invalid value for '--max-bytes'"),
    ],
)
def test_a_bad_env_value_is_a_usage_error_naming_the_flag(seen: Seen, var: str, value: str, message: str) -> None:
    result = invoke([], env={var: value})
    assert result.exit_code == ExitCode.USAGE and f"{message} (from {var}): " in result.stderr
    assert seen.options is None and "no colon" not in result.stderr  # a header may hold a secret


def test_a_value_refused_after_parsing_names_where_it_came_from(seen: Seen, tmp_path: Path) -> None:
    result = invoke([], env={"FETCHPOOL_RATE": "1/h", "FETCHPOOL_CONCURRENCY": "2"})
    assert result.exit_code == ExitCode.OK  # one an hour is allowed; one a day less is not:
    result = invoke([], env={"FETCHPOOL_RATE": "0.000001/h"})
    assert "Invalid value for '--rate' (from FETCHPOOL_RATE): must be at least one request a day" in result.stderr
    config = tmp_path / "fp.toml"
    config.write_text("rate-per-host = true\n")
    result = invoke(["--config", str(config)])
    assert f"Invalid value for '--rate-per-host' (from config {str(config)!r}): needs a rate" in result.stderr
    assert "(from" not in invoke(["--rate", "fast"]).stderr


def test_fetchpool_debug_still_shows_tracebacks(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any) -> ExitCode:
        raise RuntimeError("bug")

    monkeypatch.setattr(fetchpool.app, "drive", broken)
    result = invoke([])
    assert result.exit_code == ExitCode.FAILURES and "internal error: RuntimeError: bug" in result.stderr
    with pytest.raises(RuntimeError):
        invoke([], env={"FETCHPOOL_DEBUG": "1"})


def test_version_and_help_are_not_settings(seen: Seen) -> None:
    result = invoke([], env={"FETCHPOOL_VERSION": "1", "FETCHPOOL_HELP": "1"})
    assert result.exit_code == ExitCode.OK and seen.options is not None and result.stdout == ""


def test_headers_from_the_environment_one_per_line_reach_the_server(server) -> None:
    url = server.url("/headers?id=from-env")
    env = cli_env(FETCHPOOL_HEADER="X-A: one two\n\nX-B: three", FETCHPOOL_RETRIES="0")
    proc = subprocess.run(
        [sys.executable, "-m", "fetchpool", url], capture_output=True, env=env, timeout=60, cwd=Path(__file__).parent
    )
    assert proc.returncode == ExitCode.OK, proc.stderr
    lines = server.header_lines["from-env"]
    assert [(k, v) for k, v in lines if k.startswith("X-")] == [("X-A", "one two"), ("X-B", "three")]


# -- --version ------------------------------------------------------------------------------------

PROBE = """
import runpy, sys
sys.argv = ["fetchpool", "--version"]
try:
    runpy.run_module("fetchpool", run_name="__main__")
except SystemExit:
    pass
print("loaded:", " ".join(m for m in ("requests", "urllib3", "rich", "importlib.metadata") if m in sys.modules))
"""


def test_version_names_fetchpool_requests_urllib3_and_python_without_importing_them() -> None:
    proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, env=cli_env(), timeout=60, check=True)
    lines = proc.stdout.decode().splitlines()
    python = ".".join(map(str, sys.version_info[:3]))
    assert lines[:3] == [f"fetchpool {__version__}", f"requests {version('requests')}", f"urllib3 {version('urllib3')}"]
    assert lines[3].startswith(f"Python {python} (") and lines[4].split() == ["loaded:"]


# -- shell completion -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shell, marker",
    [
        ("bash", "complete -o nosort -F _fetchpool_completion fetchpool"),
        ("zsh", "#compdef fetchpool"),
        ("fish", "complete --no-files --command fetchpool"),
    ],
)
def test_each_shell_gets_a_completion_script(shell: str, marker: str) -> None:
    env = cli_env(_FETCHPOOL_COMPLETE=f"{shell}_source")
    proc = subprocess.run([sys.executable, "-m", "fetchpool"], capture_output=True, env=env, timeout=60)
    assert proc.returncode == 0 and marker in proc.stdout.decode(), proc.stdout


def test_completion_completes_a_long_option() -> None:
    env = cli_env(_FETCHPOOL_COMPLETE="bash_complete", COMP_WORDS="fetchpool --conc", COMP_CWORD="1")
    proc = subprocess.run([sys.executable, "-m", "fetchpool"], capture_output=True, env=env, timeout=60)
    assert proc.stdout.decode().split() == ["plain,--concurrency"]


def test_any_repeatable_option_reads_its_env_var_one_value_a_line() -> None:
    @click.command(context_settings={"auto_envvar_prefix": "FETCHPOOL"})
    @click.option("--include-header", "names", multiple=True)
    def command(names: tuple[str, ...]) -> None:
        click.echo(repr(names))

    name_env_vars(command)
    result = CliRunner().invoke(command, [], env={"FETCHPOOL_INCLUDE_HEADER": "Server\nX Powered By\n\n"})
    assert result.output.strip() == repr(("Server", "X Powered By"))
    assert click.STRING.split_envvar_value("a b") == ["a", "b"]  # the shared type is left as Click made it


def test_the_readme_config_example_is_read_as_it_says(seen: Seen, tmp_path: Path) -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    block = re.search(r"```toml\n(.*?)\n```", readme, re.S)
    assert block, "no ```toml block in the README"
    (tmp_path / "fetchpool.toml").write_text(block.group(1))
    result = invoke(["--config", str(tmp_path / "fetchpool.toml")])
    assert result.exit_code == ExitCode.OK, result.output
    options = seen.options
    assert (options.concurrency, options.per_host, options.rate, options.timeout) == (32, 4, 50.0, 20.0)
    assert options.headers == (("Accept", "application/json"), ("X-Team", "ops")) and not options.follow_redirects
    assert options.retry_on == parse_retry_on("429,5xx,timeout") and seen.plan.format == "jsonl"


@pytest.mark.parametrize(
    "args, env, expected",
    [
        (["--json"], {"FETCHPOOL_FORMAT": "csv"}, "jsonl"),
        (["-f", "csv"], {"FETCHPOOL_JSON": "1"}, "csv"),
    ],
)
def test_a_flag_wins_over_a_contradicting_environment(
    seen: Seen, args: list[str], env: dict[str, str], expected: str
) -> None:
    result = invoke(args, env=env)
    assert result.exit_code == ExitCode.OK, result.output
    assert seen.plan.format == expected
