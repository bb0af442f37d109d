"""Every fetch setting in one frozen, validated value.

The CLI turns flags into one `Options` at its boundary; the core never sees Click.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

from . import __version__

DEFAULT_USER_AGENT = f"fetchpool/{__version__}"
MAX_CONCURRENCY = 1024
LIMITED_WINDOW = 2048
ENGINES = ("threads", "processes", "ray")
DEFAULT_RETRY_ON = frozenset({"429", "502", "503", "504", "connect", "timeout", "read", "protocol"})
RETRYABLE_KINDS = frozenset({"connect", "timeout", "read", "protocol", "dns", "tls"})


def parse_retry_on(text: str) -> frozenset[str]:
    """`'429,5xx,timeout'` -> the set `--retry-on` matches against (status codes, error kinds)."""
    items: set[str] = set()
    for part in (p.strip().lower() for p in text.split(",") if p.strip()):
        if len(part) == 3 and part[0] in "12345" and part[1:] == "xx":  # a class: 5xx
            items.update(str(code) for code in range(int(part[0]) * 100, int(part[0]) * 100 + 100))
        elif (part.isdigit() and 100 <= int(part) <= 599) or part in RETRYABLE_KINDS:
            items.add(part)
        else:
            kinds = ", ".join(sorted(RETRYABLE_KINDS))
            raise OptionsError(f"--retry-on takes status codes, classes (5xx) and {kinds}; got {part!r}")
    return frozenset(items)


class OptionsError(ValueError):
    """A setting that cannot work; the CLI reports it as a usage error."""


def parse_header(text: str) -> tuple[str, str]:
    """`'Name: value'` -> `('Name', 'value')`, refusing what HTTP cannot carry."""
    name, sep, value = text.partition(":")
    name, value = name.strip(), value.strip()
    if not sep or not name or any(c in name for c in " \t\r\n"):
        raise OptionsError(f"header must look like 'Name: value', got {text!r}")
    if "\r" in value or "\n" in value:
        raise OptionsError(f"header value may not contain a line break: {name}")
    return name, value


@dataclass(frozen=True, slots=True)
class Options:
    """How to fetch. Defaults are the CLI's defaults."""

    concurrency: int = 16
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    user_agent: str = DEFAULT_USER_AGENT
    timeout: float = 10.0
    connect_timeout: float = 5.0
    follow_redirects: bool = True
    max_redirects: int = 10
    verify: bool = True
    max_bytes: int = 10 * 1024 * 1024
    default_scheme: str = "https"
    ordered: bool = False
    retries: int = 2
    backoff: float = 0.5
    retry_on: frozenset[str] = DEFAULT_RETRY_ON
    max_retry_wait: float = 30.0
    per_host: int | None = None
    rate: float | None = None
    rate_per_host: bool = False
    read_ahead: int = field(default=0)
    engine: str = "threads"
    processes: int = 0  # worker processes for the processes and ray engines; 0: one per CPU
    ray_address: str | None = None  # None: a local Ray started for the run; "auto" or HOST:PORT: join it

    def __post_init__(self) -> None:
        if not 1 <= self.concurrency <= MAX_CONCURRENCY:
            raise OptionsError(f"concurrency must be 1..{MAX_CONCURRENCY}")
        numbers = (self.timeout, self.connect_timeout, self.backoff, self.max_retry_wait, self.rate or 1.0)
        if not all(math.isfinite(x) for x in numbers):
            raise OptionsError("timeouts, --backoff, --max-retry-wait and --rate must be finite numbers")
        if self.timeout <= 0 or self.connect_timeout <= 0:
            raise OptionsError("timeouts must be positive")
        if self.max_redirects < 0 or self.max_bytes < 0:
            raise OptionsError("--max-redirects and --max-bytes cannot be negative")
        if self.retries < 0 or self.backoff < 0 or self.max_retry_wait < 0:
            raise OptionsError("--retries, --backoff and --max-retry-wait cannot be negative")
        if self.per_host is not None and self.per_host < 1:
            raise OptionsError("--per-host must be at least 1")
        if self.rate is not None and self.rate <= 0:
            raise OptionsError("--rate must be positive")
        if self.rate_per_host and self.rate is None:
            raise OptionsError("--rate-per-host needs --rate")
        if self.default_scheme not in ("http", "https"):
            raise OptionsError("default scheme must be http or https")
        method = self.method.upper()
        if not method.isalpha():
            raise OptionsError(f"not an HTTP method: {self.method!r}")
        object.__setattr__(self, "method", method)
        if self.read_ahead <= 0:
            object.__setattr__(self, "read_ahead", 2 * self.concurrency)
        if self.engine not in ENGINES:
            raise OptionsError(f"engine must be one of {', '.join(ENGINES)}; got {self.engine!r}")
        if self.processes < 0:
            raise OptionsError("--processes must be at least 1")
        if self.processes == 0:
            object.__setattr__(self, "processes", _cpu_count())

    @property
    def limited(self) -> bool:
        """Whether per-host or rate limits apply."""
        return self.per_host is not None or self.rate is not None

    @property
    def window(self) -> int:
        """URLs read but not yet written, at most: bounds memory.

        With limits, URLs of a busy host wait while others go ahead, so the window is
        wider (a few hundred KB of parked URLs at most) to let other hosts through.
        """
        base = max(self.read_ahead, self.concurrency)
        return max(base, LIMITED_WINDOW) if self.limited else base


def _cpu_count() -> int:
    """CPUs this process may run on (a container's limit, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
