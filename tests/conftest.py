"""Shared fixtures: real loopback servers, and no proxy settings leaking in from the machine."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import ScriptedServer

from servers import TestServer, running

PROXY_VARS = (
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
)


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests only ever talk to 127.0.0.1; a proxy from the machine must not interfere, nor
    fetchpool's own settings (FETCHPOOL_CONCURRENCY, FETCHPOOL_CONFIG, ...) from a shell."""
    for var in PROXY_VARS + ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(var, raising=False)
    for var in [v for v in os.environ if v.lower().endswith("_proxy")]:  # ftp_proxy, socks_proxy, ...
        monkeypatch.delenv(var)
    for var in [v for v in os.environ if v.startswith("FETCHPOOL_")]:
        monkeypatch.delenv(var)


@pytest.fixture(scope="session")
def server() -> Iterator[TestServer]:
    with running(TestServer()) as srv:
        yield srv  # type: ignore[misc]


def cli_env(**extra: str) -> dict[str, str]:
    """Environment for running the CLI as a subprocess: no proxies, no colour games."""
    env = {k: v for k, v in os.environ.items() if k not in PROXY_VARS and not k.lower().endswith("_proxy")}
    env.update(extra)
    return env


def run_cli(
    *args: str, input: bytes | None = None, timeout: float = 60, **kw: object
) -> subprocess.CompletedProcess[bytes]:
    """Run `python -m fetchpool ARGS` with pipes (so stdout is not a terminal)."""
    return subprocess.run(
        [sys.executable, "-m", "fetchpool", *args],
        input=input,
        capture_output=True,
        timeout=timeout,
        env=cli_env(),
        cwd=kw.pop("cwd", Path(__file__).parent),
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture
def scripted() -> Iterator[ScriptedServer]:
    """A server whose answers (`script`, `delay`) the test changes between runs."""
    with running(ScriptedServer()) as srv:
        yield srv  # type: ignore[misc]


@pytest.fixture
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """`socket.getaddrinfo` answers loopback addresses and refuses every name: no lookups."""
    from faultserver import loopback_getaddrinfo

    monkeypatch.setattr(socket, "getaddrinfo", loopback_getaddrinfo)


@pytest.fixture(scope="module")
def faults() -> Iterator[object]:
    """A misbehaving server (tests/faultserver.py) on 127.0.0.1, one per test module."""
    from faultserver import serving

    with serving() as srv:
        yield srv
