"""`-t` is one deadline for the whole of a URL: once it has passed no record is ok, whatever
was being read, and no attempt, redirect or retry starts after it.

The watchdog's socket shutdown looks like the end of a body framed by close; these tests hold
every path where that could pass for success. Servers are tests/faultserver.py's raw sockets.
"""

from __future__ import annotations

import re
import time

import pytest

import fetchpool.client as client_module
from fetchpool import Options, fetch
from fetchpool.client import Client, fetch_attempt, fetch_one
from fetchpool.inputs import Target
from fetchpool.result import ErrorKind, Result

from conftest import run_cli
from faultserver import FaultServer, serving, timed_fetch

T = 1.0
DEADLINE_MESSAGE = "no complete response within the 1 s total deadline"


pytestmark = pytest.mark.usefixtures("loopback_only")  # no test here may look a name up


def assert_deadline(result: Result, status: int | None) -> None:
    assert (result.ok, result.error, result.status) == (False, ErrorKind.TIMEOUT, status), result
    assert result.error_message == DEADLINE_MESSAGE
    assert result.elapsed_ms >= T * 1000, result.elapsed_ms


# -- the watchdog's shutdown is never the end of a response ------------------------------------------


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/drip-close", 200),  # no length: the body ends at close, and the shutdown looks like one
        ("/drip-chunked", 200),  # a shutdown between two chunks
        ("/drip-body", 200),  # Content-Length, one byte every 0.5 s
        ("/half-headers", None),  # cut headers are not a response: no status is reported
        ("/half-redirect", None),  # nor are a redirect's; and /ok is never asked for
        ("/redirect-drip", 302),  # the 302's own body drips while it is drained
        ("/redirect-drip-close", 302),  # and one framed by close: its end of file is not the end
    ],
)
def test_a_body_still_arriving_at_the_deadline_is_timeout(faults: FaultServer, path: str, status: int | None) -> None:
    before = faults.hits.get("ok", 0)
    result, _ = timed_fetch(faults.url(path), f"deadline during {path}", timeout=T)
    assert_deadline(result, status)
    assert faults.hits.get("ok", 0) == before, "a redirect was followed after the deadline"


def test_a_fetch_that_finishes_reading_as_the_deadline_passes_is_not_ok(
    faults: FaultServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole body arrived, but only once the deadline had passed: not ok."""
    count = client_module._count_body

    def slow_count(response, result, cap, guard):  # type: ignore[no-untyped-def]
        count(response, result, cap, guard)
        while time.monotonic() < guard.deadline:  # the last read returns just after the deadline
            time.sleep(0.01)

    monkeypatch.setattr(client_module, "_count_body", slow_count)
    result, _ = timed_fetch(faults.url("/ok"), "read ends at the deadline", timeout=0.2)
    assert (result.ok, result.error, result.status, result.bytes) == (False, ErrorKind.TIMEOUT, 200, 3)


@pytest.mark.parametrize("timeout", [0.002, 0.01, 0.03])
def test_deadlines_shorter_than_any_answer_are_enforced(faults: FaultServer, timeout: float) -> None:
    """/drip-fast takes 40 ms or more with no gap long enough to time a read out: never ok within 30 ms."""
    client = Client(Options(timeout=timeout, retries=0))
    try:
        results = [fetch_one(faults.url(f"/drip-fast?i={i}"), client) for i in range(3)]
    finally:
        client.close()
    for r in results:
        assert (r.ok, r.error) == (False, ErrorKind.TIMEOUT), r


def test_a_connection_shut_by_the_watchdog_is_never_reused(faults: FaultServer, server) -> None:
    """After a deadline mid-body, the next URL on the same client gets a sound connection."""
    client = Client(Options(timeout=0.3, retries=0))
    try:
        late = fetch_one(server.url("/drip?ms=100"), client)
        client.options = Options(timeout=5, retries=0)
        after = [fetch_one(server.url(f"/bytes/1000?i={i}"), client) for i in range(3)]
    finally:
        client.close()
    assert late.error is ErrorKind.TIMEOUT
    assert [(r.ok, r.bytes) for r in after] == [(True, 1000)] * 3


def test_a_proxy_dripping_its_connect_answer_hits_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tunnel is read while the connection opens: each byte in time for --connect-timeout, not for -t."""
    with serving(on_accept="drip-answer") as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.base)
        result, _ = timed_fetch("https://origin.test/", "proxy drips its CONNECT answer", timeout=T, connect_timeout=5)
    assert_deadline(result, None)


# -- -t bounds the whole URL: attempts, redirects and the waits between them ---------------------------


