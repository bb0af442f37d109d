"""Option values: whatever a user types, it is a usage error naming the flag, or it works.

`internal` means a bug in fetchpool, so no value of any option may produce it: `Options`
refuses what HTTP, sockets and timers cannot take (the library gets the same errors), and
the command reports that as exit 2 naming the flag.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable, Iterator

import click
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from fetchpool.cli import Environment, ExitCode, main
from fetchpool.limits import parse_rate
from fetchpool.options import MAX_BYTES, MAX_RETRIES, MAX_SECONDS, Options, OptionsError, parse_header

from faultserver import FaultServer, serving


def invoke(args: list[str], url: str = "http://127.0.0.1:9/") -> click.testing.Result:
    environment = Environment(stdin=io.BytesIO(url.encode() + b"\n"), stdout_isatty=False, stderr_isatty=False)
    return CliRunner().invoke(main, args, obj=environment, catch_exceptions=False)


@pytest.fixture(scope="module")
def instant() -> Iterator[FaultServer]:
    """A raw server whose `/ok` answers 200 as soon as the request head arrives, whatever the
    method, headers or announced body: no option value can make it keep a fetch waiting."""
    with serving() as server:
        yield server


# -- Options refuses what cannot be sent or waited for -------------------------------------------

REFUSED = [
    ("method", "GÉT"),
    ("method", ""),
    ("method", "GET /x"),
    ("method", "GET\n"),
    ("method", "ſ"),  # upper-cases to the ASCII "S": checked before upper-casing
    ("user_agent", "a\nb"),
    ("user_agent", "a\x00b"),
    ("user_agent", "\ud800"),
    ("user_agent", None),
    ("headers", (("X Y", "1"),)),
    ("headers", (("", "1"),)),
    ("headers", (("Ä", "1"),)),
    ("headers", (("X", "a\r\nInjected: 1"),)),
    ("headers", (("X", "\x7f"),)),
    ("headers", (("X", 1),)),
    ("headers", ("X: 1",)),
    ("headers", "X: 1"),
    ("timeout", 1e10),
    ("timeout", MAX_SECONDS + 1),
    ("timeout", math.nan),
    ("timeout", math.inf),
    ("timeout", 0),
    ("timeout", -0.0),
    ("timeout", True),
    ("timeout", "5"),
    ("connect_timeout", 1e10),
    ("connect_timeout", 0.0),
    ("backoff", -1),
    ("backoff", 1e308),
    ("max_retry_wait", math.inf),
    ("max_retry_wait", MAX_SECONDS * 2),
    ("retries", MAX_RETRIES + 1),
    ("retries", -1),
    ("retries", 1.5),
    ("max_bytes", MAX_BYTES + 1),
    ("max_bytes", -1),
    ("max_bytes", 1e3),
    ("max_redirects", -1),
    ("concurrency", 0),
    ("concurrency", 1025),
    ("per_host", 0),
    ("rate", 0.0),
    ("rate", 1e-9),
    ("rate", math.inf),
    ("rate", math.nan),
    ("default_scheme", "ftp"),
    ("retry_on", "429"),
    ("retry_on", frozenset({"teapot"})),
    ("retry_on", frozenset({"²²²"})),
    ("read_ahead", 1.5),
]


@pytest.mark.parametrize(("name", "value"), REFUSED)
def test_options_refuses_what_cannot_be_sent_naming_the_field(name: str, value: object) -> None:
    with pytest.raises(OptionsError) as caught:
        Options(**{name: value})  # type: ignore[arg-type]
    assert caught.value.field == name and str(caught.value).startswith(f"{name}: ")


@pytest.mark.parametrize(
    ("make", "hint"),
    [
        (lambda: Options(headers=(("Authorization", "Bearer s3cr3t\x01"),)), "U+0001"),
        (lambda: Options(headers=(("Bearer s3cr3t", "1"),)), "' '"),
        (lambda: parse_header("Authorization Bearer s3cr3t"), "Name: value"),
    ],
)
def test_a_mistyped_header_is_not_echoed_in_the_error(make: Callable[[], object], hint: str) -> None:
    """A secret with a typo in it must not end up in a terminal's scrollback or a CI log."""
    with pytest.raises(OptionsError) as caught:
        make()
    assert "s3cr3t" not in str(caught.value) and hint in str(caught.value)


def test_rate_per_host_needs_a_rate() -> None:
    with pytest.raises(OptionsError, match="rate_per_host"):
        Options(rate_per_host=True)


