"""Stats: counts by outcome, latency percentiles from a bounded histogram, the summary forms."""

from __future__ import annotations

import json
import math
import random
import time
from datetime import datetime

import pytest

from fetchpool.output.stats import LatencyHistogram, Stats, outcome
from fetchpool.output.stats import Stats as Summary
from fetchpool.result import ErrorKind, Result


def rec(status: int | None = 200, ms: float = 10.0, error: ErrorKind | None = None, size: int = 100) -> Result:
    ok = error is None and status is not None and 200 <= status < 400
    return Result(
        url="http://t.test/", line=1, status=status, ok=ok, elapsed_ms=ms, bytes=size, attempts=1, error=error
    )


def exact_percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1]


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("p", [50, 90, 99, 99.9])
def test_percentiles_are_within_two_percent_of_exact(seed: int, p: float) -> None:
    rnd = random.Random(seed)
    values = [rnd.lognormvariate(4, 1.2) for _ in range(20_000)] + [0.05, 250_000.0]
    hist = LatencyHistogram()
    for v in values:
        hist.add(v)
    assert hist.percentile(p) == pytest.approx(exact_percentile(values, p), rel=0.02)


def test_max_and_min_are_exact_and_p100_is_max() -> None:
    hist = LatencyHistogram()
    for v in (3.0, 7.25, 1234.5678):
        hist.add(v)
    assert hist.max == 1234.5678 and hist.min == 3.0
    assert hist.percentile(100) == 1234.5678
    assert hist.percentile(0.1) == pytest.approx(3.0, rel=0.01)


def test_single_value_percentiles_are_that_value() -> None:
    hist = LatencyHistogram()
    hist.add(42.0)
    assert [hist.percentile(p) for p in (50, 90, 99)] == [42.0, 42.0, 42.0]


def test_empty_histogram_has_no_percentiles_or_bins() -> None:
    hist = LatencyHistogram()
    assert hist.percentile(50) is None and hist.bins() == []


def test_out_of_range_values_are_kept_in_the_end_buckets() -> None:
    hist = LatencyHistogram()
    for v in (0.0, 1e-9, 1e12):
        hist.add(v)
    assert hist.n == 3 and sum(hist.counts) == 3
    low = hist.percentile(10)
    assert hist.percentile(100) == 1e12 and low is not None and low < LatencyHistogram.LOW * 1.02


def test_memory_is_fixed_however_many_values() -> None:
    hist = LatencyHistogram()
    size = len(hist.counts)
    for i in range(50_000):
        hist.add(float(i % 5000) + 0.5)
    assert len(hist.counts) == size < 2000


def test_bins_cover_min_to_max_and_count_everything() -> None:
    hist = LatencyHistogram()
    rnd = random.Random(7)
    for _ in range(5000):
        hist.add(rnd.uniform(1, 1000))
    bins = hist.bins(8)
    assert len(bins) == 8
    assert sum(n for _, _, n in bins) == 5000
    assert bins[0][0] == pytest.approx(hist.min) and bins[-1][1] == pytest.approx(hist.max)
    assert all(lo < hi for lo, hi, _ in bins)
    assert all(a[1] == pytest.approx(b[0]) for a, b in zip(bins, bins[1:], strict=False))


def test_bins_of_identical_values_is_one_bin() -> None:
    hist = LatencyHistogram()
    for _ in range(3):
        hist.add(5.0)
    assert hist.bins(8) == [(5.0, 5.0, 3)]


def test_outcome_names() -> None:
    assert outcome(rec(200)) == "2xx"
    assert outcome(rec(302)) == "3xx"
    assert outcome(rec(503)) == "5xx"
    assert outcome(rec(None)) == "no_status"
    assert outcome(rec(None, error=ErrorKind.DNS)) == "dns"


