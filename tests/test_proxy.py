"""Proxies from the environment, as requests honours them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fetchpool.client import Client, fetch_one
from fetchpool.options import Options

from servers import TestServer, running


@pytest.fixture
def proxy() -> Iterator[TestServer]:
    """Our test server answers absolute-URI requests too, so it can play an HTTP proxy."""
    with running(TestServer()) as srv:
        yield srv  # type: ignore[misc]


def test_http_proxy_from_the_environment_is_used(proxy, monkeypatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.base)
    r = fetch_one("http://origin.test/status/203", Client(Options(retries=0)))
    assert (r.status, r.ok, r.error) == (203, True, None)
    method, path, headers = proxy.seen[-1]
    assert (method, path, headers["Host"]) == ("GET", "http://origin.test/status/203", "origin.test")


def test_no_proxy_bypasses_it(proxy, server, monkeypatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.base)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    r = fetch_one(server.url("/ok?direct"), Client(Options(retries=0)))
    assert r.ok and proxy.seen == []


def test_a_dead_proxy_is_a_connect_error(monkeypatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    r = fetch_one("http://origin.test/", Client(Options(retries=0)))
    assert r.error is not None and r.error.value == "connect"
    assert "proxy" in (r.error_message or "").lower()