def test_options_accepts_the_edges_and_normalises() -> None:
    edge = Options(
        method="m-search",
        timeout=MAX_SECONDS,
        connect_timeout=1e-6,
        backoff=0,
        max_retry_wait=MAX_SECONDS,
        retries=MAX_RETRIES,
        max_bytes=MAX_BYTES,
        max_redirects=10**30,
        rate=1 / MAX_SECONDS,
        user_agent="",
        headers={"X-U": "café 😀", "X-Tab": "a\tb", "X-Raw": "\udcff", "Accept": None},
        retry_on={"429", "timeout"},
    )
    assert edge.method == "M-SEARCH"
    assert edge.headers == (("X-U", "café 😀"), ("X-Tab", "a\tb"), ("X-Raw", "\udcff"), ("Accept", None))
    assert edge.retry_on == frozenset({"429", "timeout"})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("X-A: 1", ("X-A", "1")),
        ("X-A:1", ("X-A", "1")),
        ("X-A:  a: b  ", ("X-A", "a: b")),
        ("Accept:", ("Accept", None)),
        ("Accept: \t", ("Accept", None)),
        ("X-Empty;", ("X-Empty", "")),
        ("X-Empty ; ", ("X-Empty", "")),
    ],
)
def test_parse_header_reads_curls_three_forms(text: str, expected: tuple[str, str | None]) -> None:
    assert parse_header(text) == expected


@pytest.mark.parametrize("text", ["", "no colon", "X; y"])
def test_parse_header_refuses_other_text(text: str) -> None:
    with pytest.raises(OptionsError) as caught:
        parse_header(text)
    assert caught.value.field == "headers"


# -- the command: exit 2, naming the flag ---------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["-A", "a\nb"], "'-A' / '--user-agent'"),
        (["-A", "a\x00"], "'-A' / '--user-agent'"),
        (["-X", "GÉT"], "'-X' / '--method'"),
        (["-H", "X: a\rb"], "'-H' / '--header'"),
        (["-H", "Bad Name: 1"], "'-H' / '--header'"),
        (["-H", "no colon"], "'-H' / '--header'"),
        (["-H", ";"], "'-H' / '--header'"),
        (["-t", "1e10"], "'-t' / '--timeout'"),
        (["-t", "nan"], "'-t' / '--timeout'"),
        (["--connect-timeout", "1e400"], "'--connect-timeout'"),
        (["--backoff", "1e308"], "'--backoff'"),
        (["--max-retry-wait", "inf"], "'--max-retry-wait'"),
        (["--retries", "99999999999999999999"], "'--retries'"),
        (["--max-bytes", "1e400"], "'--max-bytes'"),
        (["--max-bytes", "2P"], "'--max-bytes'"),
        (["--rate", "0.000001/h"], "'--rate'"),
        (["--rate", "9" * 400], "'--rate'"),
        (["--retry-on", "²²²"], "'--retry-on'"),
        (["--rate-per-host"], "'--rate-per-host'"),
    ],
)
def test_a_value_that_cannot_work_is_a_usage_error_naming_the_flag(args: list[str], flag: str) -> None:
    result = invoke(args)
    assert result.exit_code == ExitCode.USAGE, result.output
    assert f"Invalid value for {flag}" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("args", [["--accept", "²"], ["--match-status", "¹⁰⁰"], ["--fail-on", "2²2"]])
def test_unicode_digits_in_a_status_list_are_a_usage_error(args: list[str]) -> None:
    result = invoke(args)
    assert result.exit_code == ExitCode.USAGE and "Traceback" not in result.output


# -- property: any text for any option ------------------------------------------------------------

# Values chosen to break things, mixed with arbitrary text and valid values.
HOSTILE = [
    *("", " ", "0", "-0", "1", "3", "-1", "0.5", "1e-300", "1e10", "1e400", "-1e400", "nan", "inf", "-inf"),
    *("99999999999999999999", "86400", "86401", "1024", "1025", "²", "١٢", "0x10", "1_000", "10M", "1e3k", "2P"),
    *("😀", "GÉT", "HEAD", "post", "M-SEARCH", "a\nb", "a\rb", "\x00", "\x7f", "\t", "\udc80", "\ud800", "ſ"),
    *(
        "X: 😀",
        "X-A: 1",
        "Accept:",
        "User-Agent:",
        "Host:",
        "X-Empty;",
        "X: a\r\nY: b",
        ": x",
        "X;y",
        "Expect: 100-continue",
    ),
    *("200", "2xx", "200-299", "299-200", "timeout", "error", "any", "none", "5xx,dns"),
    *("url,status", "url,url", "5/s", "1/h", "0.00001/h", "http", "https", "csv", "json", "jsonl", "table", "auto"),
]
SKIPPED = {
    "demo": "starts its own server and fetches N URLs; tests/test_cli.py runs it",
    "version": "prints the version and exits before any other option is read",
}
SAFE_VALUES = {  # arbitrary text as a file name would write files anywhere
    "output": ["out.jsonl", "out.csv", "out.json", "-", "nested/missing/out.jsonl"],
    # Always written, to one name: its counts show an `internal` record whatever --format,
    # --fields or the filters leave out of the records themselves.
    "summary_json": ["summary.json"],
    "state": ["state.db"],
    "metrics": ["fetchpool.prom", "nested/missing/x.prom"],
    "resume": ["resume.jsonl", "out.jsonl"],
}


