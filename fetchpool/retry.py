"""When to try a URL again, and how long to wait first.

The wait itself is not spent here: the pool schedules the next attempt and frees the
worker meanwhile, so one URL backing off never slows the rest of a run. urllib3's
`Retry` parses `Retry-After` (seconds or an HTTP date); the backoff is its formula,
`backoff * 2 ** (attempt - 1)`, with jitter so retries against one host spread out.

`-t` bounds the whole URL, so a retry whose wait would end past its deadline is not made.
A retry that is due but not made for how long it would wait says so in `error_message`,
even on a record with no `error` (a 503 whose `Retry-After` is too long).
"""

from __future__ import annotations

import random
import time

from urllib3.exceptions import InvalidHeader
from urllib3.util.retry import Retry

from .options import Options
from .result import ErrorKind, Result, one_line

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


def retry_delay(
    result: Result, retry_after: str | None, options: Options, started: float | None = None, method: str | None = None
) -> float | None:
    """Seconds to wait before the next attempt, or None to keep this result as final.

    `started` is when the URL's first attempt started: its deadline is that plus `-t`.
    `method` is the target's (None: the run's); a POST, which may have done its work
    already, is retried only with `retry_all_methods`.
    """
    if result.attempts > options.retries:
        return None
    if (method or options.method) not in IDEMPOTENT and not options.retry_all_methods:
        return None
    if retry_key(result) not in options.retry_on:
        return None
    left = options.timeout if started is None else started + options.timeout - time.monotonic()
    if left <= 0 and result.error is ErrorKind.TIMEOUT:
        return None  # the record already says the deadline passed
    asked = retry_after_seconds(retry_after)
    if asked is not None and asked > options.max_retry_wait:
        return _not_retried(
            result, f"Retry-After {_s(asked)} s exceeds --max-retry-wait {_s(options.max_retry_wait)} s"
        )
    if asked is not None:
        delay, what = asked, f"Retry-After {_s(asked)} s"
    else:
        delay = min(options.backoff * 2 ** (result.attempts - 1) * random.uniform(0.5, 1.5), options.max_retry_wait)
        what = f"the next retry, in {_s(delay)} s,"
    if delay >= left:
        return _not_retried(result, f"{what} would pass the {options.timeout:g} s deadline (-t)")
    return delay


def _not_retried(result: Result, why: str) -> float | None:
    """Say in the record why the retry it qualified for was not made; None: no retry."""
    why += "; not retried"
    result.error_message = one_line(f"{result.error_message}; {why}" if result.error_message else why)
    return None


def _s(seconds: float) -> str:
    """`120.0` -> `120`, `0.4213` -> `0.42`: seconds as a person reads them."""
    return f"{seconds:.2f}".rstrip("0").rstrip(".") if seconds < 10 else f"{seconds:.0f}"
