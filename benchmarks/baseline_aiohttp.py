"""The asyncio peer: what the best-known asyncio Python client reaches on the same list and machine.

Why it exists: fetchpool's threads are bounded by one core under the GIL; next to it, the
question is what a competent asyncio script does with the same core. This is that script:
K worker coroutines share one `aiohttp.ClientSession` whose `TCPConnector(limit=K)` keeps at
most K keep-alive connections; each worker takes the next URL from the input (a file, or
stdin with `-`), reads the whole body and counts the status. At the end it prints one
`STATUS COUNT` line per status (`ERR:<ExceptionName>` for failures), which run.py adds up
and checks: exactly one 200 per URL.

Deliberate "best effort" choices, documented so the comparison is honest:
- aiohttp's own C HTTP parser (from its wheels) and the stdlib event loop (no uvloop, which
  is not part of a plain `pip install aiohttp`);
- no per-URL output, no redirect or retry policy: it does strictly less work per URL than
  fetchpool, as the requests baseline does;
- `trust_env=False` (aiohttp's default): no proxy or netrc lookups.

It is installed only for the benchmark (`pip install aiohttp`), never as a dependency of fetchpool.

    python benchmarks/baseline_aiohttp.py URLFILE -k 64
    python benchmarks/baseline_aiohttp.py - -k 64 < URLFILE
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections import Counter
from collections.abc import Iterator
from typing import TextIO

import aiohttp


def _urls(stream: TextIO) -> Iterator[str]:
    for line in stream:
        url = line.strip()
        if url and not url.startswith("#"):
            yield url


async def _worker(session: aiohttp.ClientSession, urls: Iterator[str], counts: Counter[str]) -> None:
    """Fetch URLs until the input runs out. One event loop thread: sharing `urls` needs no lock."""
    for url in urls:
        try:
            async with session.get(url) as response:
                await response.read()
                counts[str(response.status)] += 1
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            counts[f"ERR:{type(exc).__name__}"] += 1


async def fetch_all(stream: TextIO, concurrency: int, timeout: float) -> Counter[str]:
    counts: Counter[str] = Counter()
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=timeout)) as session:
        urls = _urls(stream)
        await asyncio.gather(*(_worker(session, urls, counts) for _ in range(concurrency)))
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="aiohttp: K coroutines over one ClientSession")
    parser.add_argument("urlfile", help="file of URLs, one per line, or - for stdin")
    parser.add_argument("-k", "--concurrency", type=int, default=16)
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per URL")
    args = parser.parse_args(argv)
    if args.urlfile == "-":
        counts = asyncio.run(fetch_all(sys.stdin, args.concurrency, args.timeout))
    else:
        with open(args.urlfile, encoding="utf-8") as stream:
            counts = asyncio.run(fetch_all(stream, args.concurrency, args.timeout))
    for status, count in counts.most_common():
        print(status, count)
    return 0


if __name__ == "__main__":
    sys.exit(main())
