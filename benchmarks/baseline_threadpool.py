"""The "best effort" plain-requests baseline that fetchpool is compared against.

Why it exists: fetchpool's overhead only means something next to what a competent user
would write by hand with the same libraries. This is that script: a thread pool
(`multiprocessing.dummy.Pool(K)`), one `requests.Session` per worker thread (created by
the pool initializer into a `threading.local`), an `HTTPAdapter(pool_maxsize=K)` mounted
so connections are kept alive, and `imap_unordered` in chunks so results stream out as
they complete. It prints one HTTP status per URL line (or `ERR:<ExceptionName>`), which
run.py counts.

Deliberate "best effort" choices, documented so the comparison is honest:
- `session.trust_env = False`: skips the per-request netrc/proxy environment lookups that
  a tuned script would also skip (fetchpool instead caches proxies per origin).
- no JSON, no per-URL deadline watchdog, no redirect policy: it does strictly less work
  per URL than fetchpool, which is the point of a lower bound on overhead.

    python benchmarks/baseline_threadpool.py URLFILE -k 16
"""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Iterator
from multiprocessing.dummy import Pool

import requests
from requests.adapters import HTTPAdapter

_local = threading.local()


def _init(pool_size: int, timeout: float) -> None:
    """Pool initializer: runs once in every worker thread, so each owns its Session."""
    session = requests.Session()
    session.trust_env = False
    adapter = HTTPAdapter(pool_maxsize=pool_size, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    _local.session = session
    _local.timeout = timeout


def _fetch(url: str) -> str:
    """GET one URL, read its whole body, return the status (never raises)."""
    try:
        response = _local.session.get(url, timeout=_local.timeout)
        return str(response.status_code)
    except requests.RequestException as exc:
        return f"ERR:{type(exc).__name__}"


def _urls(path: str) -> Iterator[str]:
    with open(path, encoding="utf-8") as f:
        for line in f:
            url = line.strip()
            if url and not url.startswith("#"):
                yield url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="plain requests + thread pool baseline")
    parser.add_argument("urlfile")
    parser.add_argument("-k", "--concurrency", type=int, default=16)
    parser.add_argument("--chunksize", type=int, default=8, help="URLs per imap_unordered task")
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args(argv)
    write = sys.stdout.write
    with Pool(args.concurrency, initializer=_init, initargs=(args.concurrency, args.timeout)) as pool:
        for status in pool.imap_unordered(_fetch, _urls(args.urlfile), chunksize=args.chunksize):
            write(status + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
