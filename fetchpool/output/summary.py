"""Counts by outcome over a run: the summary line on stderr and the exit code use it."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from ..result import Result


def outcome(result: Result) -> str:
    """The bucket a record counts in: its error kind, else its status class (`2xx`...)."""
    if result.error is not None:
        return result.error.value
    if result.status is None:
        return "no_status"
    return f"{result.status // 100}xx"


@dataclass
class Summary:
    """Tallies records as they are written; cheap enough to run on every result."""

    started: float = field(default_factory=time.monotonic)
    total: int = 0
    ok: int = 0
    bytes: int = 0
    counts: Counter[str] = field(default_factory=Counter)

    def add(self, result: Result) -> None:
        self.total += 1
        self.ok += result.ok
        self.bytes += result.bytes
        self.counts[outcome(result)] += 1

    @property
    def failed(self) -> int:
        return self.total - self.ok

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def line(self, interrupted: bool = False) -> str:
        """`200 URLs in 1.2 s (165/s): 180 ok, 12 4xx, 8 timeout`."""
        secs = self.elapsed()
        rate = self.total / secs if secs > 0 else 0.0
        parts = [f"{self.ok} ok"] + [f"{n} {k}" for k, n in sorted(self.counts.items()) if k not in ("2xx", "3xx")]
        head = f"{self.total} URL{'s' if self.total != 1 else ''} in {secs:.1f} s ({rate:.0f}/s)"
        tail = " — interrupted" if interrupted else ""
        return f"{head}: {', '.join(parts)}{tail}"
