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
    for var in [v for v in os.environ if v.startswith("FETCHPOOL_")]:
        monkeypatch.delenv(var)


@pytest.fixture(scope="session")
def server() -> Iterator[TestServer]:
    with running(TestServer()) as srv:
        yield srv  # type: ignore[misc]


def cli_env(**extra: str) -> dict[str, str]:
    """Environment for running the CLI as a subprocess: no proxies, no colour games."""
    env = {k: v for k, v in os.environ.items() if k not in PROXY_VARS}
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

RAY_MODULES = ("tests/test_engines.py", "tests/test_ray.py")  # every module with `ray`-marked tests
RAY_UNIT = "ray"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A `ray` test anywhere else would run beside the others: name its module in RAY_MODULES."""
    stray = [i.nodeid for i in items if i.get_closest_marker("ray") and i.nodeid.split("::")[0] not in RAY_MODULES]
    if stray:
        raise pytest.UsageError(f"add the module of {stray[0]} to RAY_MODULES in tests/conftest.py")


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist's, which a run may lack
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`--dist loadfile` with the modules of RAY_MODULES as one unit, handed out first.

    Each Ray test starts a local Ray or joins one: two at once on two cores only slow each
    other down, and a run that joins `auto` must find its own test's cluster, so they run one
    after another on one worker, and from the start, being the suite's longest chain. Whole
    modules keep module-scoped fixtures as a run without workers has them (test_engines.py's
    records on threads are taken once per module, against counters of the session's server).
    """
    if config.getoption("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class RayFirst(LoadFileScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            module: str = super()._split_scope(nodeid)
            return RAY_UNIT if module in RAY_MODULES else module

        def _assign_work_unit(self, node: Any) -> None:
            if RAY_UNIT in self.workqueue:
                self.workqueue.move_to_end(RAY_UNIT, last=False)
            super()._assign_work_unit(node)

    return RayFirst(config, log)