def assert_retries_stopped_by_the_deadline(r: Result, start: float, arrivals: list[float]) -> None:
    """No attempt started after the deadline, and the record says how the retries ended.

    The deadline counts from the URL's first attempt, which a loaded machine may start a
    good tenth of a second after `start`: the first request's arrival stands for it.
    """
    assert 2 <= len(arrivals) == r.attempts and min(arrivals) >= start, (r.attempts, arrivals, start)
    assert max(arrivals) < min(arrivals) + T, (arrivals, start)
    assert not r.ok
    if r.error is None:  # the last wait asked for was refused: the record is the last 503
        assert r.status == 503 and r.elapsed_ms < T * 1000
        pattern = r"the next retry, in [\d.]+ s, would pass the 1 s deadline \(-t\); not retried"
        assert re.fullmatch(pattern, r.error_message or ""), r.error_message
    else:  # the last wait ended in time, but the retry could only start after the deadline
        assert r.error is ErrorKind.TIMEOUT
        assert r.error_message == f"the 1 s deadline (-t) passed before retry {r.attempts} could start"


def test_a_dead_url_with_retries_starts_no_attempt_after_its_deadline(faults: FaultServer) -> None:
    """503 at once, every time: retries stop when the next wait would end past -t."""
    start = time.monotonic()
    r, _ = timed_fetch(faults.url("/busy?dead=1"), "503 forever, retries", timeout=T, retries=50, backoff=0.05)
    assert_retries_stopped_by_the_deadline(r, start, [t for name, t in faults.seen if name == "busy" and t >= start])


def test_the_pool_schedules_no_retry_past_the_deadline(faults: FaultServer) -> None:
    """The same through `fetch`, whose retries wait on the dispatcher, not in a worker."""
    start = time.monotonic()
    [r] = list(fetch([faults.url("/busy?pool=1")], Options(timeout=T, retries=50, backoff=0.05)))
    assert_retries_stopped_by_the_deadline(r, start, [t for name, t in faults.seen if name == "busy" and t >= start])


def test_a_silent_server_is_one_attempt_not_three(faults: FaultServer) -> None:
    """The first attempt used the whole deadline: no retry could fit, and none is made."""
    before = faults.hits.get("silent", 0)
    r, took = timed_fetch(faults.url("/silent"), "silent, retries", timeout=T, retries=2, backoff=0.01)
    assert (r.error, r.attempts, r.error_message) == (ErrorKind.TIMEOUT, 1, DEADLINE_MESSAGE)
    assert faults.hits["silent"] - before == 1


def test_a_refused_retry_says_why_after_the_error(faults: FaultServer) -> None:
    port = FaultServer.refused_port()
    r, _ = timed_fetch(f"http://127.0.0.1:{port}/", "refused, backoff past -t", timeout=0.3, retries=2, backoff=2)
    assert (r.error, r.attempts) == (ErrorKind.CONNECT, 1)
    message = r.error_message or ""
    assert message.startswith(f"connection refused by 127.0.0.1:{port}; the next retry, in "), message
    assert message.endswith(" s, would pass the 0.3 s deadline (-t); not retried"), message


def test_retry_after_past_the_deadline_is_not_waited_for(faults: FaultServer) -> None:
    r, took = timed_fetch(faults.url("/busy?after=5"), "Retry-After past -t", timeout=2, retries=2)
    assert (r.status, r.attempts, r.error) == (503, 1, None)
    assert r.error_message == "Retry-After 5 s would pass the 2 s deadline (-t); not retried"


def test_connect_timeout_is_capped_by_what_remains_of_the_deadline(faults: FaultServer) -> None:
    """A listener that never accepts; --connect-timeout 30 cannot outlast -t 1."""
    r, took = timed_fetch(f"http://127.0.0.1:{faults.backlog_port}/", "connect, -t 1", timeout=T, connect_timeout=30)
    assert (r.error, r.attempts) == (ErrorKind.TIMEOUT, 1)
    assert took < 30


def test_an_attempt_whose_deadline_passed_before_it_started_makes_no_request(faults: FaultServer) -> None:
    """A retry the pool could only start late (every worker busy): no request, no attempt counted."""
    client = Client(Options(timeout=0.5, retries=2))
    before = faults.hits.get("ok", 0)
    try:
        r, _ = fetch_attempt(Target(faults.url("/ok"), 0), client, attempt=2, started=time.monotonic() - 1)
    finally:
        client.close()
    assert (r.error, r.attempts, r.ok) == (ErrorKind.TIMEOUT, 1, False)
    assert r.error_message == "the 0.5 s deadline (-t) passed before retry 1 could start"
    assert faults.hits.get("ok", 0) == before


def test_cli_dead_url_with_default_retries_ends_by_its_deadline(faults: FaultServer) -> None:
    """The README's promise, end to end: -t 1 with the default --retries 2 is one second, not three."""
    start = time.monotonic()
    proc = run_cli("-t", "1", "--json", input=faults.url("/silent?cli=1").encode() + b"\n")
    assert proc.returncode == 1, proc.stderr
    attempts = [when for name, when in faults.seen if name == "silent" and when >= start]
    assert len(attempts) == 1
    assert b'"attempts":1' in proc.stdout
