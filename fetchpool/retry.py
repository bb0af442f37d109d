"""When to try a URL again, and how long to wait first.

The wait itself is not spent here: the pool schedules the next attempt and frees the
worker meanwhile, so one URL backing off never slows the rest of a run. urllib3's
`Retry` parses `Retry-After` (seconds or an HTTP date); the backoff is its formula,
`backoff * 2 ** (attempt - 1)`, with jitter so retries against one host spread out.
"""

from __future__ import annotations

import random

from urllib3.exceptions import InvalidHeader
from urllib3.util.retry import Retry

from .options import Options
from .result import Result

IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"})
_PARSER = Retry(0)


def retry_key(result: Result) -> str:
    """What `--retry-on` matches: the error kind, else the status code as text."""
    return result.error.value if result.error is not None else str(result.status)


def retry_after_seconds(value: str | None) -> float | None:
    """`Retry-After: 120` or `Retry-After: <HTTP date>` -> seconds; None when absent or bad."""
    if not value:
        return None
    try:
        return max(_PARSER.parse_retry_after(value), 0.0)
    except (InvalidHeader, ValueError, OverflowError):
        return None


def retry_delay(result: Result, retry_after: str | None, options: Options) -> float | None:
    """Seconds to wait before the next attempt, or None to keep this result as final."""
    if result.attempts > options.retries or options.method not in IDEMPOTENT:
        return None
    if retry_key(result) not in options.retry_on:
        return None
    asked = retry_after_seconds(retry_after)
    if asked is not None:
        return asked if asked <= options.max_retry_wait else None  # too long: report the status
    backoff = options.backoff * 2 ** (result.attempts - 1) * random.uniform(0.5, 1.5)
    return min(backoff, options.max_retry_wait)
