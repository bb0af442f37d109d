"""Run statistics fed every record: counts, bytes, latency percentiles, throughput.

`Stats.add` is O(1) and memory is fixed however long the run: latencies go into a
log-scale histogram (about 1,000 integer buckets, each 2 % wide) instead of a list, so
p50/p90/p99 are estimates within about 1 %, while min and max are exact. The summary
line, the live view, `--summary-json` and the exit code all read one `Stats`.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from datetime import datetime, timezone
from typing import Any

from ..result import ErrorKind, Result

_CLASS_NAMES = tuple(f"{n}xx" for n in range(10))
OUTCOME_ORDER: tuple[str, ...] = (
    "1xx",
    "2xx",
    "3xx",
    "4xx",
    "5xx",
    "no_status",
    *(k.value for k in ErrorKind),
)
PERCENTILES = (50, 90, 99)


def outcome(result: Result) -> str:
    """The bucket a record counts in: its error kind, else its status class (`2xx`...)."""
    if result.error is not None:
        return result.error.value
    status = result.status
    if status is None or not 0 <= status < 1000:
        return "no_status"
    return _CLASS_NAMES[status // 100]


def outcome_key(name: str) -> tuple[int, str]:
    """Sort outcomes as a person reads them: status classes first, then error kinds."""
    try:
        return OUTCOME_ORDER.index(name), name
    except ValueError:
        return len(OUTCOME_ORDER), name


class LatencyHistogram:
    """Counts of values in log-spaced buckets from `LOW` to `HIGH` milliseconds.

    A bucket's geometric middle is within sqrt(GROWTH) - 1 (about 1 %) of every value in
    it, which bounds the percentile error; values outside the range land in the end buckets.
    """

    LOW = 0.01
    HIGH = 1e7
    GROWTH = 1.02

    def __init__(self) -> None:
        self._log_growth = math.log(self.GROWTH)
        self.size = int(math.log(self.HIGH / self.LOW) / self._log_growth) + 1
        self.counts = [0] * self.size
        self.n = 0
        self.min = math.inf
        self.max = 0.0
        self.sum = 0.0

    def index(self, ms: float) -> int:
        if ms <= self.LOW:
            return 0
        return min(int(math.log(ms / self.LOW) / self._log_growth), self.size - 1)

    def add(self, ms: float) -> None:
        self.counts[self.index(ms)] += 1
        self.n += 1
        self.sum += ms
        if ms > self.max:
            self.max = ms
        if ms < self.min:
            self.min = ms

    def middle(self, i: int) -> float:
        """The value a bucket stands for, kept inside the exact observed range."""
        value = self.LOW * self.GROWTH ** (i + 0.5)
        return min(max(value, self.min), self.max)

    def percentile(self, p: float) -> float | None:
        """Nearest-rank percentile estimate (None when empty); p=100 gives the exact max."""
        if self.n == 0:
            return None
        if p >= 100:
            return self.max
        rank = max(1, math.ceil(p / 100 * self.n))
        seen = 0
        for i, count in enumerate(self.counts):
            seen += count
            if seen >= rank:
                return self.middle(i)
        return self.max

    def bins(self, count: int = 8) -> list[tuple[float, float, int]]:
        """`count` log-spaced `(low_ms, high_ms, n)` bins from min to max, for drawing."""
        if self.n == 0:
            return []
        lo, hi = max(self.min, self.LOW), max(self.max, self.LOW)
        if hi <= lo * 1.0001:
            return [(self.min, self.max, self.n)]
        edges = [lo * (hi / lo) ** (k / count) for k in range(count + 1)]
        out = [0] * count
        span = math.log(hi / lo)
        for i, n in enumerate(self.counts):
            if n:
                k = int(math.log(self.middle(i) / lo) / span * count)
                out[min(max(k, 0), count - 1)] += n
        return [(edges[k], edges[k + 1], out[k]) for k in range(count)]


class Stats:
    """Tallies records as they complete: the summary line, panel and `--summary-json` come from here.

    One thread adds while the live view's refresh thread reads, so `add` and `snapshot`
    share a lock (uncontended, a fraction of a microsecond) to keep reads consistent.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.started_wall = time.time()
        self.started = time.monotonic()
        self.finished: float | None = None
        self.finished_wall: float | None = None
        self.total = 0
        self.ok = 0
        self.bytes = 0
        self.counts: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()
        self.latency = LatencyHistogram()
        self.read: int | None = None  # URLs read from input, once the run has said (`Run.read`)
        self.monitor: dict[str, int] | None = None  # new_failures, recovered, changed, skipped (--state ...)

    def add(self, result: Result) -> None:
        name = outcome(result)
        with self._lock:
            self.total += 1
            self.bytes += result.bytes
            self.counts[name] += 1
            if result.ok:
                self.ok += 1
            else:
                self.failures[name] += 1
            if result.status is not None:
                self.statuses[result.status] += 1
            if result.attempts:  # never-fetched lines have no latency to speak of
                self.latency.add(result.elapsed_ms)

    @property
    def failed(self) -> int:
        return self.total - self.ok

    @property
    def not_fetched(self) -> int:
        """URLs read from input without a record: in flight or queued when the run stopped."""
        return max(self.read - self.total, 0) if self.read is not None else 0

    def finish(self) -> None:
        """Stop the clock (first call wins); elapsed time and rate then stay fixed."""
        if self.finished is None:
            self.finished = time.monotonic()
            self.finished_wall = time.time()

    def elapsed(self) -> float:
        end = self.finished if self.finished is not None else time.monotonic()
        return end - self.started

    def rate(self) -> float:
        """Records per second over the whole run so far."""
        secs = self.elapsed()
        return self.total / secs if secs > 0 else 0.0

    def percentiles(self) -> dict[str, float | None]:
        """`{"p50": ..., "p90": ..., "p99": ..., "max": ...}` in milliseconds."""
        with self._lock:
            out = {f"p{p}": self.latency.percentile(p) for p in PERCENTILES}
            out["max"] = self.latency.max if self.latency.n else None
        return out

    def snapshot(self) -> tuple[int, int, int, dict[str, int]]:
        """`(total, ok, bytes, counts)` read together, for a display on another thread."""
        with self._lock:
            return self.total, self.ok, self.bytes, dict(self.counts)

    def bins(self, count: int = 8) -> list[tuple[float, float, int]]:
        with self._lock:
            return self.latency.bins(count)

    def line(self, interrupted: bool = False) -> str:
        """`200 URLs in 1.2 s (165/s): 180 ok, 12 4xx, 8 timeout` (failures by outcome).

        Interrupted: `... — interrupted: 120 done, 16 not fetched` once `read` is known.
        """
        secs = self.elapsed()
        failures = sorted(self.failures.items(), key=lambda kv: outcome_key(kv[0]))
        parts = [f"{self.ok} ok"] + [f"{n} {k}" for k, n in failures]
        head = f"{self.total} URL{'s' if self.total != 1 else ''} in {secs:.1f} s ({self.rate():.0f}/s)"
        tail = " — interrupted" if interrupted else ""
        if interrupted and self.read is not None:
            tail += f": {self.total} done, {self.not_fetched} not fetched"
        return f"{head}: {', '.join(parts)}{self.monitor_text()}{tail}"

    def monitor_text(self) -> str:
        """`; 1 new failure, 2 recovered, 3 changed, 4 skipped` when a monitoring flag is on."""
        if self.monitor is None:
            return ""
        m = self.monitor
        failures = f"{m['new_failures']} new failure{'s' if m['new_failures'] != 1 else ''}"
        return f"; {failures}, {m['recovered']} recovered, {m['changed']} changed, {m['skipped']} skipped"

    def to_dict(self, interrupted: bool = False) -> dict[str, Any]:
        """The `--summary-json` document: plain JSON types, milliseconds and ISO times."""
        latency = self.percentiles()
        with self._lock:
            n = self.latency.n
            latency["min"] = self.latency.min if n else None
            latency["mean"] = self.latency.sum / n if n else None
            return {
                "total": self.total,
                "ok": self.ok,
                "failed": self.failed,
                "bytes": self.bytes,
                "counts": dict(sorted(self.counts.items(), key=lambda kv: outcome_key(kv[0]))),
                "failures": dict(sorted(self.failures.items(), key=lambda kv: outcome_key(kv[0]))),
                "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
                "latency_ms": {k: (round(v, 3) if v is not None else None) for k, v in latency.items()},
                "latency_samples": n,
                "elapsed_s": round(self.elapsed(), 3),
                "throughput_per_s": round(self.rate(), 3),
                "started": _iso(self.started_wall),
                "finished": _iso(self.finished_wall if self.finished_wall is not None else time.time()),
                "interrupted": interrupted,
                "not_fetched": self.not_fetched,
                **({"monitor": dict(self.monitor)} if self.monitor is not None else {}),
            }


def _iso(wall: float) -> str:
    return datetime.fromtimestamp(wall, timezone.utc).isoformat(timespec="milliseconds")
