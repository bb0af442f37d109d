"""Politeness: at most N requests in flight per host, and a request rate, global or per host.

Pure bookkeeping, used only by the dispatching thread: it never sleeps and never holds a
worker. `admit` answers "start now", "wait this long" or "wait until one finishes".
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

from .options import OptionsError

MAX_TRACKED = 4096
BLOCKED = math.inf  # wait until a request to this host finishes
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:/\s*(s|sec|second|m|min|minute|h|hour))?\s*$", re.IGNORECASE)
_PER = {"s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0, "h": 3600.0, "hour": 3600.0}


def parse_rate(text: str) -> float:
    """`'20'`, `'20/s'`, `'100/m'`, `'3600/h'` -> requests per second."""
    m = _RATE.match(text)
    if not m or float(m.group(1)) <= 0:
        raise OptionsError(f"must look like 20, 20/s, 100/m or 3600/h; got {text!r}", "rate")
    return float(m.group(1)) / _PER[(m.group(2) or "s").lower()]


@dataclass
class HostGate:
    """Decides when a request to a host may start."""

    per_host: int | None = None
    rate: float | None = None
    rate_per_host: bool = False

    def __post_init__(self) -> None:
        self._in_flight: Counter[str] = Counter()
        self._next_at: dict[str, float] = {}

    @property
    def keyed_by_host(self) -> bool:
        """Whether waiting URLs must be kept apart by host (else one queue serves)."""
        return self.per_host is not None or self.rate_per_host

    def admit(self, host: str, now: float) -> float:
        """0.0 and the start is counted; else seconds to wait, or BLOCKED."""
        if self.per_host is not None and self._in_flight[host] >= self.per_host:
            return BLOCKED
        if self.rate is not None:
            key = host if self.rate_per_host else "*"
            at = self._next_at.get(key, 0.0)
            if now < at:
                return at - now
            if len(self._next_at) > MAX_TRACKED:  # forget hosts whose turn has long come
                self._next_at = {k: t for k, t in self._next_at.items() if t > now}
            self._next_at[key] = max(at, now) + 1 / self.rate
        self._in_flight[host] += 1
        return 0.0

    def finished(self, host: str) -> None:
        self._in_flight[host] -= 1
        if self._in_flight[host] <= 0:
            del self._in_flight[host]
