"""What a run does on behalf of the runs before and after it: state, resume, shards, dedupe, metrics.

`app.drive` calls in here at three points: around the input (`Watch.items`, on the feeder
thread: shards, duplicates, what `--resume` finds done, conditional headers), around the
results (`Watch.records`, on the main thread: the state's previous row in, the new row
out, in batches) and at the end (`Watch.finish`: the metrics file, the summary's counts).
Nothing here is active unless its flag is given: without them a run is exactly as before.
"""

from __future__ import annotations

import itertools
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .filters import Seen, done_keys, in_shard, target_key
from .inputs import Target
from .options import Options
from .result import Result, redact_url
from .state import BATCH, State, StateBusy, StateError, observe
from .state import Seen as Row

if TYPE_CHECKING:
    from .output.metrics import MetricsWriter

VALIDATORS = ("ETag", "Last-Modified")
STATE_BUSY = 75  # sysexits' EX_TEMPFAIL: another run holds the state file; try again later
COMMIT_EVERY = 1.0  # seconds: the longest a finished URL's row waits to be committed
STATE_REFUSED = 2  # a file that is not a fetchpool state database, or a newer one: a usage error


class Refused(Exception):
    """The run cannot start as asked; `code` is its exit status, `str()` the line to print."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class MonitorPlan:
    """The flags of runs that span more than one go (see `cli_monitor`)."""

    state: str | None = None
    state_wait: float = 60.0
    conditional: bool = False
    new_failures: bool = False  # --fail-on new-failures
    fail_after: int = 1
    metrics: str | None = None
    resume: str | None = None
    shard: tuple[int, int] | None = None
    dedupe: bool = False

    @property
    def active(self) -> bool:
        return any((self.state, self.metrics, self.resume, self.shard, self.dedupe))

    def options(self, options: Options) -> Options:
        """The fetch settings the plan needs: body hashes for `changed`, validators for 304s."""
        if self.state is None:
            return options
        wanted = tuple(h for h in VALIDATORS if h.lower() not in {n.lower() for n in options.include_headers})
        headers = options.include_headers + (wanted if self.conditional else ())
        return replace(options, hash_body=True, include_headers=headers)


def counts() -> dict[str, int]:
    return {"new_failures": 0, "recovered": 0, "changed": 0, "skipped": 0}


class Watch:
    """One run's monitoring: open with `Watch.open`, close through the ExitStack given."""

    def __init__(self, plan: MonitorPlan, options: Options, asked_headers: tuple[str, ...] = ()) -> None:
        self.plan = plan
        self.method = options.method
        self.state: State | None = None
        self.done: Seen | None = None
        self.seen = Seen() if plan.dedupe else None
        self.metrics: MetricsWriter | None = None
        self.counts = counts()
        self._asked = {h.lower() for h in asked_headers}
        self._unsaved: dict[str, Row] = {}
        self._saved = time.monotonic()
        self._started = time.time()  # rows checked since are this run's own (a URL listed twice)

    @classmethod
    def open(cls, plan: MonitorPlan, options: Options, stack: ExitStack) -> Watch:
        """Open the state (waiting for another run), read what `--resume` finds done.

        `options` are the run's as the user gave them, before `plan.options` adds to them.
        """
        watch = cls(plan, options, options.include_headers)
        if plan.state is not None:
            try:
                watch.state = stack.enter_context(State(plan.state, plan.state_wait))
            except StateBusy as exc:
                raise Refused(f"fetchpool: {exc}; try again later", STATE_BUSY) from None
            except StateError as exc:
                raise Refused(f"fetchpool: --state {exc}", STATE_REFUSED) from None
        if plan.resume is not None:
            watch.done = read_done(plan.resume, options.method)
        if plan.metrics is not None:
            from .output.metrics import MetricsWriter

            watch.metrics = MetricsWriter(plan.metrics)
            stack.callback(watch.metrics.discard)
        return watch

    # -- input side (the feeder thread) ---------------------------------------------------

    def items(self, items: Iterable[Any]) -> Iterator[Any]:
        """The items this run fetches; skipped ones are counted, never recorded."""
        plan = self.plan
        db = _read_only(plan.state) if plan.conditional and plan.state is not None else None
        skipped = self.counts
        try:
            for item in items:
                if isinstance(item, Target):
                    if not self._wanted(item):
                        skipped["skipped"] += 1  # only this thread writes it
                        continue
                    if db is not None:
                        item = _conditional(item, db.execute(_VALIDATORS_OF, (self.key(item),)).fetchone())
                elif plan.shard is not None and not in_shard(target_key(self.method, item.url), *plan.shard):
                    continue  # an invalid line belongs to one shard too
                yield item
        finally:
            if db is not None:
                db.close()

    def _wanted(self, target: Target) -> bool:
        plan = self.plan
        if plan.shard is not None or self.seen is not None:
            raw = target_key(target.method or self.method, target.url, target.id)
            if plan.shard is not None and not in_shard(raw, *plan.shard):
                return False
            if self.seen is not None and not self.seen.add(raw):
                return False
        return self.done is None or self.key(target) not in self.done

    def key(self, target: Target) -> str:
        """State and resume key: as the record shows the URL (password masked), so they agree."""
        return target_key(target.method or self.method, redact_url(target.url), target.id)

    # -- result side (the main thread) ----------------------------------------------------

    def records(self, fetching: Any, accept: Callable[[Result], Any]) -> Iterator[Result]:
        """Every result, `ok` judged, with its state keys, for a run that hands results one by one."""
        return itertools.chain.from_iterable(self.batches(_bursts(fetching), accept))

    def batches(self, batches: Iterable[list[Result]], accept: Callable[[Result], Any]) -> Iterator[list[Result]]:
        """Each batch of results, `ok` judged, with its state keys: one SELECT per batch.

        The new rows are committed once the batch has been written, in transactions of
        `BATCH` rows (or every `COMMIT_EVERY` s): with results arriving a few at a time,
        a commit per handful would cost a third of the run. After a crash the rows not
        yet committed are simply older; the next run then reports those URLs' changes
        again rather than missing one.
        """
        resuming = self.plan.resume is not None
        for batch in batches:
            for result in batch:
                accept(result)
                if resuming and result.attempts:  # --resume keys on method + URL: say which method
                    result.extra = {"method": self.method, **(result.extra or {})}
            if self.state is not None:
                self._judge(batch)
            for result in batch:
                self._metrics(result)
            yield batch
            if len(self._unsaved) >= BATCH or time.monotonic() - self._saved >= COMMIT_EVERY:
                self.save()
        self.save()

    def _judge(self, batch: list[Result]) -> None:
        """Look up a batch's previous rows at once; fill each record's keys; queue its new row."""
        assert self.state is not None
        unsaved = self._unsaved
        keys = [self._record_key(r) for r in batch]
        previous = self.state.lookup(sorted({k for k in keys if k not in unsaved}))
        for result, key in zip(batch, keys, strict=True):
            # a key twice in a batch, or in rows not yet committed, sees its latest record
            unsaved[key] = self._observe(result, key, unsaved.get(key) or previous.get(key))

    def save(self) -> None:
        """Commit the rows of every record yielded so far, in one transaction."""
        if self.state is not None and self._unsaved:
            self.state.store(self._unsaved.values())
            self._unsaved = {}
        self._saved = time.monotonic()

    def _observe(self, result: Result, key: str, prev: Row | None) -> Row:
        extra = result.extra if result.extra is not None else {}
        same_run = prev is not None and prev.checked_at >= self._started  # a URL listed twice
        etag, modified = self._validators(extra)
        not_modified = result.status == 304 and self.plan.conditional
        good = result.ok and result.status is not None and (200 <= result.status < 300 or not_modified)
        row, changed = observe(
            key,
            prev,
            status=result.status,
            ok=result.ok,
            error=result.error.value if result.error is not None else None,
            etag=etag if good else None,  # validators of a failure would make its next 304 an "ok"
            last_modified=modified if good else None,
            sha256=extra.get("sha256"),
            not_modified=not_modified,
            same_run=same_run,
        )
        if not_modified and "sha256" in extra:  # nothing was sent: the hash is the stored one
            extra["sha256"] = row.sha256
        extra.update(
            changed=changed,
            prev_status=prev.status if prev else None,
            prev_ok=prev.ok if prev else None,
            fails_in_a_row=row.fails_in_a_row,
        )
        result.extra = extra
        counted = self.counts
        counted["changed"] += changed is True
        counted["recovered"] += bool(result.ok and prev is not None and not prev.ok)
        counted["new_failures"] += row.fails_in_a_row == self.plan.fail_after and not same_run
        return row

    def _validators(self, extra: dict[str, Any]) -> tuple[str | None, str | None]:
        """ETag and Last-Modified of the response, taken out of `headers` unless asked for."""
        if not self.plan.conditional:
            return None, None
        headers = extra.get("headers")
        if not isinstance(headers, dict):
            return None, None
        found = {name.lower(): value for name, value in headers.items()}
        for name in [n for n in headers if n.lower() in ("etag", "last-modified") and n.lower() not in self._asked]:
            del headers[name]
        if not headers and not self._asked:
            del extra["headers"]
        etag, modified = found.get("etag"), found.get("last-modified")
        return (etag if isinstance(etag, str) else None), (modified if isinstance(modified, str) else None)

    def _record_key(self, result: Result) -> str:
        extra = result.extra or {}
        return target_key(str(extra.get("method") or self.method), result.url, extra.get("id"))

    def _metrics(self, result: Result) -> None:
        if self.metrics is not None:
            self.metrics.write(result, _timestamp((result.extra or {}).get("cert_expires")))

    def fails(self, result: Result, fails: Callable[[Result], bool]) -> bool:
        """Whether `result` makes the exit status 1, after --fail-after and --fail-on new-failures."""
        if self.state is None:
            return fails(result)
        in_a_row = (result.extra or {}).get("fails_in_a_row", 0)
        if self.plan.new_failures:
            return bool(in_a_row == self.plan.fail_after)
        return fails(result) and in_a_row >= self.plan.fail_after

    def finish(self) -> None:
        """Write the metrics file (atomically); called once the last record is written."""
        if self.metrics is not None:
            from .streams import naming

            with naming("write", self.metrics.path):
                self.metrics.close()


