"""Shared fixtures: real loopback servers, and no proxy settings leaking in from the machine;
under pytest-xdist, the Ray tests one after another, from the start."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


# -- parallel runs (pytest-xdist): whole modules, and the Ray tests as one unit that starts first ---

RAY_MODULE = "tests/test_ray.py"  # Ray tests all; elsewhere a test that starts Ray has a `ray` parameter
RAY_UNIT = "ray"


def _in_ray_unit(nodeid: str) -> bool:
    return nodeid.startswith(f"{RAY_MODULE}::") or nodeid.endswith("[ray]")


def pytest_runtest_setup(item: pytest.Item) -> None:
    """The scheduler sees test ids only: a `ray` test known otherwise would run beside the others."""
    if item.get_closest_marker("ray") and not _in_ray_unit(item.nodeid):
        pytest.fail(f"marked ray: put it in {RAY_MODULE} or give it a `ray` parameter", pytrace=False)


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist's, which a run may lack
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`--dist loadfile`, with the Ray tests as one unit, handed out first.

    Each Ray test starts a local Ray or joins one: two at once on two cores only slow each
    other down, and a run that joins `auto` must find its own test's cluster, so they run one
    after another on one worker, from the start, being the suite's longest chain. Every other
    test runs with its whole module, as a run without workers has it; the rest of a module the
    Ray unit took tests from goes second, so to another worker (one worker running a module in
    two pieces would set its module-scoped fixtures up twice: test_engines.py takes its records
    on threads once, against flaky-URL counters of the session's server).
    """
    if config.getoption("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class RayFirst(LoadFileScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            module: str = super()._split_scope(nodeid)
            return RAY_UNIT if self.numnodes > 1 and _in_ray_unit(nodeid) else module

        def _assign_work_unit(self, node: Any) -> None:
            if RAY_UNIT in self.workqueue:
                for module in {nodeid.split("::")[0] for nodeid in self.workqueue[RAY_UNIT]} & set(self.workqueue):
                    self.workqueue.move_to_end(module, last=False)
                self.workqueue.move_to_end(RAY_UNIT, last=False)
            super()._assign_work_unit(node)

    return RayFirst(config, log)