def _seconds_at_most(limit: float) -> Callable[[str], str]:
    """Keep every value that is refused or quick; an accepted long wait becomes `limit`."""

    def tame(text: str) -> str:
        try:
            value = float(text)
        except ValueError:
            return text
        return str(limit) if limit < value <= MAX_SECONDS else text

    return tame


def _count_at_most(limit: int, bound: int) -> Callable[[str], str]:
    def tame(text: str) -> str:
        try:
            value = int(text)
        except ValueError:
            return text
        return str(limit) if limit < value <= bound else text

    return tame


def _rate_at_least(per_second: float) -> Callable[[str], str]:
    def tame(text: str) -> str:
        try:
            value = parse_rate(text)
        except OptionsError:
            return text
        return f"{per_second:g}/s" if 1 / MAX_SECONDS <= value < per_second else text

    return tame


# Accepted values that would make one example slow (a 200 is retried if --retry-on says so,
# and every retry waits) are swapped for quick ones; every refused value is kept as drawn.
# --max-retry-wait is always given, so the 30 s default never applies.
TAMED = {
    "max_retry_wait": _seconds_at_most(0.01),  # bounds every wait between attempts
    "retries": _count_at_most(3, MAX_RETRIES),  # at most 4 attempts
    "rate": _rate_at_least(200.0),  # a retry waits for its turn too
    "concurrency": _count_at_most(16, 1024),  # each run starts that many threads
}
ALWAYS = {"max_retry_wait", "summary_json"}

text_value = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=12), st.floats().map(str), st.integers().map(str))


def _given(param: click.Option) -> st.SearchStrategy[list[str]]:
    """Arguments for one option given on the command line, with a drawn value."""
    long = max(param.opts, key=len)
    if param.is_flag:
        return st.sampled_from([[long], *([o] for o in param.secondary_opts)])
    values = st.one_of(st.just(str(param.default)), text_value)
    if isinstance(param.type, click.Choice):
        values = st.one_of(st.sampled_from(list(param.type.choices)), text_value)
    if param.name in SAFE_VALUES:
        values = st.sampled_from(SAFE_VALUES[param.name])
    values = values.map(TAMED.get(param.name or "", str))
    if param.multiple:
        return st.lists(values, min_size=1, max_size=3).map(lambda vs: [f"{long}={v}" for v in vs])
    return values.map(lambda v: [f"{long}={v}"])


OPTIONS = [p for p in main.params if isinstance(p, click.Option) and p.name not in SKIPPED]


def test_the_property_covers_every_option() -> None:
    names = {p.name for p in main.params if isinstance(p, click.Option)}
    assert names == {p.name for p in OPTIONS} | set(SKIPPED)
    assert {"headers", "user_agent", "method", "timeout", "rate", "max_bytes", "output"} <= names


@st.composite
def command_lines(draw: st.DrawFn) -> list[str]:
    """A few options at a time (all of them at once would nearly always hold one bad value)."""
    names = draw(st.sets(st.sampled_from([p.name for p in OPTIONS]), max_size=4)) | ALWAYS
    return [arg for p in OPTIONS if p.name in names for arg in draw(_given(p))]


@pytest.mark.slow
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(args=command_lines())
def test_no_option_value_gives_a_traceback_or_an_internal_record(
    args: list[str], instant: FaultServer, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path_factory.getbasetemp() / "property"
    folder.mkdir(exist_ok=True)
    monkeypatch.chdir(folder)  # where the output names above land
    summary = folder / "summary.json"
    summary.unlink(missing_ok=True)
    result = invoke(args, instant.url("/ok"))  # catch_exceptions=False: an exception fails the test
    event(f"exit {result.exit_code}")
    assert result.exit_code in (ExitCode.OK, ExitCode.FAILURES, ExitCode.USAGE), result.output
    assert "Traceback" not in result.stderr
    if result.exit_code == ExitCode.USAGE:
        assert result.stdout == "" and result.stderr.strip()
        return
    assert "internal" not in result.stdout + result.stderr  # no internal record, no "internal error"
    counts = json.loads(summary.read_text())
    skipped = counts.get("monitor", {}).get("skipped", 0)  # --resume, --shard, --dedupe: no record, counted
    assert counts["total"] + skipped == 1 and "internal" not in counts["counts"], counts
