"""One URL -> one record: the schema, redirects, body cap and deadline, on a real server."""

from __future__ import annotations

import json
import time

import pytest
import requests
import responses

from fetchpool.client import Client, fetch_one
from fetchpool.options import Options
from fetchpool.result import FIELDS, ErrorKind, Result

from faultserver import BOUND, T

KEYS = {
    "url": str,
    "line": int,
    "input": str,
    "status": (int, type(None)),
    "ok": bool,
    "final_url": (str, type(None)),
    "redirects": int,
    "elapsed_ms": float,
    "ttfb_ms": (float, type(None)),
    "bytes": int,
    "truncated": bool,
    "content_type": (str, type(None)),
    "attempts": int,
    "error": (str, type(None)),
    "error_message": (str, type(None)),
}


def get(url: str, **opts: object) -> Result:
    """One URL, one attempt unless a test asks for retries (see test_retry.py)."""
    opts.setdefault("retries", 0)
    return fetch_one(url, Client(Options(**opts)), line=7)  # type: ignore[arg-type]


def test_record_schema_has_every_key_with_its_type(server) -> None:
    record = get(server.url("/ok")).to_dict()
    assert list(record) == list(FIELDS) and set(KEYS) <= set(record)
    for key, kind in KEYS.items():
        assert isinstance(record[key], kind), key
    assert json.loads(json.dumps(record)) == record


def test_ok_page(server) -> None:
    r = get(server.url("/ok"))
    assert (r.status, r.ok, r.bytes, r.error, r.line, r.attempts) == (200, True, 3, None, 7, 1)
    assert r.content_type == "text/plain" and r.final_url == r.url and r.redirects == 0
    assert r.ttfb_ms is not None and 0 < r.ttfb_ms <= r.elapsed_ms


@pytest.mark.parametrize(
    ("code", "ok"), [(201, True), (204, True), (304, True), (404, False), (500, False), (503, False)]
)
def test_status_codes_decide_ok(server, code: int, ok: bool) -> None:
    r = get(server.url(f"/status/{code}"))
    assert (r.status, r.ok, r.error) == (code, ok, None)


def test_redirects_are_followed_and_counted(server) -> None:
    r = get(server.url("/redirect/3"))
    assert (r.status, r.redirects, r.ok) == (200, 3, True)
    assert r.final_url == server.url("/ok")


def test_no_follow_reports_the_redirect_itself(server) -> None:
    r = get(server.url("/redirect/3"), follow_redirects=False)
    assert (r.status, r.redirects, r.ok, r.final_url) == (302, 0, True, server.url("/redirect/3"))


def test_max_redirects_gives_too_many_redirects(server) -> None:
    r = get(server.url("/redirect/3"), max_redirects=2)
    assert r.error is ErrorKind.TOO_MANY_REDIRECTS and not r.ok and r.redirects == 2
    assert get(server.url("/redirect/3"), max_redirects=3).ok


def test_redirect_loop(server) -> None:
    r = get(server.url("/loop"))
    assert r.error is ErrorKind.TOO_MANY_REDIRECTS and r.redirects == 10


@pytest.mark.parametrize("target", ["file:///etc/passwd", "ftp://127.0.0.1/x", "gopher://127.0.0.1/"])
def test_redirect_to_another_scheme_is_refused(server, target: str) -> None:
    r = get(server.url(f"/to?url={target}"))
    assert r.error is ErrorKind.UNSUPPORTED_SCHEME and r.status == 302 and r.bytes == 0


def test_body_is_capped_and_marked_truncated(server) -> None:
    r = get(server.url("/bytes/100000"), max_bytes=1000)
    assert (r.bytes, r.truncated, r.ok) == (1000, True, True)
    exact = get(server.url("/bytes/1000"), max_bytes=1000)
    assert (exact.bytes, exact.truncated) == (1000, False)


def test_head_has_no_body(server) -> None:
    r = get(server.url("/bytes/5000"), method="HEAD")
    assert (r.status, r.bytes) == (200, 0)


