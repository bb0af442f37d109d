"""Misbehaving servers: every fault is one record, with the right error kind, a clear one-line
message, in bounded time.

The servers are raw sockets on 127.0.0.1 (tests/faultserver.py). No name is ever looked up:
`socket.getaddrinfo` is replaced, for every test here, by one that only answers loopback
addresses. Each fetch is timed and written to a journal (`pytest -s` prints it).
"""

from __future__ import annotations

import re
import socket
import sys
import time
import tracemalloc
from io import BytesIO
from pathlib import Path

import pytest

from fetchpool.inputs import read_lines
from fetchpool.pool import fetch
from fetchpool.result import ErrorKind, Result

from faultserver import (
    BOUND,
    FAST,
    LOOKUPS,
    SPARE,
    FaultServer,
    T,
    options,
    serving,
    timed_fetch,
)

MiB = 1024 * 1024


pytestmark = pytest.mark.usefixtures("loopback_only")  # no test here may look a name up


# Every `open()` while a test watches (an audit hook cannot be removed, so it stays cheap).
_WATCHING: list[list[str]] = []


def _audit(event: str, args: tuple[object, ...]) -> None:
    if _WATCHING and event in ("open", "os.listdir", "os.scandir") and args:
        _WATCHING[-1].append(str(args[0]))


sys.addaudithook(_audit)


def assert_clean_message(result: Result) -> None:
    """One short line a person can read: no wrapper noise, no control characters."""
    message = result.error_message
    assert message, result
    assert len(message) <= 300 and message == " ".join(message.split())
    assert not re.search(r"[\x00-\x1f\x7f]", message), message
    for noise in ("object at 0x", "Max retries", "Caused by", "ConnectionPool(", "Traceback"):
        assert noise not in message, message


def assert_fault(result: Result, kind: ErrorKind, took: float, limit: float = FAST) -> None:
    assert result.error is kind, (result.error, result.error_message)
    assert not result.ok and result.attempts == 1
    assert_clean_message(result)
    assert took < limit, took


# -- deadlines ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/drip-body", 200),  # headers, then one body byte every 0.5 s forever
        ("/drip-headers", None),  # the status line and headers, one byte every 0.1 s
        ("/silent", None),  # reads the request, never answers
    ],
)
def test_slow_servers_hit_the_total_deadline(faults: FaultServer, path: str, status: int | None) -> None:
    result, took = timed_fetch(faults.url(path), path, timeout=T)
    assert_fault(result, ErrorKind.TIMEOUT, took, BOUND)
    assert took >= T * 0.95, took
    assert result.status == status
    assert result.error_message == "no complete response within the 1 s total deadline"


def test_redirect_whose_body_drips_hits_the_total_deadline(faults: FaultServer) -> None:
    """The 302's body is drained before following it; the drip must not outlive the deadline.

    The deadline may strike inside a read or between two reads; either way no request is
    made after it (see the next test).
    """
    result, took = timed_fetch(faults.url("/redirect-drip"), "/redirect-drip", timeout=T)
    assert_fault(result, ErrorKind.TIMEOUT, took, BOUND)
    assert took >= T * 0.95, took
    assert result.status == 302


