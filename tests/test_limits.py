"""Politeness limits: per-host concurrency and request rate, without stalling other hosts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fetchpool import Options, fetch
from fetchpool.limits import BLOCKED, HostGate, parse_rate
from fetchpool.options import OptionsError

from conftest import run_cli
from servers import TestServer, running


@pytest.fixture
def hosts() -> Iterator[tuple[TestServer, TestServer]]:
    """Two fresh servers; with the name `localhost` that makes three hosts on loopback."""
    with running(TestServer("127.0.0.1")) as one, running(TestServer("127.0.0.2")) as two:
        yield one, two  # type: ignore[misc]


def urls_for(server: TestServer, name: str, count: int, ms: int) -> list[str]:
    port = server.server_address[1]
    return [f"http://{name}:{port}/conc?ms={ms}&i={i}" for i in range(count)]


def test_per_host_caps_each_host_but_hosts_run_side_by_side(hosts) -> None:
    one, two = hosts
    urls = urls_for(one, "127.0.0.1", 8, 150) + urls_for(one, "localhost", 8, 150) + urls_for(two, "127.0.0.2", 8, 150)
    results = list(fetch(urls, Options(concurrency=16, per_host=2, retries=0)))
    assert len(results) == 24 and all(r.ok for r in results)
    port1, port2 = one.server_address[1], two.server_address[1]
    assert one.peak == {f"127.0.0.1:{port1}": 2, f"localhost:{port1}": 2}
    assert two.peak == {f"127.0.0.2:{port2}": 2}
    assert one.peak_total == 4  # both host names on this server were served at once


def test_a_busy_host_does_not_hold_workers_or_stall_others(hosts) -> None:
    one, two = hosts
    slow = urls_for(one, "127.0.0.1", 3, 1000)
    fast = urls_for(two, "127.0.0.2", 6, 1)
    order = [r.url for r in fetch(slow + fast, Options(concurrency=4, per_host=1, retries=0))]
    assert set(order[:7]) >= set(fast)  # the other host went by while the slow one waited its turn
    assert one.peak[f"127.0.0.1:{one.server_address[1]}"] == 1


def test_global_rate_spaces_requests(hosts) -> None:
    one, _ = hosts
    results = list(fetch(urls_for(one, "127.0.0.1", 6, 1), Options(concurrency=8, rate=20.0, retries=0)))
    assert len(results) == 6
    (arrivals,) = one.arrivals.values()
    assert max(arrivals) - min(arrivals) >= 5 * 0.05 * 0.8


def test_rate_per_host_lets_hosts_proceed_in_parallel(hosts) -> None:
    one, two = hosts
    urls = urls_for(one, "127.0.0.1", 3, 1) + urls_for(two, "127.0.0.2", 3, 1)
    list(fetch(urls, Options(concurrency=8, rate=2.0, rate_per_host=True, retries=0)))
    a, b = (sorted(times) for times in (*one.arrivals.values(), *two.arrivals.values()))
    for times in (a, b):
        gaps = [y - x for x, y in zip(times, times[1:], strict=False)]
        assert min(gaps) >= 0.5 * 0.8
    assert b[0] < a[1] and a[0] < b[1]  # each host's first request went before the other's second: no shared turn


def test_host_gate_bookkeeping() -> None:
    gate = HostGate(per_host=1, rate=None)
    assert gate.admit("a", 0.0) == 0.0
    assert gate.admit("a", 0.0) == BLOCKED
    assert gate.admit("b", 0.0) == 0.0
    gate.finished("a")
    assert gate.admit("a", 0.0) == 0.0
    rated = HostGate(rate=2.0)
    assert rated.admit("a", 10.0) == 0.0
    assert rated.admit("b", 10.0) == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("text", "per_second"), [("20", 20.0), ("20/s", 20.0), ("120/m", 2.0), ("3600/h", 1.0), ("0.5", 0.5)]
)
def test_parse_rate(text: str, per_second: float) -> None:
    assert parse_rate(text) == pytest.approx(per_second)


@pytest.mark.parametrize("text", ["fast", "0", "-1/s", "10/d"])
def test_bad_rates_are_usage_errors(text: str) -> None:
    with pytest.raises(OptionsError):
        parse_rate(text)
    assert run_cli("--rate", text, "-").returncode == 2


def test_rate_per_host_needs_rate() -> None:
    assert run_cli("--rate-per-host", "-").returncode == 2
