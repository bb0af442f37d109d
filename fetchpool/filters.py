"""Which targets a run fetches: shards of a list, duplicates, what an earlier run finished.

All three key a target the same way: its `id` when the input gives one, else the method
and the normalised URL. Keys are kept as 8-byte BLAKE2b digests, never as text, so memory
grows with the number of distinct keys (not with URL length or file size): about 70
bytes per key in a Python set of ints, measured (`python -m fetchpool.filters`).
A stable hash (not Python's salted `hash()`) makes shards the same on every machine.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator

DEDUPE_LIMIT = 4_000_000  # distinct keys remembered by --dedupe: about 280 MB at the bound


def target_key(method: str, url: str, id: object = None) -> str:
    """The identity of a request across runs and machines."""
    if id is not None:
        return "id:" + json.dumps(id, sort_keys=True, separators=(",", ":"))
    return f"{method.upper()} {url}"


def digest(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "big")


def parse_shard(text: str) -> tuple[int, int]:
    """`'2/8'` -> (2, 8): shard K of N, K counted from 0."""
    k, sep, n = text.partition("/")
    try:
        shard, total = int(k), int(n)
    except ValueError:
        shard, total = -1, 0
    if not sep or total < 1 or not 0 <= shard < total:
        raise ValueError(f"--shard takes K/N with 0 <= K < N, got {text!r}")
    return shard, total


def in_shard(key: str, shard: int, total: int) -> bool:
    """True for the targets of shard `shard`; shards 0..total-1 partition any input."""
    return digest(key) % total == shard


class Seen:
    """A bounded set of keys: `add` says whether a key is new.

    Past `limit` distinct keys it stops remembering (and says so once through
    `overflowed`), so a duplicate beyond the bound is fetched again rather than memory
    growing without end: one extra fetch is cheaper than a run killed by the OOM killer.
    """

    def __init__(self, limit: int = DEDUPE_LIMIT) -> None:
        self.limit = limit
        self.overflowed = False
        self._keys: set[int] = set()

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: str) -> bool:
        return digest(key) in self._keys

    def add(self, key: str) -> bool:
        d = digest(key)
        if d in self._keys:
            return False
        if len(self._keys) >= self.limit:
            self.overflowed = True
            return True
        self._keys.add(d)
        return True


def done_keys(lines: Iterable[bytes], method: str) -> Seen:
    """Keys of the ok records in an earlier run's JSON-lines output.

    A torn last line (a run killed mid-write) or any line that is not a record is passed
    over, so its URL is fetched again. Records that were not ok do not count as done.
    """
    seen = Seen(limit=1 << 62)
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if not isinstance(record, dict) or record.get("ok") is not True or not isinstance(record.get("url"), str):
            continue
        seen.add(target_key(str(record.get("method") or method), record["url"], record.get("id")))
    return seen


def _measure(count: int = 1_000_000) -> Iterator[str]:  # pragma: no cover - a measurement
    import tracemalloc

    tracemalloc.start()
    seen = Seen()
    for i in range(count):
        seen.add(f"GET https://example.test/path/{i}?q={i * 7}")
    current, _ = tracemalloc.get_traced_memory()
    yield f"{count:,} keys: {current / count:.1f} bytes per key"


if __name__ == "__main__":  # pragma: no cover
    for line in _measure():
        print(line)