def test_no_request_is_started_after_the_deadline(faults: FaultServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Deterministic form of the race above: the deadline passes while a redirect body drains."""
    from requests.adapters import HTTPAdapter

    import fetchpool.client as client_module
    from fetchpool.deadline import current_guard

    drain = client_module._drain
    send = HTTPAdapter.send
    late: list[str | None] = []

    def drain_then_expire(response, guard):  # type: ignore[no-untyped-def]
        drain(response, guard)
        guard.expire()  # as if the watchdog fired between two reads of the redirect body

    def watched_send(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        guard = current_guard()
        if guard is not None and guard.expired:
            late.append(request.url)
        return send(self, request, *args, **kwargs)

    monkeypatch.setattr(client_module, "_drain", drain_then_expire)
    monkeypatch.setattr(HTTPAdapter, "send", watched_send)
    result, took = timed_fetch(faults.url("/to?url=/ok"), "deadline passes while draining a redirect", timeout=SPARE)
    assert result.error is ErrorKind.TIMEOUT
    assert late == [], "a request was sent after the deadline"
    assert result.status == 302  # the last answer that came within the deadline


def test_accepted_but_never_served_is_timeout(faults: FaultServer) -> None:
    """A socket that listens but never accepts: the kernel completes the handshake, nobody answers."""
    result, took = timed_fetch(f"http://127.0.0.1:{faults.backlog_port}/", "listening, never accepted", timeout=T)
    assert_fault(result, ErrorKind.TIMEOUT, took, BOUND)
    assert took >= T * 0.95


@pytest.mark.skipif(sys.platform != "linux", reason="relies on Linux dropping SYNs when the accept queue is full")
def test_connect_deadline_against_a_full_accept_queue() -> None:
    """With the accept queue full the kernel drops the SYN: only --connect-timeout ends the wait."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = []
        try:
            for _ in range(3):
                s = socket.socket()
                s.setblocking(False)
                s.connect_ex(("127.0.0.1", port))
                fillers.append(s)
            result, took = timed_fetch(
                f"http://127.0.0.1:{port}/", "full accept queue", timeout=SPARE, connect_timeout=0.3
            )
        finally:
            for s in fillers:
                s.close()
    assert_fault(result, ErrorKind.TIMEOUT, took)  # the connect timeout, not the total one
    assert took >= 0.28
    assert result.error_message == f"timed out connecting to 127.0.0.1:{port} after 0.3 s"


# -- connection, name resolution -------------------------------------------------------------------


def test_connection_refused_is_connect() -> None:
    port = FaultServer.refused_port()
    result, took = timed_fetch(f"http://127.0.0.1:{port}/x", "refused", timeout=SPARE)
    assert_fault(result, ErrorKind.CONNECT, took)
    assert result.error_message == f"connection refused by 127.0.0.1:{port}"


@pytest.mark.parametrize(
    ("errno", "text"),
    [(socket.EAI_NONAME, "Name or service not known"), (socket.EAI_AGAIN, "Temporary failure in name resolution")],
)
def test_failed_lookup_is_dns_not_connect(monkeypatch: pytest.MonkeyPatch, errno: int, text: str) -> None:
    """The real resolution path (urllib3 -> socket.getaddrinfo) failing gives `dns`."""
    asked: list[object] = []

    def failing(host: object, *args: object, **kwargs: object) -> None:
        asked.append(host)
        raise socket.gaierror(errno, text)

    monkeypatch.setattr(socket, "getaddrinfo", failing)
    result, took = timed_fetch("http://no-such-host.test:8080/x", f"getaddrinfo {text}", timeout=SPARE)
    assert asked == ["no-such-host.test"]
    assert_fault(result, ErrorKind.DNS, took)
    assert result.error_message == f"could not resolve host no-such-host.test: {text[0].lower()}{text[1:]}"


def test_invalid_tld_is_answered_without_a_lookup() -> None:
    LOOKUPS.clear()
    result, took = timed_fetch("http://xn--bcher-kva.invalid/", "IDN under .invalid", timeout=SPARE)
    assert_fault(result, ErrorKind.DNS, took)
    assert LOOKUPS == []


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_dead_proxy_is_connect_and_names_the_proxy(monkeypatch: pytest.MonkeyPatch, scheme: str) -> None:
    port = FaultServer.refused_port()
    monkeypatch.setenv(f"{scheme.upper()}_PROXY", f"http://user:pr0xypass@127.0.0.1:{port}")
    result, took = timed_fetch(f"{scheme}://origin.test/", f"{scheme} via a dead proxy", timeout=SPARE)
    assert_fault(result, ErrorKind.CONNECT, took)
    assert result.error_message == f"could not use the proxy 127.0.0.1:{port}: connection refused"


@pytest.mark.parametrize(
    ("path", "kind", "limit"),
    [
        ("/garbage", ErrorKind.PROTOCOL, FAST),
        ("/silent", ErrorKind.TIMEOUT, BOUND),
        ("/reset-body", ErrorKind.READ, FAST),
    ],
)
def test_misbehaving_http_proxy(
    faults: FaultServer, monkeypatch: pytest.MonkeyPatch, path: str, kind: ErrorKind, limit: float
) -> None:
    """An HTTP proxy gets the absolute URL; the fault server picks its behaviour from the path."""
    monkeypatch.setenv("HTTP_PROXY", faults.base)
    result, took = timed_fetch(
        f"http://origin.test{path}", f"proxy {path}", timeout=T if kind is ErrorKind.TIMEOUT else SPARE
    )
    assert_fault(result, kind, took, limit)


def test_proxy_refusing_the_tunnel_is_connect(faults: FaultServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", faults.base)  # answers CONNECT with 404
    result, took = timed_fetch("https://origin.test/", "proxy refuses CONNECT", timeout=SPARE)
    assert_fault(result, ErrorKind.CONNECT, took)
    assert result.error_message == "could not use the proxy: Tunnel connection failed: 404 Not Found"


def test_unresolvable_proxy_is_dns_and_says_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://no-such-proxy.test:3128")
    result, took = timed_fetch("https://origin.test/", "unresolvable proxy", timeout=SPARE)
    assert_fault(result, ErrorKind.DNS, took)
    assert (result.error_message or "").startswith("could not resolve proxy host no-such-proxy.test")


# -- broken answers: `protocol` before the headers, `read` in the body --------------------------------


@pytest.mark.parametrize(
    ("path", "kind", "status", "size", "message"),
    [
        ("/close", ErrorKind.PROTOCOL, None, 0, "server closed the connection without answering"),
        ("/reset", ErrorKind.PROTOCOL, None, 0, "connection reset by the server before it answered"),
        (
            "/garbage",
            ErrorKind.PROTOCOL,
            None,
            0,
            'not an HTTP response: status line "\\x00\\xffSSH-2.0-definitely not http"',
        ),
        ("/bad-status", ErrorKind.PROTOCOL, None, 0, 'not an HTTP response: status line "HTTP/1.1 abc OK"'),
        (
            "/http09",
            ErrorKind.PROTOCOL,
            None,
            0,
            'not an HTTP response: status line "<html>no status line at all</html>"',
        ),
        ("/empty-status", ErrorKind.PROTOCOL, None, 0, 'not an HTTP response: status line ""'),
        (
            "/long-header",
            ErrorKind.PROTOCOL,
            None,
            0,
            "bad HTTP response: got more than 65536 bytes when reading header line",
        ),
        ("/many-headers", ErrorKind.PROTOCOL, None, 0, "bad HTTP response: got more than 100 headers"),
        (
            "/two-lengths",
            ErrorKind.PROTOCOL,
            None,
            0,
            "bad HTTP header: Content-Length contained multiple unmatching values (4, 10)",
        ),
        (
            "/reset-body",
            ErrorKind.READ,
            200,
            1000,
            "connection broken while reading the body: connection reset by peer",
        ),
        ("/short-body", ErrorKind.READ, 200, 10, "body ended early: 10 bytes read, 990 more expected"),
        ("/bad-chunk", ErrorKind.READ, 200, 0, "bad chunked encoding, or the body ended inside a chunk"),
        ("/chunk-cut", ErrorKind.READ, 200, 10, "bad chunked encoding, or the body ended inside a chunk"),
    ],
)
def test_broken_answers(
    faults: FaultServer, path: str, kind: ErrorKind, status: int | None, size: int, message: str
) -> None:
    result, took = timed_fetch(faults.url(path), path, timeout=SPARE)
    assert_fault(result, kind, took)
    assert (result.status, result.bytes, result.truncated) == (status, size, False)
    assert result.error_message == message


def test_close_without_reading_the_request_is_protocol() -> None:
    with serving(on_accept="slam") as srv:
        result, took = timed_fetch(srv.url("/"), "closed at once, request unread", timeout=SPARE)
    assert_fault(result, ErrorKind.PROTOCOL, took)


@pytest.mark.parametrize(
    ("path", "size"),
    [
        ("/http10", 5000),  # HTTP/1.0, no length: the body runs until close
        ("/bad-length", 4),  # Content-Length: abc is ignored, read until close
        ("/header-junk", 2),  # header lines without a colon are tolerated
        ("/continue", 2),  # a 100 Continue before the real answer
    ],
)
def test_odd_but_readable_answers_are_ok(faults: FaultServer, path: str, size: int) -> None:
    result, took = timed_fetch(faults.url(path), path, timeout=SPARE)
    assert (result.ok, result.status, result.bytes, result.error) == (True, 200, size, None), result
    assert took < FAST


def test_compressed_body_is_counted_as_sent_not_inflated(faults: FaultServer) -> None:
    """20 MiB of zeros gzipped to ~20 KB: `bytes` is the wire size, nothing is decompressed."""
    result, took = timed_fetch(faults.url("/gzip-bomb"), "gzip bomb", timeout=SPARE, max_bytes=MiB)
    assert result.ok and not result.truncated and 10_000 < result.bytes < 50_000
    assert took < FAST


# -- endless bodies: the cap holds and memory stays flat --------------------------------------------


@pytest.mark.parametrize("path", ["/chunked-forever", "/huge-length"])
def test_endless_body_stops_at_max_bytes_with_flat_memory(faults: FaultServer, path: str) -> None:
    cap = 50 * MiB
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        result, took = timed_fetch(faults.url(path), f"{path} (max_bytes 50 MiB)", timeout=3 * SPARE, max_bytes=cap)
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    print(f"\nMEMORY {path}: tracemalloc peak {peak / 1024:.0f} KiB while {cap // MiB} MiB went by")
    assert (result.ok, result.status, result.bytes, result.truncated, result.error) == (True, 200, cap, True, None)
    assert peak < 2 * MiB, f"peak {peak / MiB:.1f} MiB while reading {cap / MiB:.0f} MiB"
    assert took < 2 * SPARE  # the cap ended it, not the deadline


# -- redirects ----------------------------------------------------------------------------------------


def test_redirect_loop_is_too_many_redirects(faults: FaultServer) -> None:
    result, took = timed_fetch(faults.url("/loop"), "redirect loop", timeout=SPARE)
    assert_fault(result, ErrorKind.TOO_MANY_REDIRECTS, took)
    assert (result.redirects, result.status, result.error_message) == (10, 302, "more than 10 redirects")
    three, _ = timed_fetch(faults.url("/loop"), "redirect loop, --max-redirects 3", timeout=SPARE, max_redirects=3)
    assert (three.error, three.redirects) == (ErrorKind.TOO_MANY_REDIRECTS, 3)


@pytest.mark.parametrize(
    "template",
    [
        "file://{file}",
        "FILE://{file}",
        "file:{file}",
        "ftp://127.0.0.1:{port}/x",
        "javascript:alert(1)",
        "data:text/plain,hi",
        "gopher://127.0.0.1:{port}/",
    ],
)
def test_redirect_to_another_scheme_reads_and_connects_nothing(
    faults: FaultServer, tmp_path: Path, template: str
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("never read me\n")
    with socket.create_server(("127.0.0.1", 0)) as trap:
        target = template.format(file=secret, port=trap.getsockname()[1])
        opened: list[str] = []
        _WATCHING.append(opened)
        try:
            result, took = timed_fetch(faults.url(f"/to?url={target}"), f"redirect to {target}", timeout=SPARE)
        finally:
            _WATCHING.clear()
        trap.setblocking(False)
        with pytest.raises(BlockingIOError):
            trap.accept()  # nobody connected to the ftp/gopher "server"
    assert_fault(result, ErrorKind.UNSUPPORTED_SCHEME, took)
    assert (result.status, result.bytes) == (302, 0)
    scheme = target.split(":", 1)[0].lower()
    assert result.error_message == f"redirect to scheme '{scheme}:' refused (only http and https)"
    assert not [p for p in opened if "secret" in p]


@pytest.mark.parametrize(
    ("location", "kind"),
    [
        ("http://[::1", ErrorKind.INVALID_URL),
        ("http://a b.test/", ErrorKind.INVALID_URL),
        ("http://no-such-host.test/", ErrorKind.DNS),
        ("http://bücher.invalid/", ErrorKind.DNS),
    ],
)
def test_redirect_to_a_bad_location(faults: FaultServer, location: str, kind: ErrorKind) -> None:
    result, took = timed_fetch(faults.url(f"/to?url={location}"), f"redirect to {location}", timeout=SPARE)
    assert_fault(result, kind, took)
    assert result.status == 302


def test_redirect_with_a_password_to_a_refused_port_leaks_no_password(faults: FaultServer) -> None:
    port = FaultServer.refused_port()
    result, took = timed_fetch(
        faults.url(f"/to?url=http://alice:s3cretpw@127.0.0.1:{port}/x"), "redirect with password", timeout=SPARE
    )
    assert_fault(result, ErrorKind.CONNECT, took)
    assert "s3cretpw" not in f"{result.error_message} {result.final_url}"  # `url` is the input, query and all
    assert result.final_url == f"http://alice:***@127.0.0.1:{port}/x"


# -- malformed input lines ----------------------------------------------------------------------------

BAD_LINES: list[tuple[bytes, set[ErrorKind | None]]] = [
    (b"http://127.0.0.1/" + b"a" * 100_000, {ErrorKind.INVALID_URL}),  # longer than 64 KiB
    (b"http://[::1", {ErrorKind.INVALID_URL}),
    (b"http://", {ErrorKind.INVALID_URL}),
    (b"http:///path-only", {ErrorKind.INVALID_URL}),
    (b"http://127.0.0.1:99999/", {ErrorKind.INVALID_URL}),
    (b"http://127.0.0.1:-1/", {ErrorKind.INVALID_URL}),
    (b"http://127.0.0.1/a\x00b", {ErrorKind.INVALID_URL}),
    (b"http://exa\x07mple.invalid/", {ErrorKind.INVALID_URL}),
    (b"http://127.0.0.1/\x1b[31mred", {ErrorKind.INVALID_URL}),
    (b"http://exa mple.invalid/", {ErrorKind.INVALID_URL}),
    (b"http://\xff\xfe.invalid/", {ErrorKind.INVALID_URL}),  # not UTF-8
    (b"file:///etc/passwd", {ErrorKind.UNSUPPORTED_SCHEME}),
    (b"javascript:alert(1)", {ErrorKind.UNSUPPORTED_SCHEME}),
    (b"ftp://127.0.0.1/", {ErrorKind.UNSUPPORTED_SCHEME}),
    (b"mailto:someone@example.invalid", {ErrorKind.UNSUPPORTED_SCHEME}),
    ("http://bücher.invalid/".encode(), {ErrorKind.DNS}),  # IDN: encoded, then .invalid
    ("http://пример.invalid/".encode(), {ErrorKind.DNS}),
    ("http://☃.invalid/".encode(), {ErrorKind.INVALID_URL}),  # symbols are not valid IDNA 2008
    ("http://exa\u200bmple.invalid/".encode(), {ErrorKind.DNS, ErrorKind.INVALID_URL}),  # zero-width space
    ("http://\u0661\u0662.invalid/".encode(), {ErrorKind.DNS, ErrorKind.INVALID_URL}),  # Arabic-Indic digits
    (b"http://" + b"a" * 64 + b".invalid/", {ErrorKind.DNS, ErrorKind.INVALID_URL}),  # label too long
    (b"http://a..b.invalid/", {ErrorKind.DNS, ErrorKind.INVALID_URL}),
    (b"just some words", {ErrorKind.INVALID_URL}),
    (b"no-such-host.test/path", {ErrorKind.DNS}),  # no scheme: http://no-such-host.test, looked up, refused
]


def test_malformed_lines_give_one_record_each_and_never_crash(faults: FaultServer) -> None:
    good = [
        faults.url("/ok?q=a b").encode(),  # a space in the path is encoded, the URL fetched
        f"127.0.0.1:{faults.port}/ok".encode(),  # no scheme: --default-scheme http
        f"//127.0.0.1:{faults.port}/ok".encode(),
        f"  \tHTTP://127.0.0.1:{faults.port}/ok  \r".encode(),
    ]
    data = b"\n".join([line for line, _ in BAD_LINES] + good + [b"", b"# comment", b"   "])
    start = time.monotonic()
    results = list(fetch(read_lines(BytesIO(data)), options(concurrency=8, timeout=SPARE, default_scheme="http")))
    took = time.monotonic() - start
    by_line = {r.line: r for r in results}
    assert len(results) == len(by_line) == len(BAD_LINES) + len(good)
    for number, (line, kinds) in enumerate(BAD_LINES, 1):
        record = by_line[number]
        assert record.error in kinds, (line[:60], record.error, record.error_message)
        assert_clean_message(record)
        print(f"\nLINE {line[:50]!r}: error={record.error} message={record.error_message!r}")
    for number in range(len(BAD_LINES) + 1, len(BAD_LINES) + len(good) + 1):
        assert by_line[number].ok and by_line[number].status in (200, 404), by_line[number]
    assert took < FAST


# -- everything at once -------------------------------------------------------------------------------


@pytest.mark.slow
def test_5000_lines_mixing_every_fault_at_concurrency_64(server, faults: FaultServer) -> None:
    refused = FaultServer.refused_port()
    fault_lines: list[tuple[str, ErrorKind | None]] = [
        (faults.url("/drip-body"), ErrorKind.TIMEOUT),
        (faults.url("/drip-headers"), ErrorKind.TIMEOUT),
        (faults.url("/silent"), ErrorKind.TIMEOUT),
        (f"http://127.0.0.1:{faults.backlog_port}/", ErrorKind.TIMEOUT),
        (faults.url("/close"), ErrorKind.PROTOCOL),
        (faults.url("/reset"), ErrorKind.PROTOCOL),
        (faults.url("/garbage"), ErrorKind.PROTOCOL),
        (faults.url("/bad-status"), ErrorKind.PROTOCOL),
        (faults.url("/reset-body"), ErrorKind.READ),
        (faults.url("/short-body"), ErrorKind.READ),
        (faults.url("/bad-chunk"), ErrorKind.READ),
        (faults.url("/chunked-forever"), None),
        (faults.url("/huge-length"), None),
        (faults.url("/loop"), ErrorKind.TOO_MANY_REDIRECTS),
        (faults.url("/to?url=file:///etc/passwd"), ErrorKind.UNSUPPORTED_SCHEME),
        (f"http://127.0.0.1:{refused}/", ErrorKind.CONNECT),
        ("http://no-such-host.test/", ErrorKind.DNS),
        ("http://x.invalid/", ErrorKind.DNS),
        ("http://[::1", ErrorKind.INVALID_URL),
        ("ftp://127.0.0.1/", ErrorKind.UNSUPPORTED_SCHEME),
    ]
    lines: list[str] = []
    expected: dict[int, ErrorKind | None] = {}
    for i in range(5000):
        if i % 1000 == 500:
            lines += ["", "# a comment"]  # skipped, but counted in line numbers
        if i % 25 == 0:
            url, kind = fault_lines[(i // 25) % len(fault_lines)]
        else:
            url, kind = server.url(f"/ok?i={i}"), None
        lines.append(url)
        expected[len(lines)] = kind
    start = time.monotonic()
    # Client and servers share one process and its GIL: on a busy machine a burst of 64 new
    # connections can take a second or more to be served. The deadline is SPARE so that only a
    # bug fails a fast line; the hanging lines still wait it out. 3 hops keep the loops cheap.
    run = options(concurrency=64, timeout=SPARE, max_bytes=MiB, max_redirects=3, default_scheme="http")
    results = list(fetch(lines, run))
    took = time.monotonic() - start
    print(f"\n5000 lines, {len(lines)} with blanks and comments: {took:.2f} s")
    slowest: dict[str, float] = {}
    for r in results:
        kind = expected[r.line].value if expected[r.line] else "ok"
        slowest[kind] = max(slowest.get(kind, 0.0), r.elapsed_ms)
    print("slowest record per expected kind (ms):", {k: round(v) for k, v in sorted(slowest.items())})
    assert len(results) == 5000
    assert sorted(r.line for r in results) == sorted(expected)
    wrong = [(r.line, r.url, r.error, expected[r.line]) for r in results if r.error is not expected[r.line]]
    assert not wrong, wrong[:10]
    assert all(r.ok for r in results if expected[r.line] is None)
    assert sum(r.truncated for r in results) == 20
    hung = [r.elapsed_ms for r in results if r.error is ErrorKind.TIMEOUT]
    assert len(hung) == 40 and min(hung) >= SPARE * 950, min(hung)  # they waited for the deadline
    assert all(r.elapsed_ms < (SPARE + BOUND - T) * 1000 for r in results), max(r.elapsed_ms for r in results)
    assert took < 4 * SPARE  # the 40 hanging lines overlapped: one after another they would take 40 * SPARE


@pytest.mark.parametrize("path", ["/cut-header", "/cut-head", "/cut-status", "/cut-redirect"])
def test_a_head_cut_short_by_a_close_is_protocol_never_an_empty_200(faults, path: str) -> None:
    """http.client takes the end of the stream for the end of the headers; a half-sent head
    must not pass for a complete, empty response (nor be followed, for a redirect)."""
    result, took = timed_fetch(faults.url(path), f"head cut short: {path}", timeout=SPARE, retries=0)
    assert_fault(result, ErrorKind.PROTOCOL, took)
    assert (result.status, result.ok, result.redirects) == (None, False, 0)
    assert result.error_message == "the server closed the connection in the middle of its headers"
