"""Retries: backoff, Retry-After, limits, and a waiting retry that holds no worker."""

from __future__ import annotations

import time
from email.utils import formatdate

import pytest

from fetchpool import Options, fetch
from fetchpool.client import Client, fetch_one
from fetchpool.options import OptionsError, parse_retry_on
from fetchpool.result import ErrorKind
from fetchpool.retry import retry_after_seconds

from conftest import run_cli

FAST = {"backoff": 0.01}


def once(url: str, **opts: object):
    return fetch_one(url, Client(Options(**{**FAST, **opts})))  # type: ignore[arg-type]


def key(request: pytest.FixtureRequest) -> str:
    return f"{request.node.name}-{time.monotonic_ns()}"


def test_retries_until_success_and_counts_attempts(server, request) -> None:
    r = once(server.url(f"/flaky?key={key(request)}&fail=2"))
    assert (r.status, r.ok, r.attempts) == (200, True, 3)


def test_gives_up_after_retries_and_reports_the_status(server, request) -> None:
    r = once(server.url(f"/flaky?key={key(request)}&fail=9"), retries=2)
    assert (r.status, r.ok, r.attempts) == (503, False, 3)


def test_no_retries_with_zero(server, request) -> None:
    r = once(server.url(f"/flaky?key={key(request)}&fail=9"), retries=0)
    assert (r.status, r.attempts) == (503, 1)


def test_retry_after_seconds_is_honoured_and_elapsed_covers_every_attempt(server, request) -> None:
    r = once(server.url(f"/flaky?key={key(request)}&fail=1&after=1"))
    assert (r.status, r.attempts) == (200, 2)
    assert r.elapsed_ms >= 1000


def test_retry_after_http_date_is_honoured(server, request) -> None:
    when = formatdate(time.time() + 2, usegmt=True)
    start = time.monotonic()
    r = once(server.url(f"/flaky?key={key(request)}&fail=1&after={when.replace(' ', '%20')}"))
    assert (r.status, r.attempts) == (200, 2)
    assert time.monotonic() - start >= 0.9


def test_retry_after_beyond_the_limit_gives_up_at_once(server, request) -> None:
    start = time.monotonic()
    r = once(server.url(f"/flaky?key={key(request)}&fail=1&after=120"), max_retry_wait=30)
    assert (r.status, r.attempts, r.ok, r.error) == (503, 1, False, None)
    assert time.monotonic() - start < 10  # waiting would take 30 s (the limit) or 120 s (the header)
    assert r.error_message == "Retry-After 120 s exceeds --max-retry-wait 30 s; not retried"


def test_a_status_not_in_retry_on_gets_no_message(server, request) -> None:
    """`error_message` on a record without an error says why a retry was not made; nothing else."""
    r = once(server.url(f"/flaky?key={key(request)}&fail=1&code=500&after=120"))
    assert (r.status, r.attempts, r.error_message) == (500, 1, None)
    r = once(server.url(f"/flaky?key={key(request)}b&fail=1&after=120"), retries=0)
    assert (r.status, r.attempts, r.error_message) == (503, 1, None)


def test_connection_errors_are_retried() -> None:
    r = once("http://127.0.0.1:9/", retries=2)
    assert r.error is ErrorKind.CONNECT and r.attempts == 3


@pytest.mark.parametrize("code", [404, 500])
def test_other_statuses_are_not_retried(server, request, code: int) -> None:
    r = once(server.url(f"/flaky?key={key(request)}&fail=1&code={code}"))
    assert (r.status, r.attempts) == (code, 1)


def test_retry_on_changes_the_set(server, request) -> None:
    r = once(server.url(f"/flaky?key={key(request)}&fail=1&code=500"), retry_on=parse_retry_on("500"))
    assert (r.status, r.attempts) == (200, 2)
    r = once(server.url(f"/flaky?key={key(request)}b&fail=1&code=503"), retry_on=parse_retry_on("500"))
    assert (r.status, r.attempts) == (503, 1)


def test_post_is_not_retried(server, request) -> None:
    r = once(server.url(f"/flaky?key={key(request)}&fail=1"), method="POST")
    assert (r.status, r.attempts) == (503, 1)


def test_a_waiting_retry_does_not_hold_the_only_worker(server, request) -> None:
    urls = [server.url(f"/flaky?key={key(request)}&fail=1&after=1")] + [server.url(f"/ok?i={i}") for i in range(5)]
    start = time.monotonic()
    got = [r.line for r in fetch(urls, Options(concurrency=1, backoff=0.01))]
    took = time.monotonic() - start
    assert got == [2, 3, 4, 5, 6, 1]  # the five fast URLs went by while the first one waited
    assert took >= 1.0  # and the first one did wait for its Retry-After


@pytest.mark.parametrize(("value", "expected"), [("3", 3.0), ("0", 0.0), ("junk", None), (None, None)])
def test_retry_after_parsing(value: str | None, expected: float | None) -> None:
    assert retry_after_seconds(value) == expected


def test_retry_on_rejects_unknown_items() -> None:
    assert parse_retry_on("429, timeout") == {"429", "timeout"}
    with pytest.raises(OptionsError):
        parse_retry_on("teapot")
    assert run_cli("--retry-on", "teapot", "-").returncode == 2


def test_retry_on_takes_classes() -> None:
    assert {"500", "503", "599", "timeout"} <= parse_retry_on("5xx,timeout")
    assert "499" not in parse_retry_on("5xx")