def test_method_headers_and_user_agent_reach_the_server(server) -> None:
    opts = Options(method="POST", headers=(("X-Trace", "abc"),), user_agent="probe/1")
    r = fetch_one(server.url("/echo?id=hdr"), Client(opts))
    assert r.ok
    method, _path, headers = next(s for s in server.seen if s[1] == "/echo?id=hdr")
    assert (method, headers["X-Trace"], headers["User-Agent"]) == ("POST", "abc", "probe/1")


def test_default_user_agent_is_fetchpool(server) -> None:
    from fetchpool import __version__

    with responses.RequestsMock() as mock:
        mock.get("http://svc.test/ua", body="ok")
        get("http://svc.test/ua")
        assert mock.calls[0].request.headers["User-Agent"] == f"fetchpool/{__version__}"


def test_total_deadline_holds_against_a_dripping_server(server) -> None:
    start = time.monotonic()
    r = get(server.url("/drip?ms=200"), timeout=T)
    took = time.monotonic() - start
    assert r.error is ErrorKind.TIMEOUT and r.status == 200
    assert T <= took < BOUND, took  # without a total deadline the drip never ends
    assert "1 s total deadline" in (r.error_message or "")


def test_connection_refused_is_connect() -> None:
    r = get("http://127.0.0.1:9/")
    assert r.error is ErrorKind.CONNECT and r.status is None and not r.ok


def test_invalid_tld_is_dns_without_a_lookup(monkeypatch) -> None:
    import socket

    def no_lookups(*a: object, **k: object) -> None:
        raise AssertionError("looked up a name")

    monkeypatch.setattr(socket, "getaddrinfo", no_lookups)
    r = get("http://nothing.invalid/")
    assert r.error is ErrorKind.DNS


class TestRequestLayer:
    """Fast unit tests of what is sent, with `responses` standing in for the network."""

    @responses.activate
    def test_303_turns_post_into_get(self) -> None:
        responses.post("http://svc.test/form", status=303, headers={"Location": "/done"})
        responses.get("http://svc.test/done", body="done")
        r = get("http://svc.test/form", method="POST")
        assert r.ok and r.redirects == 1
        assert [c.request.method for c in responses.calls] == ["POST", "GET"]

    @responses.activate
    def test_credentials_are_not_sent_to_another_host(self) -> None:
        responses.get("http://a.test/", status=302, headers={"Location": "http://b.test/"})
        responses.get("http://b.test/", body="b")
        get("http://a.test/", headers=(("Authorization", "Bearer s3cret"), ("Cookie", "k=v"), ("X-Keep", "1")))
        first, second = (c.request.headers for c in responses.calls)
        assert first["Authorization"] == "Bearer s3cret"
        assert "Authorization" not in second and "Cookie" not in second and second["X-Keep"] == "1"

    @responses.activate
    def test_password_in_url_is_sent_as_basic_auth_but_masked_in_the_record(self) -> None:
        responses.get("http://svc.test/private", body="ok")
        r = get("http://alice:hunter2@svc.test/private")
        assert responses.calls[0].request.headers["Authorization"].startswith("Basic ")
        assert "hunter2" not in json.dumps(r.to_dict())
        assert r.url == "http://alice:***@svc.test/private"

    @responses.activate
    def test_content_type_and_size(self) -> None:
        responses.get("http://svc.test/j", body=b"{}" * 50, content_type="application/json")
        r = get("http://svc.test/j")
        assert (r.status, r.bytes, r.content_type) == (200, 100, "application/json")

    @responses.activate
    @pytest.mark.parametrize(
        ("exc", "kind"),
        [
            (requests.exceptions.SSLError("bad cert"), ErrorKind.TLS),
            (requests.exceptions.ConnectTimeout("slow"), ErrorKind.TIMEOUT),
            (requests.exceptions.ConnectionError("refused"), ErrorKind.CONNECT),
            (requests.exceptions.ChunkedEncodingError("broken"), ErrorKind.READ),
        ],
    )
    def test_exceptions_become_error_kinds(self, exc: Exception, kind: ErrorKind) -> None:
        responses.get("http://svc.test/x", body=exc)
        r = get("http://svc.test/x")
        assert r.error is kind and r.error_message and "\n" not in r.error_message
