"""A kept-alive connection the server closed while idle: the request is sent again, once, on a
fresh connection, as curl and browsers do, when nothing of the answer had arrived; never after
a byte of it did, and never for a method that is not idempotent.

The fault server answers the first request on a connection with a kept-alive 200 and then
reads the next request on it before it closes, resets or half-answers: the race between a
server's keep-alive timeout and the client's next request, made deterministic.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from fetchpool import Options
from fetchpool.client import Client, fetch_one
from fetchpool.result import ErrorKind, Result

from faultserver import FaultServer, serving

pytestmark = pytest.mark.usefixtures("loopback_only")  # no test here may look a name up


def twice(url: str, **kw: object) -> tuple[Result, Result]:
    """The same URL twice on one client: the second request goes out on the kept-alive connection."""
    client = Client(Options(**{"timeout": 5, "retries": 0, **kw}))  # type: ignore[arg-type]
    try:
        return fetch_one(url, client), fetch_one(url, client)
    finally:
        client.close()


def requests_seen(server: FaultServer, name: str, since: int) -> int:
    return sum(1 for seen, _ in server.seen[since:] if seen == name)


@pytest.mark.parametrize("path", ["/keepalive-close", "/keepalive-reset"])
@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "DELETE"])
def test_a_request_on_a_connection_closed_while_idle_is_sent_again(faults: FaultServer, path: str, method: str) -> None:
    since = len(faults.seen)
    first, second = twice(faults.url(path), method=method)
    assert (first.status, first.ok) == (200, True), first
    assert (second.status, second.ok, second.attempts, second.error) == (200, True, 1, None), second
    # first URL, the request lost with the connection, and the one sent again on a fresh connection
    assert requests_seen(faults, path.strip("/"), since) == 3


def test_a_server_closing_right_after_each_answer_costs_no_attempt(faults: FaultServer) -> None:
    """Its close races the next request: seen in time (a new connection) or not (sent again), never an error."""
    client = Client(Options(timeout=5, retries=0))
    try:
        results = [fetch_one(faults.url(f"/keepalive-fin?i={i}"), client) for i in range(20)]
    finally:
        client.close()
    assert [(r.ok, r.attempts) for r in results] == [(True, 1)] * 20, [r for r in results if not r.ok]


def test_half_a_status_line_is_never_sent_again(faults: FaultServer) -> None:
    since = len(faults.seen)
    first, second = twice(faults.url("/keepalive-partial"))
    assert first.ok
    assert (second.error, second.attempts, second.status) == (ErrorKind.PROTOCOL, 1, None), second
    assert second.error_message == 'not an HTTP response: status line "HTTP/1.1 2"'
    assert requests_seen(faults, "keepalive-partial", since) == 2


def test_half_a_status_line_with_retries_is_a_counted_attempt(faults: FaultServer) -> None:
    since = len(faults.seen)
    _, second = twice(faults.url("/keepalive-partial"), retries=1, backoff=0.01)
    assert (second.ok, second.attempts) == (True, 2), second
    assert requests_seen(faults, "keepalive-partial", since) == 3


def test_post_on_a_connection_closed_while_idle_is_not_sent_again(faults: FaultServer) -> None:
    """The server may have acted on it: the record says what happened, nothing is re-sent."""
    since = len(faults.seen)
    first, second = twice(faults.url("/keepalive-close"), method="POST")
    assert first.ok
    assert (second.error, second.attempts) == (ErrorKind.PROTOCOL, 1), second
    assert second.error_message == "server closed the connection without answering"
    assert requests_seen(faults, "keepalive-close", since) == 2


def test_post_is_sent_again_on_a_fresh_connection_with_retry_all_methods(faults: FaultServer) -> None:
    since = len(faults.seen)
    first, second = twice(faults.url("/keepalive-close"), method="POST", retry_all_methods=True)
    assert first.ok and (second.ok, second.attempts) == (True, 1), second
    assert requests_seen(faults, "keepalive-close", since) == 3


def test_a_fresh_connection_that_closes_is_not_sent_again(faults: FaultServer) -> None:
    since = len(faults.seen)
    client = Client(Options(timeout=5, retries=0))
    try:
        r = fetch_one(faults.url("/close"), client)
    finally:
        client.close()
    assert (r.error, r.error_message) == (ErrorKind.PROTOCOL, "server closed the connection without answering")
    assert requests_seen(faults, "close", since) == 1


def test_over_tls_too(tmp_path: Path) -> None:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    with serving(tls=server_ctx) as srv, pytest.MonkeyPatch.context() as mp:
        mp.setenv("REQUESTS_CA_BUNDLE", str(bundle))
        first, second = twice(srv.url("/keepalive-close"))
        assert (first.ok, second.ok, second.attempts) == (True, True, 1), second
        assert requests_seen(srv, "keepalive-close", 0) == 3