def test_counts_ok_failed_bytes_and_statuses() -> None:
    stats = Stats()
    for r in (rec(200, size=10), rec(200, size=5), rec(404), rec(None, error=ErrorKind.TIMEOUT, size=0)):
        stats.add(r)
    assert (stats.total, stats.ok, stats.failed, stats.bytes) == (4, 2, 2, 115)
    assert stats.counts == {"2xx": 2, "4xx": 1, "timeout": 1}
    assert stats.failures == {"4xx": 1, "timeout": 1}
    assert stats.statuses == {200: 2, 404: 1}


def test_never_fetched_lines_do_not_count_in_latency() -> None:
    stats = Stats()
    stats.add(Result.failed("nope", 1, ErrorKind.INVALID_URL, "bad"))
    stats.add(rec(200, ms=20.0))
    assert stats.latency.n == 1 and stats.percentiles()["p50"] == 20.0


def test_summary_line_keeps_its_style() -> None:
    summary = Summary()
    for r in [rec(200)] * 3 + [rec(404), rec(None, error=ErrorKind.TIMEOUT), rec(500)]:
        summary.add(r)
    line = summary.line()
    assert line.startswith("6 URLs in ") and "/s): 3 ok, 1 4xx, 1 5xx, 1 timeout" in line
    assert summary.failed == 3
    assert summary.line(interrupted=True).endswith(" — interrupted")
    one = Summary()
    one.add(rec(200))
    assert one.line().startswith("1 URL in ")


def test_summary_line_counts_what_accept_made_ok_as_ok() -> None:
    stats = Stats()
    accepted_404 = rec(404)
    accepted_404.ok = True
    stats.add(accepted_404)
    assert stats.line().endswith(": 1 ok")


def test_finish_stops_the_clock() -> None:
    stats = Stats()
    stats.add(rec())
    stats.finish()
    first = stats.elapsed()
    time.sleep(0.01)
    stats.finish()
    assert stats.elapsed() == first and stats.rate() == pytest.approx(1 / first)


def test_to_dict_is_the_summary_json_document() -> None:
    stats = Stats()
    for ms in (10.0, 20.0, 30.0, 40.0):
        stats.add(rec(200, ms=ms))
    stats.add(rec(None, ms=5000.0, error=ErrorKind.TIMEOUT))
    stats.finish()
    doc = json.loads(json.dumps(stats.to_dict()))
    assert {k: doc[k] for k in ("total", "ok", "failed", "bytes")} == {"total": 5, "ok": 4, "failed": 1, "bytes": 500}
    assert doc["counts"] == {"2xx": 4, "timeout": 1} and doc["failures"] == {"timeout": 1}
    assert doc["statuses"] == {"200": 4}
    lat = doc["latency_ms"]
    assert set(lat) == {"p50", "p90", "p99", "max", "min", "mean"}
    assert lat["p50"] == pytest.approx(30.0, rel=0.02) and lat["max"] == 5000.0 and lat["min"] == 10.0
    assert lat["mean"] == pytest.approx(1020.0)
    assert doc["throughput_per_s"] > 0 and doc["elapsed_s"] >= 0 and doc["interrupted"] is False
    started, finished = datetime.fromisoformat(doc["started"]), datetime.fromisoformat(doc["finished"])
    assert started.tzinfo is not None and started <= finished


def test_to_dict_of_an_empty_run() -> None:
    doc = Stats().to_dict(interrupted=True)
    assert doc["total"] == 0 and doc["latency_ms"]["p50"] is None and doc["interrupted"] is True


def test_an_interrupted_summary_says_how_many_urls_were_read_but_never_fetched() -> None:
    stats = Stats()
    for r in [rec(200)] * 3 + [rec(404)]:
        stats.add(r)
    assert stats.not_fetched == 0 and stats.to_dict()["not_fetched"] == 0  # the run has not said yet
    stats.read = 10
    assert stats.not_fetched == 6
    assert stats.line(interrupted=True).endswith(": 3 ok, 1 4xx — interrupted: 4 done, 6 not fetched")
    assert stats.to_dict(interrupted=True)["not_fetched"] == 6
    stats.read = 4  # a run that read only what it finished
    assert stats.not_fetched == 0 and stats.line(interrupted=True).endswith("interrupted: 4 done, 0 not fetched")