def _bursts(fetching: Any) -> Iterator[list[Result]]:
    """Results grouped as they are ready: a burst ends when nothing more is waiting
    (`pending()` false) or at `BATCH`, so no finished record waits for a slow URL."""
    burst: list[Result] = []
    for result in fetching:
        burst.append(result)
        if len(burst) >= BATCH or not fetching.pending():
            yield burst
            burst = []
    if burst:
        yield burst


def read_done(path: str, method: str) -> Seen:
    """The keys `path` holds ok records of; a torn last line is ended so appending starts clean."""
    from .streams import naming

    with naming("read", path):
        try:
            handle = open(path, "r+b")
        except FileNotFoundError:
            return Seen(limit=0)
        with handle:
            done = done_keys(handle, method)
            if handle.seek(0, os.SEEK_END) and (handle.seek(-1, os.SEEK_END), handle.read(1))[1] != b"\n":
                handle.write(b"\n")  # the torn line stays unparseable; the next record starts a line
    return done


_VALIDATORS_OF = "SELECT etag, last_modified FROM urls WHERE key = ?"


def _read_only(path: str) -> sqlite3.Connection:
    """The feeder thread's own read-only connection, for point lookups of stored validators.

    One primary-key SELECT per target (a few microseconds) rather than batches: a batch
    would hold back the first URLs of a slow stdin until it filled, and nothing but the
    target at hand is ever in memory.
    """
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0)


def _conditional(target: Target, validators: tuple[str | None, str | None] | None) -> Target:
    """`target` with the request headers that make its answer a 304 when nothing changed."""
    if validators is None:
        return target
    etag, modified = validators
    added = tuple((n, v) for n, v in (("If-None-Match", etag), ("If-Modified-Since", modified)) if v)
    return replace(target, headers=target.headers + added) if added else target


def _timestamp(iso: Any) -> float | None:
    if not isinstance(iso, str):
        return None
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
